"""What a study found, read back: its objectives, one trial, its front and hypervolume history.

This is where stored trials (see :mod:`.record`) become the rows that :mod:`e2gcsearch.report`
computes on and draws; ``front``, ``run``, ``export`` and ``validate`` read a study through here.

A row is one COMPLETE trial with finite objective values that does not repeat an earlier point. A
trial is infeasible when it records ``infeasible`` or violates an Optuna constraint (> 0). Each
objective's value is the trial's measurement pooled with what ``confirm`` measured of it since, with
its 95 % interval; top-1 intervals use the seed noise pooled over the study's trials.

Example:
    >>> front = front_info(open_study(DEFAULT_STORAGE, DEFAULT_STUDY))   # doctest: +SKIP
    >>> print(render_front(front, "table"))                               # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..errors import ConfigError, UnknownNameError
from ..fidelity_notes import fidelity_note
from ..metrics import Metric
from ..models import get_entry
from ..paired import PairedResults
from ..report.dominance import noise_notes
from ..report.front import FrontInfo, HypervolumeHistory, front_info_from_rows
from ..report.front import hypervolume_history as history_of_front
from ..stats import SeedNoise, SittingNoise, pooled_std, sitting_noise
from . import record
from .record import TrialRecord


def study_objectives(study: optuna.Study) -> list[Metric]:
    """The study's objectives (from its ``objectives`` attr, else Optuna's metric names)."""
    directions = [d.name.lower() for d in study.directions]
    stored = study.user_attrs.get(record.OBJECTIVES)
    if stored:
        return [Metric.from_dict(o, direction=d) for o, d in zip(stored, directions)]
    names = study.metric_names or [f"value{i}" for i in range(len(directions))]
    return [Metric(name=n, direction=d, metric=n) for n, d in zip(names, directions)]


def get_trial(study: optuna.Study, number: int) -> FrozenTrial:
    """The COMPLETE trial ``number`` of ``study``; one-line errors for unknown or unfinished trials."""
    trials = study.get_trials(deepcopy=False)
    match = next((t for t in trials if t.number == number), None)
    if match is None:
        if not trials:
            raise UnknownNameError(
                f"study {study.study_name!r} has no trials yet; run 'e2gcsearch run --study {study.study_name}' first"
            )
        raise UnknownNameError(
            f"study {study.study_name!r} has no trial {number}; its trials are numbered "
            f"0-{max(t.number for t in trials)} (see 'e2gcsearch front --all')"
        )
    if match.state != TrialState.COMPLETE:
        reason = match.user_attrs.get(record.FAIL_REASON)
        raise ConfigError(
            f"trial {number} of study {study.study_name!r} is {match.state.name}"
            f"{f' ({reason})' if reason else ''}, not COMPLETE; pick a completed trial "
            "(see 'e2gcsearch front --all')"
        )
    return match


def _display_name(arch: str) -> str:
    try:
        return get_entry(arch).display_name
    except UnknownNameError:  # a baseline stored by a version that knew a network this one does not
        return arch


def baseline_label(trial: TrialRecord) -> str | None:
    """The paper baseline a trial reproduces (stored by the search, or recognised from its grouping)."""
    if trial.baseline:  # e.g. "mobilenet_v1 G=1 (paper baseline)"; the notes and legend say "paper baseline"
        label = re.sub(r"\s*\(paper baseline\)", "", trial.baseline)
        arch, _, rest = label.partition(" ")
        return f"{_display_name(arch)} {rest}".strip()
    entry = get_entry(trial.arch_config.arch)
    stock = entry.baseline
    if (stock.group_size, stock.groups) == (trial.arch_config.group_size, trial.arch_config.groups):
        symbol = "G" if stock.group_size is not None else "g"
        return f"{entry.display_name} {symbol}={stock.grouping_value}"
    return None


def is_feasible(trial: FrozenTrial) -> bool:
    """False when the trial records ``infeasible`` or any Optuna constraint value is > 0."""
    constraints = trial.constraints  # {name: value} (Optuna >= 5)
    values = constraints.values() if isinstance(constraints, dict) else constraints
    return not trial.user_attrs.get(record.INFEASIBLE, False) and all(value <= 0.0 for value in values)


def require_architecture(study: optuna.Study, trial: FrozenTrial) -> FrozenTrial:
    """``trial``, when it records the network it measured; else the one-line error for a study that
    'e2gcsearch run' did not make."""
    if record.ARCH_CONFIG not in trial.user_attrs:
        raise ConfigError(
            f"trial {trial.number} of study {study.study_name!r} records no architecture, so the study "
            "was not made by 'e2gcsearch run'; pick one that was (see 'e2gcsearch studies')"
        )
    return trial


def trial_record(study: optuna.Study, trial: FrozenTrial, study_attrs: dict[str, Any] | None = None) -> TrialRecord:
    """The stored record of ``trial`` with what ``confirm`` has measured of it since, and the inference EPF
    ``run`` measured of it after the search (its own figures first)."""
    stored = TrialRecord.from_trial(trial)
    attrs = study.user_attrs if study_attrs is None else study_attrs
    confirmed = record.confirmation(study, trial.number, attrs)
    stored = stored.with_confirmation(confirmed) if confirmed else stored
    inferred = record.inference(attrs, trial.number)
    return dataclasses.replace(stored, epf_infer={**inferred, **stored.epf_infer}) if inferred else stored


def seed_noise(records: list[TrialRecord]) -> SeedNoise | None:
    """Top-1 noise between training seeds, pooled over the trials that ran two or more seeds."""
    return pooled_std([stored.top1_values() for stored in records if not stored.infeasible])


def sitting_noises(
    trials: list[FrozenTrial], records: list[TrialRecord], objectives: list[Metric]
) -> dict[str, SittingNoise | None]:
    """Per EPF objective, the noise between sittings (:func:`~e2gcsearch.stats.sitting_noise`) from the
    trials whose figures ``records`` (with confirm's) come from a sitting independent of the trial's
    own (``confirm --remeasure-epf``), told apart by their ``measured_at`` minutes."""
    out: dict[str, SittingNoise | None] = {}
    owns = [TrialRecord.from_trial(trial) for trial in trials]  # the trials' own figures, without confirm's
    for objective in (o for o in objectives if o.metric == "epf"):
        pairs = []
        for own, stored in zip(owns, records):
            first, second = own.measured_at(objective), stored.measured_at(objective)
            if first and second and not set(first) & set(second):
                pairs.append((own.summary(objective), stored.summary(objective)))
        out[objective.name] = sitting_noise([pair for pair in pairs if None not in pair])
    return out


def _row(
    trial: FrozenTrial,
    stored: TrialRecord,
    objectives: list[Metric],
    noise: SeedNoise | None,
    confirmed: bool,
    sittings: dict[str, SittingNoise | None],
) -> dict[str, Any]:
    arch_config = stored.arch_config
    row: dict[str, Any] = {
        "trial": trial.number,
        "arch": arch_config.arch,
        "module": arch_config.module,
        "value": arch_config.grouping_value,
        "grouping": arch_config.grouping,
        "width": arch_config.width,
    }
    for objective, value in zip(objectives, trial.values):
        summary = stored.summary(objective) if confirmed else None
        value = summary.mean if summary is not None else float(value)  # pooled with confirm's measurements
        row[objective.name] = value
        sitting = sittings.get(objective.name)
        row[f"{objective.name}_low"], row[f"{objective.name}_high"] = stored.interval(objective, value, noise, sitting)
        if objective.name in sittings:  # the between-sitting noise in that interval (None: not estimated)
            row[f"{objective.name}_sitting_cv"] = sitting.cv if sitting else None
    measured = [o for o in objectives if o.metric in ("epf", record.EPF_INFER, "latency")]
    if measured:  # when the measured objectives were measured (see report.dominance.session_note)
        times = [stored.measured_at(o) for o in measured]
        known = None if None in times else [minute for minutes in times for minute in minutes]
        row["measured_from"], row["measured_to"] = (min(known), max(known)) if known else (None, None)
    if stored.top1_values():
        row["seeds"] = len(stored.top1_values())
        row["val_size"] = stored.validation_images()
    row.setdefault("params", stored.params)
    row.setdefault("macs", stored.macs)
    for batch in sorted(stored.epf):
        row[f"epf_mj@{batch}"] = stored.epf_mj(batch)
    row["backend"] = stored.energy_backend
    row["resolution"] = stored.resolution
    row["feasible"] = is_feasible(trial)
    row["violations"] = "; ".join(stored.violations)
    row["baseline"] = baseline_label(stored)
    row["under_load"] = under_load_text(stored)
    return row


def under_load_text(stored: TrialRecord) -> str:
    """``EPF@16 (1.40 busy cores)`` for every EPF figure of the trial that could only be measured under
    other processes' load, ``; ``-joined (``""`` when none)."""
    parts = []
    for name, figures in stored.under_load().items():
        load, unit = figures.get("foreign_load"), figures.get("foreign_load_unit") or ""
        parts.append(f"{name} ({load:.2f} {unit})" if isinstance(load, int | float) else name)
    return "; ".join(parts)


def front_info(study: optuna.Study, include_dominated: bool = False) -> FrontInfo:
    """The Pareto-optimal trials of ``study`` (all completed trials with ``include_dominated``).

    Trials that repeat an earlier point are left out; see :class:`~e2gcsearch.report.front.FrontInfo`
    for the columns and their order.
    """
    objectives = study_objectives(study)
    every = study.get_trials(deepcopy=False)
    # A repeat of an already measured point (see e2gcsearch.search.trial) adds no row of its own.
    trials = [
        t
        for t in every
        if t.state == TrialState.COMPLETE
        and record.DUPLICATE_OF not in t.user_attrs
        and t.values is not None
        and all(math.isfinite(v) for v in t.values)
    ]
    for trial in trials:
        require_architecture(study, trial)
    states = {
        state.name.lower(): sum(t.state == state for t in every)
        for state in TrialState
        if any(t.state == state for t in every)
    }
    study_attrs = study.user_attrs
    records = [trial_record(study, t, study_attrs) for t in trials]
    # Any trial that measured EPF tells the scatter between sittings, also one whose training stopped early.
    stopped = [
        t
        for t in every
        if t.state == TrialState.PRUNED and record.EPF in t.user_attrs and record.DUPLICATE_OF not in t.user_attrs
    ]
    measured = (trials + stopped, records + [trial_record(study, t, study_attrs) for t in stopped])
    noise, sittings = seed_noise(records), sitting_noises(*measured, objectives)
    rows = [
        _row(t, stored, objectives, noise, bool(record.confirmation(study, t.number, study_attrs)), sittings)
        for t, stored in zip(trials, records)
    ]
    paired = PairedResults.of({t.number: stored.per_image() for t, stored in zip(trials, records)})
    return front_info_from_rows(rows, objectives, study.study_name, states, include_dominated, paired)


def hypervolume_history(study: optuna.Study) -> HypervolumeHistory:
    """Hypervolume of the feasible front after each completed trial of ``study``, in trial-number order."""
    return history_of_front(front_info(study, include_dominated=True))


__all__ = [
    "baseline_label",
    "front_info",
    "get_trial",
    "hypervolume_history",
    "is_feasible",
    "seed_noise",
    "study_objectives",
    "trial_record",
]


def front_notes(study: optuna.Study, front: FrontInfo) -> list[str]:
    """What a reader of the front should know: how far the data separate its points
    (:func:`e2gcsearch.report.noise_notes`) and how far its accuracy axis ranks like full training."""
    fidelity = proxy_fidelity_note(study)
    loaded = load_note(front)
    return (
        noise_notes(front.frame, front.objectives, front.paired)
        + ([loaded] if loaded else [])
        + ([fidelity] if fidelity else [])
    )


def load_note(front: FrontInfo) -> str | None:
    """The sentence for rows whose EPF could only be measured under other processes' load."""
    if "under_load" not in front.frame:
        return None
    flagged = [int(t) for t, text in zip(front.frame["trial"], front.frame["under_load"]) if text]
    if not flagged:
        return None
    trials = ", ".join(map(str, flagged))
    return (
        f"EPF of trial{'s' if len(flagged) > 1 else ''} {trials} was measured while other processes loaded the "
        "device (marked 'under load'), so it may read high; measure again on a quiet machine with "
        "'e2gcsearch confirm --remeasure-epf'"
    )


def proxy_fidelity_note(study: optuna.Study) -> str | None:
    """What is known about how well the study's proxy ranks networks like full training
    (:func:`e2gcsearch.fidelity.fidelity_note`); ``None`` when no objective is a proxy top-1."""
    if not any(objective.metric in ("top1", "top5") for objective in study_objectives(study)):
        return None
    return fidelity_note(study.user_attrs.get(record.DATA) or {}, study.user_attrs.get(record.TRAINING) or {})


def search_implementation(study: optuna.Study) -> tuple[str | None, str | None]:
    """(the implementation ``run`` measured with, the layout its proxy training ran in: ``auto`` where
    each trial timed its own), as stored on the study; ``None`` for what a study does not hold (one made
    before they were stored, or one whose objectives needed no training)."""
    profiling, training = (study.user_attrs.get(key) or {} for key in (record.PROFILING, record.TRAINING))
    return profiling.get("impl"), training.get("layout")
