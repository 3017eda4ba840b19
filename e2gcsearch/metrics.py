"""What a trial can be measured by: one :class:`Metric` type shared by the search and the report.

A metric is a kind (``epf``, ``epf_infer``, ``top1``, ``params``, ``macs``, ``latency``), a batch
size for the kinds measured per batch (``epf@16``), a direction and a unit. ``epf`` is the paper's
energy per frame of a training step (forward + backward); ``epf_infer`` that of inference (forward
only, eval mode), what a deployed model costs; ``latency`` is the training step's. The search optimises some metrics
(its objectives) and bounds others (its constraints); the report shows them with their units.
Parsing them from the command line lives in :mod:`e2gcsearch.search.objectives`.

Example:
    >>> Metric.of("epf", 16).header("estimate")
    'EPF@16 (mJ/frame, estimate)'
    >>> Metric.of("top1").to_dict()["direction"]
    'maximize'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

# kind → (direction, unit, takes a batch size)
METRICS: dict[str, tuple[str, str, bool]] = {
    "epf": ("minimize", "mJ/frame", True),
    "epf_infer": ("minimize", "mJ/frame", True),
    "top1": ("maximize", "%", False),
    "params": ("minimize", "count", False),
    "macs": ("minimize", "count", False),
    "latency": ("minimize", "ms/batch", True),
}
CHEAP_METRICS = ("params", "macs", "epf", "epf_infer", "latency")  # known before any training
ENERGY_METRICS = ("epf", "epf_infer")  # figures that carry the energy backend that produced them
MODES = {"epf": "train", "latency": "train", "epf_infer": "infer"}  # the profiling mode of each measured kind
ACCURACY_METRICS = ("top1", "top5")  # proxy accuracies (maximised)
LABELS = {
    "epf": "EPF",
    "epf_infer": "EPF-infer",
    "top1": "top-1",
    "top5": "top-5",
    "macs": "MACs",
    "params": "params",
    "latency": "latency",
}


@dataclasses.dataclass(frozen=True)
class Metric:
    """One measured quantity of a trial, e.g. ``epf@16`` (kind ``epf``, batch size 16) or ``top1``.

    Build the metrics e2gcsearch measures with :meth:`of`; a study's stored objectives come back with
    :meth:`from_dict` (a study not made by ``run`` may name metrics of its own, with no unit).

    Args:
        name: the name the study and the tables use (``epf@16``).
        direction: ``"minimize"`` or ``"maximize"``.
        metric: the kind (a key of :data:`METRICS`, or the name for a foreign metric).
        batch_size: batch size of a per-batch kind, else ``None``.
        unit: e.g. ``mJ/frame``, ``%``, ``count``; empty when unknown.
    """

    name: str
    direction: str
    metric: str = ""
    batch_size: int | None = None
    unit: str = ""

    @classmethod
    def of(cls, metric: str, batch_size: int | None = None) -> Metric:
        """The metric of kind ``metric`` (direction and unit from :data:`METRICS`)."""
        direction, unit, _ = METRICS[metric]
        name = f"{metric}@{batch_size}" if batch_size else metric
        return cls(name=name, direction=direction, metric=metric, batch_size=batch_size, unit=unit)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], direction: str | None = None) -> Metric:
        """A metric from its stored form (:meth:`to_dict`); ``direction`` fills a missing one."""
        return cls(
            name=data["name"],
            direction=data.get("direction", direction),
            metric=data.get("metric", data["name"]),
            batch_size=data.get("batch_size"),
            unit=data.get("unit") or "",
        )

    @property
    def is_cheap(self) -> bool:
        return self.metric in CHEAP_METRICS

    @property
    def is_energy(self) -> bool:
        return self.metric in ENERGY_METRICS

    @property
    def is_accuracy(self) -> bool:
        return self.metric in ACCURACY_METRICS

    def to_dict(self) -> dict[str, Any]:
        """The stored form (a study's ``objectives`` attr holds a list of these)."""
        return {
            "name": self.name,
            "metric": self.metric,
            "batch_size": self.batch_size,
            "direction": self.direction,
            "unit": self.unit,
        }

    def header(self, backend: str | None = None) -> str:
        """A column header with unit, e.g. ``EPF@16 (mJ/frame, estimate)`` or ``top-1 (%, proxy)``."""
        label = LABELS.get(self.metric, self.name)
        if self.batch_size is not None and "@" not in label:
            label = f"{label}@{self.batch_size}"
        notes = [self.unit] if self.unit else []
        if self.is_energy and backend:
            notes.append(backend)
        if self.is_accuracy:
            notes.append("proxy")
        return f"{label} ({', '.join(notes)})" if notes else label


__all__ = ["ACCURACY_METRICS", "CHEAP_METRICS", "ENERGY_METRICS", "LABELS", "METRICS", "MODES", "Metric"]
