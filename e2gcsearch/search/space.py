"""The search space: architecture, module family with its G or g, and width multiplier.

This is the only module that calls ``trial.suggest_*``. Three categorical parameters describe a
point, so every Optuna sampler (TPE, NSGA-II/III, GP, random, grid) handles it unchanged:

    arch      e.g. "mobilenet_v1"
    grouping  "G=4" (E2GC, group size 4) or "g=32" (FgGC, 32 groups)
    width     e.g. 0.5

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
from typing import Any

from ..config import E2GC, FGGC, ArchConfig
from ..errors import ConfigError
from ..models import get_entry, validate_config
from ..paper import GROUP_SIZES, GROUPS

DEFAULT_WIDTHS: tuple[float, ...] = (0.25, 0.5, 0.75)


def grouping_label(cfg: ArchConfig) -> str:
    """``G=4`` for E2GC, ``g=32`` for FgGC (the value of the ``grouping`` parameter)."""
    return f"G={cfg.group_size}" if cfg.module == E2GC else f"g={cfg.groups}"


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """Which architectures, families, G/g values and widths a search may sample."""

    archs: tuple[str, ...] = ("mobilenet_v1",)
    modules: tuple[str, ...] = (E2GC, FGGC)
    group_sizes: tuple[int, ...] = GROUP_SIZES
    groups: tuple[int, ...] = GROUPS
    widths: tuple[float, ...] = DEFAULT_WIDTHS

    def __post_init__(self) -> None:
        for arch in self.archs:
            get_entry(arch)  # unknown arch → one-line error listing the known ones
        unknown = set(self.modules) - {E2GC, FGGC}
        if unknown or not self.modules:
            raise ConfigError(f"unknown module family {sorted(unknown)}; use E2GC, FgGC or both (e.g. --modules E2GC,FgGC)")
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
        symbol, _, value = str(params["grouping"]).partition("=")
        grouping = {"group_size": int(value)} if symbol == "G" else {"groups": int(value)}
        return ArchConfig(params["arch"], width=float(params["width"]), num_classes=num_classes, **grouping)

    @staticmethod
    def params_of(cfg: ArchConfig) -> dict[str, Any]:
        """The trial parameters that sample ``cfg`` (for ``study.enqueue_trial``)."""
        return {"arch": cfg.arch, "grouping": grouping_label(cfg), "width": cfg.width}

    def contains(self, cfg: ArchConfig) -> bool:
        params = self.params_of(cfg)
        return all(params[name] in values for name, values in self.choices().items())

    def points(self, num_classes: int) -> list[ArchConfig]:
        """Every point of the space, in grid order."""
        choices = self.choices()
        return [self.to_config(dict(zip(choices, combo)), num_classes)
                for combo in itertools.product(*choices.values())]

    def impossible(self, num_classes: int) -> list[tuple[ArchConfig, str]]:
        """Points that cannot be built, with the reason (checked without allocating weights)."""
        bad = []
        for cfg in self.points(num_classes):
            try:
                validate_config(cfg)
            except ConfigError as exc:
                bad.append((cfg, str(exc)))
        return bad

    def describe(self) -> dict[str, Any]:
        """JSON-ready description stored on the study; resuming requires the same one."""
        return {"archs": list(self.archs), "groupings": list(self.groupings), "widths": list(self.widths)}
