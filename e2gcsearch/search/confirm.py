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
``confirm:trial-<n>`` attrs of :mod:`.record`); ``front``, ``export`` and the plots read them. A trial
gets at most ``max_seeds`` seeds and ``max_windows`` windows: two networks that are equally good
stay tied, and confirm says so instead of measuring forever.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import optuna

from ..data import LoadedData
from ..metrics import Metric
from ..profiling import BatchProfile, extend_measurement
from ..profiling.protocol import CPU_MIN_WINDOW_S
from ..report import contested_pairs
from ..report.front import FrontInfo
from ..train import train_model
from . import record
from .results import front_info, trial_record
from .trial import TrialSettings, epf_figures

Say = Callable[[str], None]


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
        out = [f"trial {s.trial} {s.objective}: {s.what}: {_figure(s.before)} -> {_figure(s.after)} "
               f"({s.seconds:.1f} s)" for s in self.steps]
        changed = [f"trial {n}: {self.before.get(n, '-')} -> {status}" for n, status in sorted(self.after.items())
                   if self.before.get(n) != status]
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


def confirm_study(study: optuna.Study, settings: TrialSettings, data: LoadedData, limits: ConfirmLimits,
                  say: Say | None = None) -> ConfirmReport:
    """Measure contested points of ``study`` until none is left or the budget is spent (module docstring)."""
    say = say or (lambda line: None)
    start = time.perf_counter()
    front = front_info(study, include_dominated=True)
    before = _statuses(front)
    steps: list[Step] = []
    exhausted: set[tuple[int, str]] = set()
    reason = "no contested pair left: every front point is separated from its neighbours"
    while True:
        pairs = contested_pairs(front.frame, front.objectives)
        choice = _next_measurement(study, front, pairs, limits, exhausted)
        if choice is None:
            if pairs:
                reason = f"{len(pairs)} pair(s) still contested, each at the per-trial limit (tied within noise)"
            break
        number, objective, estimate_s = choice
        if time.perf_counter() - start + estimate_s > limits.budget_s:
            reason = f"budget of {limits.budget_s:.0f} s spent; {len(pairs)} pair(s) still contested"
            break
        step = _measure(study, front, number, objective, settings, data, limits)
        steps.append(step)
        say(f"confirm: trial {step.trial} {step.objective}: {step.what}: {_figure(step.before)} -> "
            f"{_figure(step.after)}")
        front = front_info(study, include_dominated=True)
    return ConfirmReport(tuple(steps), before, _statuses(front), len(contested_pairs(front.frame, front.objectives)),
                         reason, time.perf_counter() - start)


def _statuses(front: FrontInfo) -> dict[int, str]:
    return {int(trial): status for trial, status in zip(front.frame["trial"], front.frame["front_status"])}


def _next_measurement(study: optuna.Study, front: FrontInfo, pairs: list[tuple[int, int, float]],
                      limits: ConfirmLimits, exhausted: set[tuple[int, str]]) -> tuple[int, Metric, float] | None:
    """(trial, objective, estimated seconds) of the most useful measurement left, or ``None``."""
    frame = front.frame
    for a, b, _ in pairs:
        candidates = []
        for objective in front.objectives:
            if objective.metric not in ("epf", "latency", "top1"):
                continue  # counts are exact
            for row in (frame.iloc[a], frame.iloc[b]):
                if (int(row["trial"]), objective.name) in exhausted:
                    continue
                width = float(row[f"{objective.name}_high"] - row[f"{objective.name}_low"])
                candidates.append((width / max(abs(float(row[objective.name])), 1e-9), int(row["trial"]), objective))
        for _, number, objective in sorted(candidates, key=lambda c: -c[0]):
            estimate = _estimate_s(study, number, objective, limits)
            if estimate is None:
                exhausted.add((number, objective.name))
                continue
            return number, objective, estimate
    return None


def _estimate_s(study: optuna.Study, number: int, objective: Metric, limits: ConfirmLimits) -> float | None:
    """Seconds the next measurement of ``objective`` on trial ``number`` should take; ``None`` at its cap."""
    stored = trial_record(study, study.trials[number])
    if objective.metric == "top1":
        seeds = len(stored.top1_values())
        if seeds >= limits.max_seeds or stored.infeasible:
            return None
        return float(stored.wall_s.get("train", 0.0)) / max(1, len(stored.top1_seeds) or 1)
    summary = stored.summary(objective)
    if summary is None or summary.n >= limits.max_windows:
        return None
    latency_s = float(stored.epf.get(objective.batch_size, {}).get("latency_ms") or 0.0) / 1000
    return limits.windows * max(CPU_MIN_WINDOW_S, latency_s) + 3 * latency_s  # windows, then warm-up


def _measure(study: optuna.Study, front: FrontInfo, number: int, objective: Metric, settings: TrialSettings,
             data: LoadedData, limits: ConfirmLimits) -> Step:
    trial = study.trials[number]
    stored = trial_record(study, trial)
    row = front.frame[front.frame["trial"] == number].iloc[0]
    before = (float(row[objective.name]), float(row[f"{objective.name}_low"]), float(row[f"{objective.name}_high"]))
    confirmed = dict(record.confirmation(study, number))
    start = time.perf_counter()
    if objective.metric == "top1":
        seeds = stored.top1_values()
        config = dataclasses.replace(settings.train, seed=settings.train.seed + len(seeds))
        trained = train_model(stored.arch_config, data, config)
        confirmed[record.TOP1_SEEDS] = [*seeds, trained.top1]
        what = f"{len(seeds)} -> {len(seeds) + 1} seeds"
    else:
        batch = objective.batch_size
        earlier = _stored_batch(batch, stored.epf.get(batch, {}))
        profile = dataclasses.replace(settings.profile, resolution=stored.resolution or settings.profile.resolution)
        pooled = extend_measurement(stored.arch_config, profile, batch, limits.windows, earlier)
        confirmed.setdefault(record.EPF, {})[str(batch)] = epf_figures(pooled)
        what = f"{earlier.repeats if earlier else 0} -> {pooled.repeats} windows"
    study.set_user_attr(record.confirm_key(number), confirmed)
    seconds = time.perf_counter() - start
    after_front = front_info(study, include_dominated=True)
    after_row = after_front.frame[after_front.frame["trial"] == number].iloc[0]
    after = (float(after_row[objective.name]), float(after_row[f"{objective.name}_low"]),
             float(after_row[f"{objective.name}_high"]))
    return Step(number, objective.name, what, before, after, seconds)


def _stored_batch(batch_size: int, figures: dict[str, Any]) -> BatchProfile | None:
    """A trial's stored figures of one batch size as a measurement to pool with."""
    if not figures or figures.get("status", "ok") != "ok" or figures.get("epf_mj") is None:
        return None
    return BatchProfile(batch_size=batch_size, status="ok", epf_mj=figures["epf_mj"],
                        epf_std_mj=figures.get("epf_std_mj") or 0.0, cv=figures.get("cv"),
                        latency_ms=figures.get("latency_ms"), throughput_ips=figures.get("throughput_ips"),
                        idle_power_w=None, epf_idle_subtracted_mj=None, iterations=0,
                        repeats=int(figures.get("repeats") or 1), latency_std_ms=figures.get("latency_std_ms"))
