"""The report of ``benchmarks/proxy_fidelity.py``: reads its table and prints, as a markdown table, how
every proxy ranks the networks against full training (see that script's docstring for the columns).

Only networks with every full-training seed in the table are judged, so a table that is still being
measured gives a report over the networks done so far (the header says how many).
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from pathlib import Path

from e2gcsearch.fidelity import (
    RankAgreement,
    front_recovery,
    matched_pairs,
    noise_ceiling,
    pair_order_share,
    pareto_front,
    pareto_layers,
    rank_agreement,
    reference_noise,
    seed_splits,
    tau_against_halves,
    tau_difference,
)

FIRST_SEEDS = 2  # a network is judged once it has seeds 0..FIRST_SEEDS-1; more count once every judged one has them


def read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The ``#`` header lines and the rows of the table."""
    lines = path.read_text().splitlines()
    notes = [line[2:] for line in lines if line.startswith("#")]
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    return notes, rows


class Pivot:
    """The table by network: full top-1 per seed, each proxy's value, seconds, EPF."""

    def __init__(self, rows: list[dict[str, str]], full_setting: str, required_seeds: int = FIRST_SEEDS) -> None:
        self.info: dict[str, dict[str, str]] = {}
        self.full: dict[str, dict[str, float]] = defaultdict(dict)
        self.full_s: dict[str, list[float]] = defaultdict(list)
        self.proxy: dict[str, dict[str, float]] = defaultdict(dict)  # proxy name -> label -> value
        self.proxy_s: dict[str, dict[str, float]] = defaultdict(dict)
        self.score_seeds: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
        self.epf: dict[str, float] = {}
        self.epf_backend = ""
        self.trained: set[str] = set()
        for row in rows:
            label = row["label"]
            self.info.setdefault(label, row)
            if row["status"] != "ok":
                continue
            if row["kind"] == "full" and row["setting"] == full_setting:
                self.full[label][row["seed"]] = float(row["top1"])
                self.full_s[label].append(float(row["train_s"]))
            elif row["kind"] == "proxy" and row["seed"] == "0":
                self.trained.add(row["setting"])
                self.proxy[row["setting"]][label] = float(row["top1"])
                self.proxy_s[row["setting"]][label] = float(row["train_s"])
            elif row["kind"] == "score":
                self.score_seeds[row["setting"]][row["seed"]][label] = float(row["value_out"])
                if row["seed"] == "0":
                    self.proxy[row["setting"]][label] = float(row["value_out"])
                    self.proxy_s[row["setting"]][label] = float(row["train_s"])
            elif row["kind"] == "epf":
                self.epf[label] = float(row["value_out"])
                self.epf_backend = row["unit"]
        required = [str(seed) for seed in range(required_seeds)]
        self.judged = [label for label in self.info if all(seed in self.full[label] for seed in required)]
        common = set.intersection(*(set(self.full[label]) for label in self.judged)) if self.judged else set()
        self.seeds = sorted(common, key=int)
        for name in ("params", "macs"):
            self.proxy[name] = {label: float(self.info[label][name]) for label in self.info}
            self.proxy_s[name] = {label: 0.0 for label in self.info}

    def full_mean(self, labels: list[str]) -> list[float]:
        return [statistics.fmean(self.full[label][seed] for seed in self.seeds) for label in labels]

    def per_seed(self, labels: list[str]) -> list[list[float]]:
        """Full top-1 of ``labels``, one list per seed."""
        return [[self.full[label][seed] for label in labels] for seed in self.seeds]


def proxy_line(
    name: str,
    pivot: Pivot,
    labels: list[str],
    ceiling: RankAgreement,
    pairs: list[tuple[int, int]],
    cost: list[float],
    resamples: int,
) -> dict:
    """Every figure of one proxy over ``labels`` (those it has a value for)."""
    have = [label for label in labels if label in pivot.proxy[name]]
    values = [pivot.proxy[name][label] for label in have]
    full = pivot.full_mean(have)
    agreement = rank_agreement(values, full, resamples)
    like_for_like = tau_against_halves(values, pivot.per_seed(have))  # against references of the ceiling's size
    full_s = sum(statistics.fmean(pivot.full_s[label]) for label in have)
    index = {label: i for i, label in enumerate(labels)}
    kept = {labels.index(label) for label in have}
    local = {labels.index(label): i for i, label in enumerate(have)}
    own_pairs = [(local[a], local[b]) for a, b in pairs if a in kept and b in kept]
    recovered = front_recovery([cost[index[label]] for label in have], values, full)
    return {
        "name": name,
        "agreement": agreement,
        "ratio": like_for_like / ceiling.tau if ceiling.tau else math.nan,
        "cost": sum(pivot.proxy_s[name][label] for label in have) / full_s if full_s else math.nan,
        "pairs": pair_order_share(values, full, own_pairs),
        "pair_count": len(own_pairs),
        "front": recovered,
        "n": len(have),
    }


def prerank_table(pivot: Pivot, labels: list[str], cost: list[float], proxy: str, scores: list[str]) -> None:
    """What ranking candidates by a training-free score before training would do: keep the networks in the
    first k non-dominated layers of (EPF, score), train only those with ``proxy``; print the training
    seconds kept, the full-training front members kept, and the share of the full-training front (over
    every network) that the proxy's front over the kept networks recovers."""
    have = [label for label in labels if label in pivot.proxy[proxy]]
    full = pivot.full_mean(have)
    truth = pareto_front([cost[labels.index(label)] for label in have], full)
    seconds = sum(pivot.proxy_s[proxy][label] for label in have)
    print(f"\nranking before training: keep the first k layers of (EPF, score), then train them with {proxy}")
    print("| score | k | networks trained | training s ÷ all | full front kept | front shown | full front recovered |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in [None, *scores]:
        layers = (
            [0] * len(have)
            if name is None
            else pareto_layers(
                [cost[labels.index(label)] for label in have], [pivot.proxy[name][label] for label in have]
            )
        )
        for k in sorted(set(layers)) if name else [0]:
            kept = [i for i, layer in enumerate(layers) if layer <= k]
            found = {
                kept[i]
                for i in pareto_front(
                    [cost[labels.index(have[i])] for i in kept], [pivot.proxy[proxy][have[i]] for i in kept]
                )
            }
            trained_s = sum(pivot.proxy_s[proxy][have[i]] for i in kept)
            print(
                f"| {name or 'none (train all)'} | {'all' if name is None else k + 1} | {len(kept)} of {len(have)} | "
                f"{trained_s / seconds:.2f} | {len(truth & set(kept))} of {len(truth)} | {len(found)} | "
                f"{len(truth & found) / len(truth) * 100:.0f} % |"
            )
            if truth <= set(kept):
                break


def fmt(value: float, spec: str) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def report(
    table: Path, resamples: int = 2000, full_setting: str = "e24-nall-r64", required_seeds: int = FIRST_SEEDS
) -> list[dict]:
    """Print the report of ``table`` against the full training ``full_setting``, over the networks with at
    least ``required_seeds`` of its seeds; return one dict of figures per proxy."""
    if not table.exists():
        print(f"no table at {table} yet: measure first (python benchmarks/proxy_fidelity.py)")
        return []
    notes, rows = read_table(table)
    pivot = Pivot(rows, full_setting, required_seeds)
    labels = pivot.judged
    print("\n".join(f"# {note}" for note in notes[:2]))
    if len(labels) < 3:
        print(f"{len(labels)} network(s) have every full-training seed; the report needs 3 or more")
        return []
    per_seed = pivot.per_seed(labels)
    single, ceiling = noise_ceiling(per_seed, 1, resamples), noise_ceiling(per_seed, resamples=resamples)
    half = len(per_seed) // 2
    full = pivot.full_mean(labels)
    seed_sd = statistics.fmean(statistics.stdev(values) for values in zip(*per_seed))
    val_size = next(int(row["val_size"]) for row in rows if row["kind"] == "full" and row["val_size"])
    groups = [(pivot.info[label]["module"], float(pivot.info[label]["width"])) for label in labels]
    macs = [float(pivot.info[label]["macs"]) for label in labels]
    pairs = matched_pairs(groups, macs)
    with_epf = all(label in pivot.epf for label in labels)
    cost = [pivot.epf[label] for label in labels] if with_epf else macs
    print(
        f"\n{len(labels)} networks with full training {full_setting} at seeds {', '.join(pivot.seeds)} ({val_size} "
        f"validation images each); reference: the mean over these seeds, top-1 {min(full):.1f} to {max(full):.1f} % "
        f"(mean {statistics.fmean(full):.1f} %), seed std {seed_sd:.2f} pp (mean over networks)"
    )
    first, second = seed_splits(len(per_seed))[0]
    halves = [
        [statistics.fmean(per_seed[s][i] for s in group) for i in range(len(labels))] for group in (first, second)
    ]
    print(
        f"noise ceiling, one seed against another: Kendall {single.text()}, Spearman {single.rho:+.2f} (mean over "
        f"{len(seed_splits(len(per_seed), 1))} pair(s) of seeds)"
    )
    if half > 1:
        print(
            f"noise ceiling, the mean of {half} seeds against the mean of {half} others: Kendall {ceiling.text()}, "
            f"Spearman {ceiling.rho:+.2f} (mean over {len(seed_splits(len(per_seed)))} splits)"
        )
    print(f"where the ceiling comes from: {reference_noise(per_seed).text()}")
    print(
        f"{pair_order_share(*halves, pairs) * 100 if pairs else math.nan:.0f} % of {len(pairs)} E2GC/FgGC pairs of "
        f"comparable MACs ordered alike by seeds {'+'.join(pivot.seeds[s] for s in first)} and "
        f"{'+'.join(pivot.seeds[s] for s in second)}; tau / ceiling below: the proxy against the mean of {half} "
        f"seed(s), over the same groups, / the {half}-seed ceiling"
    )
    print(f"front axis: {'EPF, ' + pivot.epf_backend if with_epf else 'MACs (no EPF rows yet)'} x top-1\n")
    names = [name for name in pivot.proxy if name not in ("params", "macs")] + ["params", "macs"]
    lines = [proxy_line(name, pivot, labels, ceiling, pairs, cost, resamples) for name in names]
    print("| proxy | n | Kendall τ [95 %] | Spearman ρ | τ ÷ ceiling | cost ÷ full | pairs right | front recovered |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for line in lines:
        a = line["agreement"]
        interval = f"{fmt(a.tau, '+.2f')} [{fmt(a.low, '+.2f')}, {fmt(a.high, '+.2f')}]"
        print(
            f"| {line['name']} | {line['n']} | {interval} | {fmt(a.rho, '+.2f')} | {fmt(line['ratio'], '.2f')} | "
            f"{fmt(line['cost'], '.3f')} | {fmt(line['pairs'] * 100, '.0f')} % of {line['pair_count']} | "
            f"{fmt(line['front'] * 100, '.0f')} % |"
        )
    trained = [line for line in lines if line["name"] in pivot.trained]
    usable = [line for line in trained if line["agreement"].excludes_zero]
    if usable:
        best = max(usable, key=lambda line: line["agreement"].tau / line["cost"])
        print(
            f"\nbest tau per second among trained proxies whose interval excludes 0: {best['name']} "
            f"(tau {best['agreement'].tau:+.2f}, cost {best['cost']:.3f} of full training)"
        )
    else:
        best = max(trained, key=lambda line: line["agreement"].tau, default=None)
        if best is not None:
            print(
                f"\nno trained proxy's interval excludes 0; the highest tau is {best['name']}'s "
                f"({best['agreement'].text()})"
            )
    print()
    verdicts = {}
    for line in lines:  # does a proxy rank better than MACs alone? a paired bootstrap over the same networks
        if line["name"] in ("params", "macs"):
            continue
        have = [label for label in labels if label in pivot.proxy[line["name"]]]
        difference, low, high = tau_difference(
            [pivot.proxy[line["name"]][label] for label in have],
            [pivot.proxy["macs"][label] for label in have],
            pivot.full_mean(have),
            resamples,
        )
        verdicts[line["name"]] = low > 0
        verdict = "beats" if low > 0 else "does not beat"
        print(
            f"{line['name']} {verdict} MACs alone: tau difference {difference:+.2f} [{fmt(low, '+.2f')}, "
            f"{fmt(high, '+.2f')}] (paired bootstrap over networks)"
        )
    if usable:
        beating = [name for name in pivot.score_seeds if name in verdicts and verdicts[name]]
        prerank_table(pivot, labels, cost, best["name"], beating)
    for name, seeds in pivot.score_seeds.items():
        if "0" in seeds and "1" in seeds:
            common = [label for label in labels if label in seeds["0"] and label in seeds["1"]]
            agreement = rank_agreement(
                [seeds["0"][label] for label in common], [seeds["1"][label] for label in common], resamples
            )
            print(f"{name}: seed 0 vs seed 1 of the initialisation, {agreement.text()}")
    print("\n| network | MMACs | " + " | ".join(f"full top-1 seed {seed}" for seed in pivot.seeds) + " |")
    print("|---|---:|" + "---:|" * len(pivot.seeds))
    for index, (label, m) in enumerate(zip(labels, macs)):
        print(f"| {label} | {m / 1e6:.2f} | " + " | ".join(f"{values[index]:.1f}" for values in per_seed) + " |")
    return lines


def read_fidelity_table(path: Path, proxy: str, truth: str):
    """The default space as ``benchmarks/proxy_fidelity.py`` measured it on food101-10: each E2GC/FgGC
    point's ``proxy`` curve (seed 0) and EPF, and its full-training top-1 (``truth``, the mean over the seeds
    every point has) as the truth the replay is judged by, and its training-free scores at initialisation
    (seed 0, with their seconds) for a rung 0. Only widths where every point has the truth."""
    from e2gcsearch.config import ArchConfig
    from e2gcsearch.search.replay import MeasuredPoint, MeasuredTable

    _, rows = read_table(path)
    by_label: dict[str, dict[str, dict]] = {}
    for row in rows:
        if row["status"] == "ok" and row["module"] in ("E2GC", "FgGC"):
            by_label.setdefault(row["label"], {})[f"{row['kind']}|{row['setting']}|{row['seed']}"] = row
    seeds = None
    for runs in by_label.values():
        found = {key.rsplit("|", 1)[1] for key in runs if key.startswith(f"full|{truth}|")}
        seeds = found if seeds is None else seeds & found if found else seeds
    points = []
    for runs in by_label.values():
        trained, epf = runs.get(f"proxy|{proxy}|0"), runs.get("epf|epf|0")
        if trained is None or epf is None:
            continue
        full = [float(runs[f"full|{truth}|{seed}"]["top1"]) for seed in seeds or () if f"full|{truth}|{seed}" in runs]
        figures = [part.split(":") for part in epf["epoch_s"].split(";")]
        family = "group_size" if trained["module"] == "E2GC" else "groups"
        points.append(
            MeasuredPoint(
                ArchConfig(
                    trained["arch"], width=float(trained["width"]), num_classes=10, **{family: int(trained["value"])}
                ),
                {int(b): float(mean) for b, mean, _, _ in figures},
                tuple(float(v) for v in trained["top1_curve"].split(";")),
                tuple(float(v) for v in trained["epoch_s"].split(";")),
                int(trained["val_size"]),
                {int(b): float(std) for b, _, std, _ in figures},
                truth_top1=sum(full) / len(full) if seeds and len(full) == len(seeds) else None,
                scores={
                    key.split("|")[1]: (float(row["value_out"]), float(row["train_s"]))
                    for key, row in runs.items()
                    if key.startswith("score|") and key.endswith("|0")
                },
            )
        )
    widths = {p.arch_config.width for p in points}
    widths -= {p.arch_config.width for p in points if p.truth_top1 is None}
    kept = [p for p in points if p.arch_config.width in widths]
    return MeasuredTable.of(kept, resolution=int(rows[0]["resolution"] or 64)), sorted(seeds or (), key=int)
