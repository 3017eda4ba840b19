"""A study's own energy bill, read back: what its trials and its other work recorded (``spent``, see
:mod:`.record`), summed as a :class:`~e2gcsearch.report.search_cost.SearchCost`, and the front's
break-even column: after how many frames of inference choosing a point instead of a reference has
paid that bill back (:func:`~e2gcsearch.report.search_cost.break_even_frames`).

What is counted is what the study's own processes ran and metered: each trial's EPF measurements
and proxy trainings, the energy model's calibration when a run made one, and validate's full
trainings and measurements. A measurement answered from the measurement cache costs only its
look-up; a repeat of a measured point costs nothing. ``confirm``'s extra seeds and windows and the
inference EPF ``run`` measures for this column after the search count too (:func:`study_ledger` meters
such work of the study's own). The idle time between phases, the storage server and pre-flight's single
steps are not counted.

Example:
    >>> cost = study_search_cost(study)                        # doctest: +SKIP
    >>> cost.line()                                            # doctest: +SKIP
    'search used 41.2 kJ (estimate) over 16 trainings and 57 measurements, 7 min'
    >>> front = with_break_even(study, front_info(study))      # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from ..energy.spend import Ledger, MeterSpec, Spent
from ..report.front import FrontInfo
from ..report.search_cost import NEVER, BreakEven, SearchCost, break_even_frames
from . import record
from .lost import new_run_id
from .record import TrialRecord
from .results import baseline_label, get_trial, require_architecture, trial_record

RAN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
REFERENCE = "reference"  # the break-even of the reference itself


def recorded_phases(trials: Iterable[FrozenTrial], study_attrs: Mapping[str, Any]) -> tuple[list[Spent], int]:
    """Every phase of work the study recorded (its trials' and the study's own ``spent:*`` attrs), and
    how many trials ran before phases were recorded."""
    phases: list[Spent] = []
    unrecorded = 0
    for trial in trials:
        attrs = trial.user_attrs
        if record.DUPLICATE_OF in attrs:  # a repeat ran nothing (older ones copied their twin's record)
            continue
        if record.SPENT in attrs:
            phases += [Spent.from_dict(phase) for phase in attrs[record.SPENT] or []]
        elif record.ARCH_CONFIG in attrs and trial.state in RAN:
            unrecorded += 1
    for key in sorted(study_attrs):
        if key.startswith(record.SPENT_PREFIX):
            phases += [Spent.from_dict(phase) for phase in study_attrs[key] or []]
    return phases, unrecorded


def search_cost(trials: Iterable[FrozenTrial], study_attrs: Mapping[str, Any]) -> SearchCost:
    """The energy and time of the work recorded by ``trials`` and ``study_attrs`` (a study's user attrs)."""
    phases, unrecorded = recorded_phases(trials, study_attrs)
    return SearchCost.of(phases, unrecorded)


def study_search_cost(study: optuna.Study) -> SearchCost:
    """What ``study``'s recorded work used, in all."""
    return search_cost(study.get_trials(deepcopy=False), study.user_attrs)


def study_ledger(study: optuna.Study, what: str, profile: Any) -> Ledger:
    """A ledger of work of ``study``'s own that belongs to no trial (``what``: ``calibration``, ``confirm``,
    ``inference``), metered as the study's EPF is (``profile``: its
    :class:`~e2gcsearch.profiling.ProfileConfig`) and written to the study's ``spent:<what>:<run>`` attr,
    one per ledger, after every phase."""
    key = record.spent_key(what, new_run_id())
    return Ledger(MeterSpec(profile.backend, profile.power_w), lambda phases: study.set_user_attr(key, phases))


def paper_baselines(study: optuna.Study, trials: list[FrozenTrial] | None = None) -> dict[str, TrialRecord]:
    """Per network, the trial that reproduces its paper baseline (the reference of its break-even): the
    one the search queued as such, else one with the stock grouping, the widest first."""
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    study_attrs = study.user_attrs
    best: dict[str, tuple[tuple[bool, float, int], TrialRecord]] = {}
    for trial in trials:
        attrs = trial.user_attrs
        if trial.state != TrialState.COMPLETE or record.ARCH_CONFIG not in attrs or record.DUPLICATE_OF in attrs:
            continue
        stored = trial_record(study, trial, study_attrs)
        if baseline_label(stored) is None:
            continue
        rank = (record.BASELINE in attrs, stored.arch_config.width, -trial.number)
        arch = stored.arch_config.arch
        if arch not in best or rank > best[arch][0]:
            best[arch] = (rank, stored)
    return {arch: stored for arch, (_, stored) in best.items()}


def _epf_infer(stored: TrialRecord | None, batch_size: int | None) -> float | None:
    figures = stored.epf_infer.get(batch_size) if stored is not None and batch_size else None
    if not figures or figures.get("status", "ok") != "ok" or figures.get("epf_mj") is None:
        return None
    return float(figures["epf_mj"])


def _batch_size(front: FrontInfo, references: Iterable[TrialRecord]) -> int | None:
    """The batch size of the EPF-infer figures compared: the first EPF-infer objective's, else the
    smallest the references measured."""
    named = [o.batch_size for o in front.objectives if o.metric == record.EPF_INFER and o.batch_size]
    if named:
        return named[0]
    measured = sorted({batch for stored in references for batch in stored.epf_infer})
    return measured[0] if measured else None


def _break_even(cost: SearchCost, reference: TrialRecord | None, point: TrialRecord, batch: int | None) -> Any:
    """The frames, ``never``, ``reference`` or ``None`` (not known) for one point."""
    if reference is None or not cost.recorded or batch is None:
        return None
    if reference.number == point.number:
        return REFERENCE
    reference_epf, point_epf = _epf_infer(reference, batch), _epf_infer(point, batch)
    if reference_epf is None or point_epf is None:
        return None
    frames = break_even_frames(cost.energy_j, reference_epf, point_epf)
    return NEVER if frames is None else frames


def with_break_even(study: optuna.Study, front: FrontInfo, reference: int | None = None) -> FrontInfo:
    """``front`` with the study's search cost and a break-even column per point (``break_even_frames``:
    frames, ``never``, ``reference`` or ``None`` when not known; ``break_even_reference``: the trial
    compared with) against ``reference`` (a trial number), else each network's paper baseline.

    Raises:
        UnknownNameError / ConfigError: ``reference`` is no completed trial of the study (one line
            saying which trials there are).
    """
    trials = study.get_trials(deepcopy=False)
    cost = search_cost(trials, study.user_attrs)
    if reference is not None:
        chosen = trial_record(study, require_architecture(study, get_trial(study, reference)))
        references = {None: chosen}
    else:
        references = paper_baselines(study, trials)
    batch = _batch_size(front, references.values())
    by_number, study_attrs = {t.number: t for t in trials}, study.user_attrs
    values, compared = [], []
    for _, row in front.frame.iterrows():
        point = trial_record(study, by_number[int(row["trial"])], study_attrs)
        against = references.get(None) or references.get(point.arch_config.arch)
        values.append(_break_even(cost, against, point, batch))
        compared.append(against.number if against is not None else None)
    frame = front.frame.copy()
    frame["break_even_frames"] = pd.Series(values, index=frame.index, dtype=object)  # numbers and words
    frame["break_even_reference"] = pd.Series(compared, index=frame.index, dtype=object)
    estimate = cost.is_estimate or any(bool(r.energy_is_estimate) for r in references.values())
    compared = tuple(_named(stored, batch) for stored in references.values())
    info = BreakEven(cost, reference, batch, estimate, compared)
    return dataclasses.replace(front, frame=frame, break_even=info)


def _named(stored: TrialRecord, batch: int | None) -> str:
    """``trial 0: mobilenet_v1 E2GC G=1 w=0.75 at 22.33 mJ/frame``: a reference as the notes name it."""
    epf = _epf_infer(stored, batch)
    shown = f"at {epf:.4g} mJ/frame" if epf is not None else f"without EPF-infer@{batch}"
    return f"trial {stored.number}: {stored.arch_config.label()} {shown}"


def break_even_notes(front: FrontInfo) -> list[str]:
    """What a reader of the break-even column should know (nothing when the front has none)."""
    info = front.break_even
    if info is None:
        return []
    notes = [info.cost.line()]
    if not info.cost.recorded:
        return notes
    if info.batch_size is None:
        return notes + [
            "break-even needs inference EPF, which this study did not measure: 'run' measures it for the "
            "front unless --no-break-even, or search with an epf_infer objective or constraint (e.g. "
            "--objective epf_infer@1,top1)"
        ]
    against = "its network's paper baseline" if info.reference is None else "the reference"
    against += f" ({'; '.join(info.compared)})" if info.compared else ""
    notes.append(
        f"break-even: frames of inference (EPF-infer@{info.batch_size}) after which running a point instead of "
        f"{against} has saved the {info.cost.energy_label()} the search used; 'never' where it costs as much "
        "or more per frame" + (" (an estimate: time x a power model)" if info.is_estimate else "")
    )
    missing = front.frame["break_even_reference"].isna() if len(front.frame) else []
    if info.reference is None and any(missing):
        notes.append("some networks have no paper-baseline trial to compare with; name one with --reference TRIAL")
    return notes


__all__ = [
    "break_even_notes",
    "paper_baselines",
    "recorded_phases",
    "search_cost",
    "study_ledger",
    "study_search_cost",
    "with_break_even",
]
