"""torchvision's grouped and depthwise CNNs, searched as they ship: RegNet, MobileNet-V2/V3,
EfficientNet, ShuffleNet-V2 and ResNeXt.

Each entry is the unchanged torchvision module (built with ``weights=None``: nothing is downloaded)
whose grouped convs get G or g by :mod:`.rewrite`; its baseline is the stock grouping, so a search
queues the network as torchvision ships it first, and its exported builder loads torchvision's
pretrained weights unchanged. RegNet's *group width* is E2GC's constant group size G ("Designing
Network Design Spaces", Radosavovic et al., CVPR 2020): regnet_y_400mf is E2GC G=8, regnet_x_400mf G=16.

Width rule (``ArchConfig.width``), the builder's own multiplier where it has one; width 1.0 is always
the stock builder:

* mobilenet_v2: ``width_mult``, with ``round_nearest`` = lcm(8, G or g) so every depthwise conv stays
  divisible (torchvision's own rounding, with our divisor);
* mobilenet_v3_small / _large: ``width_mult`` (torchvision rounds to multiples of 8; a G that does not
  divide is refused);
* regnet_*: RegNet's own width parameters w_0 and w_a scaled, group width lcm(stock, 8, G or g) —
  RegNet rounds every stage width to a multiple of its group width;
* shufflenet_v2_x1_0: ``stages_out_channels`` scaled, each branch rounded to lcm(8, G or g);
* resnext*: ``width_per_group`` (the grouped width) scaled; the 1x1 convs keep their channels;
* efficientnet_b0: width 1.0 only (torchvision fixes the multiplier per variant b0 … b7).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..config import ArchConfig
from ..errors import ConfigError
from .call import Call, Ref
from .layers import make_divisible
from .registry import register_model
from .rewrite import StockNetwork, regrouped_entry

MODELS = "torchvision.models"


def _builder(name: str) -> Call:
    return Call(f"{MODELS}:{name}")


def _mobilenet_v2(width: float, divisor: int) -> Call:
    if width == 1.0:
        return _builder("mobilenet_v2")
    return Call(f"{MODELS}:mobilenet_v2", (("width_mult", width), ("round_nearest", divisor)))


def _mobilenet_v3(variant: str) -> Callable[[float, int], Call]:
    def constructor(width: float, divisor: int) -> Call:
        name = f"mobilenet_v3_{variant}"
        return _builder(name) if width == 1.0 else Call(f"{MODELS}:{name}", (("width_mult", width),))

    return constructor


def _efficientnet_b0(width: float, divisor: int) -> Call:
    if width != 1.0:
        raise ConfigError(
            f"efficientnet_b0 is built at width 1.0 only (torchvision fixes its width per variant "
            f"b0 ... b7), got width {width:g}; use --width 1.0 (or --widths 1.0 in a search)"
        )
    return _builder("efficientnet_b0")


def _regnet(
    depth: int, w_0: int, w_a: float, w_m: float, group_width: int, se_ratio: float | None = None
) -> Callable[[float, int], Call]:
    # Always RegNet(BlockParams...) rather than the builder: the block parameters are computed with tensors,
    # which run on the CPU here also when the network is built on the meta device (cost model).
    def constructor(width: float, divisor: int) -> Call:
        stock = width == 1.0
        params = (
            ("depth", depth),
            ("w_0", w_0 if stock else make_divisible(w_0 * width, 8)),
            ("w_a", w_a if stock else round(w_a * width, 4)),
            ("w_m", w_m),
            ("group_width", group_width if stock else math.lcm(group_width, divisor)),
        )
        if se_ratio is not None:
            params += (("se_ratio", se_ratio),)
        block_params = Call(f"{MODELS}.regnet:BlockParams.from_init_params", params, classes="none")
        return Call(f"{MODELS}:RegNet", (("block_params", block_params),))

    return constructor


def _shufflenet_v2_x1_0(width: float, divisor: int) -> Call:
    if width == 1.0:
        return _builder("shufflenet_v2_x1_0")
    stem, *stages, last = (24, 116, 232, 464, 1024)
    # Depthwise convs see the stem's output, and half of each stage's output (the two branches).
    channels = (
        make_divisible(stem * width, divisor),
        *(2 * make_divisible(out / 2 * width, divisor) for out in stages),
        make_divisible(last * width, 8),
    )
    return Call(f"{MODELS}:ShuffleNetV2", (("stages_repeats", (4, 8, 4)), ("stages_out_channels", channels)))


def _resnext(name: str, layers: tuple[int, ...], groups: int, width_per_group: int) -> Callable[[float, int], Call]:
    def constructor(width: float, divisor: int) -> Call:
        if width == 1.0:
            return _builder(name)
        return Call(
            f"{MODELS}:ResNet",
            (
                ("block", Ref(f"{MODELS}.resnet:Bottleneck")),
                ("layers", layers),
                ("groups", groups),
                ("width_per_group", max(1, round(width_per_group * width))),
            ),
        )

    return constructor


# name, constructor, stock grouping, display name, description
NETWORKS: tuple[tuple[str, Callable[[float, int], Call], dict[str, int], str, str], ...] = (
    (
        "regnet_x_400mf",
        _regnet(22, 24, 24.48, 2.54, 16),
        {"group_size": 16},
        "RegNetX-400MF",
        "torchvision's RegNetX-400MF: 22 X blocks, group width 16 (= E2GC G=16 is the stock network)",
    ),
    (
        "regnet_y_400mf",
        _regnet(16, 48, 27.89, 2.09, 8, 0.25),
        {"group_size": 8},
        "RegNetY-400MF",
        "torchvision's RegNetY-400MF: 16 Y blocks (with SE), group width 8 (= E2GC G=8 is the stock network)",
    ),
    (
        "mobilenet_v2",
        _mobilenet_v2,
        {"group_size": 1},
        "MobileNet-V2",
        "torchvision's MobileNet-V2: 17 inverted residuals with a depthwise 3x3 conv; G=1 is the stock network",
    ),
    (
        "mobilenet_v3_small",
        _mobilenet_v3("small"),
        {"group_size": 1},
        "MobileNet-V3-Small",
        "torchvision's MobileNet-V3-Small: 11 inverted residuals with depthwise 3x3/5x5 convs; G=1 is stock",
    ),
    (
        "mobilenet_v3_large",
        _mobilenet_v3("large"),
        {"group_size": 1},
        "MobileNet-V3-Large",
        "torchvision's MobileNet-V3-Large: 15 inverted residuals with depthwise 3x3/5x5 convs; G=1 is stock",
    ),
    (
        "efficientnet_b0",
        _efficientnet_b0,
        {"group_size": 1},
        "EfficientNet-B0",
        "torchvision's EfficientNet-B0: 16 MBConv blocks with depthwise 3x3/5x5 convs; G=1 is stock (width 1.0 only)",
    ),
    (
        "shufflenet_v2_x1_0",
        _shufflenet_v2_x1_0,
        {"group_size": 1},
        "ShuffleNet-V2 1.0x",
        "torchvision's ShuffleNet-V2 1.0x: 16 units with depthwise 3x3 convs; G=1 is the stock network",
    ),
    (
        "resnext50_32x4d",
        _resnext("resnext50_32x4d", (3, 4, 6, 3), 32, 4),
        {"groups": 32},
        "ResNeXt-50 32x4d (torchvision)",
        "torchvision's ResNeXt-50 32x4d module itself (cf. resnext50, e2gcsearch's own); g=32 is stock",
    ),
    (
        "resnext101_32x8d",
        _resnext("resnext101_32x8d", (3, 4, 23, 3), 32, 8),
        {"groups": 32},
        "ResNeXt-101 32x8d",
        "torchvision's ResNeXt-101 32x8d: 33 bottlenecks with a grouped 3x3 conv; g=32 is the stock network",
    ),
)

for _name, _constructor, _stock, _display, _description in NETWORKS:
    register_model(
        regrouped_entry(StockNetwork(_name, _constructor), ArchConfig(_name, **_stock), _description, _display)
    )
