"""The one grouped-conv factory every model uses, and the rules that turn a grouping and a width
multiplier into channel counts.

Channel-rounding rule (width multiplier):
    * ``width == 1.0`` keeps the paper's channel counts exactly; a G or g that does not divide a
      grouped layer's channels is then an error (the paper's networks are reproduced, never altered).
    * ``width != 1.0`` scales every channel count c to ``c * width`` rounded to the nearest multiple
      of a divisor d (at least d, and bumped up by d if rounding lost more than 10 %). d is 8 for
      ordinary layers, and ``lcm(8, G)`` (E2GC) or ``lcm(8, g)`` (FgGC) for the channels of a grouped
      3x3 conv, so every grouped layer stays divisible by construction. Stage-wise E2GC
      (``stage_group_sizes``) uses ``lcm(8, G_i)`` for the channels of stage i's grouped convs.
      FLGC rounds as E2GC (``group_size``) or FgGC (``groups``), so FLGC g has FgGC g's channels.

FLGC (learned groups, :mod:`.flgc`): :func:`create_conv2d` builds its training form when asked
(``learned="balanced"`` or ``"uneven"``); :func:`.flgc.deploy` turns a trained network into plain convs.
"""

from __future__ import annotations

import math

from torch import nn

from ..config import E2GC, FGGC, ArchConfig
from ..errors import ConfigError
from .flgc import BALANCED, UNEVEN, LearnedGroupConv2d

CHANNEL_DIVISOR = 8


def make_divisible(value: float, divisor: int, min_ratio: float = 0.9) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (at least ``divisor``) without losing
    more than ``1 - min_ratio`` of it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < min_ratio * value:
        rounded += divisor
    return rounded


def grouping_at(arch_config: ArchConfig, stage: int | None = None) -> tuple[str, int]:
    """``("E2GC", G)`` or ``("FgGC", g)`` that applies to the grouped convs of ``stage`` (FLGC: as the
    grouping field it was given, ``group_size`` or ``groups``).

    Uniform configs ignore ``stage``; a stage-wise config needs it (stages: :mod:`.stages`).
    """
    if arch_config.stage_group_sizes is None:
        return (E2GC if arch_config.group_size is not None else FGGC), int(arch_config.grouping_value)
    if stage is None or not 0 <= stage < len(arch_config.stage_group_sizes):
        raise ConfigError(
            f"{arch_config.label()} has {len(arch_config.stage_group_sizes)} stage group sizes; "
            f"stage {stage} is not one of them (check the arch's stage table)"
        )
    return E2GC, arch_config.stage_group_sizes[stage]


def grouped_divisor(arch_config: ArchConfig, stage: int | None = None) -> int:
    """The multiple that channels of a grouped conv (of ``stage``) are rounded to when ``width != 1``."""
    return math.lcm(CHANNEL_DIVISOR, grouping_at(arch_config, stage)[1])


def scale_channels(channels: int, width: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """Stock channel count → channel count at ``width`` (identity at width 1.0)."""
    if width == 1.0:
        return channels
    return make_divisible(channels * width, divisor)


def num_groups(channels: int, arch_config: ArchConfig, layer: str = "a grouped layer", stage: int | None = None) -> int:
    """Number of groups of a grouped conv with ``channels`` input channels under ``arch_config``.

    E2GC: ``channels // group_size`` (group size 1 → depthwise); FgGC: ``groups``; stage-wise E2GC:
    ``channels // stage_group_sizes[stage]``. Raises :class:`ConfigError` with a fix when the
    grouping does not divide the channels.
    """
    module, value = grouping_at(arch_config, stage)
    if module == E2GC:
        size = value
        if size > channels or channels % size:
            raise ConfigError(
                f"group size G={size} does not divide the {channels} channels of {layer} "
                f"({arch_config.arch}, width {arch_config.width:g}); use a G that divides {channels} "
                f"(e.g. a power of two <= {_largest_pow2_divisor(channels)}) or a width other than 1.0 "
                "so channels are rounded to a multiple of G"
            )
        return channels // size
    groups = value
    if groups > channels or channels % groups:
        raise ConfigError(
            f"groups g={groups} does not divide the {channels} channels of {layer} "
            f"({arch_config.arch}, width {arch_config.width:g}); use a g that divides {channels} "
            f"(e.g. a power of two <= {_largest_pow2_divisor(channels)}) or a width other than 1.0 "
            "so channels are rounded to a multiple of g"
        )
    return groups


def _largest_pow2_divisor(channels: int) -> int:
    return channels & -channels


def learned_assignment(arch_config: ArchConfig) -> str | None:
    """How the grouped convs of ``arch_config`` assign channels to groups: ``None`` (fixed contiguous
    groups, E2GC/FgGC), ``"balanced"`` (FLGC) or ``"uneven"`` (FLGC with free group sizes)."""
    if not arch_config.is_learned:
        return None
    return UNEVEN if arch_config.uneven else BALANCED


def create_conv2d(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    learned: str | None = None,
) -> nn.Conv2d:
    """Every conv of every model: bias-free, 'same' padding for odd kernels, any grouping; with
    ``learned`` (``"balanced"``/``"uneven"``), FLGC's training form with ``groups`` learned groups."""
    if learned is not None:
        return LearnedGroupConv2d(
            in_channels, out_channels, kernel_size, stride=stride, groups=groups, assignment=learned
        )
    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        groups=groups,
        bias=False,
    )


def init_weights(model: nn.Module) -> None:
    """He init for convs (fan-out), unit BN, small normal for the classifier (as torchvision).

    A model built on the ``meta`` device (the cost model's shape pass) has no values to set; skipping
    it saves most of the time of :func:`e2gcsearch.network_cost`.
    """
    if any(p.is_meta for p in model.parameters()):
        return
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)
