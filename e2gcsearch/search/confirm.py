"""Confirmation: measure the contested points of a front further, until the data separate them or the
time budget is spent (``e2gcsearch confirm``, ``run --confirm S``).

Each step takes the contested pair whose intervals overlap most (see
:func:`e2gcsearch.report.contested_pairs`) and, of the objectives where the pair's intervals
overlap, the one whose interval is widest relative to its value; it then measures the trial of the
pair with the wider interval there once more:

* EPF or latency: ``windows`` more measurement windows, pooled with every window measured before
  (the profile cache keeps the pooled measurement, so precision only grows);
* top-1: one more proxy-training seed (seed ``train_seed + K`` for the K-th extra), averaged with
  the earlier seeds; the seeds' spread also tightens the study's pooled seed noise.

Finished Optuna trials are immutable, so the pooled figures are kept on the study (the
``confirm:trial-<n>`` attrs of :mod:`e2gcsearch.store.record`); ``front``, ``export`` and the plots
read them. A trial gets at most ``max_seeds`` seeds and ``max_windows`` windows: two networks that are
equally good stay tied, and confirm says so instead of measuring forever.

Every training and measurement confirm runs is metered like the search's, by the backend of the study's
EPF, and added to the study's bill (``spent:confirm:<run>``; :mod:`e2gcsearch.store.spending`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import optuna

from ..data import LoadedData
from ..devices import resolve_device
from ..energy import Ledger
from ..errors import ConfigError
from ..metrics import Metric
from ..profiling import BatchProfile, ProfileConfig, extend_measurement
from ..report import contested_pairs
from ..report.front import FrontInfo
from ..stats import wilson_interval
from ..store import record
from ..store.fingerprint import study_fingerprint
from ..store.record import TrialRecord
from ..store.results import front_info, trial_record
from ..store.spending import study_ledger
from ..train import TrainConfig
from .preflight import device_fingerprint_of
from .probes import with_seed
from .remeasure import Say, moved_line, remeasure_epf
from .run import data_key
from .study import check_comparable
from .trial import epf_figures


@dataclasses.dataclass(frozen=True)
class Step:
    """One measurement confirm made: which trial, which objective, and its figure before and after."""

    trial: int
    objective: str
    what: str  # e.g. "5 -> 10 windows" or "1 -> 2 seeds"
    before: tuple[float, float, float]  # value, low, high
    after: tuple[float, float, float]
    seconds: float


@dataclasses.dataclass(frozen=True)
class ConfirmReport:
    """What confirm did: its steps, the statuses before and after, and the pairs still contested."""

    steps: tuple[Step, ...]
    before: dict[int, str]
    after: dict[int, str]
    contested: int
    reason: str  # why it stopped
    seconds: float

    def lines(self) -> list[str]:
        """A human account: one line per step, then every status that changed, then why it stopped."""
        out = [
            f"trial {s.trial} {s.objective}: {s.what}: {_figure(s.before)} -> {_figure(s.after)} ({s.seconds:.1f} s)"
            for s in self.steps
        ]
        changed = [
            f"trial {n}: {self.before.get(n, '-')} -> {status}"
            for n, status in sorted(self.after.items())
            if self.before.get(n) != status
        ]
        out += changed or ["no trial changed status"]
        out.append(f"confirm: {len(self.steps)} measurement(s) in {self.seconds:.0f} s; {self.reason}")
        return out


def _figure(figure: tuple[float, float, float]) -> str:
    value, low, high = figure
    return f"{value:.4g} ± {(high - low) / 2:.2g}"


@dataclasses.dataclass(frozen=True)
class ConfirmLimits:
    """How far confirm may go: total seconds, windows per EPF step, and caps per trial."""

    budget_s: float
    windows: int = 5
    max_windows: int = 40
    max_seeds: int = 5


def confirm_study(
    study: optuna.Study,
    train: TrainConfig,
    profile: ProfileConfig,
    data: LoadedData,
    limits: ConfirmLimits,
    say: Say | None = None,
    remeasure: bool = False,
) -> ConfirmReport:
    """Measure contested points of ``study`` until none is left or the budget is spent (module docstring);
    first, with ``remeasure``, the EPF of every trial again
    (:func:`~e2gcsearch.search.remeasure.remeasure_epf`, outside the budget).

    ``train``, ``profile`` and ``data`` must be those the search ran with: the data are checked
    against the study's, since seeds trained on other images would pool into meaningless figures.
    """
    say = say or (lambda line: None)
    _check_data(study, data)
    check_comparable(
        study,
        study_fingerprint(train, profile, data.name, device_fingerprint_of(profile)),
        "give confirm the training and measurement flags (or --config) the search ran with",
    )
    before = _statuses(front_info(study, include_dominated=True))  # the account counts what remeasuring changed
    ledger = study_ledger(study, "confirm", profile)
    if remeasure:
        say("confirm: measuring the EPF of every trial again, in this session")
        say(f"confirm: {moved_line(remeasure_epf(study, profile, say, ledger))}; the cache now holds these figures")
    start = time.perf_counter()
    front = front_info(study, include_dominated=True)
    steps: list[Step] = []
    exhausted: set[tuple[int, str]] = set()
    reason = "no contested pair left: the data order every pair of neighbouring front points"
    while True:
        pairs = contested_pairs(front.frame, front.objectives, front.paired)
        left = limits.budget_s - (time.perf_counter() - start)
        choice = _next_measurement(study, front, pairs, profile, limits, exhausted, left)
        if choice is None:
            if pairs and any(_candidates(front, pair, exhausted) for pair in pairs):
                reason = f"budget of {limits.budget_s:.0f} s spent; {len(pairs)} pair(s) still contested"
            elif pairs:
                reason = (
                    f"{len(pairs)} pair(s) still contested, and more measurements cannot separate them "
                    "(per-trial limits reached, or their top-1 gap is inside the validation set's own "
                    "noise): they are tied within noise"
                )
            break
        number, objective = choice
        step, measured = _measure(study, front, number, objective, train, profile, data, limits, ledger)
        if step is None:
            exhausted.add((number, objective.name))
            say(f"confirm: trial {number} {objective.name}: the measurement failed; not stored, not tried again")
            continue
        steps.append(step)
        say(
            f"confirm: trial {step.trial} {step.objective}: {step.what}: {_figure(step.before)} -> "
            f"{_figure(step.after)}"
        )
        front = measured
    return ConfirmReport(
        tuple(steps),
        before,
        _statuses(front),
        len(contested_pairs(front.frame, front.objectives, front.paired)),
        reason,
        time.perf_counter() - start,
    )


def _check_data(study: optuna.Study, data: LoadedData) -> None:
    stored = study.user_attrs.get(record.DATA) or {}
    wanted = data_key(data)
    differs = [key for key, value in wanted.items() if key in stored and stored[key] != value]
    if differs:
        raise ConfigError(
            f"study {study.study_name!r} was searched on other data ({', '.join(differs)} differ); "
            "give confirm the data flags (or --config) the search ran with"
        )


def _statuses(front: FrontInfo) -> dict[int, str]:
    return {int(trial): status for trial, status in zip(front.frame["trial"], front.frame["front_status"])}


def _candidates(
    front: FrontInfo, pair: tuple[int, int, float], exhausted: set[tuple[int, str]]
) -> list[tuple[float, int, Metric]]:
    """(relative interval width, trial, objective) worth measuring for a contested pair, widest first.

    Only objectives in which the pair's intervals overlap; top-1 only while the validation set's
    binomial part alone leaves room to separate them (more seeds shrink the seed part, never that),
    EPF only while the scatter between sittings does.
    """
    frame = front.frame
    a, b = frame.iloc[pair[0]], frame.iloc[pair[1]]
    found = []
    for objective in front.objectives:
        if objective.metric not in ("epf", "latency", "top1"):
            continue  # counts are exact
        name = objective.name
        if max(a[f"{name}_low"], b[f"{name}_low"]) > min(a[f"{name}_high"], b[f"{name}_high"]):
            continue  # already separated here
        if objective.metric == "top1" and not _seeds_can_separate(a, b):
            continue
        if objective.metric == "epf" and not _windows_can_separate(a, b, name):
            continue
        for row in (a, b):
            if (int(row["trial"]), name) not in exhausted:
                width = float(row[f"{name}_high"] - row[f"{name}_low"])
                width = width if width == width else float("inf")  # unknown spread: measure it first
                found.append((width / max(abs(float(row[name])), 1e-9), int(row["trial"]), objective))
    return sorted(found, key=lambda c: -c[0])


def _windows_can_separate(a: Any, b: Any, name: str) -> bool:
    """Whether the EPF gap exceeds what the scatter between sittings alone blurs (at least 1.96 x its
    relative std of the larger value); more windows shrink only the window part of an interval."""
    cv = a.get(f"{name}_sitting_cv")
    if cv is None or cv != cv:  # not estimated
        return True
    return abs(float(a[name]) - float(b[name])) > 1.96 * float(cv) * max(abs(float(a[name])), abs(float(b[name])))


def _seeds_can_separate(a: Any, b: Any) -> bool:
    """Whether the top-1 gap exceeds what the validation sample alone blurs (its Wilson half-widths)."""
    halves = []
    for row in (a, b):
        val_size = int(row.get("val_size") or 0)
        if not val_size:
            return True
        low, high = wilson_interval(row["top1"] / 100 * val_size, val_size)
        halves.append(100 * (high - low) / 2)
    return abs(float(a["top1"]) - float(b["top1"])) > max(halves)


def _next_measurement(
    study: optuna.Study,
    front: FrontInfo,
    pairs: list[tuple[int, int, float]],
    profile: ProfileConfig,
    limits: ConfirmLimits,
    exhausted: set[tuple[int, str]],
    left_s: float,
) -> tuple[int, Metric] | None:
    """(trial, objective) of the most useful measurement that fits in ``left_s``, or ``None``."""
    for pair in pairs:
        for _, number, objective in _candidates(front, pair, exhausted):
            estimate = _estimate_s(study, number, objective, profile, limits)
            if estimate is None:
                exhausted.add((number, objective.name))
            elif estimate <= left_s:
                return number, objective
    return None


def _estimate_s(
    study: optuna.Study, number: int, objective: Metric, profile: ProfileConfig, limits: ConfirmLimits
) -> float | None:
    """Seconds the next measurement of ``objective`` on trial ``number`` should take; ``None`` at its cap."""
    stored = trial_record(study, _trial(study, number))
    if objective.metric == "top1":
        if len(stored.top1_values()) >= limits.max_seeds or stored.infeasible:
            return None
        original_seeds = max(1, len(TrialRecord.from_trial(_trial(study, number)).top1_values()))
        return float(stored.wall_s.get("train", 0.0)) / original_seeds
    summary = stored.summary(objective)
    if summary is None or summary.n >= limits.max_windows:
        return None
    latency_s = float(stored.epf.get(objective.batch_size, {}).get("latency_ms") or 0.0) / 1000
    window_s = profile.window_s(resolve_device(profile.device))
    return limits.windows * max(window_s, latency_s) + 3 * latency_s  # the windows, then the warm-up


def _measure(
    study: optuna.Study,
    front: FrontInfo,
    number: int,
    objective: Metric,
    train: TrainConfig,
    profile: ProfileConfig,
    data: LoadedData,
    limits: ConfirmLimits,
    ledger: Ledger,
) -> tuple[Step | None, FrontInfo]:
    """Measure once more, metered by ``ledger``, and store the pooled figures; the step and the front
    after it (no step, nothing stored, when the measurement failed)."""
    stored = trial_record(study, _trial(study, number))
    row = front.frame[front.frame["trial"] == number].iloc[0]
    before = (float(row[objective.name]), float(row[f"{objective.name}_low"]), float(row[f"{objective.name}_high"]))
    confirmed = dict(record.confirmation(study, number))
    start = time.perf_counter()
    if objective.metric == "top1":
        seeds = len(stored.top1_values())
        confirmed = with_seed(stored, confirmed, train, data, ledger)
        if confirmed is None:
            return None, front
        what = f"{seeds} -> {seeds + 1} seeds"
    else:
        batch = objective.batch_size
        earlier = _stored_batch(batch, stored.epf.get(batch, {}))
        measuring = dataclasses.replace(profile, resolution=stored.resolution or profile.resolution)
        with ledger.phase("measurement", resolve_device(profile.device), profile.threads):
            pooled = extend_measurement(stored.arch_config, measuring, batch, limits.windows, earlier)
        if pooled.status != "ok":
            return None, front
        confirmed.setdefault(record.EPF, {})[str(batch)] = epf_figures(pooled)
        what = f"{earlier.repeats if earlier else 0} -> {pooled.repeats} windows"
    study.set_user_attr(record.confirm_key(number), confirmed)
    seconds = time.perf_counter() - start
    after_front = front_info(study, include_dominated=True)
    after_row = after_front.frame[after_front.frame["trial"] == number].iloc[0]
    after = (
        float(after_row[objective.name]),
        float(after_row[f"{objective.name}_low"]),
        float(after_row[f"{objective.name}_high"]),
    )
    return Step(number, objective.name, what, before, after, seconds), after_front


def _trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    """Trial ``number`` without copying every trial of the study (``study.trials`` deep-copies them)."""
    return study.get_trials(deepcopy=False)[number]


def _stored_batch(batch_size: int, figures: dict[str, Any]) -> BatchProfile | None:
    """A trial's stored figures of one batch size as a measurement to pool with (``None`` when its
    windows were not recorded: a mean of unknown weight cannot be pooled)."""
    if (
        not figures
        or figures.get("status", "ok") != "ok"
        or figures.get("epf_mj") is None
        or not figures.get("repeats")
    ):
        return None
    return BatchProfile(
        batch_size=batch_size,
        status="ok",
        epf_mj=figures["epf_mj"],
        epf_std_mj=figures.get("epf_std_mj") or 0.0,
        cv=figures.get("cv"),
        latency_ms=figures.get("latency_ms"),
        throughput_ips=figures.get("throughput_ips"),
        idle_power_w=None,
        epf_idle_subtracted_mj=None,
        iterations=0,
        repeats=int(figures["repeats"]),
        latency_std_ms=figures.get("latency_std_ms"),
        impl=figures.get("impl") or "nchw",
        measured_at=figures.get("measured_at"),
        foreign_load=figures.get("foreign_load"),
        foreign_load_unit=figures.get("foreign_load_unit"),
        load_retries=int(figures.get("load_retries") or 0),
        under_load=figures.get("under_load"),
    )
