"""Paired separation on food101-10: how many more pairs of networks does the paired test on per-image
results order on top-1 than two independent intervals do, and how often does it order a network
against itself?

``measure`` (the default) trains MobileNet-V1 networks at one proxy budget (``--proxy``, default
e4-n100-r64: 4 epochs, 100 training images per class, 64 px; the same training images for every seed,
only the training seed changes) and appends one row per network x seed to
``benchmarks/data/paired_food101-10.csv``: top-1 on the 750 validation images and which of them the
final model got right (``correct``, packed by ``e2gcsearch.paired.pack``, over the order ``val_order``).
Runs already in the table are skipped, so a killed run loses only the runs in flight; ``--workers N``
starts N measuring processes of one torch thread each (runs and claims as ``proxy_fidelity.py``'s).
The plans (``--plans``):

  space    every configuration of the default space (E2GC G and FgGC g at widths 0.25/0.5/0.75)
           that has an EPF row in proxy_fidelity.py's table, seeds 0 and 1 (``--space-seeds 4``: 0-3)
  replays  four networks spread over the space x seeds 0-49: 100 disjoint pairs (seed 2k against
           2k + 1) of a network compared with itself

``report`` (also printed after ``measure``) reads the table and prints:

Each part judges seed 0, then the means of seeds 0 and 1 and of seeds 0-3 where the table has them
(what ``--proxy-seeds 2`` and ``4`` compare); σ always comes from seeds 0 and 1:

* separation of neighbours: over the Pareto front of (EPF@16 from proxy_fidelity.py's table, top-1)
  and over every pair adjacent in EPF order, how many pairs independent intervals separate
  (``accuracy_interval`` with the seed noise pooled over seeds 0/1, as the front judged before
  per-image results) and how many the paired test does (``paired_difference`` with
  ``population_seed_noise`` from the seed-0/1 bitsets);
* every pair of networks: separated by independent intervals, by the difference of independent
  intervals (an unpaired test) and by the paired test; and how many of the paired test's separations
  seed 1 orders alike, and the reference full training of proxy_fidelity.py's table (its seeds' mean);
* false separation: how many disjoint same-network pairs of ``replays`` (one seed, or means of 2 or 4
  seeds each) each test separates at the 5 % level, against the binomial 95 % range of a test that
  holds its level.

The report is ``paired_report.py``.

Run from the repository root:
    python benchmarks/paired_separation.py --plans space,replays --workers 2   # measure, then report
    python benchmarks/paired_separation.py --plans space --space-seeds 4 --workers 2   # seeds 2 and 3
    python benchmarks/paired_separation.py report
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from fidelity_runs import NETWORK_COLUMNS, Job, load_average, parse_proxy  # noqa: E402
from paired_report import REPLAY_SEEDS, SPACE_MOST, SPACE_SEEDS, report  # noqa: E402
from proxy_fidelity import DEFAULT_DATA, data_classes, measure_in_workers, measure_jobs, read_rows  # noqa: E402
from proxy_fidelity import DEFAULT_TABLE as FIDELITY_TABLE  # noqa: E402

DEFAULT_TABLE = ROOT / "benchmarks" / "data" / "paired_food101-10.csv"
DEFAULT_PROXY = "e4-n100-r64"
COLUMNS = [
    *NETWORK_COLUMNS,
    "kind",
    "setting",
    "seed",
    "top1",
    "val_size",
    "val_order",
    "correct",
    "train_s",
    "status",
    "load",
    "measured_at",
]
PLANS = ("space", "replays")
WIDTHS = (0.25, 0.5, 0.75)
REPLAYS = (  # spread over the space: E2GC G=1 w0.25, E2GC G=8 w0.5, FgGC g=8 w0.25, FgGC g=32 w0.5
    {"group_size": 1, "width": 0.25},
    {"group_size": 8, "width": 0.5},
    {"groups": 8, "width": 0.25},
    {"groups": 32, "width": 0.5},
)
COMMAND_VARIABLE = "PAIRED_SEPARATION_COMMAND"


# --- the plans --------------------------------------------------------------------------------------


def space(fidelity_table: Path, num_classes: int) -> list:
    """The default space's networks with an EPF row in proxy_fidelity.py's table (E2GC before FgGC)."""
    from e2gcsearch import ArchConfig
    from e2gcsearch.paper import GROUP_SIZES, GROUPS

    with_epf = {row["label"] for row in read_rows(fidelity_table) if row["kind"] == "epf"}
    every = [
        ArchConfig("mobilenet_v1", width=width, num_classes=num_classes, **{field: value})
        for width in WIDTHS
        for field, values in (("group_size", GROUP_SIZES), ("groups", GROUPS))
        for value in values
    ]
    return [arch for arch in every if arch.label() in with_epf]


def plan(args: argparse.Namespace, num_classes: int) -> list[Job]:
    from e2gcsearch import ArchConfig

    jobs: list[Job] = []
    setting = args.proxy.key
    if "space" in args.plans:
        jobs += [
            Job(arch, "proxy", setting, seed)
            for arch in space(args.fidelity_table, num_classes)
            for seed in range(args.space_seeds)
        ]
    if "replays" in args.plans:
        replays = [ArchConfig("mobilenet_v1", num_classes=num_classes, **fields) for fields in REPLAYS]
        jobs += [Job(arch, "proxy", setting, seed) for seed in range(REPLAY_SEEDS) for arch in replays]
    return list({job.key: job for job in jobs}.values())  # the replays' seeds 0/1 are the space's


# --- measuring --------------------------------------------------------------------------------------


def header_lines(args: argparse.Namespace) -> list[str]:
    import torch

    made_by = os.environ.get(COMMAND_VARIABLE) or shlex.join(sys.argv[1:])  # a worker writes its parent's
    return [
        f"made by: python benchmarks/paired_separation.py {made_by}",
        f"started {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores, "
        f"torch {torch.__version__}, one torch thread per run, data {args.data_root.name} (all validation "
        f"images), proxy {args.proxy.key} (<epochs>-<training images per class, drawn with data seed 0 for "
        "every run>-<px>), cosine, lr 0.05, batch 32, layout auto; seed = the training seed",
        "one row per network x seed; correct: base64 of the packed bits (e2gcsearch.paired.pack) of the "
        "validation images the final model got right, in the order whose digest is val_order; train_s: "
        "seconds of training; load: the 1/5/15-min load average before -> after the run",
    ]


def measure(args: argparse.Namespace) -> None:
    measure_jobs(args.table, plan(args, data_classes(args.data_root)), args, header_lines(args), COLUMNS)


# --- the command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", nargs="?", choices=("measure", "report"), default="measure")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA, help="folder holding food-101/")
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="the table this script appends to")
    parser.add_argument(
        "--fidelity-table", type=Path, default=FIDELITY_TABLE, help="proxy_fidelity.py's table (its EPF rows)"
    )
    parser.add_argument(
        "--proxy", type=parse_proxy, default=parse_proxy(DEFAULT_PROXY), help=f"default {DEFAULT_PROXY}"
    )
    parser.add_argument(
        "--plans",
        type=lambda s: tuple(p for p in s.split(",") if p),
        default=PLANS,
        help="space,replays (default both)",
    )
    parser.add_argument(
        "--space-seeds",
        type=int,
        default=len(SPACE_SEEDS),
        help=f"seeds 0..N-1 of every network of plan space (default {len(SPACE_SEEDS)}; the report judges means of 2 and 4)",
    )
    parser.add_argument("--workers", type=int, default=2, help="measuring processes, one torch thread each (default 2)")
    parser.add_argument("--no-report", action="store_true", help="measure only")
    args = parser.parse_args(argv)
    if not len(SPACE_SEEDS) <= args.space_seeds <= SPACE_MOST:
        parser.error(
            f"--space-seeds must be {len(SPACE_SEEDS)} to {SPACE_MOST}: σ comes from seeds 0 and 1, more are replays"
        )
    if set(args.plans) - set(PLANS):
        parser.error(f"unknown plans {sorted(set(args.plans) - set(PLANS))}; choose from {', '.join(PLANS)}")
    args.hold = "shared"  # run_job records it; this table has no column for it (see load)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.step == "measure":
        if not (args.data_root / "food-101" / "meta" / "train.json").is_file():
            print(f"paired_separation: no Food-101 at {args.data_root}; pass --data-root DIR", file=sys.stderr)
            raise SystemExit(2)
        started = time.perf_counter()
        measure_in_workers(args.workers, __file__, COMMAND_VARIABLE) if args.workers > 1 else measure(args)
        print(f"measured for {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if not args.no_report:
        report(args.table, args.fidelity_table)
        print(f"\nload average now: {load_average()} on {os.cpu_count()} cores", file=sys.stderr)


if __name__ == "__main__":
    main()
