"""Twins: trials of one point. A sampler of a discrete space proposes a measured point again now and
then, and two workers may draw one point at once; a twin is answered from the study or left to the
trial measuring it, so no point is measured twice.
"""

from __future__ import annotations

import time
from typing import Any

import optuna
from optuna.trial import TrialState

from ..store import record

MEASURED = (TrialState.COMPLETE, TrialState.PRUNED)  # a point with one of these states is never run again
SETTLE_S = 0.5  # longer than a storage takes to show one process's write to another


def _twin(trial: Any, arch_config: Any, states: tuple[TrialState, ...], earlier: bool) -> Any:
    """Another trial of ``states`` that measured (or measures) the point ``arch_config`` itself (not as a
    repeat); with ``earlier``, only one numbered before ``trial``."""
    study = getattr(trial, "study", None)
    if study is None:  # e.g. optuna.trial.FixedTrial
        return None
    wanted = arch_config.to_dict()
    for other in study.get_trials(deepcopy=False, states=states):
        attrs = other.user_attrs
        if (
            (other.number < trial.number if earlier else other.number != trial.number)
            and record.DUPLICATE_OF not in attrs
            and attrs.get(record.ARCH_CONFIG) == wanted
        ):
            return other
    return None


def measured_twin(trial: Any, arch_config: Any) -> Any:
    """An earlier complete (or early-stopped) trial of the same point ``arch_config``, if any.

    Samplers of a discrete space propose a point again now and then; measuring it again would spend
    the budget on a result the study already has (EPF is cached and training is seeded).
    """
    return _twin(trial, arch_config, MEASURED, earlier=False)


def _others_running(trial: Any) -> bool:
    """True when another trial of the study is running (another worker, or another run on the storage)."""
    study = getattr(trial, "study", None)
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if study is not None else []
    return any(other.number != trial.number for other in running)


def running_twin(trial: Any, arch_config: Any) -> Any:
    """An earlier-numbered RUNNING trial of the same point ``arch_config`` (another worker measuring it
    now), if any: this trial then leaves the point to it, uncharged, instead of measuring it twice.

    Called once ``trial`` has recorded its point: a twin that recorded earlier is seen. Two that record
    in the same instant may each look before the other's record is visible, so while another trial
    runs, the check is made again once both records have settled (:data:`SETTLE_S`), and the later
    number leaves."""
    twin = _twin(trial, arch_config, (TrialState.RUNNING,), earlier=True)
    if twin is None and _others_running(trial):
        time.sleep(SETTLE_S)
        twin = _twin(trial, arch_config, (TrialState.RUNNING,), earlier=True)
    return twin


def repeat(trial: Any, twin: Any) -> list[float]:
    """Give ``trial`` the results of ``twin`` and mark it as a repeat (an early-stopped twin: pruned again).

    The mark is written first: every attr is a write of its own, and a worker reading the study in
    between (successive halving counting the rung entries of running trials) must never take the
    twin's copied entries for another point's."""
    trial.set_user_attr(record.DUPLICATE_OF, twin.number)
    for key, value in twin.user_attrs.items():
        if key not in (record.BASELINE, record.WARM_START, record.DRAWN, record.SPENT):  # its story, its bill
            trial.set_user_attr(key, value)
    if twin.state == TrialState.PRUNED:
        raise optuna.TrialPruned(twin.user_attrs.get(record.EARLY_STOP, f"as trial {twin.number}"))
    for key, value in twin.constraints.items():
        trial.set_constraint(key, value)
    return list(twin.values)
