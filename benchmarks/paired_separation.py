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
           that has an EPF row in proxy_fidelity.py's table, seeds 0 and 1
  replays  four networks spread over the space x seeds 0-49: 100 disjoint pairs (seed 2k against
           2k + 1) of a network compared with itself

``report`` (also printed after ``measure``) reads the table and prints:

* separation of neighbours: over the Pareto front of (EPF@16 from proxy_fidelity.py's table, seed-0
  top-1) and over every pair adjacent in EPF order, how many pairs the seed-0 top-1 separates by
  independent intervals (``accuracy_interval`` with the seed noise pooled over seeds 0/1, as the
  front judged before per-image results) and by the paired test (``paired_difference`` with
  ``population_seed_noise`` from the seed-0/1 bitsets);
* false separation: how many of the same-network pairs of ``replays`` each test separates at the 5 %
  level, against the binomial 95 % range of a test that holds its level.

Run from the repository root:
    python benchmarks/paired_separation.py --plans space,replays --workers 2   # measure, then report
    python benchmarks/paired_separation.py report
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from fidelity_runs import NETWORK_COLUMNS, Job, load_average, parse_proxy  # noqa: E402
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
SPACE_SEEDS = (0, 1)
REPLAY_SEEDS = 50  # seeds 0..49: 25 disjoint same-network pairs per network
REPLAYS = (  # spread over the space: E2GC G=1 w0.25, E2GC G=8 w0.5, FgGC g=8 w0.25, FgGC g=32 w0.5
    {"group_size": 1, "width": 0.25},
    {"group_size": 8, "width": 0.5},
    {"groups": 8, "width": 0.25},
    {"groups": 32, "width": 0.5},
)
COMMAND_VARIABLE = "PAIRED_SEPARATION_COMMAND"
MEDIANS = (  # per pair of neighbours: the difference, and the difference each test needs to separate it
    lambda judged: abs(judged.paired.diff),
    lambda judged: judged.needed,
    lambda judged: (judged.paired.high - judged.paired.low) / 2,
)


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
            for seed in SPACE_SEEDS
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


# --- the report -------------------------------------------------------------------------------------


class Runs:
    """The table's runs on its most common validation order: top-1 (%) and bitsets by label and seed."""

    def __init__(self, rows: list[dict[str, str]]):
        from e2gcsearch.paired import unpack

        orders = defaultdict(int)
        for row in rows:
            orders[(row["val_order"], int(row["val_size"]))] += 1
        (self.order, self.n), self.used = max(orders.items(), key=lambda item: item[1]) if orders else (("", 0), 0)
        self.top1: dict[str, dict[int, float]] = defaultdict(dict)
        self.bits: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
        for row in rows:
            if (row["val_order"], int(row["val_size"])) == (self.order, self.n) and row["status"] == "ok":
                self.top1[row["label"]][int(row["seed"])] = float(row["top1"])
                self.bits[row["label"]][int(row["seed"])] = unpack(row["correct"], self.n)

    def with_seeds(self, labels, *seeds: int) -> list[str]:
        return [label for label in labels if all(seed in self.top1.get(label, {}) for seed in seeds)]

    def seed_noise(self, labels):
        """(pooled std of seed-0/1 top-1, population_seed_noise of the seed-0/1 bitsets) over ``labels``."""
        from e2gcsearch.paired import population_seed_noise
        from e2gcsearch.stats import pooled_std

        both = self.with_seeds(labels, 0, 1)
        pooled = pooled_std([[self.top1[label][0], self.top1[label][1]] for label in both])
        return pooled, population_seed_noise(np.stack([self.bits[label][0], self.bits[label][1]]) for label in both)


class Judged(NamedTuple):
    """Two runs compared on top-1: by independent intervals and by the paired test."""

    independent: bool  # the two intervals are disjoint
    needed: float  # the difference (points) two intervals need: the sum of their half-widths
    paired: object  # e2gcsearch.paired.PairedDifference


def separated(runs: Runs, a: tuple[str, int], b: tuple[str, int], pooled, population) -> Judged:
    """Runs ``a`` and ``b`` (label, seed) compared both ways."""
    from e2gcsearch.paired import paired_difference
    from e2gcsearch.stats import accuracy_interval

    first, second = (accuracy_interval([runs.top1[label][seed]], runs.n, pooled) for label, seed in (a, b))
    independent = first.high < second.low or second.high < first.low
    needed = (first.high - first.low + second.high - second.low) / 2
    paired = paired_difference(runs.bits[a[0]][a[1]][None], runs.bits[b[0]][b[1]][None], population)
    return Judged(independent, needed, paired)


def noise_text(noise) -> str:
    return (
        "unknown (too few networks with seeds 0 and 1)" if noise is None else f"{noise.std:.2f} points (df {noise.df})"
    )


def ratio(paired: int, independent: int) -> str:
    return f"{paired / independent:.1f}x" if independent else ("-" if not paired else "inf (none independent)")


def neighbours(runs: Runs, epf: dict[str, float], labels: list[str]) -> None:
    from e2gcsearch.fidelity import pareto_front

    ranked = sorted(runs.with_seeds(labels, 0), key=lambda label: epf[label])
    pooled, population = runs.seed_noise(labels)
    print(f"\n## Separation of neighbours (seed-0 top-1 on {runs.n} images; {len(ranked)} networks with seed 0)\n")
    both = len(runs.with_seeds(labels, 0, 1))
    print(f"σ between seeds, from the {both} networks with seeds 0 and 1: pooled std of top-1 {noise_text(pooled)}")
    print(f"(independent intervals); population_seed_noise {noise_text(population)} (paired test)\n")
    front_index = sorted(pareto_front([epf[label] for label in ranked], [runs.top1[label][0] for label in ranked]))
    front = [ranked[i] for i in front_index]
    sets = {
        "Pareto-front neighbours": list(zip(front, front[1:])),
        "all neighbours in EPF order": list(zip(ranked, ranked[1:])),
    }
    print("| pairs | count | separated, independent intervals | separated, paired test | paired ÷ independent ", end="")
    print("| median size of Δ top-1 / Δ needed: independent / paired (points) |\n|---|---:|---:|---:|---:|---:|")
    judged = {}
    for name, pairs in sets.items():
        judged[name] = [(a, b, separated(runs, (a, 0), (b, 0), pooled, population)) for a, b in pairs]
        independent = sum(j.independent for *_, j in judged[name])
        paired = sum(j.paired.separated for *_, j in judged[name])
        line = f"| {name} | {len(pairs)} | {independent} | {paired} | {ratio(paired, independent)} |"
        medians = [np.median([f(j) for *_, j in judged[name]]) if pairs else np.nan for f in MEDIANS]
        print(f"{line} {' / '.join(f'{m:.2f}' for m in medians)} |")
    print(f"\nThe front by EPF@16 ({len(front)} networks), its neighbours (top-1 %, difference in points):\n")
    print("| a | b | EPF@16 a / b (mJ) | top-1 a / b | b − a, paired 95 % | discordant | independent | paired |")
    print("|---|---|---|---|---|---:|---|---|")
    for a, b, (independent, _, diff) in judged["Pareto-front neighbours"]:
        line = (
            f"| {short(a)} | {short(b)} | {epf[a]:.2f} / {epf[b]:.2f} | {runs.top1[a][0]:.2f} / {runs.top1[b][0]:.2f}"
        )
        line += f" | {-diff.diff:+.2f} [{-diff.high:+.2f}, {-diff.low:+.2f}] | {diff.discordant} |"
        print(f"{line} {'yes' if independent else 'no'} | {'yes' if diff.separated else 'no'} |")


def false_separation(runs: Runs, labels: list[str]) -> None:
    from scipy.stats import binom

    pooled, population = runs.seed_noise(labels)
    replays = [label for label, seeds in runs.top1.items() if len(seeds) > len(SPACE_SEEDS)]
    pairs = [((label, 2 * k), (label, 2 * k + 1)) for label in replays for k in range(REPLAY_SEEDS // 2)]
    pairs = [(a, b) for a, b in pairs if a[1] in runs.top1[a[0]] and b[1] in runs.top1[b[0]]]
    print(f"\n## False separation ({len(pairs)} disjoint same-network pairs, seed 2k against 2k + 1)\n")
    if not pairs:
        print("No network has seed pairs beyond 0/1 yet (plan `replays`).")
        return
    counts = {"images": 0, "space": 0, "independent": 0}
    for a, b in pairs:
        independent, _, with_space = separated(runs, a, b, pooled, population)
        images = separated(runs, a, b, pooled, None).paired
        counts["space"] += with_space.separated
        counts["images"] += images.separated
        counts["independent"] += independent
    low, high = binom.interval(0.95, len(pairs), 0.05)
    print("| test | σ between seeds | separated | of pairs |")
    print("|---|---|---:|---:|")
    print(f"| (a) paired, σ from the space's seeds 0/1 | {noise_text(population)} | {counts['space']} | {len(pairs)} |")
    print(f"| (b) paired, the images only | none | {counts['images']} | {len(pairs)} |")
    print(f"| (c) independent intervals | {noise_text(pooled)} | {counts['independent']} | {len(pairs)} |")
    expected = f"{0.05 * len(pairs):g} of {len(pairs)} on average, {low:.0f}–{high:.0f} in 95 % of studies"
    verdict = "within that range"
    if not low <= counts["space"] <= high:
        verdict = "below that range: it is conservative" if counts["space"] < low else "above that range: it is not"
    print(f"\nA test at the 5 % level separates {expected} (binomial); (a) is {verdict}.\n")
    print("| network | seeds | top-1 mean (%) | std between seeds (points) |")
    print("|---|---:|---:|---:|")
    for label in replays:
        values = list(runs.top1[label].values())
        print(f"| {short(label)} | {len(values)} | {np.mean(values):.2f} | {np.std(values, ddof=1):.2f} |")


def short(label: str) -> str:
    return label.removeprefix("mobilenet_v1 ")


def report(table: Path, fidelity_table: Path) -> None:
    rows = read_rows(table)
    epf = {row["label"]: float(row["value_out"]) for row in read_rows(fidelity_table) if row["kind"] == "epf"}
    runs = Runs(rows)
    labels = [label for label in runs.top1 if label in epf]
    print(f"# Paired separation: {table.name}, {len(rows)} rows ({runs.used} on the most common validation order)")
    print(f"\n{len(labels)} networks with an EPF row in {fidelity_table.name}; ", end="")
    counts = {seed: sum(seed in runs.top1[label] for label in labels) for seed in SPACE_SEEDS}
    print(", ".join(f"{count} with seed {seed}" for seed, count in counts.items()))
    if not labels or runs.n == 0:
        print("\nNothing to report yet.")
        return
    neighbours(runs, epf, labels)
    false_separation(runs, labels)


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
    parser.add_argument("--workers", type=int, default=2, help="measuring processes, one torch thread each (default 2)")
    parser.add_argument("--no-report", action="store_true", help="measure only")
    args = parser.parse_args(argv)
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
