"""Objectives and constraints of a search, parsed from the command line.

Objectives: a comma list of ``epf`` (energy per frame of a training step, mJ/frame, at the reference
batch size; ``epf@B`` picks batch size B), ``epf_infer`` (the same for inference: forward only, eval
mode; ``epf_infer@B``), ``top1`` (proxy top-1 accuracy, maximized), ``params``, ``macs`` and
``latency`` (ms per batch at the reference batch size, or ``latency@B``), all minimized.

Constraints: ``METRIC<=BOUND`` or ``METRIC>=BOUND`` on any of those metrics, e.g. ``params<=5e6``,
``epf@4<=2.5`` or ``top1>=40``. They are passed to Optuna with ``trial.set_constraint`` (a value
<= 0 means satisfied).

Both are :class:`e2gcsearch.metrics.Metric`, the one metric type of the search and the report.

Example:
    >>> [o.name for o in parse_objectives("epf,top1")]
    ['epf@16', 'top1']
    >>> parse_constraint("params<=5e6").violation(6e6)
    1000000.0
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

from ..config import ArchConfig
from ..cost import network_cost
from ..errors import ConfigError
from ..metrics import METRICS, Metric

DEFAULT_BATCH_SIZE = 16


def _valid_names() -> str:
    return ", ".join(f"{m}@B" if takes_batch else m for m, (_, _, takes_batch) in METRICS.items())


def parse_metric(text: str, reference_batch: int = DEFAULT_BATCH_SIZE) -> Metric:
    """``"epf"`` → epf@16, ``"epf@4"`` → epf@4, ``"top1"`` → top1."""
    name, _, batch = text.strip().partition("@")
    name = name.strip().lower()
    if name not in METRICS:
        raise ConfigError(
            f"unknown metric {text.strip()!r}; valid metrics: {_valid_names()} (e.g. --objective epf,top1)"
        )
    takes_batch = METRICS[name][2]
    if batch and not takes_batch:
        raise ConfigError(f"metric {name!r} takes no batch size; write {name} instead of {text.strip()!r}")
    if takes_batch:
        try:
            batch_size = int(batch) if batch else reference_batch
        except ValueError:
            raise ConfigError(f"bad batch size in {text.strip()!r}; write e.g. {name}@16") from None
        if batch_size < 1:
            raise ConfigError(f"bad batch size in {text.strip()!r}; write e.g. {name}@16")
        return Metric.of(name, batch_size)
    return Metric.of(name)


def parse_objectives(text: str, reference_batch: int = DEFAULT_BATCH_SIZE) -> tuple[Metric, ...]:
    """Parse a comma list of objectives; unknown or duplicated names are errors."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise ConfigError(f"give at least one objective, e.g. --objective epf,top1 (valid: {_valid_names()})")
    objectives = tuple(parse_metric(part, reference_batch) for part in parts)
    names = [o.name for o in objectives]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"objective {', '.join(duplicated)} is given twice; list each once (valid: {_valid_names()})")
    return objectives


_CONSTRAINT = re.compile(r"^\s*([A-Za-z0-9_@]+)\s*(<=|>=)\s*([-+0-9.eE]+)\s*$")


@dataclasses.dataclass(frozen=True)
class Constraint:
    """``metric <= bound`` or ``metric >= bound``."""

    metric: Metric
    op: str
    bound: float

    @property
    def text(self) -> str:
        return f"{self.metric.name}{self.op}{self.bound:g}"

    def violation(self, value: float) -> float:
        """Optuna's convention: <= 0 when satisfied, else by how much it is violated."""
        return value - self.bound if self.op == "<=" else self.bound - value

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "metric": self.metric.name, "op": self.op, "bound": self.bound}


def parse_constraint(text: str, reference_batch: int = DEFAULT_BATCH_SIZE) -> Constraint:
    match = _CONSTRAINT.match(text)
    if not match:
        raise ConfigError(
            f"cannot read constraint {text!r}; write METRIC<=BOUND or METRIC>=BOUND, "
            "e.g. --constraint 'params<=5e6' or --constraint 'top1>=40'"
        )
    name, op, bound = match.groups()
    try:
        value = float(bound)
    except ValueError:
        raise ConfigError(f"bad bound {bound!r} in constraint {text!r}; write a number such as 5e6") from None
    return Constraint(parse_metric(name, reference_batch), op, value)


def cost_constraints(constraints: Sequence[Constraint]) -> tuple[Constraint, ...]:
    """The constraints known before anything is measured: those on params and MACs."""
    return tuple(constraint for constraint in constraints if constraint.metric.metric in ("params", "macs"))


def cost_feasible(constraints: Sequence[Constraint], resolution: int) -> Callable[[ArchConfig], bool]:
    """Whether a configuration keeps the constraints known before anything is measured: those on params
    and MACs (EPF, latency and top-1 constraints are left to the trial, and so is a configuration that
    cannot be built: its trial names why)."""

    @functools.cache  # the queue, the warm start and the pre-flight ask about the same points
    def keep(arch_config: ArchConfig) -> bool:
        try:
            cost = network_cost(arch_config, resolution)
        except ConfigError:
            return True
        known = {"params": cost.params, "macs": cost.macs}
        return all(
            constraint.violation(known[constraint.metric.metric]) <= 0 for constraint in cost_constraints(constraints)
        )

    return keep
