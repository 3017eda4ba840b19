"""Dominance that respects noise: which points of a front are real, and which pairs are contested.

Every objective value comes with a 95 % interval (``<objective>_low``, ``<objective>_high``; see
:mod:`e2gcsearch.stats`). On top of the usual Pareto dominance of the point values:

* ``front``: no feasible point dominates it;
* ``tied``: dominated, but only by points whose advantage lies inside the intervals — in no
  objective is the dominating point's whole interval better than this point's interval, so the
  data cannot tell the two apart;
* ``dominated``: some point dominates it and is better beyond the intervals in at least one
  objective;
* ``infeasible``: violates a constraint (never on the front).

So two points whose intervals overlap in every objective never dominate each other. Two neighbouring
points of the front (front and tied rows ordered by the first objective) are **contested** when the
intervals cannot order them: neither is better than the other beyond the intervals in an objective
(:func:`contested_pairs`); ``e2gcsearch confirm`` measures such pairs further.

Example:
    >>> import pandas as pd
    >>> from e2gcsearch.metrics import Metric
    >>> objectives = (Metric.of("epf", 16), Metric.of("top1"))
    >>> frame = pd.DataFrame({"feasible": [True, True, True],
    ...     "epf@16": [10.0, 11.0, 30.0], "epf@16_low": [9.5, 10.5, 29.0], "epf@16_high": [10.5, 11.5, 31.0],
    ...     "top1": [90.0, 89.0, 80.0], "top1_low": [87.0, 86.0, 76.0], "top1_high": [93.0, 92.0, 84.0]})
    >>> front_status(frame, objectives)
    ['front', 'tied', 'dominated']
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..metrics import Metric
from ..paired import INDEPENDENT, PAIRED, PairedDifference, PairedResults

STATUSES = ("front", "tied", "dominated", "infeasible")
SESSION_SPAN_S = 3600  # front figures measured further apart than this may come from different sessions


def bounds(frame: pd.DataFrame, objectives: Sequence[Metric]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(value, best bound, worst bound) per row and objective as losses (smaller is better).

    A missing interval (a row without ``<objective>_low``/``_high``) is the value itself.
    """
    values, best, worst = [], [], []
    for objective in objectives:
        value = frame[objective.name].to_numpy(dtype=float)
        low = _column(frame, f"{objective.name}_low", value)
        high = _column(frame, f"{objective.name}_high", value)
        if objective.direction == "minimize":
            values.append(value), best.append(low), worst.append(high)
        else:
            values.append(-value), best.append(-high), worst.append(-low)
    shape = (len(frame), 0)

    def stack(columns: list) -> np.ndarray:
        return np.stack(columns, axis=1) if columns else np.zeros(shape)

    return stack(values), stack(best), stack(worst)


def _column(frame: pd.DataFrame, name: str, fallback: np.ndarray) -> np.ndarray:
    if name not in frame:
        return fallback
    column = frame[name].to_numpy(dtype=float)
    return np.where(np.isnan(column), fallback, column)


def front_status(frame: pd.DataFrame, objectives: Sequence[Metric], paired: PairedResults | None = None) -> list[str]:
    """The status of every row of ``frame`` (see the module docstring); needs a ``feasible`` column,
    and a ``trial`` column when ``paired`` judges top-1 differences (:func:`status_tests`)."""
    if frame.empty:
        return []
    feasible = frame["feasible"].to_numpy(dtype=bool)
    judge = _Judge(frame, objectives, paired)
    values = judge.values
    # dominates[j, i]: j is no worse than i everywhere and better somewhere (point values)
    dominates = (values[:, None, :] <= values[None, :, :]).all(axis=2) & (values[:, None, :] < values[None, :, :]).any(
        axis=2
    )
    dominates &= feasible[:, None] & feasible[None, :]
    status = []
    for i in range(len(frame)):
        if not feasible[i]:
            status.append("infeasible")
        elif not dominates[:, i].any():
            status.append("front")
        else:
            beyond = any(judge.beyond(j, i) for j in np.flatnonzero(dominates[:, i]))
            status.append("dominated" if beyond else "tied")
    return status


def status_tests(frame: pd.DataFrame, objectives: Sequence[Metric], paired: PairedResults | None) -> list[str]:
    """Per row, the test its top-1 differences were judged by: ``paired`` (per-image results on the
    study's validation images, :mod:`e2gcsearch.paired`) or ``independent`` (the two rows' own 95 %
    intervals: no per-image results); ``""`` when no objective is top-1."""
    if not any(o.metric == "top1" for o in objectives):
        return [""] * len(frame)
    return [PAIRED if paired is not None and trial in paired else INDEPENDENT for trial in frame.get("trial", [])]


class _Judge:
    """Whether one row is better than another beyond the noise, per objective: top-1 by the paired test
    where both rows have per-image results, everything else (and top-1 without them) by disjoint
    95 % intervals."""

    def __init__(self, frame: pd.DataFrame, objectives: Sequence[Metric], paired: PairedResults | None) -> None:
        self.values, self.best, self.worst = bounds(frame, objectives)
        self.objectives = tuple(objectives)
        self.trials = [int(t) for t in frame["trial"]] if "trial" in frame and paired is not None else None
        self.paired = paired

    def difference(self, k: int, j: int, i: int) -> PairedDifference | None:
        """The paired top-1 difference of rows ``j`` − ``i`` when objective ``k`` is top-1 and both have
        comparable per-image results."""
        if self.trials is None or self.objectives[k].metric != "top1":
            return None
        return self.paired.difference(self.trials[j], self.trials[i])

    def better(self, k: int, j: int, i: int) -> bool:
        difference = self.difference(k, j, i)
        if difference is None:
            return bool(self.worst[j, k] < self.best[i, k])
        return difference.low > 0 if self.objectives[k].direction == "maximize" else difference.high < 0

    def beyond(self, j: int, i: int) -> bool:
        """True when row ``j`` is better than row ``i`` beyond the noise in some objective."""
        return any(self.better(k, j, i) for k in range(len(self.objectives)))

    def overlap(self, k: int, a: int, b: int) -> float:
        """How far rows ``a`` and ``b`` overlap in objective ``k`` (see :func:`contested_pairs`)."""
        difference = self.difference(k, a, b)
        if difference is None:
            return _overlap(self.best[a, [k]], self.worst[a, [k]], self.best[b, [k]], self.worst[b, [k]])
        half = (difference.high - difference.low) / 2
        return 1.0 - min(1.0, abs(difference.diff) / half) if half > 0 else 1.0


def contested_pairs(
    frame: pd.DataFrame, objectives: Sequence[Metric], paired: PairedResults | None = None
) -> list[tuple[int, int, float]]:
    """Neighbouring front/tied rows (positions in ``frame``, ordered by the first objective) that the
    data cannot order: neither is better than the other beyond the noise in any objective (top-1 by
    the paired test where both have per-image results). Each pair comes with its overlap (the mean,
    over objectives, of the overlap of the two intervals as a fraction of the narrower one, or for a
    paired top-1 difference 1 − |difference| ÷ its half-width; 1 = no difference at all), largest first."""
    if frame.empty or "front_status" not in frame or not objectives:
        return []
    judge = _Judge(frame, objectives, paired)
    rows = [i for i, status in enumerate(frame["front_status"]) if status in ("front", "tied")]
    rows.sort(key=lambda i: (judge.values[i, 0], i))
    pairs = []
    for a, b in zip(rows, rows[1:]):
        if judge.beyond(a, b) or judge.beyond(b, a):
            continue  # one of them is better beyond the noise somewhere: the data order them
        pairs.append((a, b, float(np.mean([judge.overlap(k, a, b) for k in range(len(objectives))]))))
    return sorted(pairs, key=lambda pair: -pair[2])


def _overlap(best_a: np.ndarray, worst_a: np.ndarray, best_b: np.ndarray, worst_b: np.ndarray) -> float:
    low, high = np.maximum(best_a, best_b), np.minimum(worst_a, worst_b)
    narrower = np.minimum(worst_a - best_a, worst_b - best_b)
    # an exact value (zero width) overlaps fully when it lies inside the other interval
    fraction = np.where(
        narrower > 0,
        np.clip(high - low, 0.0, None) / np.where(narrower > 0, narrower, 1.0),
        (low <= high).astype(float),
    )
    return float(np.mean(fraction)) if len(fraction) else 0.0


def noise_notes(frame: pd.DataFrame, objectives: Sequence[Metric], paired: PairedResults | None = None) -> list[str]:
    """Sentences that say how far the data separate the front's points (empty when they all do).

    Example:
        >>> import pandas as pd
        >>> from e2gcsearch.metrics import Metric
        >>> frame = pd.DataFrame({"feasible": [True, True], "front_status": ["front", "tied"],
        ...     "top1": [90.0, 89.0], "top1_low": [87.0, 86.0], "top1_high": [93.0, 92.0]})
        >>> noise_notes(frame, [Metric.of("top1")])[0]
        '1 trial is tied with the front: its disadvantage lies inside the 95 % intervals, so it may belong on it'
    """
    if frame.empty or "front_status" not in frame:
        return []
    notes = []
    tied = int((frame["front_status"] == "tied").sum())
    if tied:
        notes.append(
            f"{tied} trial{'s are' if tied > 1 else ' is'} tied with the front: "
            f"{'their' if tied > 1 else 'its'} disadvantage lies inside the 95 % intervals, "
            f"so {'they' if tied > 1 else 'it'} may belong on it"
        )
    contested = contested_pairs(frame, objectives, paired)
    if contested:
        notes.append(
            f"{len(contested)} pair{'s' if len(contested) > 1 else ''} of front/tied trials cannot be told "
            "apart by the data; 'e2gcsearch confirm' measures them further (more EPF windows, more "
            "training seeds)"
        )
    notes += paired_notes(frame, objectives, paired)
    for objective in objectives:
        spread = _within_noise(frame, objective, paired)
        if spread:
            notes.append(spread)
        unknown = sum(
            1
            for low, high in zip(frame.get(f"{objective.name}_low", []), frame.get(f"{objective.name}_high", []))
            if pd.isna(low) or pd.isna(high)
        )
        if unknown:
            notes.append(
                f"{unknown} trial(s) show {objective.name} without an interval ('± ?'): measured with one "
                "window, or by a version that did not record the windows; 'e2gcsearch confirm' adds windows"
            )
    accuracy = [o for o in objectives if o.is_accuracy]
    seeded = paired is not None and paired.seed_noise is not None
    if accuracy and "seeds" in frame and not seeded and not (frame["seeds"].fillna(0) >= 2).any():
        notes.append(
            "top-1 intervals count the validation sample only: seed noise is not estimated yet "
            "('e2gcsearch run' trains a few points again unless --no-noise-probes or over its budget; "
            "--proxy-seeds 2, or 'e2gcsearch confirm' adds seeds to contested trials)"
        )
    notes += sitting_notes(frame, objectives)
    session = session_note(frame)
    if session:
        notes.append(session)
    return notes


def sitting_notes(frame: pd.DataFrame, objectives: Sequence[Metric]) -> list[str]:
    """Per EPF objective with a ``<objective>_sitting_cv`` column: whether its intervals include the
    scatter between sittings (estimated from trials measured twice) or cover one sitting only."""
    notes = []
    for objective in objectives:
        column = f"{objective.name}_sitting_cv"
        if frame.empty or column not in frame:
            continue
        cv = frame[column].dropna()
        if cv.empty:
            notes.append(
                f"{objective.name} intervals count one sitting's windows only, and between sittings EPF "
                "scatters by more (docs/energy.md#how-far-one-measurement-can-be-trusted); 'e2gcsearch run' "
                "measures a few points again unless --no-noise-probes or over its budget, and 'e2gcsearch "
                "confirm --remeasure-epf' measures every trial again; either puts that scatter into them"
            )
        else:
            notes.append(
                f"{objective.name} intervals include the scatter between sittings, {100 * cv.iloc[0]:.2g} % "
                "of the value (from the trials measured twice)"
            )
    return notes


def session_note(frame: pd.DataFrame) -> str | None:
    """A sentence when the front's measured figures (EPF, latency: columns ``measured_from`` and
    ``measured_to``, UTC minutes) come from sessions more than :data:`SESSION_SPAN_S` apart (a pause
    that long between one sitting and the next: a cached measurement from an earlier session, or a
    ``confirm`` run later), or some do not say when: an interval covers one sitting, not the drift
    between sessions. A long search that measures all along is one session.

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"front_status": ["front", "front", "tied"],
        ...     "measured_from": ["2026-11-30 21:05", "2026-12-01 08:00", "2026-12-01 09:30"],
        ...     "measured_to": ["2026-11-30 21:05", "2026-12-01 08:50", "2026-12-01 09:40"]})
        >>> session_note(frame)[:99]
        "the front's EPF comes from 2 sessions: measured 2026-11-30 21:05 and 2026-12-01 08:00 to 09:40 UTC;"
    """
    if "measured_from" not in frame or "front_status" not in frame:
        return None
    rows = frame[frame["front_status"].isin(("front", "tied"))]
    known = rows.dropna(subset=["measured_from", "measured_to"])
    unknown = len(rows) - len(known)
    if len(rows) < 2 or known.empty:
        return None
    fix = (
        "compare EPF measured in one session: 'e2gcsearch confirm --remeasure-epf' measures every trial's EPF "
        "again now (no training)"
    )
    sessions = _sessions(list(zip(known["measured_from"], known["measured_to"])))
    if len(sessions) > 1:
        spans = " and ".join(_span(first, last) for first, last in sessions)
        return (
            f"the front's EPF comes from {len(sessions)} sessions: measured {spans} UTC"
            + (f" ({unknown} of its trials do not record when)" if unknown else "")
            + "; EPF drifts between "
            "sessions by more than one sitting's interval (docs/energy.md#how-far-one-measurement-can-be-"
            f"trusted) and the profile cache reuses earlier sessions' measurements, so {fix}"
        )
    if unknown:
        return (
            f"{unknown} of the front's trials do not record when their EPF was measured (a measurement cached "
            f"by an older version), so they may come from another session than the rest; {fix}"
        )
    return None


def _sessions(spans: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Merge measuring spans (UTC minutes) that lie within :data:`SESSION_SPAN_S` of each other."""
    merged: list[tuple[str, str]] = []
    for first, last in sorted(spans):
        if merged and (_minute(first) - _minute(merged[-1][1])).total_seconds() <= SESSION_SPAN_S:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _span(first: str, last: str) -> str:
    """``first`` alone, or ``first to last`` with ``last`` as ``HH:MM`` on the same day."""
    if first == last:
        return first
    return f"{first} to {last[11:] if last[:10] == first[:10] else last}"


def _minute(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(str(text), "%Y-%m-%d %H:%M")


def paired_notes(frame: pd.DataFrame, objectives: Sequence[Metric], paired: PairedResults | None) -> list[str]:
    """How the front's top-1 differences were judged: by the paired test (on how many images, with
    which seed noise), and which rows fell back to independent intervals."""
    if frame.empty or not any(o.metric == "top1" for o in objectives) or "trial" not in frame:
        return []
    tests = status_tests(frame, objectives, paired)
    missing = [int(t) for t, test in zip(frame["trial"], tests) if test != PAIRED]
    notes = []
    if len(missing) < len(frame):
        noise = paired.seed_noise
        seeds = f", with a seed noise of {noise.std:.2g} points ({noise.df} degrees of freedom)" if noise else ""
        notes.append(
            f"top-1 differences are judged by the paired test on the same {paired.images} validation images"
            f"{seeds}; the ± shown per trial is its own interval, wider than a difference needs "
            "(docs/front.md#paired-comparisons)"
        )
    if missing:
        shown = ", ".join(map(str, missing[:8])) + (", ..." if len(missing) > 8 else "")
        notes.append(
            f"trial{'s' if len(missing) > 1 else ''} {shown} {'have' if len(missing) > 1 else 'has'} no per-image "
            "results (recorded by an older version), so top-1 differences with "
            f"{'them' if len(missing) > 1 else 'it'} are judged by independent intervals, which separate fewer pairs"
        )
    return notes


def _within_noise(frame: pd.DataFrame, objective: Metric, paired: PairedResults | None = None) -> str | None:
    """A sentence when every difference of ``objective`` among the front's rows lies inside the noise."""
    rows = frame[frame["front_status"].isin(("front", "tied"))]
    if objective.metric == "top1" and paired is not None and len(rows) >= 2 and "trial" in rows:
        trials = [int(t) for t in rows["trial"]]
        differences = [paired.difference(a, b) for k, a in enumerate(trials) for b in trials[k + 1 :]]
        if None not in differences:
            if any(d.separated for d in differences):
                return None
            return (
                f"every {objective.name} difference between the front's {len(rows)} trials lies within the noise "
                f"of the paired test ({rows[objective.name].min():.4g} to {rows[objective.name].max():.4g} %); "
                "these differences are noise"
            )
    low, high = f"{objective.name}_low", f"{objective.name}_high"
    if len(rows) < 2 or low not in rows or high not in rows or rows[[low, high]].isna().any().any():
        return None  # an unknown interval cannot show a difference to be noise
    if rows[low].max() > rows[high].min():  # some two intervals are disjoint: a real difference exists
        return None
    return (
        f"every {objective.name} difference between the front's {len(rows)} trials lies within their 95 % "
        f"intervals ({rows[objective.name].min():.4g} to {rows[objective.name].max():.4g}, intervals about "
        f"±{((rows[high] - rows[low]) / 2).median():.2g}); these differences are noise"
    )
