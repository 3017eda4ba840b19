"""``e2gcsearch run``: the multi-objective search over G/g and width (Optuna)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import optuna

from ..config import E2GC, FGGC, FLGC
from ..data import DataConfig, load_data
from ..errors import ConfigError
from ..profiling import ProfileConfig
from ..report import render_front
from ..search.break_even import measure_break_even
from ..search.confirm import ConfirmLimits, ConfirmReport, confirm_study
from ..search.objectives import DEFAULT_BATCH_SIZE, parse_constraint, parse_objectives
from ..search.probes import run_probes
from ..search.run import SearchConfig, SearchInterrupted, search
from ..search.search_config import DEFAULT_TRIALS
from ..search.space import SearchSpace
from ..search.stagewise import StagewiseSearchSpace
from ..search.trial import TrialSettings
from ..store.results import front_info, front_notes
from ..store.spending import break_even_notes, study_search_cost, with_break_even
from ..train import TrainConfig, proxy_budget
from ._common import HelpFormatter, emit, note
from .configs import data_config, profile_config, training_layout
from .options import (
    DATA,
    MEASUREMENT_WHILE_TRAINING,
    OUTPUT,
    SEARCH,
    SPACE,
    TRAINING,
    add_options,
    complete,
)
from .spec import load_spec

EXAMPLES = f"""\
examples:
  e2gcsearch run --objective epf,top1                      # {DEFAULT_TRIALS} trials on the default data, resumable
  e2gcsearch run --objective epf@4,top1 --constraint 'params<=2e6' --sampler nsga2 --trials 30
  e2gcsearch run --arch mobilenet_v1,resnext50 --modules E2GC --group-sizes 1,4,16 --widths 0.25,0.5
  e2gcsearch run --arch regnet_y_400mf --group-sizes 1,2,4,8 --groups 2,4,8 --widths 0.5,1.0  # torchvision's RegNet
  e2gcsearch run --arch mypkg.models:build_net --widths 1.0    # your own network: a factory num_classes -> nn.Module
  e2gcsearch run --config studies/food101.toml --trials 40  # a versioned study spec; flags override it
  e2gcsearch run --storage studies/e2gcsearch.log --workers 2   # two processes on one journal file
  e2gcsearch run --storage postgresql://me:PASSWORD@dbhost/e2gc --device cuda --devices 0,1 --workers 2
  e2gcsearch run --space stagewise --study stagewise   # one G per stage, warm-started from Eq. 2
  e2gcsearch run --warm-start none --study plain         # the sampler alone, no energy-model calibration
  e2gcsearch run --early-stop off --trials 33              # every point of the default space, each trained fully

objectives: epf (mJ/frame at batch {DEFAULT_BATCH_SIZE}; epf@B for batch B), top1 (maximized), params, macs,
latency (ms/batch, latency@B). Energy figures name the backend that produced them ('estimate' when no
counter is readable). Running the same command again resumes the study; Ctrl-C keeps finished trials.
Before a study is created or resumed, one network per architecture/module/width is built and stepped
once (measured and trained) on the device; a failure there is one line and nothing is written. A
resume with other training, measurement or device settings is refused (start a new --study NAME).
--trials N means N new points, the queued baselines included: a proposal that repeats a measured point is
answered from the study and not charged; when fewer than N unmeasured points remain, all are measured.
After the trials, a few completed points are trained again with another seed and a few points' EPF is
measured again in a sitting of their own, so the front's intervals hold the study's seed noise and EPF
scatter between sittings (at most 15 % of the search's time; --no-noise-probes skips it).
A trial whose proxy training can no longer reach the front is stopped early (PRUNED, with the reason;
--early-stop picks the rule or successive halving, --early-stop off trains every trial to the end). A run
whose trials all fail exits with status 1. After the trials, a study with no epf_infer objective gets the
inference EPF (batch 1) of its front and their paper baselines measured, for the front's break-even column
(--no-break-even skips it); the run's last line is what the whole search used, that work included.
While a trial measures energy, the other e2gcsearch processes of the host pause their training on that
device (between two steps), so no window counts another worker's work; --no-device-lock turns it off.
"""


RUN_GROUPS = (SEARCH, SPACE, DATA, TRAINING, MEASUREMENT_WHILE_TRAINING, OUTPUT)
RUN_DEFAULTS = {
    "repeats": 3,
    "impl": "auto",
}  # three windows per batch size keep a trial cheap; unset data flags: the proxy budget


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="search G/g and width against energy per frame and proxy accuracy",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE.toml",
        help="study spec (TOML, keys named like these flags); flags given here override it",
    )
    # Only the flags given reach the namespace; run() completes it from the spec and the defaults.
    add_options(parser, *RUN_GROUPS, defaults=RUN_DEFAULTS, given_only=True)
    parser.set_defaults(func=run)


def proxy_train_config(args: argparse.Namespace, data: DataConfig) -> TrainConfig:
    """The proxy training of every trial; unset --epochs: the dataset's proxy budget."""
    return TrainConfig(
        epochs=args.epochs or proxy_budget(data).epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.train_seed,
        device=args.device,
        threads=args.threads,
        layout=training_layout(args),
        progress=False,
    )


def _early_stop(args: argparse.Namespace) -> str:
    """--early-stop, with --no-early-stop read as its older spelling of 'off'."""
    if args.no_early_stop and "early_stop" in args.chosen and args.early_stop != "off":
        raise ConfigError(
            f"--no-early-stop contradicts --early-stop {args.early_stop}; keep one (--no-early-stop is --early-stop off)"
        )
    return "off" if args.no_early_stop else args.early_stop


def _rung0_score(args: argparse.Namespace, early_stop: str) -> str | None:
    """--rung0-score, which belongs to successive halving ('none' and any score under another policy: None)."""
    if "rung0_score" in args.chosen and args.rung0_score != "none" and early_stop != "asha":
        raise ConfigError(
            f"--rung0-score {args.rung0_score} ranks trials at rung 0 of successive halving, but --early-stop is "
            f"{early_stop}; add --early-stop asha or drop --rung0-score"
        )
    return args.rung0_score if args.rung0_score != "none" and early_stop == "asha" else None


def search_config(args: argparse.Namespace) -> SearchConfig:
    if args.warm_start == "none" and args.warm_start_profile:
        raise ConfigError(
            "--warm-start-profile gives the warm start a device profile, but --warm-start none turns "
            "the warm start off; drop one of them"
        )
    objectives = parse_objectives(args.objective, args.reference_batch)
    constraints = tuple(parse_constraint(text, args.reference_batch) for text in args.constraint)
    modules = tuple({"e2gc": E2GC, "fggc": FGGC, "flgc": FLGC}.get(m.lower(), m) for m in args.modules or (E2GC, FGGC))
    if args.space == "stagewise":
        if args.modules and set(modules) != {E2GC}:
            raise ConfigError(
                "--space stagewise searches one E2GC group size per stage; drop --modules (or give "
                "--modules E2GC), or use --space grid for FgGC and FLGC"
            )
        space = StagewiseSearchSpace(
            archs=tuple(args.arch), group_sizes=tuple(args.group_sizes), widths=tuple(args.widths)
        )
    else:
        space = SearchSpace(
            archs=tuple(args.arch),
            modules=modules,
            group_sizes=tuple(args.group_sizes),
            groups=tuple(args.groups),
            widths=tuple(args.widths),
        )
    data = data_config(args, proxy=True)
    settings = TrialSettings(
        objectives=objectives,
        constraints=constraints,
        space=space,
        profile=profile_config(args, threads=args.profile_threads, resolution=data.resolution),
        train=proxy_train_config(args, data),
        proxy_seeds=args.proxy_seeds,
        early_stop=_early_stop(args),
        rung0_score=_rung0_score(args, _early_stop(args)),
    )
    return SearchConfig(
        settings=settings,
        data=data,
        storage=args.storage,
        study_name=args.study,
        sampler=args.sampler,
        seed=args.seed,
        trials=args.trials,
        timeout_s=args.timeout,
        baselines=not args.no_baselines,
        workers=args.workers,
        devices=args.devices,
        share_devices=args.share_devices,
        warm_start=args.warm_start,
        warm_start_profile=args.warm_start_profile,
    )


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    spec = load_spec(args.config, RUN_GROUPS) if args.config is not None else {}
    args = complete(args, RUN_GROUPS, RUN_DEFAULTS, spec)
    config = search_config(args)
    try:
        outcome = search(config)
    except SearchInterrupted as exc:
        note(str(exc))
        return exc.exit_status
    failures = outcome.failure_summary()
    if failures:
        note("\n".join(failures))
        note("fix the cause above and run again (e2gcsearch --debug run ... shows each trial's traceback)")
        note(study_search_cost(outcome.study).line())
        return 1
    if not args.no_noise_probes and outcome.settings is not None and outcome.data is not None:
        run_probes(outcome.study, outcome.settings, outcome.data, time.perf_counter() - started, note)
    if args.confirm:
        settings = config.settings
        confirm(outcome.study, config.data, settings.train, settings.profile, ConfirmLimits(budget_s=args.confirm))
    if not args.no_break_even:
        measure_break_even(outcome.study, config.settings.profile, note)
    front = front_info(outcome.study)
    if front.frame.empty:
        note("no feasible completed trial yet, so the front is empty; see the trial lines above")
        note(study_search_cost(outcome.study).line())
        return 0
    front = with_break_even(outcome.study, front)
    note("Pareto front (also: e2gcsearch front):")
    emit(render_front(front, args.format))
    total, *break_even = break_even_notes(front)  # the search's total comes last, as the run's last word
    for line in front_notes(outcome.study, front) + break_even:
        note(f"note: {line}")
    note(total)
    return 0


def confirm(
    study: optuna.Study,
    data: DataConfig,
    train: TrainConfig,
    profile: ProfileConfig,
    limits: ConfirmLimits,
    remeasure: bool = False,
) -> ConfirmReport:
    """Run confirm on ``study`` (with ``remeasure``, every trial's EPF again first); prints each
    measurement and the account on stderr."""
    note(f"confirm: study {study.study_name!r}, budget {limits.budget_s:g} s")
    report = confirm_study(
        study, train, profile, load_data(data, progress=False), limits, say=note, remeasure=remeasure
    )
    for line in report.lines():
        note(line)
    return report
