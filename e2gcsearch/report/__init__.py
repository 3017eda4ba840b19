"""What a study found, as data and as pictures: the Pareto front and hypervolume history (typed data,
computed first), tables rendered in the command line's formats, and plots of the front and of the
paper's Fig. 3 (drawn second, matplotlib imported only when a plot is asked for).
"""

from __future__ import annotations

from .front import (Objective, baseline_label, front_frame, get_trial, hypervolume, hypervolume_history, is_feasible,
                    non_dominated, plot_axes, render_front, require_trials, study_objectives)
from .tables import FORMATS, fixed, human_count, render, to_json

__all__ = [
    "FORMATS",
    "Objective",
    "baseline_label",
    "fixed",
    "front_frame",
    "get_trial",
    "human_count",
    "hypervolume",
    "hypervolume_history",
    "is_feasible",
    "non_dominated",
    "plot_axes",
    "render",
    "render_front",
    "require_trials",
    "study_objectives",
    "to_json",
]
