"""``e2gcsearch front``: the Pareto-optimal trials of a study (or all completed trials), and plots.

One row per trial: configuration (arch, E2GC/FgGC, G or g, width), the objectives with their units,
params, MACs, the EPF of every measured batch size with the energy backend that produced it, and the
break-even: the frames of inference after which choosing the point instead of its network's paper
baseline (or --reference TRIAL) has paid back the energy the search itself used ('never' where the
point costs as much or more per frame). Infeasible trials (a violated --constraint) are never on the
front; --all lists them, marked.
"""

from __future__ import annotations

import argparse

from ..report import render_front, require_trials
from ..store.results import front_info, front_notes, hypervolume_history
from ..store.spending import break_even_notes, with_break_even
from ._common import HelpFormatter, emit, note, trial_number
from .options import OUTPUT, add_options
from .studies import add_study_args, load_study

EXAMPLES = """\
examples:
  e2gcsearch front                                  # the front of the default study
  e2gcsearch front --all --format csv > trials.csv  # every completed trial, dominated ones marked
  e2gcsearch front --plot front.png --plot-hv hv.png
  e2gcsearch front --plot front.html                # interactive (needs: pip install plotly)
  e2gcsearch front --reference 3                    # break-even against trial 3, not the paper baseline
  e2gcsearch front --study food101 --storage postgresql://user@host/optuna

plots: proxy top-1 vs EPF of every completed trial, E2GC and FgGC in distinct colours and markers,
the front as a step line, paper baselines starred; --plot-hv draws the hypervolume after each trial.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "front",
        help="the Pareto front of a study (or all trials), as a table or a plot",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    add_study_args(parser)
    parser.add_argument("--all", action="store_true", help="list every completed trial; dominated ones are marked")
    parser.add_argument("--plot", metavar="FILE", help="draw accuracy vs EPF to FILE.png/.pdf/.svg or FILE.html")
    parser.add_argument("--plot-hv", metavar="FILE", help="draw the hypervolume vs trial number to FILE")
    parser.add_argument(
        "--reference",
        type=trial_number,
        metavar="TRIAL",
        help="break-even against trial TRIAL (the network you would deploy otherwise) instead of each "
        "network's paper baseline",
    )
    add_options(parser, OUTPUT)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ..report import plots  # matplotlib is imported only when a plot is asked for

    study = load_study(args)
    front = with_break_even(study, require_trials(front_info(study, include_dominated=args.all)), args.reference)
    if args.plot is not None:  # '--plot ""' is a mistake to name, not a plot to skip
        everything = front_info(study, include_dominated=True)
        note(f"front plot written to {plots.save_front_plot(everything, args.plot)}")
    if args.plot_hv is not None:
        note(f"hypervolume plot written to {plots.save_hypervolume_plot(hypervolume_history(study), args.plot_hv)}")
    emit(render_front(front, args.format))
    if args.format in ("table", "markdown"):
        for line in front_notes(study, front) + break_even_notes(front):
            note(f"note: {line}")
