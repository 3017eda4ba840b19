"""The search space: architecture, module (E2GC or FgGC) with its G or g, and width multiplier.

This is the only module that calls ``trial.suggest_*``. Three categorical parameters describe a
point, so every Optuna sampler (TPE, NSGA-II/III, GP, random, grid) handles it unchanged:

    arch      e.g. "mobilenet_v1"
    grouping  "G=4" (E2GC, group size 4), "g=32" (FgGC, 32 groups) or "FLGC g=8" (8 learned groups;
              FLGC takes the ``groups`` values, so it pairs with FgGC at equal MACs)
    width     e.g. 0.5

:class:`StagewiseSearchSpace` (``--space stagewise``) replaces ``grouping`` by one categorical group
size per network stage, ``G_stage0`` … ``G_stage{k-1}`` (stages: :mod:`e2gcsearch.models.stages`;
6 for MobileNet-V1, 4 for ResNeXt-50), since the optimum-group-size model (E2GC Eq. 2) says the best
G can differ by stage.

Default width set: 0.25, 0.5, 0.75 — the default run must finish within ten minutes on a 2-core
CPU; width 1.0 is added by ``--widths`` or a study spec (see studies/food101.toml).

Example:
    >>> space = SearchSpace()
    >>> space.size
    33
    >>> space.to_config({"arch": "mobilenet_v1", "grouping": "G=4", "width": 0.5}, num_classes=10).label()
    'mobilenet_v1 E2GC G=4 w=0.50'
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, ClassVar

from ..config import E2GC, FGGC, FLGC, ArchConfig
from ..checks import is_int
from ..errors import ConfigError
from ..models import DEFAULT_ARCH, get_entry, validate_config
from ..models.stages import num_stages
from ..paper import GROUP_SIZES, GROUPS

DEFAULT_WIDTHS: tuple[float, ...] = (0.25, 0.5, 0.75)


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
            raise ConfigError(f"unknown module {sorted(unknown)}; use some of E2GC, FgGC, FLGC "
                              "(e.g. --modules E2GC,FgGC,FLGC)")
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

    def choices(self) -> dict[str, list[Any]]:
        """Parameter name → candidate values (also the grid of ``GridSampler``)."""
        return {"arch": list(self.archs), "grouping": list(self.groupings), "width": list(self.widths)}

    def sample(self, trial: Any, num_classes: int) -> ArchConfig:
        """Draw one point from ``trial`` (any Optuna trial, including ``FixedTrial``)."""
        params = {name: trial.suggest_categorical(name, values) for name, values in self.choices().items()}
        return self.to_config(params, num_classes)

    @staticmethod
    def to_config(params: dict[str, Any], num_classes: int) -> ArchConfig:
        module, _, grouping_text = str(params["grouping"]).rpartition(" ")
        symbol, _, value = grouping_text.partition("=")
        grouping = {"group_size": int(value)} if symbol == "G" else {"groups": int(value)}
        return ArchConfig(params["arch"], width=float(params["width"]), num_classes=num_classes,
                          module=module or None, **grouping)

    @staticmethod
    def params_of(arch_config: ArchConfig) -> dict[str, Any]:
        """The trial parameters that sample ``arch_config`` (for ``study.enqueue_trial``)."""
        grouping = f"{FLGC} {arch_config.grouping}" if arch_config.is_learned else arch_config.grouping
        return {"arch": arch_config.arch, "grouping": grouping, "width": arch_config.width}

    def contains(self, arch_config: ArchConfig) -> bool:
        params = self.params_of(arch_config)
        return all(params[name] in values for name, values in self.choices().items())

    def points(self, num_classes: int) -> list[ArchConfig]:
        """Every point of the space, in grid order."""
        choices = self.choices()
        return [self.to_config(dict(zip(choices, combo)), num_classes)
                for combo in itertools.product(*choices.values())]

    def impossible(self, num_classes: int) -> list[tuple[ArchConfig, str]]:
        """Points that cannot be built, with the reason (checked without allocating weights)."""
        return _unbuildable(self.points(num_classes))

    def describe(self) -> dict[str, Any]:
        """JSON-ready description stored on the study; resuming requires the same one."""
        return {"archs": list(self.archs), "groupings": list(self.groupings), "widths": list(self.widths)}


def stage_param(stage: int) -> str:
    """Name of the trial parameter holding the group size of ``stage`` (``G_stage0``, …)."""
    return f"G_stage{stage}"


@dataclasses.dataclass(frozen=True)
class StagewiseSearchSpace:
    """Architecture, width and one E2GC group size per stage (``--space stagewise``).

    A point is ``ArchConfig(arch, stage_group_sizes=(G_0, …, G_{k-1}), width=w)``. A uniform E2GC
    config is the point whose stages all share its G, so the paper's G=1 baseline belongs here too.

    Example:
        >>> space = StagewiseSearchSpace(group_sizes=(1, 2, 4), widths=(0.5,))
        >>> space.size
        729
        >>> space.to_config({"arch": "mobilenet_v1", "width": 0.5, "G_stage0": 1, "G_stage1": 2, "G_stage2": 2,
        ...                  "G_stage3": 4, "G_stage4": 4, "G_stage5": 4}, num_classes=10).label()
        'mobilenet_v1 E2GC G=1-2-2-4-4-4 w=0.50'
    """

    stagewise: ClassVar[bool] = True  # one group size per stage

    archs: tuple[str, ...] = (DEFAULT_ARCH,)
    group_sizes: tuple[int, ...] = GROUP_SIZES
    widths: tuple[float, ...] = DEFAULT_WIDTHS

    def __post_init__(self) -> None:
        for arch in self.archs:
            get_entry(arch)
            num_stages(arch)  # an arch without a stage table cannot be searched stage-wise
        if not self.archs:
            raise ConfigError(f"the stage-wise space needs at least one architecture, e.g. --arch {DEFAULT_ARCH}")
        if not self.group_sizes or not all(is_int(g) for g in self.group_sizes):
            raise ConfigError(f"group sizes must be positive integers like 1,2,4,8, got {self.group_sizes}")
        if any(w <= 0 for w in self.widths) or not self.widths:
            raise ConfigError(f"widths must be positive numbers, got {self.widths}; e.g. --widths 0.25,0.5,1.0")
        object.__setattr__(self, "group_sizes", tuple(int(g) for g in self.group_sizes))
        object.__setattr__(self, "widths", tuple(float(w) for w in self.widths))

    @property
    def modules(self) -> tuple[str, ...]:
        return (E2GC,)

    @property
    def size(self) -> int:
        return sum(len(self.group_sizes) ** num_stages(arch) for arch in self.archs) * len(self.widths)

    def choices(self) -> dict[str, list[Any]]:
        """Parameter name → candidate values; the stage parameters run to the deepest arch's stage count
        (an arch with fewer stages ignores the extra ones)."""
        stages = max(num_stages(arch) for arch in self.archs)
        out: dict[str, list[Any]] = {"arch": list(self.archs), "width": list(self.widths)}
        out.update({stage_param(i): list(self.group_sizes) for i in range(stages)})
        return out

    def sample(self, trial: Any, num_classes: int) -> ArchConfig:
        """Draw one point from ``trial`` (any Optuna trial, including ``FixedTrial``)."""
        params: dict[str, Any] = {
            "arch": trial.suggest_categorical("arch", list(self.archs)),
            "width": trial.suggest_categorical("width", list(self.widths)),
        }
        for stage in range(num_stages(params["arch"])):
            params[stage_param(stage)] = trial.suggest_categorical(stage_param(stage), list(self.group_sizes))
        return self.to_config(params, num_classes)

    @staticmethod
    def to_config(params: dict[str, Any], num_classes: int) -> ArchConfig:
        sizes = tuple(int(params[stage_param(i)]) for i in range(num_stages(params["arch"])))
        return ArchConfig(params["arch"], stage_group_sizes=sizes, width=float(params["width"]), num_classes=num_classes)

    @staticmethod
    def params_of(arch_config: ArchConfig) -> dict[str, Any]:
        """The trial parameters that sample ``arch_config`` (a uniform E2GC config gives its G to every stage)."""
        if arch_config.module != E2GC:
            raise ConfigError(f"{arch_config.label()} is FgGC; the stage-wise space holds E2GC configs only")
        sizes = arch_config.stage_group_sizes or (arch_config.group_size,) * num_stages(arch_config.arch)
        return {"arch": arch_config.arch, "width": arch_config.width, **{stage_param(i): size for i, size in enumerate(sizes)}}

    def contains(self, arch_config: ArchConfig) -> bool:
        if arch_config.module != E2GC or arch_config.arch not in self.archs or arch_config.width not in self.widths:
            return False
        params = self.params_of(arch_config)
        return len(params) == 2 + num_stages(arch_config.arch) and all(
            params[stage_param(i)] in self.group_sizes for i in range(num_stages(arch_config.arch)))

    def points(self, num_classes: int) -> list[ArchConfig]:
        """Every point of the space (grows as ``len(group_sizes) ** stages``: use with small sets)."""
        return [ArchConfig(arch, stage_group_sizes=sizes, width=width, num_classes=num_classes)
                for arch in self.archs for width in self.widths
                for sizes in itertools.product(self.group_sizes, repeat=num_stages(arch))]

    def impossible(self, num_classes: int) -> list[tuple[ArchConfig, str]]:
        """One representative per (arch, width, stage, G) that cannot be built, with the reason.

        Whether a stage's G fits depends on that stage alone, so every point with that stage value
        fails the same way; the representative has G=1 (always buildable) in the other stages.
        """
        probes = []
        for arch, width in itertools.product(self.archs, self.widths):
            stages = num_stages(arch)
            for stage, size in itertools.product(range(stages), self.group_sizes):
                sizes = tuple(size if i == stage else 1 for i in range(stages))
                probes.append(ArchConfig(arch, stage_group_sizes=sizes, width=width, num_classes=num_classes))
        return _unbuildable(probes)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description stored on the study; resuming requires the same one."""
        return {"kind": "stagewise", "archs": list(self.archs), "group_sizes": list(self.group_sizes),
                "widths": list(self.widths), "stages": {arch: num_stages(arch) for arch in self.archs}}


def _unbuildable(configs: list[ArchConfig]) -> list[tuple[ArchConfig, str]]:
    """The configs among ``configs`` that cannot be built, each with the reason."""
    bad = []
    for arch_config in configs:
        try:
            validate_config(arch_config)
        except ConfigError as exc:
            bad.append((arch_config, str(exc)))
    return bad
