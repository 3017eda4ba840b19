"""Search efficiency, measured: how close does each sampler get to the exhaustive front, per budget?

Two steps:

``measure`` trains and profiles every point of the default ``e2gcsearch run`` space (MobileNet-V1,
E2GC G = 1..32 and FgGC g = 2..32, widths 0.25/0.5/0.75: 33 points) with exactly the default run's
settings (embedded digits, 48 px, 80/40 images per class, 4 proxy epochs, EPF at B = 1, 4, 16 with
3 windows each, one torch thread), recording top-1 and the training seconds after every epoch. The
table goes to ``benchmarks/data/search_space_digits.csv``; its header lines (``#``) hold the
command that made it, the settings and the energy backend. Resumable: points already in the table
are skipped, and ``--max-seconds`` stops starting new points, so the measurement can be split over
several quiet windows (run it under ``flock -x`` so that EPF and epoch times are not shared).

``replay`` runs, without training, each sampler (tpe, nsga2, gp, random) with and without
``--warm-start model`` and under each ``--early-stop`` policy (off, the stopping rule, successive halving,
and successive halving with a rung 0 before training, ``asha+grad_norm``: ``--rung0-score grad_norm``)
over ``--seeds`` seeds: the search loop of ``e2gcsearch run`` (baselines queued first, repeats not
charged, the same stopping rules), with each trial's objectives looked up in the table. It prints the
hypervolume of the front found after 25 %, 50 % and 100 % of the grid ÷ the exhaustive front's (mean ±
std over seeds) and the training seconds ÷ the same search without early stopping. The warm start fits
the energy model to the table's EPF of its own calibration networks (the ones ``--warm-start model``
profiles), nothing else.

Given ``benchmarks/data/proxy_fidelity_food101-10.csv`` (the table of ``proxy_fidelity.py``), the replay
runs on its E2GC/FgGC points at the widths where every point has full training, with the ``--proxy``
budget's per-epoch curves as the search sees them, and also judges the front each search shows by
full-training top-1 (``--truth``, the mean over every seed the points share): "HV full" is that front's
hypervolume ÷ the exhaustive full-training front's. Both tables hold each point's training-free scores
at initialisation with their seconds (this one as ``score`` rows, the digits table as ``score_<name>``
columns, which ``measure`` adds to rows measured before it recorded them), so the ``asha+…`` policies
replay rung 0 on both, charging each score's seconds as training seconds.

Run from the repository root:
    flock -x /tmp/quiet.lock python benchmarks/search_replay.py measure --max-seconds 420
    python benchmarks/search_replay.py replay --seeds 30
    python benchmarks/search_replay.py replay --table benchmarks/data/proxy_fidelity_food101-10.csv --seeds 20
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from e2gcsearch.train.scores import SCORES, score_network  # rung 0's choices; measure adds each to the table

DEFAULT_TABLE = Path(__file__).resolve().parent / "data" / "search_space_digits.csv"


def default_run_config():
    """The SearchConfig of a plain ``e2gcsearch run`` (every flag at its default)."""
    from e2gcsearch.cli import build_parser
    from e2gcsearch.cli.options import complete
    from e2gcsearch.cli.run import RUN_DEFAULTS, RUN_GROUPS, search_config

    args = complete(build_parser().parse_args(["run"]), RUN_GROUPS, RUN_DEFAULTS)
    return search_config(args)


# --- measure ------------------------------------------------------------------------------------------


def _columns(epochs: int, batch_sizes: tuple[int, ...]) -> list[str]:
    return (
        ["label", "arch", "module", "value", "width", "params", "macs"]
        + [f"epf_mj_b{b}" for b in batch_sizes]
        + [f"epf_std_mj_b{b}" for b in batch_sizes]
        + ["epf_repeats", "backend", "val_size", "hold"]
        + [f"top1_e{e}" for e in range(1, epochs + 1)]
        + [f"epoch_s_e{e}" for e in range(1, epochs + 1)]
        + [f"score_{name}{part}" for name in SCORES for part in ("", "_s")]
    )


def _read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open() as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def measure(args: argparse.Namespace) -> None:
    from e2gcsearch.data import load_data

    torch.set_num_threads(1)
    config = default_run_config()
    settings = config.settings
    train = dataclasses.replace(settings.train, threads=1, progress=False)
    profile = dataclasses.replace(settings.profile, batch_sizes=settings.batch_sizes, use_cache=False, threads=1)
    data = load_data(config.data, progress=False)
    points = settings.space.points(data.num_classes)
    columns = _columns(train.epochs, profile.batch_sizes)
    rows = _read_rows(args.out)
    if args.redo_shared:  # measured under another job's load: measure again, now that the hold is exclusive
        _rewrite(args.out, columns, [row for row in rows if row.get("hold", "exclusive") != "shared"])
        rows = _read_rows(args.out)
    unscored = [row for row in rows if not row.get("score_grad_norm")]
    if unscored:  # training-free scores, added to the table after it was measured; they need no quiet machine
        by_label = {p.label(): p for p in points}
        for row in unscored:
            row.update(score_columns(by_label[row["label"]], data, train.seed))
        note = (
            f"then: python benchmarks/search_replay.py {' '.join(shlex.quote(a) for a in sys.argv[1:])} "
            f"({datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC): training-free scores of {len(unscored)} "
            f"point(s) at initialisation (seed {train.seed}, a batch of 64 training images), with their seconds"
        )
        _rewrite(args.out, columns, rows, note)
        print(f"added the training-free scores of {len(unscored)} point(s) to {args.out}", file=sys.stderr)
    done = {row["label"] for row in rows}
    if not args.out.exists():
        args.out.parent.mkdir(parents=True, exist_ok=True)
        description = data.description()
        header = [
            f"made by: python benchmarks/search_replay.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}",
            f"started {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores "
            f"({torch.__version__})",
            "space: the default 'e2gcsearch run' space; training: its proxy budget "
            f"(epochs {train.epochs}, batch {train.batch_size}, lr {train.lr}, {train.schedule}, seed {train.seed}, "
            f"1 thread); data: {description.get('dataset')} {description.get('resolution')} px, "
            f"{description.get('train_size')} train / {description.get('val_size')} val images",
            f"EPF: batch sizes {','.join(map(str, profile.batch_sizes))}, {profile.repeats} windows each, "
            "1 thread, measured without the cache; epoch_s = seconds of each epoch (training + validation; epoch 1 "
            "also builds the model); hold = exclusive: nothing else ran on the machine, shared: other jobs did",
        ]
        with args.out.open("w") as handle:
            handle.writelines(f"# {line}\n" for line in header)
            csv.DictWriter(handle, columns).writeheader()
    start = time.perf_counter()
    todo = [p for p in points if p.label() not in done][: args.limit]
    print(f"{len(done)} of {len(points)} points in {args.out}; {len(todo)} to measure", file=sys.stderr)
    for index, arch_config in enumerate(todo, start=1):
        if time.perf_counter() - start > args.max_seconds:
            print(
                f"stopping after {args.max_seconds:g} s; run again to measure the remaining {len(todo) - index + 1}",
                file=sys.stderr,
            )
            return
        row = {**measure_point(arch_config, data, train, profile), "hold": args.hold}
        with args.out.open("a") as handle:
            csv.DictWriter(handle, columns).writerow(row)
        print(
            f"[{index}/{len(todo)}] {row['label']}: top-1 "
            + " ".join(row[f"top1_e{e}"] for e in range(1, train.epochs + 1))
            + f" %, EPF@16 {float(row['epf_mj_b16']):.2f} mJ/frame ({row['backend']})",
            file=sys.stderr,
        )


def _rewrite(path: Path, columns: list[str], rows: list[dict[str, str]], note: str | None = None) -> None:
    """Keep the header notes (and add ``note``), write ``rows`` under them."""
    notes = [line for line in path.read_text().splitlines(keepends=True) if line.startswith("#")]
    notes += [f"# {note}\n"] if note else []
    with path.open("w") as handle:
        handle.writelines(notes)
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows({key: row.get(key, "exclusive" if key == "hold" else "") for key in columns} for row in rows)


def measure_point(arch_config, data, train, profile) -> dict[str, object]:
    from e2gcsearch.cost import network_cost
    from e2gcsearch.profiling import profile_model
    from e2gcsearch.train import train_model

    ticks = [time.perf_counter()]
    curve: list[float] = []

    def on_epoch_end(epochs_done: int, metrics: dict) -> bool:
        ticks.append(time.perf_counter())
        curve.append(metrics["top1"])
        return False

    trained = train_model(arch_config, data, train, on_epoch_end=on_epoch_end)
    if not trained.ok:
        raise SystemExit(f"{arch_config.label()}: training stopped ({trained.status})")
    measured = profile_model(arch_config, profile)
    cost = network_cost(arch_config, profile.resolution)
    row: dict[str, object] = {
        "label": arch_config.label(),
        "arch": arch_config.arch,
        "module": arch_config.module,
        "value": arch_config.grouping_value,
        "width": arch_config.width,
        "params": cost.params,
        "macs": cost.macs,
        "backend": measured.backend,
        "val_size": trained.val_size,
    }
    for batch, result in measured.batches.items():
        row[f"epf_mj_b{batch}"] = f"{result.epf_mj:.4f}"
        row[f"epf_std_mj_b{batch}"] = f"{result.epf_std_mj:.4f}"
        row["epf_repeats"] = result.repeats
    for epoch, (top1, begin, end) in enumerate(zip(curve, ticks, ticks[1:]), start=1):
        row[f"top1_e{epoch}"] = f"{top1:.2f}"
        row[f"epoch_s_e{epoch}"] = f"{end - begin:.3f}"
    return {**row, **score_columns(arch_config, data, train.seed)}


def score_columns(arch_config, data, seed: int) -> dict[str, str]:
    """Each training-free score of ``arch_config`` at initialisation from ``seed`` (what ``run``'s rung 0
    computes), with its seconds."""
    columns = {}
    for name in SCORES:
        begin = time.perf_counter()
        columns[f"score_{name}"] = f"{score_network(name, arch_config, data, seed):.6g}"
        columns[f"score_{name}_s"] = f"{time.perf_counter() - begin:.3f}"
    return columns


# --- replay --------------------------------------------------------------------------------------------

SAMPLERS = ("tpe", "nsga2", "gp", "random")


POLICIES = ("off", "rule", "asha", "asha+grad_norm")  # --early-stop of e2gcsearch run[+ its --rung0-score]


def replay_all(args: argparse.Namespace) -> None:
    from fidelity_report import read_fidelity_table

    from e2gcsearch.search.replay import MeasuredTable, replay, summary

    if "kind" in (_read_rows(args.table)[:1] or [{}])[0]:  # a proxy_fidelity table: judged by full training
        table, seeds = read_fidelity_table(args.table, args.proxy, args.truth)
        source = f"{args.proxy} curves, judged by {args.truth} full training (mean of seeds {', '.join(seeds)})"
    else:
        table = MeasuredTable.read(args.table, modules=args.modules.split(",") if args.modules else None)
        source = f"{args.modules} rows" if args.modules else "every row"
    size = len(table.points)
    budgets = {"25 %": size // 4, "50 %": size // 2, "100 %": size}
    started = time.perf_counter()
    exhaustive = table.front_status(table.points)
    print(
        f"table: {args.table.name} ({source}), {size} points; exhaustive proxy front: "
        + ", ".join(c.label().replace("mobilenet_v1 ", "") for c, status in exhaustive.items() if status == "front")
    )
    print(
        f"budgets: {', '.join(f'{k} = {v} new points' for k, v in budgets.items())}; {args.seeds} seeds each; "
        "HV = hypervolume of the completed trials' front / the exhaustive front's (proxy top-1)"
        + (
            "; HV full = the shown front judged by full-training top-1 / the exhaustive full-training front's"
            if table.has_truth
            else ""
        )
        + "; training s = ÷ the same search without early stopping"
    )
    policies = args.policies.split(",")
    unscored = [p for p in policies if "+" in p and any(p.split("+")[1] not in q.scores for q in table.points)]
    if unscored:
        print(f"skipped {', '.join(unscored)}: the table holds no training-free scores")
        policies = [p for p in policies if p not in unscored]
    judged = ("HV", "HV full") if table.has_truth else ("HV",)
    print(
        "\n| sampler | warm start | early stop | "
        + " | ".join(f"{name} at {budget}" for name in judged for budget in budgets)
        + " | "
        + " | ".join(f"training s at {budget}" for budget in budgets)
        + " |"
    )
    print("|---|---|---|" + "---:|" * (len(judged) + 1) * len(budgets))
    lost = []
    for sampler in args.samplers.split(","):
        for warm in (False, True):
            spent = {}
            for policy in policies:
                early_stop, _, score = policy.partition("+")
                runs = {
                    name: [
                        replay(table, sampler, seed, trials, warm, early_stop, rung0_score=score or None)
                        for seed in range(args.seeds)
                    ]
                    for name, trials in budgets.items()
                }
                figures = [summary([r.hypervolume_ratio for r in rs]) for rs in runs.values()]
                if table.has_truth:
                    figures += [summary([r.truth_ratio for r in rs]) for rs in runs.values()]
                spent[policy] = {name: summary([r.train_s for r in rs])[0] for name, rs in runs.items()}
                base = spent.get("off")
                shares = [f"{spent[policy][n] / base[n]:.2f}" if base else f"{spent[policy][n]:.0f} s" for n in budgets]
                print(
                    f"| {sampler} | {'model' if warm else '-'} | {policy} | "
                    + " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in figures)
                    + " | "
                    + " | ".join(shares)
                    + " |",
                    flush=True,
                )
                if policy != "off":
                    lost += [f"{policy}: {loss}" for loss in _front_losses(table, runs["100 %"])]
    print()
    print(
        f"early stopping over every full-grid run (100 %): {len(lost)} time(s) a point of the exhaustive front was stopped"
        + ("" if not lost else ": " + "; ".join(sorted(set(lost))))
    )
    gains = table.largest_gains()
    if gains:  # curves of two epochs or more
        print(
            "what early stopping can save on this table: with perfect foresight of every final top-1, stopping "
            f"after epoch 1 each point a cheaper point beats beyond noise saves {table.foresight_saving():.0%} of "
            f"the full grid's training time ({table.foresight_saving(beyond_noise=False):.0%} counting ties within "
            "noise); the rule, which sees only curves so far, adds the largest remaining gain, here "
            + " / ".join(f"{g:.1f}" for g in gains)
            + f" points after epoch {'/'.join(map(str, range(1, len(gains) + 1)))}"
        )
        first = sum(p.epoch_s[0] for p in table.points) / sum(sum(p.epoch_s) for p in table.points)
        print(f"the first epoch of every point is {first:.0%} of the full grid's training time on this table")
    print(f"replay took {time.perf_counter() - started:.0f} s")


def _front_losses(table, runs) -> list[str]:
    """Points on the exhaustive front (status 'front') that a run stopped early, with their status."""
    exhaustive = table.front_status(table.points)
    out = []
    for run in runs:
        stopped = set(run.measured) - set(run.completed)
        out += [f"{c.label()} ({exhaustive[c]})" for c in stopped if exhaustive[c] == "front"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    measuring = commands.add_parser("measure", help="train and profile every point of the default space")
    measuring.add_argument("--out", type=Path, default=DEFAULT_TABLE)
    measuring.add_argument("--max-seconds", type=float, default=420.0, help="start no new point after this")
    measuring.add_argument(
        "--hold",
        choices=("exclusive", "shared"),
        default="exclusive",
        help="the lock this run holds (flock -x or -s), written on every row it measures",
    )
    measuring.add_argument("--limit", type=int, help="measure only the first N points still missing (smoke runs)")
    measuring.add_argument("--redo-shared", action="store_true", help="measure the rows of --hold shared again")
    measuring.set_defaults(func=measure)
    replaying = commands.add_parser("replay", help="replay every sampler against the measured table")
    replaying.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    replaying.add_argument("--seeds", type=int, default=30)
    replaying.add_argument("--samplers", default=",".join(SAMPLERS), help="comma list")
    replaying.add_argument("--modules", help="replay the rows of these modules only (e.g. E2GC: --modules E2GC)")
    replaying.add_argument(
        "--policies",
        default=",".join(POLICIES),
        help="early-stop policies, comma list; asha+SCORE adds a rung 0 ranked by a training-free score",
    )
    replaying.add_argument("--proxy", default="e4-n100-r64", help="a proxy_fidelity table's proxy budget replayed")
    replaying.add_argument("--truth", default="e24-nall-r64", help="a proxy_fidelity table's full training")
    replaying.set_defaults(func=replay_all)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
