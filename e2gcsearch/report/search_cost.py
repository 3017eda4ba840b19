"""What the search itself cost, and after how many frames a chosen network pays it back.

Compute first, print second: :class:`SearchCost` sums the phases of work a study recorded (trainings,
EPF measurements, the energy model's calibration, validate's full trainings; each a
:class:`~e2gcsearch.energy.Spent` read by the backend of the study's EPF) and says it in one line;
:func:`break_even_frames` is the arithmetic of the break-even point. Nothing here reads a study
(:mod:`e2gcsearch.store.spending` does) and nothing prints.

Break-even: running a front point instead of a reference network saves
``EPF_infer(reference) - EPF_infer(point)`` millijoules per frame of inference, so after

    frames = search energy (J) / ((EPF_infer(reference) - EPF_infer(point)) / 1000)

frames the choice has saved as much energy as the search spent. Where the point costs as much or
more per frame than the reference, it never does.

Example:
    >>> break_even_frames(41_200.0, reference_epf_mj=12.0, point_epf_mj=10.0)   # 41.2 kJ / 2 mJ
    20600000.0
    >>> break_even_frames(41_200.0, reference_epf_mj=10.0, point_epf_mj=12.0) is None  # never
    True
    >>> frames_text(20_600_000.0), frames_text(NEVER), frames_text(None), energy_text(41_200.0)
    ('20.6 M', 'never', '-', '41.2 kJ')
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ..energy.spend import KINDS, Spent

NEVER = "never"  # the break-even of a point that costs as much or more per frame than its reference


def break_even_frames(search_energy_j: float, reference_epf_mj: float, point_epf_mj: float) -> float | None:
    """Frames of inference after which running the point instead of the reference has saved
    ``search_energy_j`` joules (see the module docstring); ``None`` when it never does (the point
    costs as much as the reference per frame, or more).

    Raises:
        ValueError: an input is not a finite number, or the search energy is negative.
    """
    values = (search_energy_j, reference_epf_mj, point_epf_mj)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values) or search_energy_j < 0:
        raise ValueError(
            "break-even needs a search energy >= 0 J and two finite EPF figures in mJ/frame, "
            f"got {search_energy_j!r} J, {reference_epf_mj!r} and {point_epf_mj!r} mJ/frame"
        )
    saving_j = (reference_epf_mj - point_epf_mj) / 1000.0  # mJ/frame -> J/frame
    if saving_j <= 0:
        return None
    return search_energy_j / saving_j


def energy_text(joules: float) -> str:
    """``812 J``, ``41.2 kJ``, ``3.41 MJ``."""
    if abs(joules) >= 1e6:
        return f"{joules / 1e6:.3g} MJ"
    if abs(joules) >= 1e3:
        return f"{joules / 1e3:.3g} kJ"
    return f"{joules:.3g} J"


def duration_text(seconds: float) -> str:
    """``45 s``, ``7 min``, ``2.3 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def frames_text(frames: Any) -> str:
    """A break-even as shown in a table: ``20.6 M``, ``never``, ``-`` (``None`` or NaN: not known)."""
    if isinstance(frames, str):
        return frames
    if frames is None or (isinstance(frames, float) and math.isnan(frames)):
        return "-"
    value = float(frames)
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= scale:
            return f"{value / scale:.3g} {suffix}"
    return f"{value:.3g}"


def _plural(count: int, kind: str) -> str:
    return f"{count} {kind}" if count == 1 else f"{count} {kind}s"


def _listed(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


@dataclasses.dataclass(frozen=True)
class SearchCost:
    """The energy and time a study's recorded work used.

    Args:
        energy_j: joules summed over the metered phases.
        time_s: wall time summed over every phase, in seconds (the idle time between phases is not in it).
        counts: phases by kind (``{"training": 16, "measurement": 57}``), in :data:`KINDS` order.
        cached: measurements answered wholly from the measurement cache (only their look-up ran).
        backends: the backends that metered the phases.
        estimated: how many phases were metered by the estimate backend.
        unmetered: phases whose meter failed: their time is counted, their energy is missing.
        unrecorded: trials that ran before e2gcsearch recorded the energy of its work.
    """

    energy_j: float = 0.0
    time_s: float = 0.0
    counts: Mapping[str, int] = dataclasses.field(default_factory=dict)
    cached: int = 0
    backends: tuple[str, ...] = ()
    estimated: int = 0
    unmetered: int = 0
    unrecorded: int = 0

    @classmethod
    def of(cls, phases: Iterable[Spent], unrecorded: int = 0) -> SearchCost:
        """The sum of ``phases``; ``unrecorded`` trials of the study have none on record."""
        phases = list(phases)
        metered = [p for p in phases if p.energy_j is not None]
        counts = Counter(p.kind for p in phases)
        return cls(
            energy_j=float(sum(p.energy_j for p in metered)),
            time_s=float(sum(p.time_s for p in phases)),
            counts={kind: counts[kind] for kind in (*KINDS, *sorted(set(counts) - set(KINDS))) if counts[kind]},
            cached=sum(p.cached for p in phases if p.kind == "measurement"),
            backends=tuple(sorted({p.backend for p in metered if p.backend})),
            estimated=sum(p.is_estimate for p in metered),
            unmetered=len(phases) - len(metered),
            unrecorded=unrecorded,
        )

    @property
    def recorded(self) -> bool:
        """True when some of the study's work has its energy on record."""
        return bool(self.counts)

    @property
    def is_estimate(self) -> bool:
        """True when any of :attr:`energy_j` is time x a power model rather than a counter reading."""
        return self.estimated > 0

    @property
    def source(self) -> str:
        """Where the joules come from: ``estimate``, ``rapl``, ``nvml``, or e.g. ``rapl, partly estimate``."""
        measured = [b for b in self.backends if b != "estimate"]
        if not measured:
            return "estimate" if self.backends else "unmetered"
        return ", ".join(measured) + (", partly estimate" if self.is_estimate else "")

    def energy_label(self) -> str:
        """``41.2 kJ (estimate)``: the energy with its unit and where it comes from."""
        return f"{energy_text(self.energy_j)} ({self.source})"

    def line(self) -> str:
        """One sentence: ``search used 41.2 kJ (estimate) over 16 trainings and 57 measurements, 7 min``,
        then what it leaves out."""
        if not self.recorded:
            if self.unrecorded:
                return (
                    f"search energy: not recorded (the study's {_plural(self.unrecorded, 'trial')} ran before "
                    "e2gcsearch counted the energy of its own work)"
                )
            return "search energy: nothing run yet"
        work = _listed([_plural(count, kind) for kind, count in self.counts.items()])
        text = f"search used {self.energy_label()} over {work}, {duration_text(self.time_s)}"
        notes = []
        if self.cached:
            notes.append(f"{self.cached} of the measurements came from the measurement cache and cost only the look-up")
        if self.unmetered:
            notes.append(f"{_plural(self.unmetered, 'phase')} could not be metered: their time is in, their energy not")
        if self.unrecorded:
            notes.append(f"not recorded for {_plural(self.unrecorded, 'earlier trial')}")
        return text + (f" ({'; '.join(notes)})" if notes else "")

    def to_dict(self) -> dict[str, Any]:
        """The figures with their units in the keys, for ``--format json``."""
        return {
            "recorded": self.recorded,
            "energy_j": self.energy_j if self.recorded else None,
            "time_s": self.time_s,
            "source": self.source if self.recorded else None,
            "is_estimate": self.is_estimate,
            "phases": dict(self.counts),
            "cached_measurements": self.cached,
            "unmetered_phases": self.unmetered,
            "unrecorded_trials": self.unrecorded,
            "line": self.line(),
        }


@dataclasses.dataclass(frozen=True)
class BreakEven:
    """How a front's break-even column was computed.

    Args:
        cost: the search's cost (the energy to pay back).
        reference: the trial every point is compared with (``None``: each network's paper baseline).
        batch_size: the batch size of the EPF-infer figures compared (``None``: the study measured none).
        is_estimate: the column rests on an estimate (the search energy or the EPF figures).
        compared: each reference as a reader would name it: ``trial 0: mobilenet_v1 E2GC G=1 w=0.75 at
            22.33 mJ/frame``.
    """

    cost: SearchCost
    reference: int | None
    batch_size: int | None
    is_estimate: bool
    compared: tuple[str, ...] = ()

    def header(self) -> str:
        """The column header: ``break-even (frames, estimate)``."""
        return f"break-even (frames{', estimate' if self.is_estimate else ''})"

    def sentence(self, frames: Any, reference: int | None) -> str:
        """What the break-even of one point (``frames``: a number, ``never``, ``reference`` or ``None``)
        against trial ``reference`` means, in plain words (an exported builder's docstring)."""
        cost = self.cost
        if not cost.recorded:
            return f"Break-even: not known; {cost.line()}."
        spent = f"The search used {cost.line().removeprefix('search used ')}."
        against = "its reference" if reference is None else f"trial {reference}"
        against += "" if self.reference is not None else " (the paper baseline)"
        figure = f"EPF-infer@{self.batch_size}"
        estimate = " (an estimate)" if self.is_estimate else ""
        if frames == "reference":
            return f"{spent} This trial is the reference the break-even of the other points is measured against."
        if frames == NEVER:
            return (
                f"{spent} Per frame of inference ({figure}) this network costs as much as {against} or more, "
                "so choosing it never pays that energy back."
            )
        if frames is None or (isinstance(frames, float) and math.isnan(frames)):
            why = "the study measured no inference EPF" if self.batch_size is None else f"no {figure} to compare"
            return f"{spent} Break-even: not known ({why})."
        return (
            f"{spent} Choosing this network instead of {against} saves energy at inference ({figure}): "
            f"after {frames_text(frames)} frames it has paid that back{estimate}."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference_trial": self.reference,
            "reference": "paper baseline" if self.reference is None else f"trial {self.reference}",
            "epf_infer_batch_size": self.batch_size,
            "references": list(self.compared),
            "is_estimate": self.is_estimate,
            "search_energy_j": self.cost.energy_j if self.cost.recorded else None,
        }


__all__ = [
    "NEVER",
    "BreakEven",
    "SearchCost",
    "break_even_frames",
    "duration_text",
    "energy_text",
    "frames_text",
]
