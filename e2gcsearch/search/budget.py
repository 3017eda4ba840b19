"""``--trials N`` means N new points: the budget of one search process.

A sampler of a discrete space proposes a point it has already seen now and then. Such a trial is
told the known result at once (:func:`e2gcsearch.search.trial.repeat`, no training, no measuring)
and is not charged: the study goes on until N trials have measured a point the study had not
measured. Nor is a trial that failed before measuring anything (a point that cannot be built: the
sampler learns it from the failure). When the sampler proposes such points :data:`REPEAT_STREAK`
times in a row, the next trial is drawn (seeded) from the unmeasured buildable points instead. When
fewer than N unmeasured points remain, the search measures them all and says so; when none remain,
it stops.

Example:
    >>> from e2gcsearch.search.space import SearchSpace
    >>> budget = NewPoints(SearchSpace(modules=("E2GC",), group_sizes=(1, 2), widths=(0.5,)), 10, num_classes=3)
    >>> budget.quota   # 10 asked, 2 points in the space
    2
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from ..store import record
from ..store.queue import enqueue_once
from .space import Space

REPEAT_STREAK = 3  # repeats in a row after which the next point is drawn from the unmeasured ones
GIVE_UP_STREAK = 100  # in a space too large to list: repeats in a row after which the search stops
GIVE_UP_FAILED = 10  # failures before measuring since the last new point after which the search stops
ENUMERABLE = 20_000  # spaces up to this size are listed to find their unmeasured points


def measured_points(study: Any) -> set[str]:
    """The points (ArchConfig JSON) that ``study`` has measured or is measuring (any trial but a repeat)."""
    from ..config import ArchConfig

    out = set()
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        if record.ARCH_CONFIG in attrs and record.DUPLICATE_OF not in attrs and trial.state != TrialState.FAIL:
            out.add(ArchConfig.from_dict(attrs[record.ARCH_CONFIG]).to_json())
    return out


def failed_unmeasured(trial: FrozenTrial) -> bool:
    """Whether ``trial`` failed before anything was measured (its point cannot be built): no new point."""
    return trial.state == TrialState.FAIL and record.PARAMS not in trial.user_attrs


def uncharged(trial: FrozenTrial) -> bool:
    """Whether ``trial`` does not count against ``--trials``: a repeat, or a failure before measuring."""
    return record.DUPLICATE_OF in trial.user_attrs or failed_unmeasured(trial)


class NewPoints:
    """A study callback that charges only trials that measured a new point and stops the study after
    ``quota`` of them (``None``: no limit but the space)."""

    def __init__(
        self,
        space: Space,
        quota: int | None,
        num_classes: int,
        seed: int | None = 0,
        study: Any = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.space, self.num_classes, self.say = space, num_classes, say or (lambda line: None)
        self.rng = random.Random(seed)
        self.charged = self.repeats = self.failed = self.streak = 0
        self.quota = quota
        self.points = space.points(num_classes) if space.size <= ENUMERABLE else None
        unmeasured = self.unmeasured(study)
        if unmeasured is not None and (quota is None or len(unmeasured) < quota):
            self.quota = len(unmeasured)

    def unmeasured(self, study: Any = None) -> list[Any] | None:
        """The buildable points not measured yet (``None`` when the space is too large to list)."""
        if self.points is None:
            return None
        measured = measured_points(study) if study is not None else set()
        impossible = {arch_config.to_json() for arch_config, _ in self.space.impossible(self.num_classes)}
        return [p for p in self.points if p.to_json() not in measured and p.to_json() not in impossible]

    def __call__(self, study: Any, trial: FrozenTrial) -> None:
        if uncharged(trial):
            self.repeats += record.DUPLICATE_OF in trial.user_attrs
            self.failed += failed_unmeasured(trial)
            self.streak += 1
        else:
            self.charged += 1
            self.streak = self.failed = 0
        if self.quota is not None and self.charged >= self.quota:
            study.stop()
            return
        if self.failed >= GIVE_UP_FAILED:
            self.say(
                f"{self.failed} trials since the last new point failed before measuring anything; stopping "
                "(see their FAILED lines)"
            )
            study.stop()
            return
        unmeasured = self.unmeasured(study)
        if unmeasured == []:
            self.say(f"every point of the space ({self.space.size}) is measured; stopping")
            study.stop()
        elif self.streak >= REPEAT_STREAK and unmeasured:
            point = self.rng.choice(unmeasured)
            enqueue_once(study, self.space, [(point, {record.DRAWN: True})])
            self.say(
                f"the sampler proposed measured or unbuildable points {self.streak} times in a row; the next "
                f"trial is {point.label()}, drawn from the {len(unmeasured)} unmeasured points"
            )
            self.streak = 0
        elif self.streak >= GIVE_UP_STREAK:
            self.say(f"the sampler proposed measured points {self.streak} times in a row; stopping")
            study.stop()
