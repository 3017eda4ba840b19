"""The Pareto front of a study as data: one DataFrame row per trial, and the hypervolume history.

Compute first, draw second: :func:`front_frame` and :func:`hypervolume_history` return plain
DataFrames (metadata such as objectives and the energy backend in ``frame.attrs``); the command line
prints them with :func:`render_front` and :mod:`e2gcsearch.plots` draws them. Nothing here prints.

Front rules:
    * only COMPLETE trials appear (failed, pruned and running trials never do);
    * a trial is infeasible when it records ``infeasible`` or violates an Optuna constraint (> 0);
      infeasible trials are never on the front (as Optuna's ``study.best_trials``);
    * a feasible trial is dominated when another feasible trial is at least as good in every
      objective and better in one, so identical objective vectors are both Pareto-optimal.

Example:
    >>> frame = front_frame(study)                          # doctest: +SKIP
    >>> frame[["trial", "grouping", "epf@16", "top1"]]      # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from ..errors import ConfigError, DataError, UnknownNameError
from ..models import get_entry
from ..search.record import ARCH_CONFIG, DUPLICATE_OF, FAIL_REASON, OBJECTIVES, TrialRecord
from .tables import fixed, human_count, render, to_json

ENERGY_METRICS = ("epf",)
METRIC_LABELS = {"epf": "EPF", "top1": "top-1", "top5": "top-5", "macs": "MACs", "params": "params",
                 "latency": "latency"}
ARCH_LABELS = {"mobilenet_v1": "MobileNet-V1", "resnext50": "ResNeXt-50"}
HV_MARGIN = 0.1  # reference point = nadir + 10 % of each objective's range


@dataclasses.dataclass(frozen=True)
class Objective:
    """One optimised quantity, as stored in the study's ``objectives`` attr."""

    name: str
    direction: str  # "minimize" | "maximize"
    metric: str = ""
    batch_size: int | None = None
    unit: str = ""

    def header(self, backend: str | None = None) -> str:
        """A column header with unit, e.g. ``EPF@16 (mJ/frame, estimate)`` or ``top-1 (%, proxy)``."""
        label = METRIC_LABELS.get(self.metric, self.name)
        if self.batch_size is not None and "@" not in label:
            label = f"{label}@{self.batch_size}"
        notes = [self.unit] if self.unit else []
        if self.metric in ENERGY_METRICS and backend:
            notes.append(backend)
        if self.metric in ("top1", "top5"):
            notes.append("proxy")
        return f"{label} ({', '.join(notes)})" if notes else label


def study_objectives(study: optuna.Study) -> list[Objective]:
    """The study's objectives (from its ``objectives`` attr, else Optuna's metric names)."""
    directions = [d.name.lower() for d in study.directions]
    stored = study.user_attrs.get(OBJECTIVES)
    if stored:
        return [Objective(name=o["name"], direction=o.get("direction", d), metric=o.get("metric", o["name"]),
                          batch_size=o.get("batch_size"), unit=o.get("unit") or "")
                for o, d in zip(stored, directions)]
    names = study.metric_names or [f"value{i}" for i in range(len(directions))]
    return [Objective(name=n, direction=d, metric=n) for n, d in zip(names, directions)]


def get_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    """The COMPLETE trial ``number`` of ``study``; one-line errors for unknown or unfinished trials."""
    trials = study.get_trials(deepcopy=False)
    match = next((t for t in trials if t.number == number), None)
    if match is None:
        if not trials:
            raise UnknownNameError(f"study {study.study_name!r} has no trials yet; run 'e2gcsearch run "
                                   f"--study {study.study_name}' first")
        raise UnknownNameError(f"study {study.study_name!r} has no trial {number}; its trials are numbered "
                               f"0-{max(t.number for t in trials)} (see 'e2gcsearch front --all')")
    if match.state != TrialState.COMPLETE:
        reason = match.user_attrs.get(FAIL_REASON)
        raise ConfigError(f"trial {number} of study {study.study_name!r} is {match.state.name}"
                          f"{f' ({reason})' if reason else ''}, not COMPLETE; pick a completed trial "
                          "(see 'e2gcsearch front --all')")
    return match


def baseline_label(record: TrialRecord) -> str | None:
    """The paper baseline a trial reproduces (stored by the search, or recognised from its grouping)."""
    if record.baseline:  # e.g. "mobilenet_v1 G=1 (paper baseline)"; the notes and legend say "paper baseline"
        label = re.sub(r"\s*\(paper baseline\)", "", record.baseline)
        arch, _, rest = label.partition(" ")
        return f"{ARCH_LABELS.get(arch, arch)} {rest}".strip()
    stock = get_entry(record.arch.arch).baseline
    if (stock.group_size, stock.groups) == (record.arch.group_size, record.arch.groups):
        symbol = "G" if stock.group_size is not None else "g"
        return f"{ARCH_LABELS.get(stock.arch, stock.arch)} {symbol}={stock.grouping_value}"
    return None


def is_feasible(trial: optuna.trial.FrozenTrial) -> bool:
    """False when the trial records ``infeasible`` or any Optuna constraint value is > 0."""
    constraints = trial.constraints  # {name: value} (Optuna >= 5)
    values = constraints.values() if isinstance(constraints, dict) else constraints
    return not trial.user_attrs.get("infeasible", False) and all(value <= 0.0 for value in values)


def non_dominated(losses: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``losses`` (n × k, smaller is better) that no other row dominates."""
    if len(losses) == 0:
        return np.zeros(0, dtype=bool)
    # dominated[i] = some j is <= i everywhere and < i somewhere; equal rows do not dominate each other.
    no_worse = (losses[None, :, :] <= losses[:, None, :]).all(axis=2)
    better = (losses[None, :, :] < losses[:, None, :]).any(axis=2)
    return ~(no_worse & better).any(axis=1)


def _losses(frame: pd.DataFrame, objectives: list[Objective]) -> np.ndarray:
    columns = [frame[o.name].to_numpy(dtype=float) * (1.0 if o.direction == "minimize" else -1.0)
               for o in objectives]
    return np.stack(columns, axis=1) if columns else np.zeros((len(frame), 0))


def _row(trial: optuna.trial.FrozenTrial, objectives: list[Objective]) -> dict[str, Any]:
    record = TrialRecord.from_trial(trial)
    arch = record.arch
    row: dict[str, Any] = {
        "trial": trial.number, "arch": arch.arch, "module": arch.module, "value": arch.grouping_value,
        "grouping": arch.grouping, "width": arch.width,
    }
    row.update({o.name: float(v) for o, v in zip(objectives, trial.values)})
    row.setdefault("params", record.params)
    row.setdefault("macs", record.macs)
    for batch in sorted(record.epf):
        row[f"epf_mj@{batch}"] = record.epf_mj(batch)
    row["backend"] = record.energy_backend
    row["resolution"] = record.resolution
    row["feasible"] = is_feasible(trial)
    row["violations"] = "; ".join(record.violations)
    row["baseline"] = baseline_label(record)
    return row


def front_frame(study: optuna.Study, include_dominated: bool = False) -> pd.DataFrame:
    """The Pareto-optimal trials of ``study`` (all completed trials with ``include_dominated``).

    Columns: trial, arch, module, value (G or g), grouping ("G=4"/"g=32"), width, one column per
    objective (named as the objective), params, macs, ``epf_mj@B`` per measured batch size,
    backend, resolution, feasible, violations, baseline, dominated. Rows are sorted front first,
    then dominated, then infeasible trials, each by the first objective (best first), then trial
    number. ``frame.attrs`` holds ``study``,
    ``objectives`` (list of dicts), ``backend`` (the single energy backend, or "mixed"),
    ``completed`` and ``feasible`` counts. Trials that repeat an earlier point are left out.
    """
    objectives = study_objectives(study)
    every = study.get_trials(deepcopy=False)
    # A repeat of an already measured point (see search.trial) adds no row of its own.
    trials = [t for t in every if t.state == TrialState.COMPLETE and DUPLICATE_OF not in t.user_attrs
              and t.values is not None and all(math.isfinite(v) for v in t.values)]
    foreign = [t.number for t in trials if ARCH_CONFIG not in t.user_attrs]
    if foreign:
        raise ConfigError(f"trial {foreign[0]} of study {study.study_name!r} records no architecture, so the study "
                          "was not made by 'e2gcsearch run'; pick one that was (see 'e2gcsearch studies')")
    frame = pd.DataFrame([_row(t, objectives) for t in trials])
    if frame.empty:
        frame = pd.DataFrame(columns=["trial", "arch", "module", "value", "grouping", "width",
                                      *[o.name for o in objectives], "params", "macs", "backend",
                                      "resolution", "feasible", "violations", "baseline", "dominated"])
    else:
        feasible = frame["feasible"].to_numpy(dtype=bool)
        on_front = np.zeros(len(frame), dtype=bool)
        on_front[feasible] = non_dominated(_losses(frame[feasible], objectives))
        frame["dominated"] = ~on_front
        first = objectives[0]
        frame["_group"] = np.where(on_front, 0, np.where(feasible, 1, 2))  # front, dominated, infeasible
        frame = frame.sort_values(["_group", first.name, "trial"], ignore_index=True,
                                  ascending=[True, first.direction == "minimize", True]).drop(columns="_group")
        if not include_dominated:
            frame = frame[~frame["dominated"]].reset_index(drop=True)
    backends = sorted({b for b in frame["backend"] if isinstance(b, str)})
    frame.attrs.update({
        "study": study.study_name,
        "objectives": [dataclasses.asdict(o) for o in objectives],
        "backend": backends[0] if len(backends) == 1 else ("mixed" if backends else None),
        "completed": len(trials),
        "states": {state.name.lower(): sum(t.state == state for t in every) for state in TrialState
                   if any(t.state == state for t in every)},
        "feasible": int(sum(is_feasible(t) for t in trials)),
        "include_dominated": include_dominated,
    })
    return frame


def require_trials(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` if it has rows, else a one-line :class:`DataError` saying why and what to do."""
    if len(frame):
        return frame
    study = frame.attrs.get("study", "")
    states = frame.attrs.get("states", {})
    if not frame.attrs.get("completed"):
        seen = ", ".join(f"{count} {state}" for state, count in states.items()) or "no trials"
        raise DataError(f"study {study!r} has no completed trial yet ({seen}); run 'e2gcsearch run --study {study}' "
                        "(or wait for the running trials) and try again")
    raise DataError(f"none of the {frame.attrs['completed']} completed trials of study {study!r} is feasible; "
                    "see them with 'e2gcsearch front --all', or relax the search's --constraint")


def frame_objectives(frame: pd.DataFrame) -> list[Objective]:
    return [Objective(**o) for o in frame.attrs.get("objectives", [])]


def plot_axes(frame: pd.DataFrame) -> tuple[Objective, Objective]:
    """(x, y) objectives of the front plot: energy-like on x, accuracy-like on y when present."""
    objectives = frame_objectives(frame)
    if len(objectives) < 2:
        raise UnknownNameError("a front plot needs a study with two or more objectives, e.g. --objective epf,top1")
    y = next((o for o in objectives if o.metric in ("top1", "top5")), objectives[1])
    x = next((o for o in objectives if o is not y and o.metric in ENERGY_METRICS),
             next(o for o in objectives if o is not y))
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
    return float(sum((top - order[i, -1]) * hypervolume(order[: i + 1, :-1], reference[:-1])
                     for i, top in enumerate(bounds) if top > order[i, -1]))


def hypervolume_history(study: optuna.Study) -> pd.DataFrame:
    """Hypervolume of the feasible trials up to each completed trial, in trial-number order.

    Objectives are normalised to [0, 1] between the best value seen (0) and a reference point of
    the worst value seen plus 10 % of the range (1), so the hypervolume is the fraction of that box
    the front dominates (unitless, comparable across objectives with different units).
    Columns: trial, hypervolume, feasible, improved. ``attrs["reference"]`` holds the reference
    point in the objectives' own units.
    """
    frame = front_frame(study, include_dominated=True).sort_values("trial", ignore_index=True)
    objectives = frame_objectives(frame)
    history = pd.DataFrame({"trial": frame["trial"].astype(int), "hypervolume": 0.0,
                            "feasible": frame["feasible"].astype(bool), "improved": False})
    history.attrs.update({"study": study.study_name, "reference": {}, "units": {o.name: o.unit for o in objectives}})
    feasible = frame["feasible"].to_numpy(dtype=bool)
    losses = _losses(frame, objectives)
    if not feasible.any():
        return history
    low, high = losses[feasible].min(axis=0), losses[feasible].max(axis=0)
    span = np.where(high > low, high - low, np.maximum(np.abs(high), 1.0))
    reference = high + HV_MARGIN * span
    normalised = (losses - low) / (reference - low)
    values, current, front = [], 0.0, np.zeros((0, len(objectives)))
    for index in range(len(frame)):
        point = normalised[index]
        dominated = bool(len(front)) and bool(((front <= point).all(axis=1) & (front < point).any(axis=1)).any())
        if feasible[index] and not dominated:  # only a new non-dominated point can change the volume
            front = np.vstack([front, point])
            front = front[non_dominated(front)]
            current = hypervolume(front, np.ones(len(objectives)))
        values.append(current)
    history["hypervolume"] = values
    history["improved"] = history["hypervolume"].diff().fillna(history["hypervolume"]) > 1e-12
    signs = [1.0 if o.direction == "minimize" else -1.0 for o in objectives]
    history.attrs["reference"] = {o.name: float(r * s) for o, r, s in zip(objectives, reference, signs)}
    return history


def _note(row: pd.Series) -> str:
    notes = []
    if not row["feasible"]:
        notes.append(f"infeasible ({row['violations']})" if row["violations"] else "infeasible")
    elif row["dominated"]:
        notes.append("dominated")
    if isinstance(row["baseline"], str):
        notes.append(f"paper baseline {row['baseline']}")
    return ", ".join(notes)


def render_front(frame: pd.DataFrame, fmt: str) -> str:
    """``frame`` as text: raw values for csv/json, human columns with units for table/markdown."""
    backend = frame.attrs.get("backend")
    objectives = frame_objectives(frame)
    if fmt == "json":
        document = {key: frame.attrs.get(key) for key in ("study", "objectives", "backend", "completed", "feasible")}
        document["rows"] = frame.to_dict(orient="records")
        return to_json(document)
    if fmt == "csv":
        return render(frame, "csv")
    as_objective = {f"epf_mj@{o.batch_size}" for o in objectives if o.metric in ENERGY_METRICS}
    epf_columns = [c for c in frame.columns if c.startswith("epf_mj@") and c not in as_objective]
    shown = frame.copy()
    shown["note"] = [_note(row) for _, row in frame.iterrows()] if len(frame) else []
    columns = ["trial", "arch", "module", "grouping", "width", *[o.name for o in objectives]]
    columns += [c for c in ("params", "macs") if c not in columns] + epf_columns
    if backend == "mixed":
        columns.append("backend")
    if shown["note"].astype(bool).any():
        columns.append("note")
    headers = {"grouping": "G/g", "macs": "MACs", **{o.name: o.header(backend) for o in objectives},
               **{c: f"EPF@{c.split('@')[1]} (mJ/frame, {backend or 'unmeasured'})" for c in epf_columns}}
    formatters = {"width": fixed(2), "params": human_count, "macs": human_count,
                  **{c: fixed(3) for c in epf_columns},
                  **{o.name: _objective_formatter(o) for o in objectives}}
    return render(shown[columns], fmt, formatters, headers)


def _objective_formatter(objective: Objective):
    if objective.metric in ("params", "macs"):
        return human_count
    return fixed(2) if objective.metric in ("top1", "top5") else fixed(3)


__all__ = [
    "Objective",
    "baseline_label",
    "front_frame",
    "get_trial",
    "hypervolume",
    "hypervolume_history",
    "is_feasible",
    "non_dominated",
    "plot_axes",
    "require_trials",
    "render_front",
    "study_objectives",
]
