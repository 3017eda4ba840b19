"""Trials whose worker died: each running trial names its process (host, pid, run); a run that starts
fails the RUNNING trials of processes that no longer exist on this host, and (on an RDB storage)
those whose heartbeat stopped, with the reason recorded, and queues their point again once
(:func:`queue_retry`).

Without this a killed worker's trial stayed RUNNING (a journal storage has no heartbeat) or was failed
by Optuna a minute later without a reason. A run stopped by Ctrl-C or by SIGTERM (``kill``, a batch
scheduler, a container runtime: :func:`sigterm_as_interrupt`) fails its running trials with the reason
and queues their points again too (:func:`requeue_interrupted`), as ``kill -9`` does.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from . import record
from .queue import trial_params

QUEUED_AS = (record.BASELINE, record.WARM_START, record.DRAWN)  # why a point was queued: kept on its retry

OPTUNA_RETRY_OF = "failed_trial"  # what Optuna's own retry callback, used before queue_retry, set on a retry
HEARTBEAT_S = 30  # a RUNNING trial whose process stopped beating for 2 x this is failed and retried
HEARTBEAT_ENV = "E2GCSEARCH_HEARTBEAT_S"


def heartbeat_seconds() -> int:
    """The heartbeat period: ``$E2GCSEARCH_HEARTBEAT_S``, else 30 s."""
    return int(os.environ.get(HEARTBEAT_ENV) or HEARTBEAT_S)


def worker_tag(run_id: str) -> dict[str, Any]:
    """What a trial records about the process running it (``record.WORKER``)."""
    return {"run": run_id, "host": socket.gethostname(), "pid": os.getpid()}


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _stale_ids(study: optuna.Study) -> set[int]:
    """Trial ids whose heartbeat is older than the grace period (RDB storages with a heartbeat)."""
    if not has_heartbeat(study):
        return set()
    return set(study._storage._get_stale_trial_ids(study._study_id))


def has_heartbeat(study: optuna.Study) -> bool:
    """Whether Optuna's heartbeat watches the study's trials (RDB storages opened by ``run``); the
    storage may be wrapped in Optuna's cache, which is why this asks Optuna."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(study._storage)


def lost_reason(trial: Any, stale: set[int]) -> str | None:
    """Why ``trial`` (RUNNING) has lost its worker, or ``None`` when the worker may still be alive."""
    tag = trial.user_attrs.get(record.WORKER) or {}
    started = trial.datetime_start.strftime("%Y-%m-%d %H:%M:%S") if trial.datetime_start else "?"
    if tag.get("host") == socket.gethostname() and tag.get("pid") and not _process_exists(int(tag["pid"])):
        return (
            f"worker lost: process {tag['pid']} on {tag['host']} ended without finishing the trial "
            f"(no heartbeat since it stopped; started {started})"
        )
    if trial._trial_id in stale:
        where = f"process {tag['pid']} on {tag['host']}" if tag else "its process"
        return f"worker lost: no heartbeat from {where} within the grace period (started {started})"
    # A live worker tags its trial the moment it starts it; one killed in between leaves a RUNNING trial
    # with neither a tag nor a heartbeat, which nothing above would ever fail.
    age = (datetime.datetime.now() - trial.datetime_start).total_seconds() if trial.datetime_start else 0.0
    if not tag and age > 2 * heartbeat_seconds():
        return f"worker lost: its process ended before it recorded itself on the trial (started {started})"
    return None


def fail_lost_trials(study: optuna.Study) -> list[str]:
    """Fail the RUNNING trials whose worker is gone (reason recorded) and queue their points once more;
    returns one line per trial failed."""
    storage, lines = study._storage, []
    stale = _stale_ids(study)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reason = lost_reason(trial, stale)
        if reason is None:
            continue
        try:
            storage.set_trial_user_attr(trial._trial_id, record.FAIL_REASON, reason)
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except RuntimeError:  # another process failed it first
            continue
        lines.append(f"trial {trial.number} failed: {reason}")
        queue_retry(study, trial)
    return lines


def queue_retry(study: optuna.Study, trial: FrozenTrial, again: bool = False) -> bool:
    """Queue the point of ``trial`` (lost) once more, unless ``trial`` is itself a retry (``again``: also
    then, for a trial the user interrupted, which says nothing against its point); True when queued.

    The retry takes the point's parameters and why it was queued (baseline, warm start, drawn), not
    what the lost run had recorded (its cost, partial curve, worker), so it starts as a new trial.
    Also Optuna's heartbeat callback on an RDB storage (:func:`.storage.open_search_storage`).
    """
    params = trial_params(trial)  # also the fixed params of a queued point lost before it sampled them
    retried = record.RETRY_OF in trial.system_attrs or OPTUNA_RETRY_OF in trial.system_attrs
    if (retried and not again) or not params:
        return False
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            system_attrs={record.FIXED_PARAMS: params, record.RETRY_OF: trial.number},
            user_attrs={key: trial.user_attrs[key] for key in QUEUED_AS if key in trial.user_attrs},
        )
    )
    return True


INTERRUPTED = "interrupted by the user"
TERMINATED = "terminated (SIGTERM)"


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: the running trial fails with its reason and its point is queued
    again; the process exits 143."""


def interruption_reason(exc: BaseException) -> str:
    return TERMINATED if isinstance(exc, Terminated) else INTERRUPTED


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within this block SIGTERM raises :class:`Terminated` in the main thread (instead of ending the
    process on the spot and leaving its trial RUNNING); the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def requeue_interrupted(study: optuna.Study, run_id: str) -> int:
    """Queue again the point of every trial of run ``run_id`` that an interruption failed; return how many."""
    queued = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        ran_here = (trial.user_attrs.get(record.WORKER) or {}).get("run") == run_id
        if ran_here and trial.user_attrs.get(record.FAIL_REASON) in (INTERRUPTED, TERMINATED):
            queued += queue_retry(study, trial, again=True)
    return queued
