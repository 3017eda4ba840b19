"""The search space: architecture, module (E2GC or FgGC) with its G or g, and width multiplier.

Only this module, :mod:`.stagewise` and :mod:`.ordinal` call ``trial.suggest_*``. A point is drawn as

    arch      categorical, e.g. "mobilenet_v1"
    module    categorical, "E2GC", "FgGC" or "FLGC" (learned groups; FLGC takes the ``groups``
              values, so it pairs with FgGC at equal MACs)
    log2_G    E2GC only: log2 of the group size, an integer with a step (G = 1, 2, 4 ... 32 -> 0 ... 5)
    log2_g    FgGC and FLGC: log2 of the number of groups (g = 2 ... 32 -> 1 ... 5)
    width     the width multiplier, a float with a step (0.25, 0.5, 0.75 -> step 0.25)

so that samplers which model order (TPE, GP, NSGA-II's mutation) see that G = 4 lies between 2 and 8
and width 0.5 between 0.25 and 0.75 (:class:`~.ordinal.Ordinal`). Values that do not lie on one step (say
G = 1, 2, 16) are drawn on the finest step that holds them all and rounded to the nearest allowed
value, so every draw is a point of the space and the divisibility rules apply as before.

:class:`~e2gcsearch.search.stagewise.StagewiseSearchSpace` (``--space stagewise``) replaces module
and ``log2_G`` by one ordinal log2 group size per network stage, ``log2_G_stage0`` …
``log2_G_stage{k-1}`` (stages: :mod:`e2gcsearch.models.stages`; 6 for MobileNet-V1, 4 for
ResNeXt-50), since the optimum-group-size model (E2GC Eq. 2) says the best G can differ by stage.

Studies made before this encoding stored ``grouping`` ("G=4") and categorical stage values; their
trials are still read from their stored ``arch_config`` (and :meth:`SearchSpace.to_config` still reads
the old parameters), but a search cannot resume them (:data:`ENCODING` differs, see ``search.study``).

Default width set: 0.25, 0.5, 0.75 — the default run must finish within ten minutes on a 2-core
CPU; width 1.0 is added by ``--widths`` or a study spec (see studies/food101.toml).

Example:
    >>> space = SearchSpace()
    >>> space.size
    33
    >>> space.to_config({"arch": "mobilenet_v1", "module": "E2GC", "log2_G": 2, "width": 0.5}, num_classes=10).label()
    'mobilenet_v1 E2GC G=4 w=0.50'
    >>> space.params_of(ArchConfig("mobilenet_v1", groups=32, width=0.75))
    {'arch': 'mobilenet_v1', 'module': 'FgGC', 'log2_g': 5, 'width': 0.75}
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..config import E2GC, FGGC, FLGC, ArchConfig
from ..errors import ConfigError
from ..models import DEFAULT_ARCH, get_entry, validate_config
from ..paper import GROUP_SIZES, GROUPS
from .ordinal import Ordinal

DEFAULT_WIDTHS: tuple[float, ...] = (0.25, 0.5, 0.75)
ENCODING = "ordinal"  # how points are drawn (stored in the space description; older studies lack it)
MODULE = "module"
WIDTH = "width"


@runtime_checkable
class Space(Protocol):
    """What a search asks of its space; :class:`SearchSpace` (one grouping per network) and
    :class:`~.stagewise.StagewiseSearchSpace` (one group size per stage) both implement it, and everything that
    takes a space (the trial, the budget, the queue, pre-flight, the warm start) takes a ``Space``."""

    stagewise: ClassVar[bool]
    archs: tuple[str, ...]
    widths: tuple[float, ...]

    @property
    def size(self) -> int:
        """How many points the space holds."""

    def choices(self) -> dict[str, list[Any]]:
        """Every parameter's coded values (the grid of ``GridSampler``)."""

    def sample(self, trial: Any, num_classes: int) -> ArchConfig:
        """Draw a point from an Optuna trial."""

    def to_config(self, params: dict[str, Any], num_classes: int) -> ArchConfig:
        """The point that stored parameters stand for."""

    def params_of(self, arch_config: ArchConfig) -> dict[str, Any]:
        """The parameters that draw ``arch_config`` (to queue it)."""

    def contains(self, arch_config: ArchConfig) -> bool:
        """Whether ``arch_config`` is a point of the space."""

    def points(self, num_classes: int) -> list[ArchConfig]:
        """Every point, in a fixed order."""

    def impossible(self, num_classes: int) -> list[tuple[ArchConfig, str]]:
        """The points that cannot be built, each with the reason."""

    def buildable(self, impossible: list[tuple[ArchConfig, str]]) -> bool:
        """Whether any point is left once ``impossible`` is taken out."""

    def describe(self) -> dict[str, Any]:
        """The space as stored on a study (compared when a study is resumed)."""


def width_axis(widths: tuple[float, ...]) -> Ordinal:
    """The ordinal width parameter over ``widths``."""
    return Ordinal(WIDTH, widths)


def _decoded(axis: Ordinal | None, coded: float, log2: bool) -> float:
    """The allowed value of ``axis`` a stored parameter stands for (without an axis: the value itself)."""
    if axis is not None:
        return axis.decode(coded)
    return round(2 ** float(coded)) if log2 else float(coded)


def _point(arch: str, module: str, value: float, width: float, num_classes: int) -> ArchConfig:
    """The network of the space with ``module``'s G (E2GC) or g (FgGC, FLGC) = ``value``."""
    grouping = {"group_size": int(value)} if module == E2GC else {"groups": int(value)}
    return ArchConfig(
        arch, width=float(width), num_classes=num_classes, module=module if module == FLGC else None, **grouping
    )


def _config_params(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as stored by a study made before the ordinal encoding, read into today's names."""
    if "grouping" not in params:
        return params
    symbol, _, value = str(params["grouping"]).partition("=")
    module, name = (E2GC, "log2_G") if symbol == "G" else (FGGC, "log2_g")
    return {"arch": params["arch"], MODULE: module, name: math.log2(int(value)), WIDTH: params[WIDTH]}


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """Which architectures, modules (E2GC/FgGC/FLGC), G/g values and widths a search may sample."""

    stagewise: ClassVar[bool] = False  # one grouping for the whole network

    archs: tuple[str, ...] = (DEFAULT_ARCH,)
    modules: tuple[str, ...] = (E2GC, FGGC)
    group_sizes: tuple[int, ...] = GROUP_SIZES
    groups: tuple[int, ...] = GROUPS
    widths: tuple[float, ...] = DEFAULT_WIDTHS

    def __post_init__(self) -> None:
        for arch in self.archs:
            get_entry(arch)  # unknown arch → one-line error listing the known ones
        unknown = set(self.modules) - {E2GC, FGGC, FLGC}
        if unknown or not self.modules:
            raise ConfigError(
                f"unknown module {sorted(unknown)}; use some of E2GC, FgGC, FLGC (e.g. --modules E2GC,FgGC,FLGC)"
            )
        if any(w <= 0 for w in self.widths) or not self.widths:
            raise ConfigError(f"widths must be positive numbers, got {self.widths}; e.g. --widths 0.25,0.5,1.0")
        if not self.groupings:
            raise ConfigError("the search space is empty; give --group-sizes for E2GC or --groups for FgGC")
        object.__setattr__(self, "widths", tuple(float(w) for w in self.widths))

    @property
    def groupings(self) -> tuple[str, ...]:
        labels = []
        if E2GC in self.modules:
            labels += [f"G={size}" for size in self.group_sizes]
        if FGGC in self.modules:
            labels += [f"g={count}" for count in self.groups]
        if FLGC in self.modules:
            labels += [f"{FLGC} g={count}" for count in self.groups]
        return tuple(labels)

    @property
    def size(self) -> int:
        return len(self.archs) * len(self.groupings) * len(self.widths)

    def axes(self) -> dict[str, Ordinal]:
        """The ordinal parameters: one per module of the space, and the width."""
        out = {}
        if E2GC in self.modules and self.group_sizes:
            out[E2GC] = Ordinal("log2_G", self.group_sizes, log2=True)
        for module in (FGGC, FLGC):  # one parameter: FLGC g and FgGC g are the same number of groups
            if module in self.modules and self.groups:
                out[module] = Ordinal("log2_g", self.groups, log2=True)
        out[WIDTH] = width_axis(self.widths)
        return out

    def _modules(self) -> list[str]:
        """The modules with at least one G or g to draw."""
        return [module for module in self.modules if module in self.axes()]

    def choices(self) -> dict[str, list[Any]]:
        """Parameter name → candidate (coded) values (also the grid of ``GridSampler``)."""
        out: dict[str, list[Any]] = {"arch": list(self.archs), MODULE: self._modules()}
        out.update({axis.name: axis.choices() for axis in self.axes().values()})
        return out

    def sample(self, trial: Any, num_classes: int) -> ArchConfig:
        """Draw one point from ``trial`` (any Optuna trial, including ``FixedTrial``)."""
        axes = self.axes()
        arch = trial.suggest_categorical("arch", list(self.archs))
        module = trial.suggest_categorical(MODULE, self._modules())
        value = axes[module].suggest(trial)
        return _point(arch, module, value, axes[WIDTH].suggest(trial), num_classes)

    def to_config(self, params: dict[str, Any], num_classes: int) -> ArchConfig:
        """The point that trial parameters ``params`` stand for (also those of studies before :data:`ENCODING`)."""
        params = _config_params(params)
        module = params[MODULE]
        value = _decoded(self.axes().get(module), params["log2_G" if module == E2GC else "log2_g"], log2=True)
        width = _decoded(self.axes()[WIDTH], params[WIDTH], log2=False)
        return _point(params["arch"], module, value, width, num_classes)

    def params_of(self, arch_config: ArchConfig) -> dict[str, Any]:
        """The trial parameters that sample ``arch_config`` (for ``study.enqueue_trial``)."""
        axes = self.axes()
        module = arch_config.module
        grouping = axes.get(module) or Ordinal(
            "log2_G" if module == E2GC else "log2_g", (arch_config.grouping_value,), log2=True
        )
        return {
            "arch": arch_config.arch,
            MODULE: module,
            grouping.name: grouping.encode(arch_config.grouping_value),
            WIDTH: axes[WIDTH].encode(arch_config.width),
        }

    def contains(self, arch_config: ArchConfig) -> bool:
        axis = self.axes().get(arch_config.module)
        return (
            arch_config.arch in self.archs
            and axis is not None
            and arch_config.grouping_value in axis.values
            and arch_config.width in self.widths
        )

    def points(self, num_classes: int) -> list[ArchConfig]:
        """Every point of the space, in grid order (arch, then module and its G or g, then width)."""
        axes = self.axes()
        return [
            _point(arch, module, value, width, num_classes)
            for arch in self.archs
            for module in self._modules()
            for value in axes[module].values
            for width in self.widths
        ]

    def impossible(self, num_classes: int) -> list[tuple[ArchConfig, str]]:
        """Points that cannot be built, with the reason (checked without allocating weights)."""
        return unbuildable(self.points(num_classes))

    def buildable(self, impossible: list[tuple[ArchConfig, str]]) -> bool:
        """Whether any point can be built, given :meth:`impossible`'s answer."""
        return len(impossible) < self.size

    def describe(self) -> dict[str, Any]:
        """JSON-ready description stored on the study; resuming requires the same one."""
        return {
            "archs": list(self.archs),
            "groupings": list(self.groupings),
            "widths": list(self.widths),
            "encoding": ENCODING,
        }


def unbuildable(configs: list[ArchConfig]) -> list[tuple[ArchConfig, str]]:
    """The configs among ``configs`` that cannot be built, each with the reason."""
    bad = []
    for arch_config in configs:
        try:
            validate_config(arch_config)
        except ConfigError as exc:
            bad.append((arch_config, str(exc)))
    return bad
