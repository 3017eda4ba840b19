"""Proxy fidelity on food101-10: does a cheap proxy rank networks the way full training does, and how
well does full training agree with itself?

``measure`` (the default) appends one row per run to ``benchmarks/data/proxy_fidelity_food101-10.csv``
and skips every run already there, so the measurement spans sittings (``--max-seconds`` stops starting
new runs; several processes can share the work: each claims its next run in a ``.claims`` file beside
the table). The runs:

  full    the reference recipe (``e2gcsearch.train.FULL_RECIPE``: 24 cosine epochs, all 300 images
          per class, 64 px, random-resized crop + flip), seeds 0 to --full-seeds - 1, for the fidelity set: 26
          MobileNet-V1 networks (every E2GC G and FgGC g of the default space at widths 0.25 and 0.5,
          two FLGC networks, and E2GC G=8 / FgGC g=32 at width 0.75; six E2GC/FgGC pairs of MACs
          within 10 %)
  proxy   every proxy budget of ``--proxies`` (epochs x images per class x resolution, cosine, seed 0)
          for the fidelity set, then ``--rest-proxies`` for the rest of the default ``e2gcsearch run``
          space (width 0.75), so that a search can be replayed on the table; top-1 and seconds after
          every epoch
  score   the training-free scores of ``e2gcsearch.train.scores`` at initialisation (seeds 0-2)
  epf     EPF at B = 1, 4, 16 (``--impl auto``, no cache); run it alone (``--kinds epf``) on a quiet
          machine: ``hold`` says whether anything else ran

Every run is judged on the same 750 validation images. ``report`` (also printed after ``measure``)
reads the table and prints, per proxy: Kendall tau and Spearman rho against the mean full top-1 over
seeds, a bootstrap 95 % interval of tau over configurations, tau / the noise ceiling (tau between the
two full-training seeds, with its own interval), cost / full training (training seconds, same
configurations), the share of E2GC/FgGC pairs of comparable MACs whose order it gets right, and the
share of the full-training Pareto front (EPF@16 x top-1) it recovers.

Run from the repository root (``--workers`` starts that many measuring processes, one torch thread each):
    python benchmarks/proxy_fidelity.py --workers 2                    # measure what is missing, then report
    python benchmarks/proxy_fidelity.py report
    flock -x /tmp/quiet.lock python benchmarks/proxy_fidelity.py --kinds epf --hold exclusive
    python benchmarks/proxy_fidelity.py --data-root ../shared/data/food101-mini --table /tmp/mini.csv --limit 2
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import fcntl
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from fidelity_report import report  # noqa: E402  (the statistics, kept apart so that tests import them)
from fidelity_runs import NETWORK_COLUMNS, Job, Proxy, load_average, parse_proxy, run_job  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "food101-10"
DEFAULT_TABLE = ROOT / "benchmarks" / "data" / "proxy_fidelity_food101-10.csv"
KINDS = ("score", "proxy", "full", "epf")
COLUMNS = [
    *NETWORK_COLUMNS,
    "params",
    "macs",
    "kind",
    "setting",
    "seed",
    "epochs",
    "train_per_class",
    "resolution",
    "top1",
    "top1_curve",
    "epoch_s",
    "train_s",
    "value_out",
    "unit",
    "status",
    "val_size",
    "hold",
    "load",
    "measured_at",
]
FULL_SEEDS = 2  # full-training seeds per network, by default
COMMAND_VARIABLE = "PROXY_FIDELITY_COMMAND"
SCORE_SEEDS = (0, 1, 2)


DEFAULT_PROXIES = "e2-nall-r64,e4-n100-r64,e4-nall-r48,e4-nall-r64"


def fidelity_set(num_classes: int):
    """The 26 networks trained in full: the default space at widths 0.25 and 0.5, two FLGC, and the one
    E2GC/FgGC pair of comparable MACs at width 0.75 (a sixth pair: at 64 px and these widths the pairs
    of comparable MACs are not the paper's G=8/g=32, G=16/g=16, G=32/g=8)."""
    from e2gcsearch import ArchConfig
    from e2gcsearch.paper import GROUP_SIZES, GROUPS

    archs = [
        ArchConfig("mobilenet_v1", width=width, num_classes=num_classes, **{field: value})
        for width in (0.25, 0.5)
        for field, values in (("group_size", GROUP_SIZES), ("groups", GROUPS))
        for value in values
    ]
    archs += [
        ArchConfig("mobilenet_v1", groups=4, width=0.25, num_classes=num_classes, module="FLGC"),
        ArchConfig("mobilenet_v1", groups=8, width=0.5, num_classes=num_classes, module="FLGC"),
        ArchConfig("mobilenet_v1", group_size=8, width=0.75, num_classes=num_classes),
        ArchConfig("mobilenet_v1", groups=32, width=0.75, num_classes=num_classes),
    ]
    return archs


def replay_rest(num_classes: int):
    """The rest of the default ``e2gcsearch run`` space (width 0.75, less the pair trained in full):
    proxies only."""
    from e2gcsearch import ArchConfig
    from e2gcsearch.paper import GROUP_SIZES, GROUPS

    full = {arch.label() for arch in fidelity_set(num_classes)}
    every = [
        ArchConfig("mobilenet_v1", width=0.75, num_classes=num_classes, **{field: value})
        for field, values in (("group_size", GROUP_SIZES), ("groups", GROUPS))
        for value in values
    ]
    return [arch for arch in every if arch.label() not in full]


def full_setting(args: argparse.Namespace) -> str:
    """The full-training rows' setting: the recipe's budget (``e12-nall-r64``), so that another recipe
    measured later gets rows of its own."""
    from e2gcsearch.train import FULL_RECIPE

    return Proxy(args.full_epochs or FULL_RECIPE.epochs, None, args.full_resolution or FULL_RECIPE.resolution).key


def plan(args: argparse.Namespace, num_classes: int) -> list[Job]:
    if "score" in args.kinds:
        from e2gcsearch.train.scores import SCORES
    else:
        SCORES = ()
    jobs: list[Job] = []
    fidelity = fidelity_set(num_classes)[: args.limit]
    for arch in fidelity:
        jobs += [Job(arch, "score", name, seed) for name in SCORES for seed in SCORE_SEEDS]
        jobs += [Job(arch, "proxy", proxy.key, 0) for proxy in args.proxies]
        jobs += [Job(arch, "full", full_setting(args), seed) for seed in range(args.full_seeds)]
    rest = [] if args.limit else replay_rest(num_classes)
    jobs += [Job(arch, "proxy", proxy.key, 0) for arch in rest for proxy in args.rest_proxies or args.proxies]
    jobs += [Job(arch, "score", name, seed) for arch in rest for name in SCORES for seed in SCORE_SEEDS]
    jobs += [Job(arch, "epf", "epf", 0) for arch in [*fidelity, *rest]]
    return [job for job in jobs if job.kind in args.kinds]


# --- the table --------------------------------------------------------------------------------------


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open() as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def row_key(row: dict[str, str]) -> str:
    return f"{row['label']}|{row['kind']}|{row['setting']}|{row['seed']}"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One process at a time reads or changes the table and its claims."""
    with open(path.with_suffix(".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_next(table: Path, jobs: list[Job]) -> Job | None:
    """The first job neither in the table nor claimed by a live process, claimed for this one."""
    claims_path = table.with_suffix(".claims")
    with locked(table):
        done = {row_key(row) for row in read_rows(table)}
        claims = {}
        if claims_path.exists():
            for line in claims_path.read_text().splitlines():
                key, _, pid = line.rpartition(" ")
                if pid.isdigit() and alive(int(pid)) and key not in done:
                    claims[key] = int(pid)
        job = next((job for job in jobs if job.key not in done and job.key not in claims), None)
        if job is not None:
            claims[job.key] = os.getpid()
        claims_path.write_text("".join(f"{key} {pid}\n" for key, pid in claims.items()))
        return job


def append(table: Path, row: dict, header: list[str], columns: list[str] = COLUMNS) -> None:
    """Add ``row`` to ``table`` (its ``columns``; others left out), with ``header`` when it is new."""
    with locked(table):
        new = not table.exists()
        with table.open("a") as handle:
            if new:
                handle.writelines(f"# {line}\n" for line in header)
            writer = csv.DictWriter(handle, columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)


def header_lines(args: argparse.Namespace) -> list[str]:
    from e2gcsearch.train import FULL_RECIPE

    made_by = os.environ.get(COMMAND_VARIABLE) or shlex.join(sys.argv[1:])  # a worker writes its parent's
    return [
        f"made by: python benchmarks/proxy_fidelity.py {made_by}",
        f"started {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores, "
        f"torch {torch.__version__}, one torch thread per run, data {args.data_root.name} (all validation images)",
        f"full = {FULL_RECIPE.describe()}"
        + (
            f" (overridden: {args.full_epochs or FULL_RECIPE.epochs} epochs, "
            f"{args.full_resolution or FULL_RECIPE.resolution} px)"
            if args.full_epochs or args.full_resolution
            else ""
        )
        + "; proxy = <epochs>-<images per class>-<px>, cosine, lr 0.05, batch 32; layout auto (the faster of nchw and channels_last, timed at the start)",
        "one row per run; top1_curve / epoch_s: after every epoch (epoch 1 also builds the model); train_s: their "
        "sum; score rows: value_out at initialisation; epf rows: value_out = EPF@16, epoch_s = B:mean:std:implementation; "
        "hold: exclusive = nothing else ran, shared = other jobs did (see load, the 1/5/15-min load average)",
    ]


def data_classes(data_root: Path) -> int:
    """How many classes the Food-101 subset at ``data_root`` has (what the plans are made for)."""
    from e2gcsearch.data import DataConfig, load_data

    return load_data(DataConfig(name="food101", root=str(data_root), resolution=32, seed=0), progress=False).num_classes


def measure_jobs(
    table: Path, jobs: list[Job], args: argparse.Namespace, header: list[str], columns: list[str] = COLUMNS
) -> None:
    """Run the ``jobs`` not yet in ``table``, one at a time (other processes take others), appending a
    row each, until none is left or ``args.max_seconds`` (when given) have passed; one torch thread."""
    torch.set_num_threads(1)
    done = {row_key(row) for row in read_rows(table)}
    print(f"{sum(job.key in done for job in jobs)} of {len(jobs)} runs in {table}", file=sys.stderr)
    started, memo, limit = time.perf_counter(), {}, getattr(args, "max_seconds", None) or float("inf")
    while time.perf_counter() - started < limit:
        job = claim_next(table, jobs)
        if job is None:
            return
        row = run_job(job, args, memo)
        append(table, row, header, columns)
        shown = row.get("top1") or row.get("value_out")
        print(f"[{os.getpid()}] {job.key}: {shown} ({row.get('train_s') or '-'} s)", file=sys.stderr, flush=True)
    print(f"stopped starting runs after {limit:g} s; run again to go on", file=sys.stderr)


def measure_in_workers(workers: int, script: str, command_variable: str) -> None:
    """Run ``script`` again as ``workers`` processes with this command's arguments and ``--workers 1
    --no-report``: they share the plan through the claims file, and only this process reports. Each
    child finds this command in ``command_variable`` (for the table's header)."""
    argv = sys.argv[1:]
    if "--workers" in argv:
        del argv[argv.index("--workers") : argv.index("--workers") + 2]
    argv = [a for a in argv if not a.startswith("--workers=")]
    command = [sys.executable, script, *argv, "--workers", "1", "--no-report"]
    environment = {**os.environ, command_variable: shlex.join(sys.argv[1:])}
    children = [subprocess.Popen(command, env=environment) for _ in range(workers)]
    codes = [child.wait() for child in children]
    if any(codes):
        raise SystemExit(max(codes))


def measure(args: argparse.Namespace) -> None:
    measure_jobs(args.table, plan(args, data_classes(args.data_root)), args, header_lines(args))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", nargs="?", choices=("measure", "report"), default="measure")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA, help="folder holding food-101/")
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    parser.add_argument(
        "--proxies",
        type=lambda s: [parse_proxy(p) for p in s.split(",") if p],
        default=[parse_proxy(p) for p in DEFAULT_PROXIES.split(",")],
        help=f"comma list of proxy budgets (default {DEFAULT_PROXIES})",
    )
    parser.add_argument(
        "--rest-proxies",
        type=lambda s: [parse_proxy(p) for p in s.split(",") if p],
        help="proxy budgets for the rest of the default space (default: --proxies)",
    )
    parser.add_argument(
        "--kinds",
        type=lambda s: tuple(k for k in s.split(",") if k),
        default=KINDS[:3],
        help="which runs to measure: score,proxy,full (default) and epf (alone, on a quiet machine)",
    )
    parser.add_argument(
        "--full-epochs",
        type=int,
        help="full training of this many epochs instead of the recipe's (rows of their own: setting "
        "e<epochs>-nall-r<px>; the report judges against the one asked for)",
    )
    parser.add_argument("--full-resolution", type=int, help="full training at this resolution instead of the recipe's")
    parser.add_argument(
        "--full-seeds",
        type=int,
        default=FULL_SEEDS,
        help=f"full-training seeds per network, 0 to N-1 (default {FULL_SEEDS}; 4 lets the report "
        "measure how well a two-seed reference agrees with another); the report judges the networks "
        "that have N seeds",
    )
    parser.add_argument("--limit", type=int, help="only the first N networks of the fidelity set (smoke runs)")
    parser.add_argument("--workers", type=int, default=1, help="measuring processes (one torch thread each)")
    parser.add_argument("--max-seconds", type=float, default=float("inf"), help="start no run after this long")
    parser.add_argument(
        "--hold",
        choices=("shared", "exclusive"),
        default="shared",
        help="recorded per row: did the machine run anything else meanwhile",
    )
    parser.add_argument("--no-report", action="store_true", help="measure only")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the tau intervals")
    args = parser.parse_args(argv)
    unknown = set(args.kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds {sorted(unknown)}; choose from {', '.join(KINDS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.step == "measure":
        if not (args.data_root / "food-101" / "meta" / "train.json").is_file():
            print(
                f"proxy_fidelity: no Food-101 at {args.data_root}; pass --data-root DIR, the folder holding food-101/",
                file=sys.stderr,
            )
            raise SystemExit(2)
        if args.workers > 1:
            measure_in_workers(args.workers, __file__, COMMAND_VARIABLE)
        else:
            measure(args)
    if not args.no_report:
        print(f"load average now: {load_average()} on {os.cpu_count()} cores")
        report(args.table, args.bootstrap, full_setting(args), args.full_seeds)


if __name__ == "__main__":
    main()
