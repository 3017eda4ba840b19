"""The Pareto front as data: rows of trials in, a typed :class:`FrontInfo` out, and its hypervolume.

Compute first, draw second: :func:`front_info_from_rows` and :func:`hypervolume_history` return
small typed results (:class:`FrontInfo`, :class:`HypervolumeHistory`); the command line prints them
with :func:`render_front` and :mod:`e2gcsearch.report.plots` draws them. Nothing here prints, and
nothing here reads a study: :func:`e2gcsearch.store.results.front_info` turns a study's trials into
rows and calls this module.

Front rules:
    * only COMPLETE trials are rows (failed, pruned and running trials never are);
    * infeasible rows (``feasible`` False) are never on the front (as Optuna's ``study.best_trials``);
    * a feasible row is dominated when another feasible row is at least as good in every objective
      and better in one, so identical objective vectors are both Pareto-optimal;
    * each row's ``front_status`` weighs that against the 95 % intervals of the objectives
      (``front``, ``tied``, ``dominated``, ``infeasible``; see :mod:`.dominance`): the front shown by
      default is every ``front`` and ``tied`` row, since the data cannot rank a tied row below the
      front.

Example:
    >>> from e2gcsearch.store.results import front_info      # doctest: +SKIP
    >>> front = front_info(study)                               # doctest: +SKIP
    >>> front.frame[["trial", "grouping", "epf@16", "top1"]]    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, UnknownNameError
from ..metrics import Metric
from ..paired import PairedResults
from .dominance import STATUSES, front_status, status_tests
from .search_cost import BreakEven, frames_text
from .tables import fixed, human_count, render, to_json

HV_MARGIN = 0.1  # reference point = nadir + 10 % of each objective's range


@dataclasses.dataclass(frozen=True, eq=False)
class FrontInfo:
    """The front of a study (or all its completed trials), ready to print or draw.

    Args:
        frame: one row per trial: trial, arch, module, value (G or g), grouping ("G=4"/"g=32"), width,
            one column per objective (named as the objective) with its 95 % interval
            (``<objective>_low``, ``<objective>_high``), params, macs, ``epf_mj@B`` per measured
            batch size, backend, resolution, feasible, violations, baseline, under_load (the EPF
            figures measured under other processes' load, as text; ``""`` when none), dominated (by
            point values), front_status. Sorted front first, then tied, dominated and infeasible rows,
            each by the first objective (best first), then trial number.
        objectives: the study's objectives, in the study's order.
        backend: the single energy backend of the rows, ``"mixed"``, or ``None`` when none was measured.
        study: the study's name.
        completed: completed trials that have a row (repeats of an earlier point are left out).
        feasible: how many of those are feasible.
        states: trials of the study by state name (``{"complete": 7, "running": 1}``).
        include_dominated: whether dominated and infeasible rows were kept.
        break_even: how the ``break_even_frames`` column was computed, when the frame has one
            (:func:`e2gcsearch.store.spending.with_break_even` adds it with the search's cost).
        paired: the trials' per-image top-1 results, which judged top-1 differences (the
            ``status_test`` column says, per row, ``paired`` or ``independent``); ``None``: none.
    """

    frame: pd.DataFrame
    objectives: tuple[Metric, ...]
    backend: str | None
    study: str
    completed: int
    feasible: int
    states: Mapping[str, int]
    include_dominated: bool = False
    break_even: BreakEven | None = None
    paired: PairedResults | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class HypervolumeHistory:
    """Hypervolume of the feasible front after each completed trial.

    Args:
        frame: columns trial, hypervolume (unitless fraction of the reference box), feasible, improved.
        study: the study's name.
        reference: the reference point in the objectives' own units (empty without a feasible trial).
        units: each objective's unit.
    """

    frame: pd.DataFrame
    study: str
    reference: Mapping[str, float]
    units: Mapping[str, str]


def non_dominated(losses: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``losses`` (n × k, smaller is better) that no other row dominates."""
    if len(losses) == 0:
        return np.zeros(0, dtype=bool)
    # dominated[i] = some j is <= i everywhere and < i somewhere; equal rows do not dominate each other.
    no_worse = (losses[None, :, :] <= losses[:, None, :]).all(axis=2)
    better = (losses[None, :, :] < losses[:, None, :]).any(axis=2)
    return ~(no_worse & better).any(axis=1)


def _losses(frame: pd.DataFrame, objectives: Sequence[Metric]) -> np.ndarray:
    columns = [frame[o.name].to_numpy(dtype=float) * (1.0 if o.direction == "minimize" else -1.0) for o in objectives]
    return np.stack(columns, axis=1) if columns else np.zeros((len(frame), 0))


def front_info_from_rows(
    rows: Sequence[Mapping[str, Any]],
    objectives: Sequence[Metric],
    study: str,
    states: Mapping[str, int],
    include_dominated: bool = False,
    paired: PairedResults | None = None,
) -> FrontInfo:
    """Mark and sort ``rows`` (one per completed trial, columns as :attr:`FrontInfo.frame` less
    ``dominated``); keep only the front unless ``include_dominated``. ``paired`` holds per-image
    top-1 results by trial number, which then judge top-1 differences (:mod:`.dominance`)."""
    objectives = tuple(objectives)
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        frame = pd.DataFrame(
            columns=[
                "trial",
                "arch",
                "module",
                "value",
                "grouping",
                "width",
                *[o.name for o in objectives],
                "params",
                "macs",
                "backend",
                "resolution",
                "feasible",
                "violations",
                "baseline",
                "dominated",
                "front_status",
            ]
        )
    else:
        frame["front_status"] = front_status(frame, objectives, paired)
        frame["status_test"] = status_tests(frame, objectives, paired)
        frame["dominated"] = frame["front_status"] != "front"
        first = objectives[0]
        frame["_group"] = [STATUSES.index(status) for status in frame["front_status"]]
        frame = frame.sort_values(
            ["_group", first.name, "trial"], ignore_index=True, ascending=[True, first.direction == "minimize", True]
        ).drop(columns="_group")
        if not include_dominated:
            frame = frame[frame["front_status"].isin(("front", "tied"))].reset_index(drop=True)
    backends = sorted({b for b in frame["backend"] if isinstance(b, str)})
    return FrontInfo(
        frame=frame,
        objectives=objectives,
        backend=backends[0] if len(backends) == 1 else ("mixed" if backends else None),
        study=study,
        completed=len(rows),
        feasible=int(sum(bool(row["feasible"]) for row in rows)),
        states=dict(states),
        include_dominated=include_dominated,
        paired=paired,
    )


def require_trials(front: FrontInfo) -> FrontInfo:
    """``front`` if it has rows, else a one-line :class:`DataError` saying why and what to do."""
    if len(front.frame):
        return front
    study = front.study
    if not front.completed:
        seen = ", ".join(f"{count} {state}" for state, count in front.states.items()) or "no trials"
        raise DataError(
            f"study {study!r} has no completed trial yet ({seen}); run 'e2gcsearch run --study {study}' "
            "(or wait for the running trials) and try again"
        )
    raise DataError(
        f"none of the {front.completed} completed trials of study {study!r} is feasible; "
        "see them with 'e2gcsearch front --all', or relax the search's --constraint"
    )


def plot_axes(front: FrontInfo) -> tuple[Metric, Metric]:
    """(x, y) objectives of the front plot: energy-like on x, accuracy-like on y when present."""
    objectives = front.objectives
    if len(objectives) < 2:
        raise UnknownNameError("a front plot needs a study with two or more objectives, e.g. --objective epf,top1")
    y = next((o for o in objectives if o.is_accuracy), objectives[1])
    x = next((o for o in objectives if o is not y and o.is_energy), next(o for o in objectives if o is not y))
    return x, y


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by ``points`` (n × k, minimisation) and bounded by ``reference``."""
    points = points[(points < reference).all(axis=1)]
    if len(points) == 0:
        return 0.0
    points = points[non_dominated(points)]  # dominated points add no volume; fewer slices below
    if points.shape[1] == 1:
        return float(reference[0] - points[:, 0].min())
    if points.shape[1] == 2:  # sweep along x, keep the best y so far
        volume, best_y = 0.0, reference[1]
        for x, y in points[np.lexsort((points[:, 1], points[:, 0]))]:
            if y < best_y:
                volume += (reference[0] - x) * (best_y - y)
                best_y = y
        return float(volume)
    # k > 2: slice along the last axis; each slab holds the (k-1)-volume of the points below it
    order = points[np.argsort(points[:, -1])]
    bounds = np.append(order[1:, -1], reference[-1])
    return float(
        sum(
            (top - order[i, -1]) * hypervolume(order[: i + 1, :-1], reference[:-1])
            for i, top in enumerate(bounds)
            if top > order[i, -1]
        )
    )


def hypervolume_history(front: FrontInfo) -> HypervolumeHistory:
    """Hypervolume of the feasible rows up to each row of ``front`` (all completed trials), by trial number.

    Objectives are normalised to [0, 1] between the best value seen (0) and a reference point of
    the worst value seen plus 10 % of the range (1), so the hypervolume is the fraction of that box
    the front dominates (unitless, comparable across objectives with different units).
    """
    frame = front.frame.sort_values("trial", ignore_index=True)
    objectives = front.objectives
    history = pd.DataFrame(
        {
            "trial": frame["trial"].astype(int),
            "hypervolume": 0.0,
            "feasible": frame["feasible"].astype(bool),
            "improved": False,
        }
    )
    units = {o.name: o.unit for o in objectives}
    feasible = frame["feasible"].to_numpy(dtype=bool)
    losses = _losses(frame, objectives)
    if not feasible.any():
        return HypervolumeHistory(history, front.study, {}, units)
    low, high = losses[feasible].min(axis=0), losses[feasible].max(axis=0)
    span = np.where(high > low, high - low, np.maximum(np.abs(high), 1.0))
    reference = high + HV_MARGIN * span
    normalised = (losses - low) / (reference - low)
    values, current, points = [], 0.0, np.zeros((0, len(objectives)))
    for index in range(len(frame)):
        point = normalised[index]
        dominated = bool(len(points)) and bool(((points <= point).all(axis=1) & (points < point).any(axis=1)).any())
        if feasible[index] and not dominated:  # only a new non-dominated point can change the volume
            points = np.vstack([points, point])
            points = points[non_dominated(points)]
            current = hypervolume(points, np.ones(len(objectives)))
        values.append(current)
    history["hypervolume"] = values
    history["improved"] = history["hypervolume"].diff().fillna(history["hypervolume"]) > 1e-12
    signs = [1.0 if o.direction == "minimize" else -1.0 for o in objectives]
    reference_point = {o.name: float(r * s) for o, r, s in zip(objectives, reference, signs)}
    return HypervolumeHistory(history, front.study, reference_point, units)


def _note(row: pd.Series) -> str:
    notes = []
    if not row["feasible"]:
        if row["violations"]:
            notes.append(f"violates {row['violations']}")
    if isinstance(row["baseline"], str):
        notes.append(f"paper baseline {row['baseline']}")
    if isinstance(row.get("under_load"), str) and row["under_load"]:  # measured beside other processes' work
        notes.append(f"under load: {row['under_load']}")
    return ", ".join(notes)


def render_front(front: FrontInfo, fmt: str) -> str:
    """``front`` as text: raw values for csv/json, human columns with units for table/markdown."""
    frame, backend, objectives = front.frame, front.backend, front.objectives
    if fmt == "json":
        return to_json(
            {
                "study": front.study,
                "objectives": [dataclasses.asdict(o) for o in objectives],
                "backend": backend,
                "completed": front.completed,
                "feasible": front.feasible,
                **(_break_even_json(front.break_even) if front.break_even is not None else {}),
                "rows": frame.to_dict(orient="records"),
            }
        )
    if fmt == "csv":
        return render(frame, "csv")
    as_objective = {f"epf_mj@{o.batch_size}" for o in objectives if o.metric == "epf"}  # not epf_infer: another step
    epf_columns = [c for c in frame.columns if c.startswith("epf_mj@") and c not in as_objective]
    shown = frame.copy()
    shown["note"] = [_note(row) for _, row in frame.iterrows()] if len(frame) else []
    for objective in objectives:
        shown[objective.name] = _with_interval(frame, objective)
    columns = ["trial", "arch", "module", "grouping", "width", "front_status", *[o.name for o in objectives]]
    if "status_test" in frame and frame["status_test"].astype(bool).any():
        columns.insert(columns.index("front_status") + 1, "status_test")
    columns += [c for c in ("params", "macs") if c not in columns] + epf_columns
    if "break_even_frames" in frame and frame["break_even_frames"].notna().any():  # all unknown: a note says why
        columns.append("break_even_frames")
    if backend == "mixed":
        columns.append("backend")
    if shown["note"].astype(bool).any():
        columns.append("note")
    headers = {
        "grouping": "G/g",
        "macs": "MACs",
        "front_status": "status",
        "status_test": "top-1 test",
        **{o.name: f"{o.header(backend)} ± 95 %" if _has_interval(frame, o) else o.header(backend) for o in objectives},
        **{c: f"EPF@{c.split('@')[1]} (mJ/frame, {backend or 'unmeasured'})" for c in epf_columns},
        "break_even_frames": front.break_even.header() if front.break_even is not None else "break-even (frames)",
    }
    formatters = {"width": fixed(2), "params": human_count, "macs": human_count, **{c: fixed(3) for c in epf_columns}}
    formatters["break_even_frames"] = frames_text
    for objective in objectives:  # already text, with its interval (params and macs as objectives too)
        formatters.pop(objective.name, None)
    return render(shown[columns], fmt, formatters, headers)


def _break_even_json(info: BreakEven) -> dict[str, Any]:
    """The search's cost and how the break-even column was computed, for ``--format json``."""
    return {"search_cost": info.cost.to_dict(), "break_even": info.to_dict()}


def _objective_formatter(objective: Metric):
    if objective.metric in ("params", "macs"):
        return human_count
    return fixed(2) if objective.is_accuracy else fixed(3)


def _has_interval(frame: pd.DataFrame, objective: Metric) -> bool:
    """True when some row has a measured (non-exact) interval; a count's are all exact."""
    low, high = f"{objective.name}_low", f"{objective.name}_high"
    if low not in frame or high not in frame:
        return False
    width = frame[high] - frame[low]
    return bool(width.gt(0).any() or width.isna().any())


def _with_interval(frame: pd.DataFrame, objective: Metric) -> list[str]:
    """Each value with its 95 % interval as ``value ± half-width`` (exact values stay bare)."""
    formatter = _objective_formatter(objective)
    digits = 2 if objective.is_accuracy else 3
    if not _has_interval(frame, objective):
        return [formatter(value) for value in frame[objective.name]]
    shown = []
    for value, low, high in zip(frame[objective.name], frame[f"{objective.name}_low"], frame[f"{objective.name}_high"]):
        if pd.isna(low) or pd.isna(high):  # spread not recorded (one window, or a study from before)
            shown.append(f"{formatter(value)} ± ?")
        else:
            half = (high - low) / 2
            shown.append(f"{formatter(value)} ± {half:.{digits}f}" if half > 0 else formatter(value))
    return shown


__all__ = [
    "FrontInfo",
    "HypervolumeHistory",
    "front_info_from_rows",
    "hypervolume",
    "hypervolume_history",
    "non_dominated",
    "plot_axes",
    "render_front",
    "require_trials",
]
