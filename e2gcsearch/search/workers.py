"""``run --workers N``: N processes share one study (a journal file or a database server), each with its
share of the trials, the cores and the GPUs; a worker killed by a signal is replaced by one that runs
what is left of its share, and Ctrl-C or SIGTERM reach every worker (:func:`run_workers`)."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
from typing import Any

import optuna
from optuna.trial import TrialState

from ..console import note
from ..data import load_data
from ..store import record
from ..store.lost import Terminated, fail_lost_trials, sigterm_as_interrupt
from ..store.storage import open_search_storage
from .loop import on_device, optimize
from .search_config import SearchConfig
from .study import create_sampler, sampler_seed
from .trial import TrialRunner


def worker_main(config: SearchConfig, index: int, quota: int | None, run_id: str, device: str | None) -> None:
    """Entry point of one worker process (``--workers N``); Ctrl-C or SIGTERM (which the parent forwards)
    fails its running trial and ends it quietly (the parent says so and queues the point again)."""
    try:
        with sigterm_as_interrupt():
            _work(config, index, quota, run_id, device)
    except KeyboardInterrupt:
        pass


def _work(config: SearchConfig, index: int, quota: int | None, run_id: str, device: str | None) -> None:
    config = on_device(config, device)
    data = load_data(config.data, progress=False)
    storage = open_search_storage(config.storage)
    study = optuna.load_study(
        study_name=config.study_name,
        storage=storage,
        sampler=create_sampler(
            config.sampler, sampler_seed(config.seed, 0, index), config.settings.space, config.trials
        ),
    )
    study.sampler = create_sampler(
        config.sampler, sampler_seed(config.seed, len(study.trials), index), config.settings.space, config.trials
    )
    optimize(study, TrialRunner(config.settings, data), config, quota, run_id, tag=f"[worker {index}] ", worker=index)


def quotas(trials: int | None, workers: int) -> list[int | None]:
    """Trials per worker process: ``trials`` split as evenly as possible (``None``: no limit).

    >>> quotas(5, 2), quotas(1, 3), quotas(None, 2)
    ([3, 2], [1, 0, 0], [None, None])
    """
    if trials is None:
        return [None] * workers
    return [trials // workers + (index < trials % workers) for index in range(workers)]


def run_workers(config: SearchConfig, run_id: str, study: optuna.Study) -> None:
    """Start the workers and wait for them; a worker killed by a signal (``kill -9``, the OOM killer) is
    replaced by one that runs the trials left of its share, up to ``workers`` times in a run."""
    context = multiprocessing.get_context("spawn")
    devices = list(config.placed) or [None] * config.workers
    running: dict[Any, tuple[int, int | None]] = {}

    def start(index: int, quota: int | None) -> None:
        process = context.Process(target=worker_main, args=(config, index, quota, run_id, devices[index]), daemon=False)
        process.start()
        running[process] = (index, quota)

    for index, quota in enumerate(quotas(config.trials, config.workers)):
        if quota != 0:
            start(index, quota)
    failed, replaced = [], 0
    try:
        while running:
            multiprocessing.connection.wait([p.sentinel for p in running])
            for process in [p for p in running if not p.is_alive()]:
                index, quota = running.pop(process)
                if process.exitcode is not None and process.exitcode < 0 and replaced < config.workers:
                    left = _trials_left(study, run_id, process.pid, quota)
                    note(
                        f"[worker {index}] process {process.pid} was killed (signal {-process.exitcode}); "
                        + (
                            f"a new process runs the {left} trial(s) left of its share"
                            if left != 0
                            else "its share was done"
                        )
                    )
                    for line in fail_lost_trials(study):  # at once, with the reason, before any heartbeat expires
                        note(line)
                    replaced += 1
                    if left != 0:
                        start(index, left)
                elif process.exitcode:
                    failed.append(process.exitcode)
    except KeyboardInterrupt as exc:
        if isinstance(exc, Terminated):  # SIGTERM came to this process alone; Ctrl-C reached the workers too
            for process in running:
                process.terminate()
        for process in running:  # let each worker record its failed trial before anything else
            process.join(timeout=60)
        for process in running:
            if process.is_alive():
                process.terminate()
        raise
    if failed:
        note(f"warning: {len(failed)} worker(s) exited with an error (exit codes {failed}); see the lines above")


def _trials_left(study: optuna.Study, run_id: str, pid: int | None, quota: int | None) -> int | None:
    """What is left of a dead worker's share: its quota less the new points it finished (repeats and the
    trial it was killed in do not count: its point is retried, by whichever worker comes first)."""
    if quota is None:
        return None
    finished = 0
    for trial in study.get_trials(deepcopy=False):
        tag = trial.user_attrs.get(record.WORKER) or {}
        reason = str(trial.user_attrs.get(record.FAIL_REASON) or "worker lost")  # the heartbeat gives none
        lost = trial.state == TrialState.FAIL and reason.startswith("worker lost")
        repeat = record.DUPLICATE_OF in trial.user_attrs  # a repeat is not charged (see .budget)
        if trial.state.is_finished() and not lost and not repeat and tag.get("run") == run_id and tag.get("pid") == pid:
            finished += 1
    return max(0, quota - finished)
