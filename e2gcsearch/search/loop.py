"""The trial loop of one process: Optuna's ``optimize`` with e2gcsearch's budget (:mod:`.budget`), one
line per finished trial, and a storage that fails mid-trial (a full disk) said in one line."""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..console import debugging, note
from ..metrics import ENERGY_METRICS
from ..store import record
from ..store.fingerprint import trial_settings
from ..store.lost import worker_tag
from ..store.storage import storage_failure
from .budget import NewPoints
from .search_config import SearchConfig
from .study import sampler_seed
from .trial import TrialRunner


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
            f"  (repeats trial {attrs[record.DUPLICATE_OF]}; not charged)" if record.DUPLICATE_OF in attrs else ""
        )
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


def quiet_optuna() -> None:
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


def optimize(
    study: optuna.Study,
    runner: TrialRunner,
    config: SearchConfig,
    trials: int | None,
    run_id: str,
    tag: str = "",
    worker: int = 0,
) -> None:
    """Run trials until ``trials`` of them measured a new point (see :mod:`.budget`), or the timeout."""
    budget = NewPoints(
        config.settings.space,
        trials,
        runner.data.num_classes,
        sampler_seed(config.seed, len(study.trials), worker),
        study,
        lambda line: note(tag + line),
    )
    if budget.quota == 0:
        return
    callbacks, close = _callbacks(dataclasses.replace(config, trials=budget.quota), tag)
    quiet_optuna()
    try:
        study.optimize(
            _TaggedRunner(runner, run_id),
            n_trials=None,
            timeout=config.timeout_s,
            catch=(Exception,),
            callbacks=[*callbacks, budget],
        )
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


def on_device(config: SearchConfig, device: str | None) -> SearchConfig:
    """``config`` with its measurements and training on ``device`` (``None``: unchanged)."""
    if device is None:
        return config
    settings = config.settings
    settings = dataclasses.replace(
        settings,
        profile=dataclasses.replace(settings.profile, device=device),
        train=dataclasses.replace(settings.train, device=device),
    )
    return dataclasses.replace(config, settings=settings)
