"""One trial of the search: cost → EPF (cached) → proxy training, recorded on the Optuna trial.

EPF is measured in train mode (the paper's step) at the profiled batch sizes and at those the metrics
name; when an objective or constraint names ``epf_infer``, inference is measured too, at its batch
sizes. With ``--impl auto`` the proxy training runs in the layout the profiler chose for the training
step at the largest batch size measured, so a trial calibrates once.

The phases run cheapest first. When params, MACs or EPF already violate a constraint, training is
skipped and the trial is recorded as infeasible (its top-1 objective is reported as 0 %, and the
Pareto front never shows it). Any exception marks the trial FAIL with its reason in the user attr
``fail_reason``; the study goes on with the next trial.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Any

import optuna
from optuna.trial import TrialState

from ..cost import network_cost
from ..data import LoadedData
from ..devices import resolve_device
from ..energy import Ledger, MeterSpec
from ..metrics import MODES, Metric
from ..models import validate_config
from ..paired import PerImage
from ..profiling import DeviceLock, ProfileCache, ProfileConfig, profile_model
from ..profiling.implementations import layout_of
from ..report.tables import human_count
from ..stats import accuracy_interval
from ..store import record
from ..store.lost import interruption_reason
from ..store.results import seed_noise, trial_record
from ..train import TrainConfig, train_model
from .early_stop import known_losses, rule_for
from .halving import halving_rule, rung0_score
from .objectives import Constraint
from .space import Space
from .twins import measured_twin, repeat, running_twin

# --early-stop: successive halving with Pareto promotion, the optimistic-completion rule, or none; and
# --rung0-score: the training-free score of halving's rung 0, before any training. The defaults are the ones
# benchmarks/search_replay.py shows best: judged by full training on food101-10, halving with a grad_norm
# rung 0 keeps >= 0.98 of the hypervolume of training every trial with 0.41-0.51 of its training seconds
# at half the grid and 0.31-0.38 over the whole grid (docs/search-efficiency.md).
EARLY_STOPS = ("asha", "rule", "off")
DEFAULT_EARLY_STOP = "asha"
DEFAULT_RUNG0_SCORE = "grad_norm"

INFEASIBLE_TOP1 = 0.0  # reported for trials whose training a violated constraint skipped


class TrialFailed(RuntimeError):
    """A trial that cannot produce its objectives (e.g. the proxy training diverged)."""


@dataclasses.dataclass(frozen=True)
class TrialSettings:
    """Everything a trial needs besides the data (picklable, so worker processes get a copy)."""

    objectives: tuple[Metric, ...]
    constraints: tuple[Constraint, ...]
    space: Space
    profile: ProfileConfig
    train: TrainConfig
    proxy_seeds: int = 1  # proxy trainings per trial (seeds train.seed, train.seed + 1, ...); top-1 is their mean
    # stop a proxy training early: "rule" (one that can no longer reach the front, search/early_stop.py),
    # "asha" (successive halving with Pareto promotion, search/halving.py) or "off"
    early_stop: str = DEFAULT_EARLY_STOP
    # "asha" only: a training-free score (train/scores.py) that ranks trials before they train; None: no rung 0
    # (run's default is DEFAULT_RUNG0_SCORE; settings built by hand have no rung 0 unless they ask)
    rung0_score: str | None = None

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        """Batch sizes measured in train mode: the profiled ones and those the train-mode metrics name."""
        wanted = {m.batch_size for m in self.metrics() if m.batch_size and MODES.get(m.metric) == "train"}
        return tuple(sorted(set(self.profile.batch_sizes) | wanted))

    @property
    def infer_batch_sizes(self) -> tuple[int, ...]:
        """Batch sizes measured in infer mode (none unless a metric names ``epf_infer``)."""
        return tuple(sorted({m.batch_size for m in self.metrics() if MODES.get(m.metric) == "infer"}))

    def metrics(self) -> list[Metric]:
        return list(self.objectives) + [c.metric for c in self.constraints]

    @property
    def needs_training(self) -> bool:
        return any(m.metric == "top1" for m in self.metrics())


def metric_value(metric: Metric, results: dict[str, Any]) -> float | None:
    """The value of ``metric`` among what the trial has measured so far (None if not yet known)."""
    if metric.metric in ("params", "macs", "top1"):
        value = results.get(metric.metric)
        return None if value is None else float(value)
    figures = results.get(record.EPF_INFER if metric.metric == record.EPF_INFER else record.EPF, {}).get(
        metric.batch_size
    )
    if not figures:
        return None
    if figures.get("status", "ok") != "ok":
        raise TrialFailed(
            f"batch size {metric.batch_size} could not be profiled ({figures['status']}); "
            f"drop {metric.name} or use a smaller batch size"
        )
    return float(figures["latency_ms"] if metric.metric == "latency" else figures["epf_mj"])


class TrialRunner:
    """The objective function handed to ``study.optimize``."""

    def __init__(self, settings: TrialSettings, data: LoadedData) -> None:
        self.settings = settings
        self.data = data
        profile = settings.profile
        self.lock = (
            DeviceLock.host_wide(resolve_device(profile.device), ProfileCache(profile.cache_dir).directory)
            if profile.device_lock
            else None
        )

    def __call__(self, trial: Any) -> list[float]:
        try:
            return self._run(trial)
        except optuna.TrialPruned:
            raise
        except BaseException as exc:  # also KeyboardInterrupt: the trial is failed, then Ctrl-C goes on
            reason = interruption_reason(exc) if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
            trial.set_user_attr(record.FAIL_REASON, reason[:2000])
            raise

    def _run(self, trial: Any) -> list[float]:
        settings, wall = self.settings, {}
        arch_config = settings.space.sample(trial, self.data.num_classes)
        twin = measured_twin(trial, arch_config)
        if twin is not None:
            return repeat(trial, twin)
        resolution = settings.profile.resolution
        _set(trial, arch_config=arch_config, resolution=resolution, data=self.data.description())
        running = running_twin(trial, arch_config)  # checked after recording ours
        if running is not None:
            trial.set_user_attr(record.DUPLICATE_OF, running.number)
            trial.set_user_attr(record.LEFT_TO, running.number)
            raise optuna.TrialPruned(f"the same point is being measured by trial {running.number}")
        validate_config(arch_config)  # an impossible point fails here, before any work
        ledger, device = spending_ledger(trial, settings.profile), resolve_device(settings.profile.device)

        start = time.perf_counter()
        cost = network_cost(arch_config, resolution)
        results: dict[str, Any] = {"params": cost.params, "macs": cost.macs}
        wall["cost"] = time.perf_counter() - start
        _set(trial, params=cost.params, macs=cost.macs)
        # EPF is measured even when params/MACs already violate a constraint: it is cheap (cached),
        # the objectives need it, and it tells the user what the infeasible point would have cost.
        start, locked = time.perf_counter(), self._lock_counts()
        with ledger.phase("measurement", device, settings.profile.threads) as phase:
            profile = profile_model(
                arch_config, dataclasses.replace(settings.profile, batch_sizes=settings.batch_sizes), lock=self.lock
            )
            phase.cached = all(batch.cached for batch in profile.batches.values())
        results["epf"] = {batch: epf_figures(result) for batch, result in profile.batches.items()}
        _set(
            trial,
            epf=results["epf"],
            energy_backend=profile.backend,
            energy_is_estimate=profile.is_estimate,
            fingerprint=profile.fingerprint.to_dict(),
            latency_ms=_reference_latency(results["epf"], settings),
        )
        if settings.infer_batch_sizes:
            with ledger.phase("measurement", device, settings.profile.threads) as phase:
                inference = profile_model(
                    arch_config,
                    dataclasses.replace(settings.profile, mode="infer", batch_sizes=settings.infer_batch_sizes),
                    lock=self.lock,
                )
                phase.cached = all(batch.cached for batch in inference.batches.values())
            results[record.EPF_INFER] = {batch: epf_figures(result) for batch, result in inference.batches.items()}
            _set(trial, epf_infer=results[record.EPF_INFER])
        wall["profile"] = time.perf_counter() - start
        layout = _training_layout(settings.train.layout, profile)
        violations = self._violations(results)

        if violations:
            results["top1"] = INFEASIBLE_TOP1
            _set(trial, infeasible=True, violations=violations, train_status="skipped (infeasible)")
        elif settings.needs_training:
            start = time.perf_counter()
            results["top1"] = self._train(trial, arch_config, layout, results, ledger)
            wall["train"] = time.perf_counter() - start
        waited, paused = (now - then for now, then in zip(self._lock_counts(), locked))
        _set(trial, wall_s=wall, infeasible=bool(violations), device_lock={"waited_s": waited, "paused_s": paused})
        for constraint in settings.constraints:
            value = metric_value(constraint.metric, results)
            trial.set_constraint(constraint.text, constraint.violation(value) if value is not None else 1.0)
        return [self._objective_value(o, results) for o in settings.objectives]

    def _train(self, trial: Any, arch_config: Any, layout: str, results: dict[str, Any], ledger: Ledger) -> float:
        """Proxy-train ``proxy_seeds`` times in ``layout``, each training metered by ``ledger``; record every
        seed's top-1 and their interval; return the mean.

        With early stopping, a training that can no longer reach the front is stopped and the trial
        pruned (:mod:`.early_stop`, :mod:`.halving`)."""
        runs = []
        stop = self._stopping(trial, results, arch_config, ledger)
        for offset in range(self.settings.proxy_seeds):
            config = dataclasses.replace(self.settings.train, seed=self.settings.train.seed + offset, layout=layout)
            with self.lock.shared() if self.lock else contextlib.nullcontext(None) as step_boundary:
                trained = train_model(
                    arch_config,
                    self.data,
                    config,
                    on_epoch_end=stop,
                    between_steps=step_boundary,
                    metering=ledger.metering("training"),
                )
            if trained.status == "stopped":
                _set(
                    trial,
                    train_status="stopped early",
                    early_stop=stop.reason,
                    top1_curve=list(trained.val_curve),
                    loss_curve=list(trained.loss_curve),
                )
                raise optuna.TrialPruned(stop.reason)
            if not trained.ok:
                _set(trial, train_status=trained.status, loss_curve=list(trained.loss_curve))
                raise TrialFailed(f"proxy training stopped: {trained.status}")
            runs.append(trained)
        val_size = runs[0].val_size
        interval = accuracy_interval([run.top1 for run in runs], val_size)
        top5 = [run.top5 for run in runs if run.top5 is not None]
        if arch_config.is_learned:  # the structure the first seed learned: export and validate start from it
            _set(trial, **{record.FLGC_STRUCTURE: runs[0].structure})
        _set(
            trial,
            top1=interval.mean,
            top1_seeds=[run.top1 for run in runs],
            top1_correct=PerImage.of_runs(runs),
            val_size=val_size,
            top1_low=interval.low,
            top1_high=interval.high,
            top5=sum(top5) / len(top5) if top5 else None,
            loss_curve=list(runs[0].loss_curve),
            top1_curve=list(runs[0].val_curve),
            train_status=runs[-1].status,
        )
        return interval.mean

    def _lock_counts(self) -> tuple[float, float]:
        return (self.lock.waited_s, self.lock.paused_s) if self.lock else (0.0, 0.0)

    def _stopping(self, trial: Any, results: dict[str, Any], arch_config: Any, ledger: Ledger) -> _EpochCheck | None:
        """The per-epoch check of the early-stopping rule (``None`` when it is off or cannot apply), once
        successive halving's rung 0 has let the trial train."""
        study = getattr(trial, "study", None)
        if self.settings.early_stop == "off" or study is None:
            return None
        objectives = self.settings.objectives
        known = known_losses(
            objectives, [0.0 if o.is_accuracy else self._objective_value(o, results) for o in objectives]
        )
        if self.settings.early_stop == "asha":
            score = rung0_score(self.settings.rung0_score, arch_config, self.data, self.settings.train.seed, ledger)
            rule = halving_rule(trial, objectives, self.settings.train.epochs, score=score)
            reason = rule.before_training(known)
            if reason:
                _set(trial, train_status="stopped early", early_stop=reason, top1_curve=[])
                raise optuna.TrialPruned(reason)
            return _EpochCheck(rule, known)
        records = [
            trial_record(study, t)
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if record.ARCH_CONFIG in t.user_attrs
        ]
        val_size, order = len(self.data.val_labels), self.data.val_order
        rule = rule_for(study, objectives, self.settings.train.epochs, val_size, seed_noise(records), order=order)
        return _EpochCheck(rule, known)

    def _violations(self, results: dict[str, Any]) -> list[str]:
        out = []
        for constraint in self.settings.constraints:
            value = metric_value(constraint.metric, results)
            if value is not None and constraint.violation(value) > 0:
                shown = human_count(value) if constraint.metric.metric in ("params", "macs") else f"{value:.4g}"
                out.append(f"{constraint.text} (got {shown})")
        return out

    def _objective_value(self, objective: Metric, results: dict[str, Any]) -> float:
        value = metric_value(objective, results)
        if value is None:  # e.g. EPF when an earlier constraint already made the trial infeasible
            raise TrialFailed(f"objective {objective.name} was not measured")
        return value


class _EpochCheck:
    """The trainer's per-epoch callback: asks the stopping rule and keeps its reason."""

    def __init__(self, rule: Any, known: tuple[float, ...]) -> None:
        self.rule, self.known, self.reason = rule, known, ""

    def __call__(self, epochs_done: int, metrics: dict[str, Any]) -> bool:
        self.reason = self.rule.verdict(epochs_done, float(metrics["top1"]), self.known, metrics.get("right")) or ""
        return bool(self.reason)


def spending_ledger(trial: Any, profile: ProfileConfig) -> Ledger:
    """The ledger of ``trial``'s work, metered as its EPF is (backend, power model) and written to the
    trial after every phase; the trial records that it spent nothing so far."""
    trial.set_user_attr(record.SPENT, [])
    return Ledger(MeterSpec(profile.backend, profile.power_w), lambda phases: trial.set_user_attr(record.SPENT, phases))


def _set(trial: Any, **fields: Any) -> None:
    for key, value in record.user_attrs(**fields).items():
        trial.set_user_attr(key, value)


def epf_figures(batch: Any) -> dict[str, Any]:
    """What a trial stores of one profiled batch size (a :class:`~e2gcsearch.profiling.BatchProfile`),
    with the implementation measured and, under ``auto``, why it was chosen."""
    return {
        "epf_mj": batch.epf_mj,
        "epf_std_mj": batch.epf_std_mj,
        "cv": batch.cv,
        "repeats": batch.repeats,
        "latency_ms": batch.latency_ms,
        "latency_std_ms": batch.latency_std_ms,
        "throughput_ips": batch.throughput_ips,
        "status": batch.status,
        "impl": batch.impl,
        "impl_choice": batch.impl_choice,
        "compile_s": batch.compile_s,
        "measured_at": batch.measured_at,
        **batch.load_figures(),  # under_load, foreign_load, ...: when the load of others was read
    }


def _training_layout(layout: str, profile: Any) -> str:
    """The proxy training's layout: as asked, or for ``auto`` the layout of the implementation the
    profiler measured the training step with at its largest batch size (nchw when it could not)."""
    if layout != "auto":
        return layout
    measured = [b for b in sorted(profile.batches) if profile.batches[b].status == "ok"]
    return layout_of(profile.batches[measured[-1]].impl) if measured else "nchw"


def _reference_latency(epf: dict[int, dict[str, Any]], settings: TrialSettings) -> float | None:
    """Latency per batch at the objectives' batch size (else the largest profiled one)."""
    batch = next((m.batch_size for m in settings.metrics() if m.batch_size), max(epf, default=None))
    figures = epf.get(batch) if batch else None
    return figures.get("latency_ms") if figures and figures.get("status", "ok") == "ok" else None
