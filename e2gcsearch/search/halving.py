"""Successive halving with Pareto promotion: multi-fidelity early stopping for multi-objective studies.

Optuna's pruners rank one objective (``Trial.report`` and ``should_prune`` raise in a multi-objective
study). Asynchronous successive halving (ASHA; Li et al., MLSys 2020) compares trials at *rungs*, epochs
``E / eta``, ``E / eta**2``, ... of the ``E``-epoch proxy training, and lets a trial go on only when it is
among the best ``1 / eta`` of the trials that reached the same rung. Here "best" is Pareto rank, as in
multi-objective ASHA (Schmucker et al., 2021): every objective but top-1 (EPF, latency, params, MACs) is
known before training, so a trial's entry at a rung is its known objectives and its top-1 after that
epoch; entries are ordered by non-dominated layer, then by crowding distance (:func:`..pareto.pareto_order`).

Each trial writes its own entry when it passes a rung (``record.HALVING``), so workers sharing a study see
each other's rungs while they run, a resumed study goes on with the rungs it has, and only the process
running a trial ever decides whether it goes on. A trial stopped at a rung is PRUNED with the reason.
Nothing is stopped while its rung holds fewer than ``min_entries`` other trials; completed trials of an
older study (without entries) count with their stored curve.

Example:
    >>> rungs(4, 2), rungs(4, 3), rungs(12, 3), rungs(1, 2)
    ((1, 2), (1,), (1, 4), ())
    >>> others = {1: [((10.0 + i,), 50.0 - i) for i in range(5)]}
    >>> rule = HalvingRule(4, lambda epoch: others.get(epoch, []), eta=2)
    >>> rule.verdict(1, top1=30.0, known=(20.0,))   # higher EPF and lower top-1 than all five
    'stopped at rung 1 (epoch 1/4): Pareto position 6 of 6 on the known objectives and top-1 after 1 epoch(s); successive halving keeps the best 3 (eta = 2)'
    >>> rule.verdict(1, top1=60.0, known=(9.0,)) is None
    True
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from optuna.trial import TrialState

from ..metrics import Metric
from ..pareto import pareto_order
from ..store import record
from ..store.results import is_feasible
from .early_stop import MIN_COMPLETE, known_losses

ETA = 2  # keep the best half at each rung
Entry = tuple[tuple[float, ...], float]  # (known objectives as losses, top-1 % after the rung's epoch)


def rungs(epochs: int, eta: int = ETA) -> tuple[int, ...]:
    """The epochs at which trials are compared: ``epochs // eta``, ``epochs // eta**2``, ... down to 1."""
    found, rung = set(), epochs // eta
    while rung >= 1:
        found.add(rung)
        rung //= eta
    return tuple(sorted(found))


@dataclasses.dataclass
class HalvingRule:
    """Decides, for one trial, whether it goes on at each rung (see the module docstring).

    ``entries(epoch)`` gives the other trials' entries at ``epoch``; ``write`` stores this trial's rungs
    (``{epoch: {"known", "top1", "position", "of", "promoted"}}``) each time it passes one."""

    epochs: int
    entries: Callable[[int], Sequence[Entry]]
    write: Callable[[dict[int, dict[str, Any]]], None] = lambda rungs: None
    eta: int = ETA
    min_entries: int = MIN_COMPLETE
    passed: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def verdict(self, epoch: int, top1: float, known: Sequence[float], right: Any = None) -> str | None:
        """Why the trial should stop after ``epoch`` (1-based) with ``top1`` %, or ``None`` to go on
        (``right``, the per-image results, is the stopping rule's; a rung orders by top-1 alone)."""
        if epoch not in rungs(self.epochs, self.eta):
            return None
        others = list(self.entries(epoch))
        losses = [(*k, -t) for k, t in others] + [(*known, -top1)]
        position = pareto_order(losses).index(len(others)) + 1
        kept = max(1, math.floor(len(losses) / self.eta))
        promoted = len(others) < self.min_entries or position <= kept
        self.passed[epoch] = {
            "known": list(known),
            "top1": top1,
            "position": position,
            "of": len(losses),
            "promoted": promoted,
        }
        self.write(dict(self.passed))
        if promoted:
            return None
        return (
            f"stopped at rung {epoch} (epoch {epoch}/{self.epochs}): Pareto position {position} of {len(losses)} "
            f"on the known objectives and top-1 after {epoch} epoch(s); successive halving keeps the best {kept} "
            f"(eta = {self.eta})"
        )


def study_entries(study: Any, objectives: Sequence[Metric], own: int) -> Callable[[int], list[Entry]]:
    """Reads the entries of every trial of ``study`` but trial ``own`` at a given epoch, when asked (so that
    trials running in other workers count as far as they got)."""
    accuracy = next((i for i, objective in enumerate(objectives) if objective.is_accuracy), None)

    def entries(epoch: int) -> list[Entry]:
        found = []
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        for trial in study.get_trials(deepcopy=False, states=states):
            attrs = trial.user_attrs
            if trial.number == own or record.DUPLICATE_OF in attrs or attrs.get(record.INFEASIBLE):
                continue
            passed = attrs.get(record.HALVING, {}).get(str(epoch))
            if passed is not None:
                found.append((tuple(passed["known"]), float(passed["top1"])))
                continue
            curve = attrs.get(record.TOP1_CURVE) or []
            complete = trial.state == TrialState.COMPLETE and trial.values is not None and is_feasible(trial)
            if complete and accuracy is not None and len(curve) >= epoch:
                found.append((known_losses(objectives, trial.values), float(curve[epoch - 1])))
        return found

    return entries


def halving_rule(trial: Any, objectives: Sequence[Metric], epochs: int, eta: int = ETA) -> HalvingRule:
    """The rule for a running Optuna trial of an e2gcsearch study."""

    def write(passed: dict[int, dict[str, Any]]) -> None:
        trial.set_user_attr(record.HALVING, {str(epoch): entry for epoch, entry in passed.items()})

    return HalvingRule(epochs, study_entries(trial.study, objectives, trial.number), write, eta)
