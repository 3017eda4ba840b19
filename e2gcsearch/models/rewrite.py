"""E2GC and FgGC applied to a network someone else built: torchvision's, or a user's own module.

A *regrouped* network starts as the unchanged module its constructor returns (the *stock* network)
and has each of its grouped convs — every ``nn.Conv2d`` with ``groups > 1``, depthwise ones included,
whatever its kernel — replaced by the same conv with ``groups = C / G`` (E2GC) or ``groups = g``
(FgGC), C being its input channels. Nothing else changes, so module names (and state-dict keys) are
the stock network's, and a config that asks for the stock grouping returns the stock module itself.

Which layers are rewritten (the rule, also printed by ``e2gcsearch cost --per-layer``):
    * rewritten: every conv that is grouped in the stock network (``groups > 1``);
    * left as they are: dense convs (``groups == 1``: the stem, 1x1 convs, squeeze-excitation convs)
      and linear layers — the E2GC paper never groups a stem, a pointwise conv or a classifier;
    * refused, never skipped: a G or g that does not divide the channels of one of the rewritten convs
      makes the point unbuildable (:class:`~e2gcsearch.errors.ConfigError` naming the layer and the
      values that fit), as for e2gcsearch's own networks at width 1.0. Skipping that layer would make
      "E2GC, G=16" label a network that is not one; a search lists such points before it starts and
      fails them at once if sampled.

Stages (stage-wise E2GC, ``e2gcsearch analyze``) are the distinct stock channel counts of the grouped
convs, in the order they first appear: every grouped conv with the same stock C is one stage.

The constructor is a :class:`~e2gcsearch.models.call.Call`: it both runs here and is written out as
Python text by ``e2gcsearch export``, so the exported builder calls exactly what e2gcsearch called.

Example:
    >>> from e2gcsearch.models import get_entry
    >>> plan = get_entry("regnet_y_400mf").plan(ArchConfig("regnet_y_400mf", group_size=4))
    >>> plan.layers[0].name, plan.layers[0].note(), len(plan.layers)
    ('trunk_output.block1.block1-0.f.b.0', 'rewritten: 6 -> 12 groups', 16)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import torch
from torch import nn

from ..config import E2GC, FLGC, ArchConfig
from ..errors import ConfigError
from .call import Call, MetaBuildError
from .layers import grouping_at
from .registry import ExportRows, ModelEntry, StagePlan


@dataclasses.dataclass(frozen=True)
class GroupedLayer:
    """One grouped conv of a regrouped network: its stock and its new number of groups."""

    name: str
    channels: int  # input channels C (at the config's width)
    kernel: int
    stock_groups: int
    groups: int
    stage: int

    @property
    def group_size(self) -> int:
        return self.channels // self.groups

    def note(self) -> str:
        if self.groups == self.stock_groups:
            return f"grouped, stock {self.stock_groups} groups kept"
        return f"rewritten: {self.stock_groups} -> {self.groups} groups"


@dataclasses.dataclass(frozen=True)
class RegroupPlan:
    """What :func:`regroup` does to the stock network of one config (computed without weights)."""

    call: Call
    layers: tuple[GroupedLayer, ...]
    stem_channels: int  # output channels of the network's first conv
    num_classes: int

    def notes(self) -> dict[str, str]:
        """Layer name → what happened to it; conv and linear layers not named here were left as they are."""
        return {layer.name: layer.note() for layer in self.layers}


def grouped_convs(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """``(name, conv)`` of every conv with ``groups > 1`` in ``model``, in module order."""
    return [
        (name, module) for name, module in model.named_modules() if isinstance(module, nn.Conv2d) and module.groups > 1
    ]


@functools.lru_cache(maxsize=64)
def _survey(call: Call, num_classes: int) -> tuple[tuple[tuple[str, int, int, int], ...], int]:
    """The grouped convs (name, C, kernel, groups) of ``call``'s network and its first conv's output
    channels, from a build on the ``meta`` device (no weights; on the CPU if the constructor needs values)."""
    try:
        with torch.device("meta"):
            model = call.run(num_classes)
    except (NotImplementedError, RuntimeError, MetaBuildError):
        model = call.run(num_classes)
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"{call.source()} returned a {type(model).__name__}, not a torch.nn.Module; "
            "the factory must return the network"
        )
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    layers = tuple((name, conv.in_channels, conv.kernel_size[0], conv.groups) for name, conv in grouped_convs(model))
    return layers, convs[0].out_channels if convs else 0


@dataclasses.dataclass(frozen=True)
class StockNetwork:
    """A network whose grouped convs e2gcsearch rewrites (see the module docstring).

    Args:
        name: the registry name (``"regnet_y_400mf"``, or ``"mypkg.models:build_net"``).
        constructor: ``(width, divisor) -> Call`` building the stock network at ``width``; ``divisor`` is
            the least common multiple of 8 and the config's G or g values, for constructors that can round
            their channels to it (``round_nearest`` of MobileNet-V2, RegNet's group width). Raises
            :class:`ConfigError` for a width it cannot build.
    """

    name: str
    constructor: Callable[[float, int], Call]

    def stock_call(self) -> Call:
        return self.constructor(1.0, 8)

    def stage_channels(self) -> tuple[int, ...]:
        """Distinct stock input channels of the grouped convs, in order: one stage each."""
        layers, _ = _survey(self.stock_call(), 1000)
        return tuple(dict.fromkeys(channels for _, channels, _, _ in layers))

    def layer_stage(self, layer_name: str) -> int | None:
        layers, _ = _survey(self.stock_call(), 1000)
        stock = {name: channels for name, channels, _, _ in layers}
        return self.stage_channels().index(stock[layer_name]) if layer_name in stock else None

    def stage_plan(self) -> StagePlan:
        return StagePlan(self.stage_channels(), self.layer_stage)

    def plan(self, arch_config: ArchConfig) -> RegroupPlan:
        """Groups of every grouped conv for ``arch_config``; :class:`ConfigError` when one does not fit."""
        return _plan(self, arch_config)

    def build(self, arch_config: ArchConfig) -> nn.Module:
        plan = self.plan(arch_config)
        return regroup(plan.call.run(arch_config.num_classes), plan)


@functools.lru_cache(maxsize=512)
def _plan(network: StockNetwork, arch_config: ArchConfig) -> RegroupPlan:
    if arch_config.module == FLGC:
        raise ConfigError(
            f"FLGC needs a network whose channel permutations can be folded into its 1x1 "
            f"neighbours (mobilenet_v1, resnext50); {network.name} takes E2GC (-G) or FgGC (-g)"
        )
    values = arch_config.stage_group_sizes or (arch_config.grouping_value,)
    call = network.constructor(arch_config.width, math.lcm(8, *map(int, values)))
    layers, stem = _survey(call, arch_config.num_classes)
    if not layers:
        raise ConfigError(
            f"{network.name} has no grouped convs (no nn.Conv2d with groups > 1), so there is no "
            "G or g to search; give a network with grouped or depthwise convs"
        )
    stages = network.stage_channels()
    if arch_config.stage_group_sizes is not None and len(arch_config.stage_group_sizes) != len(stages):
        raise ConfigError(
            f"{network.name} has {len(stages)} stages (grouped-conv input channels "
            f"{', '.join(map(str, stages))}); give {len(stages)} stage group sizes, "
            f"got {len(arch_config.stage_group_sizes)}"
        )
    common = math.gcd(*(channels for _, channels, _, _ in layers))
    planned = []
    for name, channels, kernel, stock_groups in layers:
        stage = network.layer_stage(name)
        module, value = grouping_at(arch_config, stage)
        if channels % value:
            symbol = "G" if module == E2GC else "g"
            raise ConfigError(
                f"{symbol}={value} does not divide the {channels} channels of {name} ({network.name}, width "
                f"{arch_config.width:g}); every grouped conv of this network takes a {symbol} that divides "
                f"{common} (e.g. {', '.join(str(d) for d in _pow2_divisors(common))})"
            )
        groups = channels // value if module == E2GC else value
        planned.append(GroupedLayer(name, channels, kernel, stock_groups, groups, stage))
    return RegroupPlan(call, tuple(planned), stem, arch_config.num_classes)


def _pow2_divisors(number: int) -> list[int]:
    return [1 << i for i in range((number & -number).bit_length())]


def regroup(model: nn.Module, plan: RegroupPlan) -> nn.Module:
    """Replace each grouped conv of ``model`` whose groups change under ``plan`` by a fresh conv with the
    new groups (He init, fan-out, as torchvision initialises convs); returns ``model``."""
    for layer in plan.layers:
        old = model.get_submodule(layer.name)
        if old.groups == layer.groups:
            continue
        new = nn.Conv2d(
            old.in_channels,
            old.out_channels,
            old.kernel_size,
            stride=old.stride,
            padding=old.padding,
            dilation=old.dilation,
            groups=layer.groups,
            bias=old.bias is not None,
            padding_mode=old.padding_mode,
            device=old.weight.device,
            dtype=old.weight.dtype,
        )
        if not new.weight.is_meta:
            nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
            if new.bias is not None:
                nn.init.zeros_(new.bias)
        parent, _, child = layer.name.rpartition(".")
        setattr(model.get_submodule(parent), child, new)
    return model


def export_table(plan: RegroupPlan) -> str:
    """The stock constructor and the ``GROUPS`` rows of the standalone builder."""
    rows = [
        f'    "{layer.name}": {layer.groups},  # {layer.channels} channels, {layer.kernel}x{layer.kernel}, '
        f"{layer.group_size} per group (stock: {layer.stock_groups} groups)"
        for layer in plan.layers
    ]
    return (
        f"def stock_network(num_classes: int = NUM_CLASSES) -> nn.Module:\n"
        f'    """The unchanged stock network, freshly initialised (no weights downloaded)."""\n'
        f"    return {plan.call.source()}\n\n\n"
        "# Every grouped conv: module name -> number of groups. Dense convs and linear layers are the stock ones.\n"
        "GROUPS = {\n" + "\n".join(rows) + "\n}"
    )


def export_imports(plan: RegroupPlan) -> tuple[str, ...]:
    return tuple(sorted(plan.call.modules()))


# The standalone builder's copy of regroup() above (see e2gcsearch.export.template); keep in step.
EXPORT_BODY = '''
# The stock network, then each grouped conv of GROUPS rebuilt with its number of groups ($grouping);
# module names and state-dict keys stay the stock network's.
$table


def regroup(model: nn.Module) -> nn.Module:
    """Replace each conv named in GROUPS whose groups differ by a fresh conv with those groups."""
    for name, groups in GROUPS.items():
        old = model.get_submodule(name)
        if old.groups == groups:
            continue
        new = nn.Conv2d(old.in_channels, old.out_channels, old.kernel_size, stride=old.stride, padding=old.padding,
                        dilation=old.dilation, groups=groups, bias=old.bias is not None, padding_mode=old.padding_mode)
        nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
        if new.bias is not None:
            nn.init.zeros_(new.bias)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, new)
    return model


def network(num_classes: int = NUM_CLASSES) -> nn.Module:
    """The stock network with the grouping of this file."""
    return regroup(stock_network(num_classes))


NETWORK = network
'''

EXPORT_ROWS = ExportRows(EXPORT_BODY, export_table, imports=export_imports)


def regrouped_entry(
    network: StockNetwork, baseline: ArchConfig, description: str, display_name: str = "", total_stride: int = 32
) -> ModelEntry:
    """The registry entry of ``network``: built, planned, staged and exported by the rewrite above."""
    return ModelEntry(
        name=network.name,
        build=network.build,
        plan=network.plan,
        total_stride=total_stride,
        baseline=baseline,
        description=description,
        display_name=display_name,
        stages=network.stage_plan,
        export=EXPORT_ROWS,
        regrouped=True,
        layer_notes=lambda arch_config: network.plan(arch_config).notes(),
    )
