"""``e2gcsearch validate``: full training of the front's members; does the proxy rank them right?

Each chosen trial is trained with the trainer's full mode (step schedule, a checkpoint every epoch
under <studies dir>/checkpoints/<study>/trial-<n>; an interrupted run resumes where it stopped), its
EPF is measured again, and both are stored on the trial (user attr "full"). Then proxy and full
top-1 are printed side by side with Kendall's tau between the two rankings.

Data: by default each trial's own dataset description (dataset, classes, images per class,
resolution, seed) as stored by 'run'; the data flags below override it. EPF is measured at the
data's resolution and, unless --batch-sizes is given, at the batch sizes the search measured.
"""

from __future__ import annotations

import argparse

from ..validate import ValidateSettings, checkpoint_root, render_validation, validate_study
from ._common import HelpFormatter, add_format_arg, emit, positive_int
from ._options import add_data_args, add_profile_args, profile_config
from .studies import add_study_args, load_study

EXAMPLES = """\
examples:
  e2gcsearch validate --top 3                      # the 3 front members with the best proxy top-1
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
        "validate", help="full training of the front's members; proxy-vs-full rank agreement (Kendall's tau)",
        description=__doc__, epilog=EXAMPLES, formatter_class=HelpFormatter)
    add_study_args(parser)
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--top", type=positive_int, metavar="K",
                        help="validate the K front members with the best proxy top-1 (default: every front member)")
    chosen.add_argument("--trials", type=trial_numbers, metavar="N,…", help="validate these trial numbers instead")
    group = parser.add_argument_group("full training")
    group.add_argument("--epochs", type=positive_int, default=30, help="full-training epochs")
    group.add_argument("--batch-size", type=positive_int, default=32, help="training batch size")
    group.add_argument("--lr", type=float, help="peak learning rate (default: the trainer's)")
    group.add_argument("--train-seed", type=int, default=0, help="seed of weight init and batch order")
    group.add_argument("--retrain", action="store_true",
                       help="start over: ignore stored results and existing checkpoints of these trials")
    add_data_args(parser, resolution=None)
    add_profile_args(parser, repeats=5)
    parser.add_argument("--no-profile", action="store_true", help="skip measuring EPF again")
    # Unset data flags and batch sizes keep each trial's stored values.
    parser.set_defaults(func=run, data_seed=None, batch_sizes=None)
    add_format_arg(parser)


def settings(args: argparse.Namespace) -> ValidateSettings:
    classes = args.classes
    if classes is not None:  # "10" keeps the first 10 classes, "a,b" keeps those
        classes = int(classes) if classes.isdigit() else tuple(c.strip() for c in classes.split(",") if c.strip())
    data = {"name": args.data, "root": args.data_root, "classes": classes,
            "train_per_class": args.train_per_class, "val_per_class": args.val_per_class,
            "resolution": args.resolution, "seed": args.data_seed, "download": args.download or None}
    train = {"batch_size": args.batch_size, "seed": args.train_seed, "device": args.device}
    if args.lr is not None:
        train["lr"] = args.lr
    sizes = args.batch_sizes or (1, 4, 16)  # unset: the batch sizes the search measured
    profile = None if args.no_profile else profile_config(argparse.Namespace(**{**vars(args), "batch_sizes": sizes}),
                                                          resolution=224)  # validate profiles at the data's
    return ValidateSettings(top=args.top, trials=args.trials, epochs=args.epochs, data=data, train=train,
                            profile=profile, search_batch_sizes=args.batch_sizes is None, retrain=args.retrain)


def run(args: argparse.Namespace) -> None:
    study = load_study(args)
    report = validate_study(study, settings(args), checkpoint_root(args.storage, args.study))
    emit(render_validation(report, args.format))
