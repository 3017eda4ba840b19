"""Queueing chosen points on a study exactly once (paper baselines, energy-model warm starts)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from optuna.trial import TrialState

from ..config import ArchConfig
from .record import FIXED_PARAMS


def trial_params(trial: Any) -> dict[str, Any]:
    """A trial's parameters, also for a queued trial that has not sampled them yet."""
    # A queued trial keeps its parameters in Optuna's system attrs until it has sampled them, so one
    # that did not finish (waiting, running, or lost part-way) has them there; a finished one's are its own
    # (an older study may have queued them under other names).
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return trial.params or trial.system_attrs.get(FIXED_PARAMS, {})
    return {**trial.system_attrs.get(FIXED_PARAMS, {}), **trial.params}


LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


def live_trials(study: Any) -> list[Any]:
    """The trials that are complete, stopped early, running or waiting (not failed)."""
    return study.get_trials(deepcopy=False, states=LIVE)


def queued_archs(study: Any, attr: str) -> set[str]:
    """The archs of the live trials queued with the user attr ``attr`` (e.g. a paper baseline)."""
    return {trial_params(t).get("arch") for t in live_trials(study) if attr in t.user_attrs}


class ParamsOf(Protocol):
    """What queueing asks of a search space (``search.space.Space`` has it): the parameters that draw a point."""

    def params_of(self, arch_config: ArchConfig) -> dict[str, Any]: ...


def enqueue_once(study: Any, space: ParamsOf, items: Iterable[tuple[ArchConfig, dict[str, Any]]]) -> list[ArchConfig]:
    """Queue each ``(config, user_attrs)`` unless a trial with the same parameters is already
    complete, stopped early, running or waiting, so a resumed study never runs a queued point twice.

    Returns the configurations actually queued.
    """
    taken = {tuple(sorted(trial_params(t).items())) for t in live_trials(study)}
    queued = []
    for arch_config, attrs in items:
        params = space.params_of(arch_config)
        key = tuple(sorted(params.items()))
        if key in taken:
            continue
        study.enqueue_trial(params, user_attrs=attrs)
        taken.add(key)
        queued.append(arch_config)
    return queued
