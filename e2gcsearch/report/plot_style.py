"""What every plot of a study shares, whichever library draws it: the file names a plot may take,
colours and markers per grouping rule, the trials grouped by front status, the 95 % interval bars and
the axis and backend labels.

Nothing here imports a plotting library: :mod:`e2gcsearch.report.plots` draws with matplotlib,
:mod:`e2gcsearch.report.plots_html` with plotly, and :mod:`e2gcsearch.report.fig3` checks its file
name here too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ..metrics import Metric

STATIC_SUFFIXES = (".png", ".pdf", ".svg")
SUFFIXES = (*STATIC_SUFFIXES, ".html")
# Colour-blind-safe (Okabe-Ito) colours and distinct markers per grouping rule.
STYLE = {
    "E2GC": {"color": "#0072B2", "marker": "o", "label": "E2GC (constant group size G)"},
    "FgGC": {"color": "#D55E00", "marker": "s", "label": "FgGC (fixed number of groups g)"},
    "FLGC": {"color": "#009E73", "marker": "^", "label": "FLGC (g learned groups, deployed)"},
}
INFEASIBLE_COLOR = "#7f7f7f"


def check_plot_path(path: str | Path) -> Path:
    """A plot file name with a known suffix in an existing folder (else one-line errors)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"cannot draw {path.name!r}: give a file ending in {', '.join(SUFFIXES)}")
    if not path.parent.exists():
        raise DataError(f"cannot write {path}: folder {path.parent} does not exist; create it or choose another path")
    return path


def backend_note(backend: str | None) -> str:
    """Which meter the EPF figures come from, said so that an estimate never passes for a reading."""
    if backend == "estimate":
        return "EPF backend: estimate (measured time x power model, not a meter reading)"
    return f"EPF backend: {backend}" if backend else "EPF: not measured"


def status_test_note(frame: pd.DataFrame) -> str:
    """Which test backed the front/tied/dominated status of the plotted trials on top-1 (``""`` when
    no objective is top-1)."""
    tests = [t for t in frame.get("status_test", []) if t]
    if not tests:
        return ""
    paired = sum(t == "paired" for t in tests)
    if paired == len(tests):
        return "status: top-1 by the paired test on the same validation images"
    if not paired:
        return "status: top-1 by independent 95 % intervals (no per-image results)"
    return f"status: top-1 by the paired test for {paired} of {len(tests)} trials, else independent intervals"


def axis_label(objective: Metric) -> str:
    """The axis title of an objective (its header, with proxy accuracy spelled out)."""
    label = objective.header()
    for rank in ("1", "5"):
        label = label.replace(f"top-{rank} (%, proxy)", f"proxy top-{rank} accuracy (%)")
    return label


def front_groups(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(front, tied, dominated, infeasible) rows, by ``front_status``."""
    status = frame["front_status"]
    return tuple(frame[status == name] for name in ("front", "tied", "dominated", "infeasible"))  # type: ignore


def error_bars(rows: pd.DataFrame, axis: Metric) -> np.ndarray | None:
    """Matplotlib's (2, n) below/above distances of the 95 % intervals, ``None`` without intervals."""
    low, high = f"{axis.name}_low", f"{axis.name}_high"
    if low not in rows or high not in rows or rows.empty:
        return None
    values = rows[axis.name].to_numpy(dtype=float)
    below = np.clip(values - rows[low].to_numpy(dtype=float), 0, None)
    above = np.clip(rows[high].to_numpy(dtype=float) - values, 0, None)
    return np.nan_to_num(np.stack([below, above]))
