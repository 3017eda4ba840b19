"""What a finished trial stores, and how it is read back.

Every trial of an e2gcsearch study keeps, in its Optuna user attrs, everything a later reader needs
(``front``, ``export``, ``validate``, ``model fit``) without re-running anything. This module is the
one place that writes and reads those keys.

User attrs of a trial:
    arch_config        ArchConfig as a dict (rebuilds the exact network)
    params, macs       raw integer counts (cost model conventions) at the search resolution
    resolution         input size the costs, EPF and training used
    epf                {"<B>": {"epf_mj", "epf_std_mj", "cv", "latency_ms", "latency_std_ms", "repeats",
                        "throughput_ips", "status", "measured_at"}}: means over ``repeats`` windows, their
                        spread, and the UTC minute of each sitting; and, where the load of other
                        processes was read, "under_load" (a kept window was over the threshold: the
                        figure could only be taken under load), "foreign_load" (the worst window's,
                        None: unknown), "foreign_load_unit" ("busy cores", "% GPU") and "load_retries"
                        (windows measured again); absent on figures from before it was recorded
    epf_infer          the same figures for inference (forward only, eval mode), at the batch sizes of the
                       epf_infer objectives and constraints; absent when none asks for it
    energy_backend     meter that produced every EPF figure ("estimate", "rapl", "nvml")
    energy_is_estimate True when the figures are time x power-model estimates, not measurements
    latency_ms         latency per batch at the reference batch size
    fingerprint        device fingerprint of the profiler
    top1, top5         proxy top-1 / top-5 in percent, the mean over the seeds (None when training was skipped)
    top1_seeds         proxy top-1 of each training seed (``--proxy-seeds K``)
    val_size           validation images the top-1 was measured on (for its binomial interval)
    top1_correct       which validation images each seed's final proxy model got right: {"order": digest
                       of the validation images in the order judged, "n": images, "seeds": [packed
                       bitset per seed]} (e2gcsearch.paired); absent on trials from before it was recorded
    top1_low, top1_high  the trial's own 95 % interval of top1 when it finished (front recomputes it
                       with the seed noise pooled over the study)
    loss_curve         proxy training loss per epoch
    flgc_structure     FLGC: the groups its proxy training learned (first seed), per grouped layer
                       {"<layer>": {"in": [group of each input channel], "out": [group of each filter]}};
                       sorting channels by group gives the permutation deployment folds into the 1x1 convs
    top1_curve         proxy top-1 (%) after each epoch (of the first seed); partial when stopped early
    train_status       "ok", "non-finite loss", "skipped (infeasible)" or "stopped early"
    early_stop         why the trial was stopped early (PRUNED trials; see search/early_stop.py)
    halving            the rungs of successive halving the trial passed, each with its entry (known
                       objectives, top-1), Pareto position and whether it went on (search/halving.py);
                       rung "0", before training, holds the training-free score and its name instead of top-1
    data               dataset + subset description
    wall_s             {"cost", "profile", "train"} seconds per phase
    device_lock        {"waited_s", "paused_s"}: seconds the measurement waited for other processes of
                       the host to leave the device, and seconds the training stood aside for theirs
    infeasible         True when a constraint is violated
    violations         human-readable violated constraints, e.g. ["params<=5e6 (got 1.2e7)"]
    baseline           the paper baseline this trial reproduces ("MobileNet-V1 G=1"), or absent
    drawn_unmeasured   True on a point drawn from the unmeasured ones after the sampler kept
                       proposing measured points (see search/budget.py)
    fail_reason        why a FAIL trial failed (exception type and message)
    duplicate_of       number of the earlier trial of the same point whose results this trial repeats
                       (a sampler may propose a point of a discrete space again; such a trial is told
                       the known result, is not charged to --trials and is not shown by front)
    settings           {"train": ..., "profile": ...}: the settings the trial ran with (threads resolved)
    spent              [{"kind": "measurement" | "training", "energy_j", "time_s", "backend", "is_estimate",
                         "label", "cached", "error"}]: every phase of work the trial ran, metered whole by
                       the backend of its EPF (e2gcsearch.energy.spend); [] when it ran none, absent on
                       trials from before it was recorded; a repeat of a measured point has none
    worker             {"run", "host", "pid"} of the process that ran it (finds trials of lost workers)

User attrs of the study (written once by ``run``):
    objectives         [{"name": "epf@16", "metric": "epf", "batch_size": 16,
                         "direction": "minimize", "unit": "mJ/frame"},
                        {"name": "top1", "metric": "top1", "batch_size": None,
                         "direction": "maximize", "unit": "%"}]
                       (the same names are set with ``study.set_metric_names``)
    space              the search space description (must match to resume)
    data               dataset description of the proxy training (must match to resume)
    training, profiling, device
                       proxy training settings, measurement protocol and device fingerprint (must
                       match to resume; see store/fingerprint.py)
    e2gcsearch_version version that created the study
    full:trial-<n>     full-training result of trial n written by ``validate`` (finished trials are
                       immutable in Optuna, so it lives on the study; see validate.full_result)
    spent:<what>:<tag> the phases of work that belong to no trial, as a trial's ``spent``: the energy
                       model's calibration (``spent:calibration:<run>``) and validate's full trainings
                       and measurements (``spent:validate:<run>:trial-<n>``), confirm's extra seeds
                       and windows (``spent:confirm:<run>``) and run's inference EPF for break-even
                       (``spent:inference:<run>``); one key per writer, so concurrent writers never
                       overwrite each other
    confirm:trial-<n>  more measurements of trial n written by ``confirm``: {"epf": {"<B>": figures
                       pooled over every window so far}, "top1_seeds": [every seed so far],
                       "top1_correct": the per-image results of confirm's seeds (as a trial's)}; readers
                       use these pooled figures instead of the trial's own
    epf_infer:trial-<n> inference EPF of trial n measured by ``run`` after the search for the front's
                       break-even column ({"<B>": figures}, as a trial's ``epf_infer``), when the trial
                       measured none; readers add it to the trial's own
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..config import ArchConfig, field_names
from ..metrics import Metric
from ..paired import PerImage
from ..stats import SeedNoise, SittingNoise, Summary, accuracy_interval, with_sitting_noise

# Trial user attrs read or written outside this module (the rest go through TrialRecord / user_attrs).
ARCH_CONFIG = "arch_config"
PARAMS = "params"  # the network's parameter count: set once the trial has measured its cost
EPF = "epf"
EPF_INFER = "epf_infer"
UNDER_LOAD = "under_load"  # in a batch size's EPF figures: measured under other processes' load
ENERGY_BACKEND = "energy_backend"
TOP1 = "top1"
TOP1_SEEDS = "top1_seeds"
TOP1_CURVE = "top1_curve"
TOP1_CORRECT = "top1_correct"  # per-image results of every seed (e2gcsearch.paired.PerImage.to_dict)
EARLY_STOP = "early_stop"
HALVING = "halving"  # {"<epoch>": {known, top1 | score + score_name, position, of, promoted}} (search/halving.py)
TOP1_SEED_IDS = "top1_seed_ids"  # in a confirm attr: the training seed of every entry of top1_seeds
INFEASIBLE = "infeasible"
VIOLATIONS = "violations"
FAIL_REASON = "fail_reason"
DUPLICATE_OF = "duplicate_of"
LEFT_TO = "left_to"  # with DUPLICATE_OF: the point was being measured by that trial, so this one left it (PRUNED)
BASELINE = "baseline"
WARM_START = "warm_start"  # set on points queued by the energy model
FLGC_STRUCTURE = "flgc_structure"
DRAWN = "drawn_unmeasured"  # set on points queued because the sampler kept proposing measured ones
SPENT = "spent"  # the energy and time of every phase of work the trial ran (see the module docstring)
# Study user attrs.
OBJECTIVES = "objectives"
SPACE = "space"
DATA = "data"
VERSION = "e2gcsearch_version"
FULL = "full"  # prefix of the study attrs holding validate's results
CONFIRM = "confirm"  # prefix of the study attrs holding confirm's pooled measurements
SPENT_PREFIX = f"{SPENT}:"  # study attrs holding work that belongs to no trial (calibration, validate)
# Optuna's own system attrs that e2gcsearch reads.
METRIC_NAMES = "study:metric_names"  # where Study.set_metric_names keeps the names (study)
FIXED_PARAMS = "fixed_params"  # the parameters of an enqueued trial that has not run yet (trial)
# The study fingerprint beyond objectives/space/data (study attrs; each must match to resume), and
# what each trial ran with (trial attrs).
TRAINING = "training"  # proxy training: epochs, batch size, lr, schedule, augmentation, seed, ...
PROFILING = "profiling"  # measurement protocol: batch sizes, resolution, dtype, layout, windows, meter
DEVICE = "device"  # device fingerprint of the measurements (model, driver, torch, threads, meter)
SETTINGS = "settings"  # trial: {"train": ..., "profile": ...} as the trial ran them (threads resolved)
WORKER = "worker"  # trial: {"run", "host", "pid"} of the process running it (finds lost workers)
RETRY_OF = "retry_of"  # trial system attr: the number of the lost trial whose point this one runs again


@dataclasses.dataclass
class TrialRecord:
    """A trial's stored results, typed. Missing values are ``None``."""

    number: int
    state: str
    arch_config: ArchConfig
    values: tuple[float, ...] | None
    params: int | None = None
    macs: int | None = None
    resolution: int | None = None
    epf: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    epf_infer: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    energy_backend: str | None = None
    energy_is_estimate: bool | None = None
    latency_ms: float | None = None
    fingerprint: dict[str, Any] = dataclasses.field(default_factory=dict)
    top1: float | None = None
    top5: float | None = None
    top1_seeds: list[float] = dataclasses.field(default_factory=list)
    top1_correct: dict[str, Any] | None = None
    val_size: int | None = None
    top1_low: float | None = None
    top1_high: float | None = None
    loss_curve: list[float] = dataclasses.field(default_factory=list)
    top1_curve: list[float] = dataclasses.field(default_factory=list)
    train_status: str | None = None
    flgc_structure: dict[str, Any] | None = None
    early_stop: str | None = None
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    wall_s: dict[str, float] = dataclasses.field(default_factory=dict)
    device_lock: dict[str, float] = dataclasses.field(default_factory=dict)
    infeasible: bool = False
    violations: list[str] = dataclasses.field(default_factory=list)
    baseline: str | None = None
    fail_reason: str | None = None

    @classmethod
    def from_trial(cls, trial: Any) -> TrialRecord:
        """Read a :class:`optuna.trial.FrozenTrial` of an e2gcsearch study."""
        attrs = dict(trial.user_attrs)
        arch_config = ArchConfig.from_dict(attrs.pop(ARCH_CONFIG))
        epf = {int(batch): dict(figures) for batch, figures in attrs.pop(EPF, {}).items()}
        epf_infer = {int(batch): dict(figures) for batch, figures in attrs.pop(EPF_INFER, {}).items()}
        known = field_names(cls)
        extra = {key: value for key, value in attrs.items() if key in known}
        values = tuple(trial.values) if trial.values is not None else None
        return cls(
            number=trial.number,
            state=trial.state.name,
            arch_config=arch_config,
            values=values,
            epf=epf,
            epf_infer=epf_infer,
            **extra,
        )

    def figures(self, metric: Metric) -> dict[str, Any] | None:
        """The stored figures of a per-batch metric (``epf``/``latency``: the training step's,
        ``epf_infer``: inference's) at its batch size, or ``None``."""
        measured = self.epf_infer if metric.metric == EPF_INFER else self.epf
        return measured.get(metric.batch_size) if metric.batch_size else None

    def measured_at(self, metric: Metric) -> list[str] | None:
        """The UTC minutes of the sittings behind a measured per-batch metric (``None``: not recorded,
        or not measured)."""
        figures = self.figures(metric)
        return list(figures["measured_at"]) if figures and figures.get("measured_at") else None

    def under_load(self) -> dict[str, dict[str, Any]]:
        """The EPF figures that could only be taken under other processes' load, by name
        (``{"EPF@16": figures}``, ``EPF-infer@B`` for inference); ``{}`` when none was."""
        measured = (("EPF", self.epf), ("EPF-infer", self.epf_infer))
        return {
            f"{name}@{batch}": figures
            for name, by_batch in measured
            for batch, figures in sorted(by_batch.items())
            if figures.get(UNDER_LOAD)
        }

    def epf_mj(self, batch_size: int) -> float | None:
        figures = self.epf.get(batch_size)
        return None if not figures or figures.get("status", "ok") != "ok" else figures.get("epf_mj")

    def top1_values(self) -> list[float]:
        """Top-1 of every training seed (a trial from before ``top1_seeds`` was recorded has one)."""
        return list(self.top1_seeds) or ([] if self.top1 is None else [self.top1])

    def per_image(self) -> PerImage | None:
        """Which validation images each seed got right (``None`` for a trial from before it was recorded)."""
        return PerImage.from_dict(self.top1_correct)

    def validation_images(self) -> int | None:
        return self.val_size or self.data.get("val_size")

    def summary(self, metric: Metric) -> Summary | None:
        """A measured metric's windows or seeds as a summary (``None`` for exact or missing figures)."""
        if metric.metric == "top1" and not self.infeasible:
            values = self.top1_values()
            return Summary.of(values) if values else None
        figures = self.figures(metric)
        if metric.metric not in ("epf", EPF_INFER, "latency") or not figures or figures.get("status", "ok") != "ok":
            return None
        prefix = "latency_ms" if metric.metric == "latency" else "epf_mj"
        spread = figures.get("latency_std_ms" if metric.metric == "latency" else "epf_std_mj") or 0.0
        return Summary(int(figures.get("repeats") or 0), float(figures[prefix]), float(spread))  # 0: not recorded

    def interval(
        self, metric: Metric, value: float, seed_noise: SeedNoise | None = None, sitting: SittingNoise | None = None
    ) -> tuple[float, float]:
        """The 95 % interval of ``metric`` around ``value`` (see :mod:`e2gcsearch.stats`): over the
        windows for EPF and latency (EPF widened by the study's noise between sittings, when known),
        binomial and seeds for top-1, exact for counts."""
        summary = self.summary(metric)
        if summary is None:
            return value, value
        if metric.metric == "top1":
            if not self.validation_images():
                return value, value
            interval = accuracy_interval(self.top1_values(), self.validation_images(), seed_noise)
            return max(0.0, value - (interval.mean - interval.low)), min(100.0, value + (interval.high - interval.mean))
        half = summary.half_width()
        return with_sitting_noise(value - half, value + half, value, sitting if metric.metric == "epf" else None)

    def with_confirmation(self, confirmed: dict[str, Any]) -> TrialRecord:
        """This record with the pooled figures ``confirm`` stored for it (see the module docstring)."""
        epf = dict(self.epf)
        epf.update({int(batch): dict(figures) for batch, figures in confirmed.get(EPF, {}).items()})
        seeds = [float(v) for v in confirmed.get(TOP1_SEEDS, [])] or self.top1_seeds
        top1 = sum(seeds) / len(seeds) if seeds else self.top1
        per_image, more = self.per_image(), PerImage.from_dict(confirmed.get(TOP1_CORRECT))
        if per_image is not None and more is not None and len(per_image.seeds) + len(more.seeds) == len(seeds):
            correct = per_image.extended(more).to_dict()  # every seed's images, in the order of top1_seeds
        else:  # confirm's seeds without theirs (an older confirm): the pooled top-1 has no per-image twin
            correct = self.top1_correct if len(seeds) == len(self.top1_seeds) else None
        return dataclasses.replace(self, epf=epf, top1_seeds=list(seeds), top1=top1, top1_correct=correct)


def full_key(number: int) -> str:
    """Study attr holding the full-training result of trial ``number`` (written by ``validate``)."""
    return f"{FULL}:trial-{number}"


def spent_key(what: str, tag: str) -> str:
    """Study attr holding the phases of work ``what`` (``calibration``, ``validate``) of one writer ``tag``."""
    return f"{SPENT_PREFIX}{what}:{tag}"


def confirm_key(number: int) -> str:
    """Study attr holding ``confirm``'s pooled measurements of trial ``number``."""
    return f"{CONFIRM}:trial-{number}"


def inference_key(number: int) -> str:
    """Study attr holding the inference EPF ``run`` measured of trial ``number`` after the search."""
    return f"{EPF_INFER}:trial-{number}"


def inference(study_attrs: dict[str, Any], number: int) -> dict[int, dict[str, Any]]:
    """The inference EPF measured of trial ``number`` after the search, by batch size (``{}`` when none)."""
    return {int(batch): dict(figures) for batch, figures in (study_attrs.get(inference_key(number)) or {}).items()}


def confirmation(study: Any, number: int, study_attrs: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``confirm`` measured for trial ``number`` so far (``{}`` when nothing); pass
    ``study_attrs`` (``study.user_attrs``, one storage read) when reading many trials."""
    attrs = study.user_attrs if study_attrs is None else study_attrs
    return attrs.get(confirm_key(number)) or {}


def full_result(study: Any, number: int) -> dict[str, Any]:
    """The stored full-training result of trial ``number`` (``{}`` when it was never validated)."""
    return study.user_attrs.get(full_key(number)) or {}


def user_attrs(**fields: Any) -> dict[str, Any]:
    """Attrs ready for ``trial.set_user_attr`` (ArchConfig → dict, batch sizes → string keys)."""
    out = {}
    for key, value in fields.items():
        if isinstance(value, ArchConfig):
            value = value.to_dict()
        if key in (EPF, EPF_INFER):
            value = {str(batch): figures for batch, figures in value.items()}
        out[key] = value
    return out
