"""Successive halving with Pareto promotion: multi-fidelity early stopping for multi-objective studies.

Optuna's pruners rank one objective (``Trial.report`` and ``should_prune`` raise in a multi-objective
study). Asynchronous successive halving (ASHA; Li et al., MLSys 2020) compares trials at *rungs*, epochs
``E / eta``, ``E / eta**2``, ... of the ``E``-epoch proxy training, and lets a trial go on only when it is
among the best ``1 / eta`` of the trials that reached the same rung. Here "best" is Pareto rank, as in
multi-objective ASHA (Schmucker et al., 2021): every objective but top-1 (EPF, latency, params, MACs) is
known before training, so a trial's entry at a rung is its known objectives and its top-1 after that
epoch; entries are ordered by non-dominated layer, then by crowding distance (:func:`..pareto.pareto_order`).

With a training-free score (:mod:`..train.scores`, e.g. grad_norm), successive halving also has a *rung 0*
before any training: a trial's entry there is its known objectives and its score at initialisation, judged
by the same rules, so a trial stopped at rung 0 never trains (the first epoch carries a third of a search's
training seconds; docs/search-efficiency.md).

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
    >>> scored = {0: [((10.0 + i,), 50.0 - i) for i in range(5)]}
    >>> rule = HalvingRule(4, lambda epoch: scored.get(epoch, []), score=RungScore("grad_norm", lambda: 30.0))
    >>> rule.before_training(known=(20.0,))
    'stopped at rung 0 (before training): Pareto position 6 of 6 on the known objectives and grad_norm at initialisation; successive halving keeps the best 3 (eta = 2)'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from optuna.trial import TrialState

from ..config import ArchConfig
from ..data import LoadedData
from ..energy import Ledger
from ..metrics import Metric
from ..pareto import pareto_order
from ..store import record
from ..store.results import is_feasible
from ..train.scores import SCORES, score_network
from .early_stop import MIN_COMPLETE, known_losses

ETA = 2  # keep the best half at each rung
Entry = tuple[tuple[float, ...], float]  # (known objectives as losses, top-1 % after the rung's epoch, or
# at rung 0 the training-free score; larger is better for both)


@dataclasses.dataclass(frozen=True)
class RungScore:
    """Rung 0's training-free score: its name (one of ``train.scores.SCORES``) and how to compute it for
    the trial being judged (called once, when the trial reaches rung 0)."""

    name: str
    compute: Callable[[], float]


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
    (``{epoch: {"known", "top1", "position", "of", "promoted"}}``, at rung 0 ``"score"`` and ``"score_name"``
    in place of ``"top1"``) each time it passes one."""

    epochs: int
    entries: Callable[[int], Sequence[Entry]]
    write: Callable[[dict[int, dict[str, Any]]], None] = lambda rungs: None
    eta: int = ETA
    min_entries: int = MIN_COMPLETE
    score: RungScore | None = None  # rung 0's training-free score; None: no rung before training
    passed: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def verdict(self, epoch: int, top1: float, known: Sequence[float], right: Any = None) -> str | None:
        """Why the trial should stop after ``epoch`` (1-based) with ``top1`` %, or ``None`` to go on
        (``right``, the per-image results, is the stopping rule's; a rung orders by top-1 alone)."""
        if epoch not in rungs(self.epochs, self.eta):
            return None
        where = f"rung {epoch} (epoch {epoch}/{self.epochs})"
        return self._judge(epoch, top1, known, {"top1": top1}, where, f"top-1 after {epoch} epoch(s)")

    def before_training(self, known: Sequence[float]) -> str | None:
        """Rung 0: why the trial should stop before it trains, judged by its training-free score, or
        ``None`` to go on (always, without a score)."""
        if self.score is None:
            return None
        value = float(self.score.compute())
        entry = {"score": value, "score_name": self.score.name}
        return self._judge(0, value, known, entry, "rung 0 (before training)", f"{self.score.name} at initialisation")

    def _judge(
        self, epoch: int, value: float, known: Sequence[float], entry: dict[str, Any], where: str, what: str
    ) -> str | None:
        """One rung's decision: this trial's ``(known, value)`` among the others' entries at ``epoch``."""
        others = list(self.entries(epoch))
        losses = [(*k, -v) for k, v in others] + [(*known, -value)]
        position = pareto_order(losses).index(len(others)) + 1
        kept = max(1, math.floor(len(losses) / self.eta))
        promoted = len(others) < self.min_entries or position <= kept
        self.passed[epoch] = {
            "known": list(known),
            **entry,
            "position": position,
            "of": len(losses),
            "promoted": promoted,
        }
        self.write(dict(self.passed))
        if promoted:
            return None
        return (
            f"stopped at {where}: Pareto position {position} of {len(losses)} on the known objectives and {what}; "
            f"successive halving keeps the best {kept} (eta = {self.eta})"
        )


def study_entries(
    study: Any, objectives: Sequence[Metric], own: int, score_name: str | None = None
) -> Callable[[int], list[Entry]]:
    """Reads the entries of every trial of ``study`` but trial ``own`` at a given epoch, when asked (so that
    trials running in other workers count as far as they got); at rung 0, the entries scored by
    ``score_name``."""
    accuracy = next((i for i, objective in enumerate(objectives) if objective.is_accuracy), None)

    def entries(epoch: int) -> list[Entry]:
        found = []
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        for trial in study.get_trials(deepcopy=False, states=states):
            attrs = trial.user_attrs
            if trial.number == own or record.DUPLICATE_OF in attrs or attrs.get(record.INFEASIBLE):
                continue
            passed = attrs.get(record.HALVING, {}).get(str(epoch))
            if epoch == 0:  # only a trial that was scored before training has an entry at rung 0
                if passed is not None and passed.get("score_name") == score_name:
                    found.append((tuple(passed["known"]), float(passed["score"])))
                continue
            if passed is not None:
                found.append((tuple(passed["known"]), float(passed["top1"])))
                continue
            curve = attrs.get(record.TOP1_CURVE) or []
            complete = trial.state == TrialState.COMPLETE and trial.values is not None and is_feasible(trial)
            if complete and accuracy is not None and len(curve) >= epoch:
                found.append((known_losses(objectives, trial.values), float(curve[epoch - 1])))
        return found

    return entries


def halving_rule(
    trial: Any, objectives: Sequence[Metric], epochs: int, eta: int = ETA, score: RungScore | None = None
) -> HalvingRule:
    """The rule for a running Optuna trial of an e2gcsearch study (with rung 0 when ``score`` is given)."""

    def write(passed: dict[int, dict[str, Any]]) -> None:
        trial.set_user_attr(record.HALVING, {str(epoch): entry for epoch, entry in passed.items()})

    entries = study_entries(trial.study, objectives, trial.number, score.name if score else None)
    return HalvingRule(epochs, entries, write, eta, score=score)


def rung0_score(
    name: str | None, arch_config: ArchConfig, data: LoadedData, seed: int, ledger: Ledger
) -> RungScore | None:
    """Rung 0's score ``name`` of ``arch_config`` (``None``: no rung 0), computed when the trial reaches rung 0
    from the trial's seed on a minibatch of ``data``'s training images (seconds, on the CPU), metered by
    ``ledger`` as training."""
    if name is None:
        return None
    if name not in SCORES:
        raise ValueError(f"unknown rung-0 score {name!r}; choose one of {', '.join(SCORES)}")

    def compute() -> float:
        with ledger.phase("training", "cpu"):
            return score_network(name, arch_config, data, seed)

    return RungScore(name, compute)
