"""MobileNet-V1 (Howard et al. 2017) with a configurable grouped 3x3 conv in every module.

Stem: 3x3 conv 3→32, stride 2. Then 13 modules "3x3 conv m→m (grouped) + 1x1 conv m→n", each
followed by BN + ReLU; global average pool; FC 1024→classes. Only the 3x3 conv of each module is
grouped: groups = m / G (E2GC) or g (FgGC). G = 1 is the stock depthwise-separable network. Stage-wise E2GC gives each stage (modules with
the same m, see :data:`STAGE_CHANNELS`) its own G.

The file ends by registering the network (:func:`~.registry.register_model`): its builder, plan,
stages, and the text of its standalone builder for ``e2gcsearch export`` (:data:`EXPORT_BODY`).
"""

from __future__ import annotations

import dataclasses
import re

import torch
from torch import nn

from ..config import ArchConfig
from .flgc import FoldSite
from .layers import (
    CHANNEL_DIVISOR,
    create_conv2d,
    grouped_divisor,
    init_weights,
    learned_assignment,
    num_groups,
    scale_channels,
)
from .registry import ExportRows, ModelEntry, StagePlan, register_model
from .stages import check_stage_count

STEM_CHANNELS = 32
# (n = output channels of the 1x1 conv, stride of the grouped 3x3 conv) of the 13 modules.
MODULES: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)
# Stock input channels m of the grouped 3x3 convs, one per stage: the stem's output, then each distinct
# module output that feeds another module → (32, 64, 128, 256, 512, 1024).
STAGE_CHANNELS: tuple[int, ...] = tuple(dict.fromkeys((STEM_CHANNELS, *(out for out, _ in MODULES[:-1]))))
_LAYER = re.compile(r"^features\.(\d+)\.")


@dataclasses.dataclass(frozen=True)
class ModuleSpec:
    """One row of the stage table: grouped 3x3 conv m→m (stride, groups), then 1x1 conv m→n;
    ``learned``: FLGC's assignment of the grouped conv (``None`` for fixed groups)."""

    in_channels: int
    out_channels: int
    stride: int
    groups: int
    learned: str | None = None


@dataclasses.dataclass(frozen=True)
class MobileNetV1Plan:
    stem_channels: int
    modules: tuple[ModuleSpec, ...]
    num_classes: int


def plan(arch_config: ArchConfig) -> MobileNetV1Plan:
    """Channel counts and groups of every module for ``arch_config`` (validates divisibility)."""
    check_stage_count(arch_config)
    # Every module output feeds the next grouped conv, so it uses the grouped divisor of that conv's
    # stage; so does the stem.
    stem = scale_channels(
        STEM_CHANNELS, arch_config.width, grouped_divisor(arch_config, STAGE_CHANNELS.index(STEM_CHANNELS))
    )
    specs = []
    in_channels, in_stock = stem, STEM_CHANNELS
    for index, (out_stock, stride) in enumerate(MODULES):
        is_last = index == len(MODULES) - 1
        divisor = CHANNEL_DIVISOR if is_last else grouped_divisor(arch_config, STAGE_CHANNELS.index(out_stock))
        out_channels = scale_channels(out_stock, arch_config.width, divisor)
        groups = num_groups(
            in_channels, arch_config, layer=f"features.{index}.conv_grouped", stage=STAGE_CHANNELS.index(in_stock)
        )
        specs.append(ModuleSpec(in_channels, out_channels, stride, groups, learned_assignment(arch_config)))
        in_channels, in_stock = out_channels, out_stock
    return MobileNetV1Plan(stem, tuple(specs), arch_config.num_classes)


def layer_stage(layer_name: str) -> int | None:
    """Stage of a layer (``features.7.conv_grouped`` → 4): the stage of its module's grouped-conv input
    channels; ``None`` outside the modules (stem, classifier)."""
    match = _LAYER.match(layer_name)
    if not match:
        return None
    index = int(match.group(1))
    stock_in = STEM_CHANNELS if index == 0 else MODULES[index - 1][0]
    return STAGE_CHANNELS.index(stock_in)


class GroupedModule(nn.Module):
    """3x3 grouped conv + BN + ReLU, then 1x1 conv + BN + ReLU."""

    def __init__(self, spec: ModuleSpec) -> None:
        super().__init__()
        m, n = spec.in_channels, spec.out_channels
        self.conv_grouped = create_conv2d(m, m, 3, stride=spec.stride, groups=spec.groups, learned=spec.learned)
        self.bn_grouped = nn.BatchNorm2d(m)
        self.conv_pointwise = create_conv2d(m, n, 1)
        self.bn_pointwise = nn.BatchNorm2d(n)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn_grouped(self.conv_grouped(x)))  # (B, m, H/s, W/s)
        return self.relu(self.bn_pointwise(self.conv_pointwise(x)))  # (B, n, H/s, W/s)


class MobileNetV1(nn.Module):
    def __init__(self, net: MobileNetV1Plan) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            create_conv2d(3, net.stem_channels, 3, stride=2),
            nn.BatchNorm2d(net.stem_channels),
            nn.ReLU(inplace=True),
        )
        self.features = nn.Sequential(*(GroupedModule(spec) for spec in net.modules))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(net.modules[-1].out_channels, net.num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.stem(x))  # (B, 1024·w, H/32, W/32)
        return self.classifier(torch.flatten(self.pool(x), 1))  # (B, classes)

    def fold_sites(self) -> list[FoldSite]:
        """Where each module's grouped conv sits (for :func:`~.flgc.deploy`): its input comes from the
        previous module's 1x1 conv + BN (the stem's conv + BN for the first), its output goes through
        its own BN to its own 1x1 conv."""
        producers = [(self.stem[0], self.stem[1])] + [(m.conv_pointwise, m.bn_pointwise) for m in self.features]
        return [
            FoldSite(module, "conv_grouped", producer, (module.bn_grouped, module.conv_pointwise))
            for module, producer in zip(self.features, producers)
        ]


def build(arch_config: ArchConfig) -> MobileNetV1:
    return MobileNetV1(plan(arch_config))


def export_table(net: MobileNetV1Plan) -> str:
    """The ``MODULES`` rows of the standalone builder: (in, out, stride, groups) per module."""
    return "\n".join(
        f"    ({m.in_channels}, {m.out_channels}, {m.stride}, {m.groups}),  # features.{i}, "
        f"{m.in_channels // m.groups} channels per group"
        for i, m in enumerate(net.modules)
    )


# The standalone builder's copy of the classes above (see e2gcsearch.export.template); keep in step.
EXPORT_BODY = '''
# One row per module (features.N): 3x3 conv in->in with `groups` groups and `stride`, then 1x1 conv
# in->out, each followed by BN + ReLU. Channels per group = in / groups ($grouping).
MODULES = (
    # in, out, stride, groups
$table
)


class GroupedModule(nn.Module):
    """3x3 grouped conv + BN + ReLU, then 1x1 conv + BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv_grouped = conv(in_channels, in_channels, 3, stride=stride, groups=groups)
        self.bn_grouped = nn.BatchNorm2d(in_channels)
        self.conv_pointwise = conv(in_channels, out_channels, 1)
        self.bn_pointwise = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn_grouped(self.conv_grouped(x)))  # (B, in, H/stride, W/stride)
        return self.relu(self.bn_pointwise(self.conv_pointwise(x)))  # (B, out, H/stride, W/stride)


class MobileNetV1(nn.Module):
    """Stem 3x3 conv (stride 2) -> the modules of MODULES -> global average pool -> linear classifier."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv(3, STEM_CHANNELS, 3, stride=2), nn.BatchNorm2d(STEM_CHANNELS),
                                  nn.ReLU(inplace=True))
        self.features = nn.Sequential(*(GroupedModule(*row) for row in MODULES))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(MODULES[-1][1], num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.stem(x))  # (B, MODULES[-1][1], H/32, W/32)
        return self.classifier(torch.flatten(self.pool(x), 1))  # (B, num_classes)


NETWORK = MobileNetV1
'''


register_model(
    ModelEntry(
        name="mobilenet_v1",
        build=build,
        plan=plan,
        total_stride=32,
        baseline=ArchConfig("mobilenet_v1", group_size=1),
        description="MobileNet-V1: 13 modules of grouped 3x3 + 1x1 conv; G=1 is the stock depthwise network",
        display_name="MobileNet-V1",
        stages=StagePlan(STAGE_CHANNELS, layer_stage),
        export=ExportRows(EXPORT_BODY, export_table),
        in_paper_tables=True,
        default=True,
    )
)
