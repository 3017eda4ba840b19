"""``e2gcsearch confirm``: measure the contested points of a study's front further, until the data
separate them or the time budget is spent.

Two neighbouring front (or tied) trials are contested when their 95 % intervals cannot order them. Each step
measures the pair whose intervals overlap most, in the objective where that is widest: EPF gets
more measurement windows (pooled with every earlier window; the profile cache keeps the pooled
measurement), top-1 one more proxy-training seed. The pooled figures are stored on the study, and
'front', 'export' and the plots use them. Give the same data, training and measurement flags as the
'run' that made the study (or its --config file), so the new seeds and windows measure the same thing.
Their energy (the study's EPF meter) and time count in the study's search total ('front', 'studies').
"""

from __future__ import annotations

import argparse
from pathlib import Path

from optuna.trial import TrialState

from ..errors import DataError
from ..report import noise_notes, render_front
from ..search.confirm import ConfirmLimits
from ..store.results import front_info, require_architecture
from ..store.storage import open_study
from ._common import HelpFormatter, emit, note, positive_float, positive_int
from .configs import data_config, profile_config
from .options import DATA, MEASUREMENT_WHILE_TRAINING, OUTPUT, STUDY, TRAINING, add_options, complete
from .run import RUN_DEFAULTS, RUN_GROUPS, confirm, proxy_train_config
from .spec import load_spec

EXAMPLES = """\
examples:
  e2gcsearch confirm --budget-s 300                       # after 'e2gcsearch run' with default flags
  e2gcsearch confirm --config studies/food101.toml --budget-s 1800
  e2gcsearch run --objective epf,top1 --confirm 300       # the same, right after the search
  e2gcsearch confirm --remeasure-epf --budget-s 60         # EPF from several sessions: measure it all again now
"""


CONFIRM_GROUPS = (STUDY, DATA, TRAINING, MEASUREMENT_WHILE_TRAINING, OUTPUT)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "confirm",
        help="measure contested front points further (more EPF windows, more seeds)",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--budget-s",
        type=positive_float,
        default=300.0,
        metavar="S",
        help="stop starting new measurements after S seconds",
    )
    parser.add_argument("--windows", type=positive_int, default=5, help="EPF windows added per measurement")
    parser.add_argument("--max-windows", type=positive_int, default=40, help="at most this many EPF windows per trial")
    parser.add_argument("--max-seeds", type=positive_int, default=5, help="at most this many seeds per trial")
    parser.add_argument(
        "--remeasure-epf",
        action="store_true",
        help="first measure the EPF of every trial again, now, and use these figures (and put them "
        "in the cache): a study whose EPF comes from several sessions is then compared within "
        "one; no training, about the profiling time of the search",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE.toml",
        help="study spec (TOML, keys named like these flags); flags given here override it",
    )
    add_options(parser, *CONFIRM_GROUPS, defaults=RUN_DEFAULTS, given_only=True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # A run's spec holds search keys too; confirm takes the data, training and measurement ones.
    spec = load_spec(args.config, RUN_GROUPS) if args.config is not None else {}
    args = complete(args, CONFIRM_GROUPS, RUN_DEFAULTS, spec)
    data = data_config(args, proxy=True)
    train = proxy_train_config(args, data)
    profile = profile_config(args, threads=args.profile_threads, resolution=data.resolution)
    study = open_study(args.storage, args.study)
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not completed:
        raise DataError(
            f"study {args.study!r} has no completed trial yet, so nothing to confirm; run "
            f"'e2gcsearch run --study {args.study}' first"
        )
    require_architecture(study, completed[0])  # before any work: a study another program made
    limits = ConfirmLimits(
        budget_s=args.budget_s, windows=args.windows, max_windows=args.max_windows, max_seeds=args.max_seeds
    )
    confirm(study, data, train, profile, limits, remeasure=args.remeasure_epf)
    front = front_info(study)
    emit(render_front(front, args.format))
    for line in noise_notes(front.frame, front.objectives, front.paired):
        note(f"note: {line}")
    return 0
