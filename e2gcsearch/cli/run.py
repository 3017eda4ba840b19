"""``e2gcsearch run``: the multi-objective search over G/g and width (Optuna)."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from ..config import E2GC, FGGC
from ..errors import ConfigError, DataError
from ..report import render_front
from ..search.objectives import DEFAULT_BATCH_SIZE, parse_constraint, parse_objectives
from ..search.results import front_info
from ..search.run import SearchConfig, SearchInterrupted, run_search
from ..search.space import DEFAULT_WIDTHS, SearchSpace, StagewiseSearchSpace
from ..search.storage import DEFAULT_STORAGE, DEFAULT_STUDY
from ..search.study import SAMPLERS
from ..search.trial import TrialSettings
from ._common import HelpFormatter, add_format_arg, emit, float_list, int_list, name_list, note, positive_int
from ._options import add_data_args, add_profile_args, add_train_args, data_config, profile_config, train_config

DEFAULT_TRIALS = 16

EXAMPLES = f"""\
examples:
  e2gcsearch run --objective epf,top1                      # {DEFAULT_TRIALS} trials on the default data, resumable
  e2gcsearch run --objective epf@4,top1 --constraint 'params<=2e6' --sampler nsga2 --trials 30
  e2gcsearch run --arch mobilenet_v1,resnext50 --modules E2GC --group-sizes 1,4,16 --widths 0.25,0.5
  e2gcsearch run --config studies/food101.toml --trials 40  # a versioned study spec; flags override it
  e2gcsearch run --storage studies/e2gcsearch.log --workers 2   # two processes on one journal file
  e2gcsearch run --warm-start model --space stagewise --study stagewise  # one G per stage, seeded by Eq. 2

objectives: epf (mJ/frame at batch {DEFAULT_BATCH_SIZE}; epf@B for batch B), top1 (maximized), params, macs,
latency (ms/batch, latency@B). Energy figures name the backend that produced them ('estimate' when no
counter is readable). Running the same command again resumes the study; Ctrl-C keeps finished trials.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="search G/g and width against energy per frame and proxy accuracy",
        description=__doc__, epilog=EXAMPLES, formatter_class=HelpFormatter)
    parser.add_argument("--config", type=Path, metavar="FILE.toml",
                        help="study spec (TOML, keys named like these flags); flags given here override it")
    search = parser.add_argument_group("search")
    search.add_argument("--objective", default="epf,top1", help="comma list of objectives (see below)")
    search.add_argument("--constraint", action="append", default=[], metavar="EXPR",
                        help="e.g. 'params<=5e6' or 'top1>=40' (repeatable)")
    search.add_argument("--trials", type=positive_int, default=DEFAULT_TRIALS, help="trials to run in this invocation")
    search.add_argument("--timeout", type=float, metavar="S", help="stop starting new trials after S seconds")
    search.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="Optuna sampler")
    search.add_argument("--seed", type=int, default=0, help="sampler seed")
    search.add_argument("--study", default=DEFAULT_STUDY, help="study name (shared by run/front/export/validate)")
    search.add_argument("--storage", default=DEFAULT_STORAGE, help="Optuna RDB URL or journal file (.log)")
    search.add_argument("--workers", type=positive_int, default=1, help="processes optimizing the study at once")
    search.add_argument("--no-baselines", dest="baselines", action="store_false",
                        help="do not queue the paper baselines (MobileNet-V1 G=1, ResNeXt-50 g=32) first")
    search.add_argument("--reference-batch", type=positive_int, default=DEFAULT_BATCH_SIZE,
                        help="batch size of plain 'epf' and 'latency'")
    search.add_argument("--warm-start", choices=("model",),
                        help="also queue the optimum-group-size model's predicted best points (calibrates "
                             "the model with a short profiling sweep unless --warm-start-profile is given)")
    search.add_argument("--warm-start-profile", metavar="FILE.json",
                        help="device profile from 'e2gcsearch model fit' used by --warm-start model")
    space = parser.add_argument_group("search space")
    space.add_argument("--space", choices=("network", "stagewise"), default="network",
                       help="one G or g per network, or one E2GC group size per network stage")
    space.add_argument("--arch", type=name_list, default="mobilenet_v1", help="comma list of architectures")
    space.add_argument("--modules", type=name_list, default=f"{E2GC},{FGGC}", help="E2GC, FgGC or both")
    space.add_argument("--group-sizes", type=int_list, default=",".join(map(str, SearchSpace.group_sizes)), metavar="G,…",
                       help="E2GC group sizes")
    space.add_argument("--groups", type=int_list, default=",".join(map(str, SearchSpace.groups)), metavar="g,…", help="FgGC numbers of groups")
    space.add_argument("--widths", type=float_list, default=",".join(map(str, DEFAULT_WIDTHS)), metavar="W,…", help="width multipliers")
    add_data_args(parser, resolution=None)
    add_train_args(parser, epochs=None)
    add_profile_args(parser, repeats=3)
    add_format_arg(parser)
    parser.set_defaults(func=run, parser=parser)


def apply_config_file(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` with the values of ``--config FILE.toml`` as defaults (flags override them)."""
    args, _ = parser.parse_known_args(argv)
    if args.config is None:
        return parser.parse_args(argv)
    try:
        spec = tomllib.loads(args.config.read_text())
    except FileNotFoundError:
        raise DataError(f"no study spec at {args.config}; see studies/ for examples") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{args.config} is not valid TOML ({exc}); fix the file or drop --config") from None
    known = {action.dest for action in parser._actions}
    values: dict[str, Any] = {}
    for key, value in _flatten(spec).items():
        dest = key.replace("-", "_")
        if dest not in known or dest in ("config", "func", "help"):
            raise ConfigError(f"{args.config}: unknown key {key!r}; keys are named like the flags of 'e2gcsearch run --help'")
        action = next(a for a in parser._actions if a.dest == dest)
        values[dest] = _coerce(action, value, f"{args.config}: {key}")
    parser.set_defaults(**values)
    return parser.parse_args(argv)


def _flatten(spec: dict[str, Any]) -> dict[str, Any]:
    """Tables only group keys in the spec file: [search] trials = 12 is the same as trials = 12."""
    flat = {}
    for key, value in spec.items():
        flat.update(_flatten(value) if isinstance(value, dict) else {key: value})
    return flat


def _coerce(action: argparse.Action, value: Any, where: str) -> Any:
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
        if action.dest == "constraint":
            return value.split(",")
    if action.dest == "constraint" and isinstance(value, str):
        return [value]
    if action.type is None or isinstance(value, bool):
        return value
    try:
        return action.type(str(value))
    except (argparse.ArgumentTypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def search_config(args: argparse.Namespace) -> SearchConfig:
    objectives = parse_objectives(args.objective, args.reference_batch)
    constraints = tuple(parse_constraint(text, args.reference_batch) for text in args.constraint)
    modules = tuple({"e2gc": E2GC, "fggc": FGGC}.get(m.lower(), m) for m in args.modules)
    if args.space == "stagewise":
        space = StagewiseSearchSpace(archs=tuple(args.arch), group_sizes=tuple(args.group_sizes),
                                     widths=tuple(args.widths))
    else:
        space = SearchSpace(archs=tuple(args.arch), modules=modules, group_sizes=tuple(args.group_sizes),
                            groups=tuple(args.groups), widths=tuple(args.widths))
    data = data_config(args)
    settings = TrialSettings(objectives=objectives, constraints=constraints, space=space,
                             profile=profile_config(args, resolution=data.resolution),
                             train=train_config(args, data))
    return SearchConfig(settings=settings, data=data, storage=args.storage, study_name=args.study,
                        sampler=args.sampler, seed=args.seed, trials=args.trials, timeout_s=args.timeout,
                        baselines=args.baselines, workers=args.workers, warm_start=args.warm_start,
                        warm_start_profile=args.warm_start_profile)


def run(args: argparse.Namespace) -> int:
    if args.config is not None:
        args = apply_config_file(args.parser, args.argv)
    config = search_config(args)
    try:
        study = run_search(config)
    except SearchInterrupted as exc:
        note(str(exc))
        return 130
    front = front_info(study)
    if front.frame.empty:
        note("no feasible completed trial yet, so the front is empty; see the trial lines above")
        return 0
    note("Pareto front (also: e2gcsearch front):")
    emit(render_front(front, args.format))
    return 0
