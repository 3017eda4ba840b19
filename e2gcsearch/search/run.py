"""``run_search``: load the data once, open or resume the study, queue the baselines, optimize.

Progress goes to stderr: a bar with ETA, and one line per finished trial (config, objectives,
front size). With ``workers > 1`` the same study is optimized by that many processes, each with its
own sampler seed and its share of the trial budget (a queued baseline is one of those trials), its
share of the CPU cores and, on GPUs, its own device; a worker killed mid-search is replaced for the
rest of its share (its trial is failed and retried by the heartbeat, or at once on a journal file).

Before the study is created or resumed, :mod:`.preflight` tries everything a trial needs once; a
resumed study continues its sampler's stream rather than repeating it, and the trials of a worker
that died are failed with that reason (:mod:`.lost`).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import sys
import time
from collections import Counter
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..checks import study_name
from ..console import debugging, note
from ..data import DataConfig, LoadedData, load_data
from ..errors import ConfigError
from ..devices import worker_devices
from ..metrics import ENERGY_METRICS
from . import record
from ..train.threads import AUTO, usable_cores, worker_threads
from .fingerprint import study_fingerprint, trial_settings
from .objectives import cost_constraints, cost_feasible
from .lost import Terminated, fail_lost_trials, new_run_id, requeue_interrupted, sigterm_as_interrupt, worker_tag
from .preflight import check_cost_constraints, check_networks, check_places, device_fingerprint_of
from .storage import redact, refuse_unkept, storage_failure
from .study import check_storage_for_workers, create_sampler, sampler_seed, enqueue_baselines, open_or_create_study, open_search_storage
from .budget import NewPoints, failed_unmeasured
from .warm_start import warm_start_study
from .trial import TrialRunner, TrialSettings

DEFAULT_TRIALS = 16  # one 'run' on the embedded digits: about 6 minutes on 2 cores, plus a minute of one-off calibration
WARM_STARTS = ("auto", "model", "none")  # the CLI's default is auto (see benchmarks/search_replay.py)


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """A whole search: what to optimize (``settings``), on which data, with which budget and storage."""

    settings: TrialSettings
    data: DataConfig
    storage: str
    study_name: str
    sampler: str = "tpe"
    seed: int | None = 0
    trials: int | None = DEFAULT_TRIALS
    timeout_s: float | None = None
    baselines: bool = True
    workers: int = 1
    devices: tuple[int, ...] | None = None  # GPU of each worker (default: every GPU with device cuda)
    share_devices: bool = False  # allow more workers than GPUs (they take turns measuring)
    progress: bool = True
    warm_start: str | None = None  # "model": queue the energy model's predicted best points; "auto": model
    # unless it cannot be calibrated for the space (then a note); None or "none": the sampler alone
    warm_start_profile: str | None = None  # device profile JSON (default: calibrate or reuse the cached one)

    def __post_init__(self) -> None:
        study_name(self.study_name)  # refused before anything is measured or written
        refuse_unkept(self.storage)


class SearchInterrupted(Exception):
    """Ctrl-C or SIGTERM: the running trials were failed and their points queued again; finished trials
    are kept. ``exit_status`` is 130 for Ctrl-C, 143 for SIGTERM (128 + the signal)."""

    def __init__(self, message: str, exit_status: int = 130) -> None:
        super().__init__(message)
        self.exit_status = exit_status


def trial_line(study: optuna.Study, trial: FrozenTrial, objectives: list[dict[str, Any]]) -> str:
    """One line per finished trial: number, config, objectives (with units) and front size."""
    attrs = trial.user_attrs
    label = "?"
    if record.ARCH_CONFIG in attrs:
        label = record.TrialRecord.from_trial(trial).arch_config.label()
    head = f"trial {trial.number:>3}  {label:<30}"
    if trial.state == TrialState.FAIL:
        return f"{head}  FAILED: {attrs.get(record.FAIL_REASON, 'no reason recorded')}"
    backend = attrs.get(record.ENERGY_BACKEND, "?")
    parts = []
    for objective, value in zip(objectives, trial.values or []):
        unit = objective["unit"] if objective["unit"] != "count" else ""
        shown = f"{value:.4g}" if objective["unit"] != "count" else f"{value / 1e6:.3g} M"
        suffix = f" ({backend})" if objective["metric"] in (*ENERGY_METRICS, "latency") else ""
        parts.append(f"{objective['name']}={shown} {unit}{suffix}".rstrip())
    status = "  INFEASIBLE: " + "; ".join(attrs.get(record.VIOLATIONS, [])) if attrs.get(record.INFEASIBLE) else ""
    if record.LEFT_TO in attrs:
        return f"{head}  left to trial {attrs[record.LEFT_TO]}, which is measuring this point (not measured twice, not charged)"
    if trial.state == TrialState.PRUNED:
        return f"{head}  STOPPED EARLY: {attrs.get(record.EARLY_STOP, 'no reason recorded')}" + (
            f"  (repeats trial {attrs[record.DUPLICATE_OF]}; not charged)" if record.DUPLICATE_OF in attrs else "")
    if record.DUPLICATE_OF in attrs:
        status += f"  (repeats trial {attrs[record.DUPLICATE_OF]}; not measured again, not charged)"
    front = sum(record.DUPLICATE_OF not in t.user_attrs for t in study.best_trials)
    return f"{head}  {'  '.join(parts)}  front: {front}{status}"


def _callbacks(config: SearchConfig, tag: str = "") -> tuple[list[Callable], Callable[[], None]]:
    bar = None
    if config.progress and config.workers == 1 and config.trials:
        from tqdm.auto import tqdm
        bar = tqdm(total=config.trials, unit="trial", desc="search", file=sys.stderr, dynamic_ncols=True)

    def report(study: optuna.Study, trial: FrozenTrial) -> None:
        line = tag + trial_line(study, trial, study.user_attrs.get(record.OBJECTIVES, []))
        if bar is not None:
            bar.write(line, file=sys.stderr)
            bar.update(0 if record.DUPLICATE_OF in trial.user_attrs else 1)  # a repeat is not charged
        else:
            note(line)

    return [report], (bar.close if bar is not None else (lambda: None))


class _QuietFailures(logging.Filter):
    """Drops Optuna's own "Trial N failed ..." records (with their traceback): the search prints one
    line per failed trial with its reason. ``e2gcsearch --debug`` keeps them."""

    def filter(self, log: logging.LogRecord) -> bool:
        return debugging() or not (str(log.msg).startswith("Trial ") and " failed" in str(log.msg))


def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logger = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, _QuietFailures) for f in logger.filters):
        logger.addFilter(_QuietFailures())


class _TaggedRunner:
    """The objective: the trial runner, with the trial's settings and its process recorded on it."""

    def __init__(self, runner: TrialRunner, run_id: str) -> None:
        self.runner, self.run_id = runner, run_id
        settings = runner.settings
        self.settings = trial_settings(settings.train if settings.needs_training else None, settings.profile)

    def _tag(self, trial: Any) -> None:
        trial.set_user_attr(record.WORKER, worker_tag(self.run_id))
        trial.set_user_attr(record.SETTINGS, self.settings)

    def __call__(self, trial: Any) -> list[float]:
        self._tag(trial)
        try:
            return self.runner(trial)
        finally:
            self._tag(trial)  # a repeated point copies its twin's attrs: these are this trial's own


def _optimize(study: optuna.Study, runner: TrialRunner, config: SearchConfig, trials: int | None,
              run_id: str, tag: str = "", worker: int = 0) -> None:
    """Run trials until ``trials`` of them measured a new point (see :mod:`.budget`), or the timeout."""
    budget = NewPoints(config.settings.space, trials, runner.data.num_classes,
                       sampler_seed(config.seed, len(study.trials), worker), study, lambda line: note(tag + line))
    if budget.quota == 0:
        return
    callbacks, close = _callbacks(dataclasses.replace(config, trials=budget.quota), tag)
    _quiet_optuna()
    try:
        study.optimize(_TaggedRunner(runner, run_id), n_trials=None, timeout=config.timeout_s,
                       catch=(Exception,), callbacks=[*callbacks, budget])
    except AssertionError as exc:  # Optuna raises "Should not reach" over a trial's failed last write (optuna#5986)
        if exc.__context__ is None:
            raise
        raise storage_failure(exc.__context__, config.storage) from None
    except Exception as exc:
        failure = storage_failure(exc, config.storage)
        if failure is exc:
            raise
        raise failure from None
    finally:
        close()


def _worker(config: SearchConfig, index: int, quota: int | None, run_id: str, device: str | None) -> None:
    """Entry point of one worker process (``--workers N``); Ctrl-C or SIGTERM (which the parent forwards)
    fails its running trial and ends it quietly (the parent says so and queues the point again)."""
    try:
        with sigterm_as_interrupt():
            _work(config, index, quota, run_id, device)
    except KeyboardInterrupt:
        pass


def _work(config: SearchConfig, index: int, quota: int | None, run_id: str, device: str | None) -> None:
    config = _on_device(config, device)
    data = load_data(config.data, progress=False)
    storage = open_search_storage(config.storage)
    study = optuna.load_study(study_name=config.study_name, storage=storage,
                              sampler=create_sampler(config.sampler, sampler_seed(config.seed, 0, index),
                                                     config.settings.space, config.trials))
    study.sampler = create_sampler(config.sampler, sampler_seed(config.seed, len(study.trials), index),
                                   config.settings.space, config.trials)
    _optimize(study, TrialRunner(config.settings, data), config, quota, run_id, tag=f"[worker {index}] ",
              worker=index)


def quotas(trials: int | None, workers: int) -> list[int | None]:
    """Trials per worker process: ``trials`` split as evenly as possible (``None``: no limit).

    >>> quotas(5, 2), quotas(1, 3), quotas(None, 2)
    ([3, 2], [1, 0, 0], [None, None])
    """
    if trials is None:
        return [None] * workers
    return [trials // workers + (index < trials % workers) for index in range(workers)]


def _run_workers(config: SearchConfig, run_id: str, study: optuna.Study) -> None:
    """Start the workers and wait for them; a worker killed by a signal (``kill -9``, the OOM killer) is
    replaced by one that runs the trials left of its share, up to ``workers`` times in a run."""
    context = multiprocessing.get_context("spawn")
    devices = worker_devices(config.settings.profile.device, config.workers, config.devices,
                             config.share_devices) or [None] * config.workers
    running: dict[Any, tuple[int, int | None]] = {}

    def start(index: int, quota: int | None) -> None:
        process = context.Process(target=_worker, args=(config, index, quota, run_id, devices[index]), daemon=False)
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
                    note(f"[worker {index}] process {process.pid} was killed (signal {-process.exitcode}); "
                         + (f"a new process runs the {left} trial(s) left of its share" if left != 0 else
                            "its share was done"))
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


def _on_device(config: SearchConfig, device: str | None) -> SearchConfig:
    """``config`` with its measurements and training on ``device`` (``None``: unchanged)."""
    if device is None:
        return config
    settings = config.settings
    settings = dataclasses.replace(settings, profile=dataclasses.replace(settings.profile, device=device),
                                   train=dataclasses.replace(settings.train, device=device))
    return dataclasses.replace(config, settings=settings)


def _split_cores(config: SearchConfig) -> SearchConfig:
    """With several workers, ``--threads auto`` gives each worker its share of the cores."""
    train = config.settings.train
    if config.workers == 1 or train.threads != AUTO:
        return config
    cores, share = len(usable_cores()), worker_threads(config.workers)
    note(f"threads: {config.workers} workers on {cores} core(s), {share} thread(s) each (--threads N overrides)")
    settings = dataclasses.replace(config.settings, train=dataclasses.replace(train, threads=share))
    return dataclasses.replace(config, settings=settings)


def prepare(config: SearchConfig) -> tuple[optuna.Study, LoadedData]:
    """Check, load the data, open or resume the study and queue the baselines (no trial runs yet)."""
    study, data, _ = _prepare(config)
    return study, data


def _prepare(config: SearchConfig) -> tuple[optuna.Study, LoadedData, SearchConfig]:
    """:func:`prepare`, also returning ``config`` with ``--threads auto`` resolved. Nothing is written to
    the storage before every pre-flight check has passed."""
    check_storage_for_workers(config.storage, config.workers)
    if config.warm_start_profile:  # read first: a bad file costs no work and leaves no study behind
        from ..energy_model import DeviceProfile

        given = DeviceProfile.load(config.warm_start_profile)
    else:
        given = None
    devices = worker_devices(config.settings.profile.device, config.workers, config.devices, config.share_devices)
    if config.workers == 1 and devices:
        config = _on_device(config, devices[0])
    config = _split_cores(config)
    _quiet_optuna()  # one line per trial is ours to print
    settings = config.settings
    check_places(config.storage, config.data, settings.profile, settings.train)
    data = load_data(config.data, progress=config.progress)
    space = settings.space
    impossible = space.impossible(data.num_classes)
    if not space.buildable(impossible):
        raise ConfigError(f"no point of the search space can be built: {impossible[0][1]}")
    for arch_config, reason in impossible:
        note(f"note: {arch_config.label()} cannot be built and will fail at once if sampled: {reason}")
    profile = dataclasses.replace(settings.profile, batch_sizes=settings.batch_sizes)
    keep = (cost_feasible(settings.constraints, profile.resolution)
            if cost_constraints(settings.constraints) else None)
    if keep is not None:
        check_cost_constraints(space, settings.constraints, profile.resolution, data.num_classes, keep,
                               [arch_config for arch_config, _ in impossible])
    train = check_networks(space, data, profile, settings.train if settings.needs_training else None, note)
    if train is not None:
        settings = dataclasses.replace(settings, train=train)
        config = dataclasses.replace(config, settings=settings)
    fingerprint = study_fingerprint(train, profile, data.name, device_fingerprint_of(profile))
    storage = open_search_storage(config.storage)
    sampler = create_sampler(config.sampler, config.seed, space, config.trials)
    study = open_or_create_study(storage, config.study_name, settings.objectives, space,
                                 data_key(data), sampler, config.storage, fingerprint)
    study.sampler = create_sampler(config.sampler, sampler_seed(config.seed, len(study.trials)), space, config.trials)
    for line in fail_lost_trials(study):
        note(line)
    if config.baselines:
        for line in enqueue_baselines(study, space, data.num_classes, keep):
            note(line)
    if config.warm_start in ("model", "auto"):
        on_device = _on_device(config, devices[0]).settings.profile if devices else settings.profile  # a worker's GPU
        warm_start_study(study, space, data.num_classes, on_device, config.warm_start, given,
                         say=note, keep=keep)
    return study, data, config


def data_key(data: LoadedData) -> dict[str, Any]:
    """The parts of the dataset description that make top-1 figures comparable."""
    description = data.description()
    keep = ("dataset", "classes", "resolution", "seed", "train_size", "val_size")
    return {key: description[key] for key in keep if key in description}


@dataclasses.dataclass
class SearchOutcome:
    """A finished ``run``: the study and the trials this invocation ran (by number)."""

    study: optuna.Study
    ran: list[FrozenTrial]

    def failure_summary(self) -> list[str]:
        """One line per distinct reason when every trial of this run failed (else nothing)."""
        if not self.ran or any(t.state != TrialState.FAIL for t in self.ran):
            return []
        reasons = Counter((t.user_attrs.get(record.FAIL_REASON) or "no reason recorded").splitlines()[0][:300]
                          for t in self.ran)
        return [f"all {len(self.ran)} trial(s) of this run failed:"] + [
            f"  {count} x {reason}" for reason, count in reasons.most_common()]


def run_search(config: SearchConfig) -> optuna.Study:
    """Run (or resume) the search described by ``config`` and return the study."""
    return search(config).study


def search(config: SearchConfig) -> SearchOutcome:
    """Run (or resume) the search described by ``config``; also says which trials this run ran."""
    study, data, config = _prepare(config)
    run_id = new_run_id()
    config = _fit_budget(config, study, data.num_classes)
    done_before = sum(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False))
    note(f"study {config.study_name!r} in {redact(config.storage)}: {done_before} trial(s) so far; "
         f"sampler {config.sampler}, {'unlimited' if config.trials is None else config.trials} new point(s) to run"
         + (f", timeout {config.timeout_s:g} s" if config.timeout_s else "")
         + (f", {config.workers} workers" if config.workers > 1 else ""))
    start = time.perf_counter()
    try:
        with sigterm_as_interrupt():
            if config.workers > 1:
                _run_workers(config, run_id, study)
            else:
                _optimize(study, TrialRunner(config.settings, data), config, config.trials, run_id)
    except KeyboardInterrupt as exc:
        queued = requeue_interrupted(study, run_id)
        finished = sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
        how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        raise SearchInterrupted(
            f"{how}: {queued} running trial(s) marked failed and their point(s) queued again, {finished} finished "
            f"trial(s) kept in {redact(config.storage)}; run the same command again to resume",
            143 if isinstance(exc, Terminated) else 130) from None
    ran = [t for t in study.get_trials(deepcopy=False)
           if (t.user_attrs.get(record.WORKER) or {}).get("run") == run_id]
    left = sum(record.LEFT_TO in t.user_attrs for t in ran)
    repeats = sum(record.DUPLICATE_OF in t.user_attrs for t in ran) - left
    unbuilt = sum(failed_unmeasured(t) for t in ran)
    stopped = sum(t.state == TrialState.PRUNED and record.DUPLICATE_OF not in t.user_attrs for t in ran)
    note(f"ran {len(ran) - repeats - left - unbuilt} new point(s) in {time.perf_counter() - start:.0f} s"
         + (f" ({stopped} stopped early)" if stopped else "")
         + (f"; {repeats} proposal(s) repeated a measured point and were answered from the study, "
            "not charged" if repeats else "")
         + (f"; {left} proposal(s) drew a point another worker was measuring and left it to that worker, "
            "not charged" if left else "")
         + (f"; {unbuilt} proposal(s) failed before measuring (see the FAILED lines), not charged"
            if unbuilt else ""))
    return SearchOutcome(study, ran)


def _fit_budget(config: SearchConfig, study: optuna.Study, num_classes: int) -> SearchConfig:
    """``config`` with ``trials`` cut to the unmeasured points left in the space, saying so."""
    left = NewPoints(config.settings.space, config.trials, num_classes, study=study).quota
    if left is not None and (config.trials is None or left < config.trials):
        if left == 0:
            note(f"every point of the space ({config.settings.space.size}) is measured already; nothing to run "
                 "(widen the space, or start a new study with --study NAME)")
        else:
            note(f"only {left} unmeasured point(s) remain in the space of {config.settings.space.size}; "
                 f"measuring them all" + (f" instead of {config.trials}" if config.trials else ""))
        config = dataclasses.replace(config, trials=left)
    return config
