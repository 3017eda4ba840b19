"""Pareto-aware early stopping of the proxy training (Optuna has no multi-objective pruner).

Every objective but top-1 (EPF, latency, params, MACs) is known before a trial trains. After each
epoch the trainer reports top-1, and the trial is stopped when even an optimistic completion could
not reach the front:

    optimistic = top-1 now + the largest gain from this epoch to the end seen among completed trials
                 + the noise margin

and some completed feasible trial is no worse in every known objective (lower or equal EPF, …) and
has a top-1 above ``optimistic``. The noise margin is the half-width of the paired test's 95 % interval
on the difference between that trial and this one (:mod:`e2gcsearch.paired`: the images the two models
disagree on now, and the seed noise on the population of images when the study knows it), where both
have per-image results on the same validation images; else the upper half-width of this trial's own
interval at the optimistic value (binomial on the validation images, with the study's seed noise). Such a trial would end dominated, or at best tied within noise; it
is recorded PRUNED with the reason and its partial curve. Nothing is stopped before
:data:`MIN_COMPLETE` trials have completed with a full curve (the gains come from them), nor after
the last epoch.

Example:
    >>> rule = StoppingRule([Finished(trial=0, known=(10.0,), top1=95.0, curve=(40.0, 80.0, 95.0))] * 4,
    ...                     epochs=3, margin=lambda top1: 2.0)
    >>> rule.verdict(2, top1=60.0, known=(12.0,))          # 60 + 15 + 2 = 77 < 95 at lower EPF
    'stopped after epoch 2/3: top-1 60.0 % + largest remaining gain 15.0 + noise 2.0 (interval) = 77.0 % is below trial 0 (95.0 %), ...'
    >>> rule.verdict(2, top1=60.0, known=(9.0,)) is None   # cheaper than every completed trial
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from optuna.trial import TrialState

from ..metrics import Metric
from ..paired import PerImage, paired_difference, population_seed_noise
from ..stats import SeedNoise, accuracy_interval
from ..store import record
from ..store.results import is_feasible

MIN_COMPLETE = 4  # trials that always complete before the rule may stop one


@dataclasses.dataclass(frozen=True)
class Finished:
    """A completed feasible trial as the rule sees it: its known objectives as losses (smaller is
    better), its final top-1 and its top-1 after each epoch."""

    trial: int
    known: tuple[float, ...]
    top1: float
    curve: tuple[float, ...]
    right: np.ndarray | None = None  # (seeds, n) per-image results of its final models, when recorded


@dataclasses.dataclass(frozen=True)
class StoppingRule:
    """Decides after each epoch whether a trial can still reach the front (see the module docstring)."""

    finished: Sequence[Finished]
    epochs: int
    margin: Callable[[float], float]
    min_complete: int = MIN_COMPLETE
    population_noise: SeedNoise | None = None  # the seed noise of the paired test (population_seed_noise)

    def largest_gain(self, epoch: int) -> float | None:
        """The largest top-1 gain from after ``epoch`` to the end among the completed full curves."""
        gains = [f.curve[-1] - f.curve[epoch - 1] for f in self.finished if len(f.curve) == self.epochs]
        return max(gains) if len(gains) >= self.min_complete else None

    def verdict(self, epoch: int, top1: float, known: Sequence[float], right: Any = None) -> str | None:
        """Why the trial should stop after ``epoch`` (1-based) with ``top1`` %, or ``None`` to go on;
        ``right``: which validation images the model gets right now (for the paired margin)."""
        if epoch >= self.epochs:
            return None
        gain = self.largest_gain(epoch)
        if gain is None:
            return None
        gain = max(gain, 0.0)
        for other in self.finished:
            if not all(a <= b for a, b in zip(other.known, known)):
                continue
            noise, test = self.noise(top1 + gain, other, right)
            optimistic = top1 + gain + noise
            if other.top1 > optimistic:
                return (
                    f"stopped after epoch {epoch}/{self.epochs}: top-1 {top1:.1f} % + largest remaining gain "
                    f"{gain:.1f} + noise {noise:.1f} ({test}) = {optimistic:.1f} % is below trial {other.trial} "
                    f"({other.top1:.1f} %), which is no worse in every other objective"
                )
        return None

    def noise(self, optimistic: float, other: Finished, right: Any) -> tuple[float, str]:
        """The noise margin against ``other`` and the test it comes from (module docstring)."""
        if right is not None and other.right is not None and len(right) == other.right.shape[1]:
            difference = paired_difference(other.right, np.asarray(right, dtype=bool)[None], self.population_noise)
            return (difference.high - difference.low) / 2, "paired"
        return self.margin(optimistic), "interval"


def known_losses(objectives: Sequence[Metric], values: Sequence[float]) -> tuple[float, ...]:
    """The objectives other than top-1 of ``values`` (one per objective) as losses."""
    return tuple(
        value if objective.direction == "minimize" else -value
        for objective, value in zip(objectives, values)
        if not objective.is_accuracy
    )


def top1_margin(val_size: int, seed_noise: SeedNoise | None) -> Callable[[float], float]:
    """The upper half-width of the 95 % interval of one seed's top-1 at a given value (percentage points)."""

    def margin(top1: float) -> float:
        value = min(max(top1, 0.0), 100.0)
        return accuracy_interval([value], val_size, seed_noise).high - value

    return margin


def rule_for(
    study: Any,
    objectives: Sequence[Metric],
    epochs: int,
    val_size: int,
    seed_noise: SeedNoise | None = None,
    min_complete: int = MIN_COMPLETE,
    order: str | None = None,
) -> StoppingRule:
    """The rule made from ``study``'s completed feasible trials that record a full top-1 curve; their
    per-image results take part when they were judged on the images of digest ``order``."""
    accuracy = [i for i, objective in enumerate(objectives) if objective.is_accuracy]
    finished, study_attrs = [], study.user_attrs  # one storage read for every trial's confirm attr
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        attrs = trial.user_attrs
        curve = attrs.get(record.TOP1_CURVE) or []
        if (
            not accuracy
            or record.DUPLICATE_OF in attrs
            or not is_feasible(trial)
            or trial.values is None
            or len(curve) != epochs
        ):
            continue
        finished.append(
            Finished(
                trial.number,
                known_losses(objectives, trial.values),
                float(trial.values[accuracy[0]]),
                tuple(float(v) for v in curve),
                _right(attrs, order, record.confirmation(study, trial.number, study_attrs)),
            )
        )
    noise = population_seed_noise(f.right for f in finished if f.right is not None and len(f.right) >= 2)
    return StoppingRule(finished, epochs, top1_margin(val_size, seed_noise), min_complete, noise)


def _right(attrs: dict[str, Any], order: str | None, confirmed: dict[str, Any]) -> np.ndarray | None:
    """A trial's stored per-image results with those of the seeds ``confirm`` or the noise probes added
    (``confirmed``, their study attr), when they were judged on the images of digest ``order``."""
    stored = PerImage.from_dict(attrs.get(record.TOP1_CORRECT))
    if stored is None or order is None or stored.order != order:
        return None
    return stored.extended(PerImage.from_dict(confirmed.get(record.TOP1_CORRECT))).matrix()
