"""``run_search``: load the data once, open or resume the study, queue the baselines, optimize.

Progress goes to stderr: a bar with ETA, and one line per finished trial (config, objectives,
front size). With ``workers > 1`` the same study is optimized by that many processes, each with its
own sampler seed and its share of the trial budget (a queued baseline is one of those trials), its
share of the CPU cores and, on GPUs, its own device; a worker killed mid-search is replaced for the
rest of its share (its trial is failed and retried by the heartbeat, or at once on a journal file).

Before the study is created or resumed, :mod:`.preflight` tries everything a trial needs once; a
resumed study continues its sampler's stream rather than repeating it, and the trials of a worker
that died are failed with that reason (:mod:`e2gcsearch.store.lost`).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..console import note
from ..data import LoadedData
from ..devices import worker_devices
from ..store import record
from ..store.lost import Terminated, new_run_id, requeue_interrupted, sigterm_as_interrupt
from ..store.storage import check_storage_for_workers, redact
from ..train.threads import AUTO, usable_cores, worker_threads
from .budget import NewPoints, failed_unmeasured
from .loop import on_device, optimize, quiet_optuna
from .preflight import check_search
from .search_config import SearchConfig
from .study import enqueue_baselines, open_search_study
from .trial import TrialRunner, TrialSettings
from .warm_start import warm_start_study
from .workers import run_workers


class SearchInterrupted(Exception):
    """Ctrl-C or SIGTERM: the running trials were failed and their points queued again; finished trials
    are kept. ``exit_status`` is 130 for Ctrl-C, 143 for SIGTERM (128 + the signal)."""

    def __init__(self, message: str, exit_status: int = 130) -> None:
        super().__init__(message)
        self.exit_status = exit_status


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
    """:func:`prepare`, also returning ``config`` as resolved: each worker's device, ``--threads auto``.
    Nothing is written to the storage before every pre-flight check has passed.

    The path of a run's config, each room entered once: the storage rules (may these workers share
    it?), the devices (resolved here, once, into ``config.placed``), pre-flight (data, networks,
    threads, fingerprint), the study (storage, sampler, resume check, lost workers, baselines), the
    warm start."""
    check_storage_for_workers(config.storage, config.workers)
    if config.warm_start_profile:  # read first: a bad file costs no work and leaves no study behind
        from ..energy_model import DeviceProfile

        given = DeviceProfile.load(config.warm_start_profile)
    else:
        given = None
    config = _split_cores(_place(config))
    quiet_optuna()  # one line per trial is ours to print
    checked = check_search(config.storage, config.data, config.settings, note, config.progress)
    config = dataclasses.replace(config, settings=checked.settings)
    settings, data, space = checked.settings, checked.data, checked.settings.space
    study = open_search_study(config, space, data_key(data), checked.fingerprint)
    if config.baselines:
        for line in enqueue_baselines(study, space, data.num_classes, checked.keep):
            note(line)
    if config.warm_start in ("model", "auto"):
        measuring = on_device(config, config.placed[0]).settings.profile if config.placed else settings.profile
        warm_start_study(
            study, space, data.num_classes, measuring, config.warm_start, given, say=note, keep=checked.keep
        )
    return study, data, config


def _place(config: SearchConfig) -> SearchConfig:
    """The devices, resolved once: each worker's in ``placed``; a single process's settings move onto it."""
    devices = worker_devices(config.settings.profile.device, config.workers, config.devices, config.share_devices)
    if not devices:
        return config
    config = dataclasses.replace(config, placed=tuple(devices))
    return on_device(config, devices[0]) if config.workers == 1 else config


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
    settings: TrialSettings | None = None  # as the trials ran them (threads and devices resolved)
    data: LoadedData | None = None  # the data they trained on

    def failure_summary(self) -> list[str]:
        """One line per distinct reason when every trial of this run failed (else nothing)."""
        if not self.ran or any(t.state != TrialState.FAIL for t in self.ran):
            return []
        reasons = Counter(
            (t.user_attrs.get(record.FAIL_REASON) or "no reason recorded").splitlines()[0][:300] for t in self.ran
        )
        return [f"all {len(self.ran)} trial(s) of this run failed:"] + [
            f"  {count} x {reason}" for reason, count in reasons.most_common()
        ]


def run_search(config: SearchConfig) -> optuna.Study:
    """Run (or resume) the search described by ``config`` and return the study."""
    return search(config).study


def search(config: SearchConfig) -> SearchOutcome:
    """Run (or resume) the search described by ``config``; also says which trials this run ran."""
    study, data, config = _prepare(config)
    run_id = new_run_id()
    config = _fit_budget(config, study, data.num_classes)
    done_before = sum(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False))
    note(
        f"study {config.study_name!r} in {redact(config.storage)}: {done_before} trial(s) so far; "
        f"sampler {config.sampler}, {'unlimited' if config.trials is None else config.trials} new point(s) to run"
        + (f", timeout {config.timeout_s:g} s" if config.timeout_s else "")
        + (f", {config.workers} workers" if config.workers > 1 else "")
    )
    start = time.perf_counter()
    try:
        with sigterm_as_interrupt():
            if config.workers > 1:
                run_workers(config, run_id, study)
            else:
                optimize(study, TrialRunner(config.settings, data), config, config.trials, run_id)
    except KeyboardInterrupt as exc:
        queued = requeue_interrupted(study, run_id)
        finished = sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
        how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        raise SearchInterrupted(
            f"{how}: {queued} running trial(s) marked failed and their point(s) queued again, {finished} finished "
            f"trial(s) kept in {redact(config.storage)}; run the same command again to resume",
            143 if isinstance(exc, Terminated) else 130,
        ) from None
    ran = [t for t in study.get_trials(deepcopy=False) if (t.user_attrs.get(record.WORKER) or {}).get("run") == run_id]
    left = sum(record.LEFT_TO in t.user_attrs for t in ran)
    repeats = sum(record.DUPLICATE_OF in t.user_attrs for t in ran) - left
    unbuilt = sum(failed_unmeasured(t) for t in ran)
    stopped = sum(t.state == TrialState.PRUNED and record.DUPLICATE_OF not in t.user_attrs for t in ran)
    note(
        f"ran {len(ran) - repeats - left - unbuilt} new point(s) in {time.perf_counter() - start:.0f} s"
        + (f" ({stopped} stopped early)" if stopped else "")
        + (
            f"; {repeats} proposal(s) repeated a measured point and were answered from the study, not charged"
            if repeats
            else ""
        )
        + (
            f"; {left} proposal(s) drew a point another worker was measuring and left it to that worker, not charged"
            if left
            else ""
        )
        + (f"; {unbuilt} proposal(s) failed before measuring (see the FAILED lines), not charged" if unbuilt else "")
    )
    return SearchOutcome(study, ran, config.settings, data)


def _fit_budget(config: SearchConfig, study: optuna.Study, num_classes: int) -> SearchConfig:
    """``config`` with ``trials`` cut to the unmeasured points left in the space, saying so."""
    left = NewPoints(config.settings.space, config.trials, num_classes, study=study).quota
    if left is not None and (config.trials is None or left < config.trials):
        if left == 0:
            note(
                f"every point of the space ({config.settings.space.size}) is measured already; nothing to run "
                "(widen the space, or start a new study with --study NAME)"
            )
        else:
            note(
                f"only {left} unmeasured point(s) remain in the space of {config.settings.space.size}; "
                f"measuring them all" + (f" instead of {config.trials}" if config.trials else "")
            )
        config = dataclasses.replace(config, trials=left)
    return config
