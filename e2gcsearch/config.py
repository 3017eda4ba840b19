"""Frozen configuration objects that travel between the search, the profiler, the trainer and the
exporter. Each round-trips through JSON so that a study can rebuild exactly the network it measured.

Example:
    >>> cfg = ArchConfig("mobilenet_v1", group_size=4, width=0.5, num_classes=10)
    >>> ArchConfig.from_json(cfg.to_json()) == cfg
    True
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from .errors import ConfigError

E2GC = "E2GC"  # constant group size G in every grouped 3x3 conv
FGGC = "FgGC"  # fixed number of groups g in every grouped 3x3 conv


@dataclasses.dataclass(frozen=True)
class ArchConfig:
    """One network of the E2GC/FgGC design space.

    Exactly one of ``group_size`` (E2GC: every grouped 3x3 conv has ``group_size`` channels per group)
    and ``groups`` (FgGC: every grouped 3x3 conv has ``groups`` groups) is set.

    Args:
        arch: registered architecture name (see :func:`e2gcsearch.list_models`).
        group_size: E2GC group size G (1 = depthwise).
        groups: FgGC number of groups g.
        width: width multiplier applied to every channel count (1.0 = the paper's network; see
            :func:`e2gcsearch.models.layers.scale_channels` for the rounding rule).
        num_classes: outputs of the classifier.
    """

    arch: str
    group_size: int | None = None
    groups: int | None = None
    width: float = 1.0
    num_classes: int = 1000

    def __post_init__(self) -> None:
        if (self.group_size is None) == (self.groups is None):
            raise ConfigError(
                "give exactly one of group_size (E2GC, e.g. --group-size 4) "
                "or groups (FgGC, e.g. --groups 32)"
            )
        for name in ("group_size", "groups"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.width, (int, float)) or not math.isfinite(self.width) or self.width <= 0:
            raise ConfigError(f"width must be a number > 0 (e.g. 0.5 or 1.0), got {self.width!r}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ConfigError(f"num_classes must be a positive integer, got {self.num_classes!r}")
        object.__setattr__(self, "width", float(self.width))

    @property
    def module(self) -> str:
        """``"E2GC"`` when the group size is fixed, ``"FgGC"`` when the number of groups is."""
        return E2GC if self.group_size is not None else FGGC

    @property
    def grouping_value(self) -> int:
        """G for E2GC, g for FgGC."""
        return self.group_size if self.group_size is not None else self.groups  # type: ignore[return-value]

    def label(self) -> str:
        """A short human label, e.g. ``mobilenet_v1 E2GC G=4 w=0.50``."""
        symbol = "G" if self.module == E2GC else "g"
        return f"{self.arch} {self.module} {symbol}={self.grouping_value} w={self.width:.2f}"

    def replace(self, **changes: Any) -> "ArchConfig":
        """A copy with some fields changed; switching family clears the other field."""
        if "group_size" in changes and changes["group_size"] is not None:
            changes.setdefault("groups", None)
        if "groups" in changes and changes["groups"] is not None:
            changes.setdefault("group_size", None)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), usable as a cache key."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ArchConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown ArchConfig field(s) {unknown}; expected some of {sorted(known)}")
        if "arch" not in data:
            raise ConfigError("an ArchConfig needs an 'arch' field, e.g. {\"arch\": \"mobilenet_v1\", \"group_size\": 1}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "ArchConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not a valid ArchConfig JSON document: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError("an ArchConfig JSON document must be an object")
        return cls.from_dict(data)
