"""The report of ``benchmarks/paired_separation.py``: reads its table and prints, as markdown tables,
how many pairs of networks the paired test on per-image results separates on top-1 against two
independent intervals, and how often it separates a network from itself (see that script's docstring).

Three ways to judge two runs ``a`` and ``b`` on top-1 (each run: a network and the seeds averaged):

* independent intervals: ``accuracy_interval`` of each, seed noise pooled over the space's seeds 0/1
  (what the front did before per-image results); separated when the intervals are disjoint;
* the difference of independent intervals: the same two intervals, separated when the difference
  exceeds their facing half-widths added in quadrature (what an unpaired test of the difference does);
* the paired test: ``paired_difference`` of the bitsets with ``population_seed_noise`` from the
  space's seed-0/1 bitsets (what a study's front does).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
from proxy_fidelity import read_rows

SPACE_SEEDS = (0, 1)  # the seeds every network of the space trains with; σ comes from them
SEED_SETS = {(0,): "seed 0", SPACE_SEEDS: "mean of seeds 0 and 1", (0, 1, 2, 3): "mean of seeds 0-3"}  # judged on
SPACE_MOST = max(map(len, SEED_SETS))  # a network with more seeds than this is a replay
REPLAY_SEEDS = 50  # seeds 0..49 of the replayed networks: 25 disjoint same-network pairs per network
TRUTH = "e24-nall-r64"  # proxy_fidelity.py's reference full training, the order a separation is held to
MEDIANS = (  # per pair of neighbours: the difference, and the difference each test needs to separate it
    lambda judged: abs(judged.paired.diff),
    lambda judged: judged.needed,
    lambda judged: (judged.paired.high - judged.paired.low) / 2,
)


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

        both = self.with_seeds(labels, *SPACE_SEEDS)
        pooled = pooled_std([[self.top1[label][seed] for seed in SPACE_SEEDS] for label in both])
        bitsets = (np.stack([self.bits[label][seed] for seed in SPACE_SEEDS]) for label in both)
        return pooled, population_seed_noise(bitsets)


class Judged(NamedTuple):
    """Two runs compared on top-1: by independent intervals, by their difference, and by the paired test."""

    independent: bool  # the two intervals are disjoint
    unpaired: bool  # the difference exceeds the intervals' facing half-widths in quadrature
    needed: float  # the difference (points) two disjoint intervals need: the sum of their half-widths
    paired: object  # e2gcsearch.paired.PairedDifference


def separated(runs: Runs, a: tuple[str, tuple[int, ...]], b: tuple[str, tuple[int, ...]], pooled, population) -> Judged:
    """Runs ``a`` and ``b`` (label, seeds averaged) compared the three ways (module docstring)."""
    from e2gcsearch.paired import paired_difference
    from e2gcsearch.stats import accuracy_interval

    first, second = (accuracy_interval([runs.top1[label][s] for s in seeds], runs.n, pooled) for label, seeds in (a, b))
    independent = first.high < second.low or second.high < first.low
    needed = (first.high - first.low + second.high - second.low) / 2
    upper, lower = (first, second) if first.mean >= second.mean else (second, first)
    unpaired = upper.mean - lower.mean > math.hypot(upper.mean - upper.low, lower.high - lower.mean)
    bits = (np.stack([runs.bits[label][s] for s in seeds]) for label, seeds in (a, b))
    return Judged(independent, unpaired, needed, paired_difference(*bits, population))


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
    both = len(runs.with_seeds(labels, *SPACE_SEEDS))
    print(f"σ between seeds, from the {both} networks with seeds 0 and 1: pooled std of top-1 {noise_text(pooled)}")
    print(f"(independent intervals); population_seed_noise {noise_text(population)} (paired test)\n")
    print("| pairs | count | separated, independent intervals | separated, paired test | paired ÷ independent ", end="")
    print("| median size of Δ top-1 / Δ needed: independent / paired (points) |\n|---|---:|---:|---:|---:|---:|")
    judged, fronts = {}, {}
    for seeds, said in SEED_SETS.items():
        ranked_here, suffix = runs.with_seeds(ranked, *seeds), "" if seeds == (0,) else f", {said}"
        if len(ranked_here) < 2:
            continue
        top1 = [float(np.mean([runs.top1[label][s] for s in seeds])) for label in ranked_here]
        on_front = sorted(pareto_front([epf[label] for label in ranked_here], top1))
        front = fronts[seeds] = [ranked_here[i] for i in on_front]
        sets = {
            f"Pareto-front neighbours{suffix}": list(zip(front, front[1:])),
            f"all neighbours in EPF order{suffix}": list(zip(ranked_here, ranked_here[1:])),
        }
        for name, pairs in sets.items():
            judged[name] = [(a, b, separated(runs, (a, seeds), (b, seeds), pooled, population)) for a, b in pairs]
            independent = sum(j.independent for *_, j in judged[name])
            paired = sum(j.paired.separated for *_, j in judged[name])
            line = f"| {name} | {len(pairs)} | {independent} | {paired} | {ratio(paired, independent)} |"
            medians = [np.median([f(j) for *_, j in judged[name]]) if pairs else np.nan for f in MEDIANS]
            print(f"{line} {' / '.join(f'{m:.2f}' for m in medians)} |")
    front = fronts[(0,)]
    print(f"\nThe front by EPF@16 ({len(front)} networks), its neighbours (top-1 %, difference in points):\n")
    print("| a | b | EPF@16 a / b (mJ) | top-1 a / b | b − a, paired 95 % | discordant | independent | paired |")
    print("|---|---|---|---|---|---:|---|---|")
    for a, b, judged_pair in judged["Pareto-front neighbours"]:
        diff = judged_pair.paired
        line = (
            f"| {short(a)} | {short(b)} | {epf[a]:.2f} / {epf[b]:.2f} | {runs.top1[a][0]:.2f} / {runs.top1[b][0]:.2f}"
        )
        line += f" | {-diff.diff:+.2f} [{-diff.high:+.2f}, {-diff.low:+.2f}] | {diff.discordant} |"
        print(f"{line} {'yes' if judged_pair.independent else 'no'} | {'yes' if diff.separated else 'no'} |")


def kept(pairs: list, order: dict[str, float]) -> str:
    """How many of the separated ``pairs`` (a, b, Judged) ``order`` (a value per label) puts the same way."""
    held = [(a, b, j) for a, b, j in pairs if a in order and b in order]
    same = sum((order[a] - order[b]) * j.paired.diff > 0 for a, b, j in held)
    return f"{same} of {len(held)}" if held else "-"


def every_pair(runs: Runs, labels: list[str], truth: dict[str, float]) -> None:
    """Every pair of networks, judged each way on every seed set of :data:`SEED_SETS` the table has; and
    whether the order of a pair the paired test separates holds at seed 1 (for seed 0) and under full
    training (``truth``: a mean top-1 per label)."""
    pooled, population = runs.seed_noise(labels)
    print(f"\n## Every pair of networks (σ as above; order held by the mean of {TRUTH}'s seeds)\n")
    print("| seeds per network | pairs | independent intervals | difference of independent intervals ", end="")
    print(
        "| paired test | paired ÷ independent | paired separations seed 1 orders alike | … full training orders alike |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for seeds, said in SEED_SETS.items():
        pairs = list(itertools.combinations(runs.with_seeds(labels, *seeds), 2))
        if not pairs:
            continue
        judged = [(a, b, separated(runs, (a, seeds), (b, seeds), pooled, population)) for a, b in pairs]
        counts = [sum(getattr(j, field) for *_, j in judged) for field in ("independent", "unpaired")]
        split = [(a, b, j) for a, b, j in judged if j.paired.separated]
        again = (
            kept(split, {label: runs.top1[label][1] for label in runs.with_seeds(labels, 1)}) if seeds == (0,) else "-"
        )
        line = f"| {said} | {len(pairs)} | {counts[0]} | {counts[1]} | {len(split)} |"
        print(f"{line} {ratio(len(split), counts[0])} | {again} | {kept(split, truth)} |")


def same_network_pairs(runs: Runs, replays: list[str], k: int) -> list[tuple]:
    """Disjoint pairs of a replayed network against itself: seeds 2jk..2jk+k-1 against the next k."""
    pairs = []
    for label in replays:
        for j in range(REPLAY_SEEDS // (2 * k)):
            first, second = tuple(range(2 * j * k, 2 * j * k + k)), tuple(range(2 * j * k + k, 2 * j * k + 2 * k))
            if all(seed in runs.top1[label] for seed in first + second):
                pairs.append(((label, first), (label, second)))
    return pairs


def false_separation(runs: Runs, labels: list[str]) -> None:
    from scipy.stats import binom

    pooled, population = runs.seed_noise(labels)
    replays = [label for label, seeds in runs.top1.items() if len(seeds) > SPACE_MOST]
    sizes = [len(seeds) for seeds in SEED_SETS]
    by_size = {k: same_network_pairs(runs, replays, k) for k in sizes}
    print(f"\n## False separation (disjoint pairs of a network against itself: {len(by_size[1])} of one seed each)\n")
    if not by_size[1]:
        print(f"No network has more than {SPACE_MOST} seeds yet (plan `replays`).")
        return
    counts = {k: {"images": 0, "space": 0, "independent": 0} for k in sizes}
    for k, pairs in by_size.items():
        for a, b in pairs:
            with_space = separated(runs, a, b, pooled, population)
            counts[k]["space"] += with_space.paired.separated
            counts[k]["images"] += separated(runs, a, b, pooled, None).paired.separated
            counts[k]["independent"] += with_space.independent
    tests = {
        "space": ("(a) paired, σ from the space's seeds 0/1", noise_text(population)),
        "images": ("(b) paired, the images only", "none"),
        "independent": ("(c) independent intervals", noise_text(pooled)),
    }
    named = {k: "one seed each" if k == 1 else f"means of {k} seeds each" for k in sizes}
    print("| test | σ between seeds | " + " | ".join(f"separated, {named[k]}" for k in sizes) + " |")
    print("|---|---|" + "---:|" * len(sizes))
    for key, (name, sigma) in tests.items():
        cells = [f"{counts[k][key]} of {len(by_size[k])}" if by_size[k] else "-" for k in sizes]
        print(f"| {name} | {sigma} | {' | '.join(cells)} |")
    print()
    for k, pairs in by_size.items():
        if not pairs:
            continue
        low, high = binom.interval(0.95, len(pairs), 0.05)
        verdict = "within that range"
        if not low <= counts[k]["space"] <= high:
            verdict = "below: it is conservative" if counts[k]["space"] < low else "above: it is not"
        expected = f"{0.05 * len(pairs):g} of {len(pairs)} on average, {low:.0f}–{high:.0f} in 95 % of studies"
        print(f"{named[k].capitalize()}: a test at the 5 % level separates {expected} (binomial); (a) is {verdict}.")
    print("\n| network | seeds | top-1 mean (%) | std between seeds (points) |")
    print("|---|---:|---:|---:|")
    for label in replays:
        values = list(runs.top1[label].values())
        print(f"| {short(label)} | {len(values)} | {np.mean(values):.2f} | {np.std(values, ddof=1):.2f} |")


def short(label: str) -> str:
    return label.removeprefix("mobilenet_v1 ")


def report(table: Path, fidelity_table: Path) -> None:
    rows = read_rows(table)
    fidelity = read_rows(fidelity_table)
    epf = {row["label"]: float(row["value_out"]) for row in fidelity if row["kind"] == "epf"}
    full = defaultdict(list)
    for row in fidelity:
        if row["kind"] == "full" and row.get("setting") == TRUTH and row.get("status") == "ok":
            full[row["label"]].append(float(row["top1"]))
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
    every_pair(runs, labels, {label: float(np.mean(values)) for label, values in full.items()})
    false_separation(runs, labels)
