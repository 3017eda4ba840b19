"""``run_search``: load the data once, open or resume the study, queue the baselines, optimize.

Progress goes to stderr: a bar with ETA, and one line per finished trial (config, objectives,
front size). With ``workers > 1`` the same study is optimized by that many processes, each with its
own sampler seed, until the trial budget counted over all of them is reached.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import sys
import time
from typing import Any, Callable

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from ..console import note
from ..data import DataConfig, LoadedData, load_data
from . import record
from .storage import redact
from .study import check_storage_for_workers, create_sampler, enqueue_baselines, open_or_create_study, open_search_storage
from .trial import TrialRunner, TrialSettings

DEFAULT_TRIALS = 16  # one 'run' on the embedded digits: about 5 minutes on 2 cores


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
    progress: bool = True
    warm_start: str | None = None  # "model": queue the energy model's predicted best points
    warm_start_profile: str | None = None  # device profile JSON (default: calibrate or reuse the cached one)


class SearchInterrupted(Exception):
    """Ctrl-C: the running trial was marked failed; finished trials are kept."""


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
        suffix = f" ({backend})" if objective["metric"] in ("epf", "latency") else ""
        parts.append(f"{objective['name']}={shown} {unit}{suffix}".rstrip())
    status = "  INFEASIBLE: " + "; ".join(attrs.get(record.VIOLATIONS, [])) if attrs.get(record.INFEASIBLE) else ""
    if record.DUPLICATE_OF in attrs:
        status += f"  (repeats trial {attrs[record.DUPLICATE_OF]}; not measured again)"
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
            bar.update(1)
        else:
            note(line)

    return [report], (bar.close if bar is not None else (lambda: None))


def _optimize(study: optuna.Study, runner: TrialRunner, config: SearchConfig,
              target_total: int | None, tag: str = "") -> None:
    callbacks, close = _callbacks(config, tag)
    if target_total is not None and config.workers > 1:
        callbacks.append(MaxTrialsCallback(target_total, states=None))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study.optimize(runner, n_trials=None if config.workers > 1 else config.trials,
                       timeout=config.timeout_s, catch=(Exception,), callbacks=callbacks)
    finally:
        close()


def _worker(config: SearchConfig, index: int, target_total: int | None) -> None:
    """Entry point of one worker process (``--workers N``)."""
    data = load_data(config.data, progress=False)
    storage = open_search_storage(config.storage)
    seed = None if config.seed is None else config.seed + index
    study = optuna.load_study(study_name=config.study_name, storage=storage,
                              sampler=create_sampler(config.sampler, seed, config.settings.space, config.trials))
    try:
        _optimize(study, TrialRunner(config.settings, data), config, target_total, tag=f"[worker {index}] ")
    except KeyboardInterrupt:
        pass


def _run_workers(config: SearchConfig, study: optuna.Study) -> None:
    target = len(study.trials) + config.trials if config.trials else None
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker, args=(config, index, target), daemon=False)
                 for index in range(config.workers)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        for process in processes:
            process.join(timeout=60)
        raise
    failed = [p.exitcode for p in processes if p.exitcode]
    if failed:
        note(f"warning: {len(failed)} worker(s) exited with an error (exit codes {failed}); see the lines above")


def prepare(config: SearchConfig) -> tuple[optuna.Study, LoadedData]:
    """Load the data, open or resume the study and queue the baselines (no trial runs yet)."""
    check_storage_for_workers(config.storage, config.workers)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours to print
    storage = open_search_storage(config.storage)  # a bad URL is reported before any data is read
    data = load_data(config.data, progress=config.progress)
    space = config.settings.space
    for arch_config, reason in space.impossible(data.num_classes):
        note(f"note: {arch_config.label()} cannot be built and will fail at once if sampled: {reason}")
    sampler = create_sampler(config.sampler, config.seed, space, config.trials)
    study = open_or_create_study(storage, config.study_name, config.settings.objectives, space,
                                 data_key(data), sampler, config.storage)
    if config.baselines:
        for label in enqueue_baselines(study, space, data.num_classes):
            note(f"queued {label}")
    if config.warm_start == "model":
        _warm_start(study, config, data.num_classes)
    return study, data


def _warm_start(study: optuna.Study, config: SearchConfig, num_classes: int) -> None:
    """Queue the optimum-group-size model's predicted best points (calibrating it first if needed)."""
    from ..energy_model import DeviceProfile, load_or_calibrate, warm_start_configs
    from .warm_start import enqueue_warm_start

    space, profile_config = config.settings.space, config.settings.profile
    if config.warm_start_profile:
        profile = DeviceProfile.load(config.warm_start_profile)
    else:
        profile = load_or_calibrate(space, num_classes, profile_config, progress=note)
    seeds = warm_start_configs(profile, space, num_classes, k=3, resolution=profile_config.resolution)
    for label in enqueue_warm_start(study, space, seeds):
        note(f"queued {label} (predicted by the energy model)")


def data_key(data: LoadedData) -> dict[str, Any]:
    """The parts of the dataset description that make top-1 figures comparable."""
    description = data.description()
    keep = ("dataset", "classes", "resolution", "seed", "train_size", "val_size")
    return {key: description[key] for key in keep if key in description}


def _started(study: optuna.Study) -> int:
    """Trials that ran or are running (queued ones are not counted)."""
    return sum(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False))


def run_search(config: SearchConfig) -> optuna.Study:
    """Run (or resume) the search described by ``config`` and return the study."""
    study, data = prepare(config)
    done_before = _started(study)
    note(f"study {config.study_name!r} in {redact(config.storage)}: {done_before} trial(s) so far; "
         f"sampler {config.sampler}, {config.trials or 'unlimited'} trial(s) to run"
         + (f", timeout {config.timeout_s:g} s" if config.timeout_s else "")
         + (f", {config.workers} workers" if config.workers > 1 else ""))
    start = time.perf_counter()
    try:
        if config.workers > 1:
            _run_workers(config, study)
        else:
            _optimize(study, TrialRunner(config.settings, data), config, None)
    except KeyboardInterrupt:
        finished = sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
        raise SearchInterrupted(
            f"interrupted: the running trial is marked failed, {finished} finished trial(s) are kept in "
            f"{redact(config.storage)}; run the same command again to resume") from None
    note(f"ran {_started(study) - done_before} trial(s) in {time.perf_counter() - start:.0f} s")
    return study
