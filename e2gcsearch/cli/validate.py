"""``e2gcsearch validate``: full training of the front's members; does the proxy rank them right?

Each chosen trial is trained with the full recipe (24 cosine epochs on every training image, random-
resized crop + flip; a checkpoint every epoch under <studies dir>/checkpoints/<study>/trial-<n>; an
interrupted run resumes where it stopped), its EPF is measured again, and both are stored on the
trial (user attr "full"). Then proxy and full top-1 are printed side by side with Kendall's tau
between the two rankings and its 95 % interval. The front alone is a narrow band of accuracies:
--spread K also validates K completed trials spread over the proxy's whole range. --full-seeds 2
trains every trial twice, and tau between the two seeds is the noise ceiling: how well full
training agrees with itself, which no proxy can be expected to beat.

Data: by default each trial's own dataset description (dataset, classes, images per class,
resolution, seed) as stored by 'run'; the data flags below override it. EPF is measured at the
data's resolution and, unless --batch-sizes is given, at the batch sizes the search measured; unless
--impl is given, measuring and training run the implementation the search ran (run's default: auto).
"""

from __future__ import annotations

import argparse

from ..paths import TENSORS
from ..validate import ValidateSettings, checkpoint_root, render_validation, validate_study
from ._common import HelpFormatter, emit, positive_int
from .configs import cached_under, profile_config, training_layout
from .options import DATA, MEASUREMENT_WHILE_TRAINING, OUTPUT, STUDY, TRAINING, add_options
from .studies import load_study

EXAMPLES = """\
examples:
  e2gcsearch validate --top 3                      # the 3 front members with the best proxy top-1
  e2gcsearch validate --top 3 --spread 6 --full-seeds 2   # tau over 9 trials, with its noise ceiling
  e2gcsearch validate --trials 3,7 --epochs 60
  e2gcsearch validate --train-per-class 500        # more images than the proxy used
  e2gcsearch validate --top 3 --format json

Kendall's tau: +1 = the proxy orders the trials exactly as full training does, 0 = unrelated, -1 =
reversed. Over fewer than 4 trials it says little.
"""


def trial_numbers(text: str) -> tuple[int, ...]:
    """'3,7' → (3, 7); trial numbers start at 0."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected trial numbers like 3,7 (see 'e2gcsearch front'), got {text!r}")
    return values


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="full training of the front's members; proxy-vs-full rank agreement (Kendall's tau)",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument(
        "--top",
        type=positive_int,
        metavar="K",
        help="validate the K front members with the best proxy top-1 (default: every front member)",
    )
    chosen.add_argument("--trials", type=trial_numbers, metavar="N,…", help="validate these trial numbers instead")
    # Unset data flags and batch sizes keep each trial's stored values.
    groups = add_options(
        parser,
        STUDY,
        TRAINING,
        DATA,
        MEASUREMENT_WHILE_TRAINING,
        OUTPUT,
        defaults={"epochs": None, "data_seed": None, "batch_sizes": None},
    )
    parser.add_argument(
        "--spread",
        type=positive_int,
        default=0,
        metavar="K",
        help="also validate K completed trials spread evenly over the proxy top-1 range (best and "
        "worst included), so that tau covers the space searched, not only the front",
    )
    groups["training"].add_argument(
        "--full-seeds",
        type=positive_int,
        default=1,
        metavar="N",
        help="train every chosen trial with N seeds; with 2 or more, tau "
        "between two seeds' rankings is printed as the noise ceiling",
    )
    groups["training"].add_argument(
        "--retrain",
        action="store_true",
        help="start over: ignore stored results and existing checkpoints of these trials",
    )
    groups["energy measurement"].add_argument("--no-profile", action="store_true", help="skip measuring EPF again")
    parser.set_defaults(func=run)


def settings(args: argparse.Namespace) -> ValidateSettings:
    data = {
        "name": args.data,
        "root": args.data_root,
        "classes": args.classes,
        "train_per_class": args.train_per_class,
        "val_per_class": args.val_per_class,
        "resolution": args.resolution,
        "seed": args.data_seed,
        "download": args.download or None,
        "cache_dir": cached_under(args.cache_dir, TENSORS),
    }
    train = {
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.train_seed,
        "device": args.device,
        "threads": args.threads,
        "layout": training_layout(args),
    }
    # Unset --batch-sizes: the batch sizes the search measured; the resolution is the data's.
    profile = (
        None
        if args.no_profile
        else profile_config(
            args, threads=args.profile_threads, resolution=224, batch_sizes=args.batch_sizes or (1, 4, 16)
        )
    )
    return ValidateSettings(
        top=args.top,
        trials=args.trials,
        spread=args.spread,
        full_seeds=args.full_seeds,
        epochs=args.epochs,
        data=data,
        train=train,
        profile=profile,
        search_batch_sizes=args.batch_sizes is None,
        search_impl=args.impl is None and not args.channels_last,
        retrain=args.retrain,
    )


def run(args: argparse.Namespace) -> None:
    checkpoints = checkpoint_root(args.storage, args.study)  # refuses a study name that is no folder name
    report = validate_study(load_study(args), settings(args), checkpoints)
    emit(render_validation(report, args.format))
