"""What a study found, as data and as pictures: the Pareto front and hypervolume history (typed data,
computed first from rows of trials), tables rendered in the command line's formats, and plots of the
front and of the paper's Fig. 3 (drawn second, matplotlib imported only when a plot is asked for).

Reading a study into rows is the store's job: :mod:`e2gcsearch.store.results`.
"""

from __future__ import annotations

from .dominance import contested_pairs, front_status, noise_notes
from .front import (
    FrontInfo,
    HypervolumeHistory,
    front_info_from_rows,
    hypervolume,
    hypervolume_history,
    non_dominated,
    plot_axes,
    render_front,
    require_trials,
)
from .tables import FORMATS, fixed, human_count, render, to_json

__all__ = [
    "contested_pairs",
    "fixed",
    "FORMATS",
    "front_info_from_rows",
    "front_status",
    "FrontInfo",
    "human_count",
    "hypervolume",
    "hypervolume_history",
    "HypervolumeHistory",
    "noise_notes",
    "non_dominated",
    "plot_axes",
    "render",
    "render_front",
    "require_trials",
    "to_json",
]
