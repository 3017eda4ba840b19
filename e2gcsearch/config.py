"""Frozen configuration objects that travel between the search, the profiler, the trainer and the
exporter. Each round-trips through JSON so that a study can rebuild exactly the network it measured.

Example:
    >>> arch_config = ArchConfig("mobilenet_v1", group_size=4, width=0.5, num_classes=10)
    >>> ArchConfig.from_json(arch_config.to_json()) == arch_config
    True
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from .checks import is_int, positive_int
from .errors import ConfigError

E2GC = "E2GC"  # constant group size G in every grouped 3x3 conv
FGGC = "FgGC"  # fixed number of groups g in every grouped 3x3 conv
FLGC = "FLGC"  # groups learned during training (Wang et al., CVPR 2019), deployed as a grouped conv
MODULES = (E2GC, FGGC, FLGC)


@dataclasses.dataclass(frozen=True)
class ArchConfig:
    """One network of the E2GC/FgGC/FLGC design space.

    Exactly one of ``group_size`` (E2GC: every grouped 3x3 conv has ``group_size`` channels per group),
    ``groups`` (FgGC: every grouped 3x3 conv has ``groups`` groups) and ``stage_group_sizes`` (stage-wise
    E2GC: one group size per network stage) is set. ``module="FLGC"`` keeps that shape but learns which
    channels and filters form each group (:class:`e2gcsearch.models.flgc.LearnedGroupConv2d`).

    Args:
        arch: registered architecture name (see :func:`e2gcsearch.list_models`).
        group_size: E2GC group size G (1 = depthwise).
        groups: FgGC number of groups g.
        width: width multiplier applied to every channel count (1.0 = the paper's network; see
            :func:`e2gcsearch.models.layers.scale_channels` for the rounding rule).
        num_classes: outputs of the classifier.
        stage_group_sizes: stage-wise E2GC: the group size G of every grouped 3x3 conv of stage i is
            ``stage_group_sizes[i]``; one value per stage (the stages are defined in
            :mod:`e2gcsearch.models.stages`). Lists are accepted and stored as tuples.
        module: ``"FLGC"`` for learned groups; ``None`` (the default) means E2GC or FgGC as the grouping
            field says, and is resolved to that name, so ``ArchConfig(a, groups=8).module == "FgGC"``.
        uneven: FLGC only: the paper's free assignment (groups of any size, deployed as one conv per
            group) instead of balanced groups (deployed as a standard grouped conv).
    """

    arch: str
    group_size: int | None = None
    groups: int | None = None
    width: float = 1.0
    num_classes: int = 1000
    stage_group_sizes: tuple[int, ...] | None = None
    module: str | None = None
    uneven: bool = False

    def __post_init__(self) -> None:
        self._resolve_module()
        if self.stage_group_sizes is not None:
            object.__setattr__(self, "stage_group_sizes", _positive_ints(self.stage_group_sizes))
        if sum(value is not None for value in (self.group_size, self.groups, self.stage_group_sizes)) != 1:
            raise ConfigError(
                "give exactly one of group_size (E2GC, e.g. --group-size 4) "
                "or groups (FgGC, e.g. --groups 32) or stage_group_sizes (E2GC with one G per stage)"
            )
        for name in ("group_size", "groups"):
            value = getattr(self, name)
            positive_int(name, value, optional=True)
        if not isinstance(self.width, (int, float)) or not math.isfinite(self.width) or self.width <= 0:
            raise ConfigError(f"width must be a number > 0 (e.g. 0.5 or 1.0), got {self.width!r}")
        positive_int("num_classes", self.num_classes)
        object.__setattr__(self, "width", float(self.width))

    def _resolve_module(self) -> None:
        """``module``: ``"FLGC"`` as given, else ``"E2GC"`` when the group size is fixed (per network or
        per stage) and ``"FgGC"`` when the number of groups is."""
        if self.module not in (None, *MODULES):
            raise ConfigError(f"unknown module {self.module!r}; use one of {', '.join(MODULES)}")
        if self.module == FLGC and self.stage_group_sizes is not None:
            raise ConfigError(
                "FLGC takes one groups (g) or group_size (G) for the whole network, not stage group "
                "sizes; drop module='FLGC' or give groups=g"
            )
        if self.uneven is not False and (self.module != FLGC or self.uneven is not True):
            raise ConfigError("uneven (free group sizes, --flgc-uneven) applies to module FLGC only")
        if self.module != FLGC:
            implied = FGGC if self.groups is not None else E2GC
            if self.module not in (None, implied):
                raise ConfigError(
                    f"module {self.module} does not match the grouping given ({implied} follows from "
                    f"{'groups' if implied == FGGC else 'group_size'}); drop module or use FLGC"
                )
            object.__setattr__(self, "module", implied)

    @property
    def is_learned(self) -> bool:
        """True for FLGC: the grouping is learned during training and must be deployed (:mod:`.models.flgc`)."""
        return self.module == FLGC

    def deployed(self) -> ArchConfig:
        """The standard network that balanced FLGC deploys to (E2GC G or FgGC g with the same channels):
        the trained assignment only permutes channels, which deployment folds into the 1x1 convs. Other
        configs are their own deployed form. Uneven FLGC has no such config (its group sizes are learned)."""
        if not self.is_learned:
            return self
        if self.uneven:
            raise ConfigError(
                f"{self.label()} deploys to group sizes it learns in training, so its cost is known "
                "only after training: 'e2gcsearch train ... --flgc-uneven' prints it (in Python: "
                "e2gcsearch.cost.learned_cost with the trained structure)"
            )
        return dataclasses.replace(self, module=None)

    @property
    def is_stagewise(self) -> bool:
        """True when every stage has its own group size (``stage_group_sizes``)."""
        return self.stage_group_sizes is not None

    @property
    def grouping_value(self) -> int | str:
        """G for E2GC, g for FgGC; stage-wise E2GC gives the stage values joined by '-', e.g. ``"1-2-4-4-8-8"``."""
        if self.stage_group_sizes is not None:
            return "-".join(str(size) for size in self.stage_group_sizes)
        return self.group_size if self.group_size is not None else self.groups  # type: ignore[return-value]

    @property
    def grouping(self) -> str:
        """``G=4`` (E2GC), ``g=32`` (FgGC) or ``G=1-2-4-4-8-8`` (stage-wise E2GC)."""
        symbol = "g" if self.groups is not None else "G"
        return f"{symbol}={self.grouping_value}"

    @property
    def module_label(self) -> str:
        """``E2GC``, ``FgGC``, ``FLGC``, or ``FLGC-uneven`` (free group sizes)."""
        return f"{self.module}-uneven" if self.uneven else str(self.module)

    def label(self) -> str:
        """A short human label, e.g. ``mobilenet_v1 E2GC G=4 w=0.50``, ``... E2GC G=1-2-4-4-8-8 w=0.50`` or
        ``... FLGC g=8 w=0.50``."""
        return f"{self.arch} {self.module_label} {self.grouping} w={self.width:.2f}"

    def replace(self, **changes: Any) -> ArchConfig:
        """A copy with some fields changed; setting one grouping field clears the others (E2GC and FgGC
        follow the field set; FLGC stays FLGC unless ``module`` is changed too)."""
        grouping_fields = ("group_size", "groups", "stage_group_sizes")
        for field in grouping_fields:
            if changes.get(field) is not None:
                for other in grouping_fields:
                    if other != field:
                        changes.setdefault(other, None)
        if not self.is_learned:
            changes.setdefault("module", None)
        if changes.get("module") != FLGC and "module" in changes:
            changes.setdefault("uneven", False)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Fields as a dict; ``stage_group_sizes`` appears only when set (as a list), ``module`` only for
        FLGC and ``uneven`` only when true, so the JSON of an E2GC/FgGC config (and every cache key made
        from it) is what it always was."""
        data = dataclasses.asdict(self)
        if not self.is_learned:
            del data["module"]
        if not self.uneven:
            del data["uneven"]
        if self.stage_group_sizes is None:
            del data["stage_group_sizes"]
        else:
            data["stage_group_sizes"] = list(self.stage_group_sizes)
        return data

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), usable as a cache key."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchConfig:
        known = field_names(cls)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown ArchConfig field(s) {unknown}; expected some of {sorted(known)}")
        if "arch" not in data:
            raise ConfigError('an ArchConfig needs an \'arch\' field, e.g. {"arch": "mobilenet_v1", "group_size": 1}')
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ArchConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not a valid ArchConfig JSON document: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError("an ArchConfig JSON document must be an object")
        return cls.from_dict(data)


def _positive_ints(values: Any) -> tuple[int, ...]:
    """``stage_group_sizes`` as a tuple of positive ints (a list from JSON is accepted)."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(
            f"stage_group_sizes must be a list of positive integers like [1, 2, 4, 4, 8, 8], got {values!r}"
        )
    values = tuple(values)
    if not values or not all(is_int(v) for v in values):
        raise ConfigError(
            f"stage_group_sizes must be a non-empty list of positive integers like [1, 2, 4, 4, 8, 8], "
            f"got {list(values)!r}"
        )
    return values


def field_names(cls: type) -> set[str]:
    """The field names of the dataclass ``cls``."""
    return {field.name for field in dataclasses.fields(cls)}


def from_known_fields(cls: type, data: Any) -> Any:
    """``cls(**data)`` without the keys ``cls`` does not know (a record written by a newer version
    keeps loading)."""
    known = field_names(cls)
    return cls(**{key: value for key, value in data.items() if key in known})
