"""FLGC against FgGC at the same g (equal MACs once FLGC is deployed): proxy and full top-1, and EPF.

Two parts, run separately so that accuracy runs (which do not depend on timing) can share the CPU and
the EPF comparison can have it alone:

  train    for every g, module (FgGC, FLGC) and seed: a proxy training (the search's: cosine schedule,
           ``--proxy-epochs``), then a full training (step schedule, ``--full-epochs``); the FLGC full
           training starts from the groups its proxy learned, as ``e2gcsearch validate`` does. One JSON
           line per run is appended to ``--out`` (runs already there are skipped, so the part resumes);
           ``--only proxy`` or ``--only full`` runs one mode.
  epf      EPF of deployed FLGC g and FgGC g, measured interleaved in one run (``--rounds`` rounds,
           each measuring every network once; the profiler's cache is off), appended to ``--out``.
  uneven   the paper's free assignment (``--flgc-uneven``): one proxy training per g (seed 0), the group
           sizes it learned and its deployed MACs; ``epf`` then also times one forward + backward pass
           (B=16) of the deployed uneven network, the deployed balanced one and FLGC's masked dense
           training form, interleaved (``--rounds`` x 10 steps each, median), as ratios to the balanced one.
  table    the markdown table of what ``--out`` holds: top-1 mean ± std over seeds per mode, and EPF
           mean ± std over rounds.

Run from the repository root:
    python benchmarks/flgc_vs_fggc.py train --out flgc.jsonl          # ../shared/data/food101-mini, 64 px
    python benchmarks/flgc_vs_fggc.py epf --out flgc.jsonl
    python benchmarks/flgc_vs_fggc.py uneven --out flgc.jsonl
    python benchmarks/flgc_vs_fggc.py table --out flgc.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from e2gcsearch import ArchConfig
from e2gcsearch.cost import learned_cost, network_cost
from e2gcsearch.data import DataConfig, load_data
from e2gcsearch.models import create_model, deploy, load_structure
from e2gcsearch.profiling import ProfileConfig, profile_model
from e2gcsearch.train import TrainConfig, train_model

MODULES = ("FgGC", "FLGC")


def config_of(args: argparse.Namespace, module: str, groups: int, classes: int = 10) -> ArchConfig:
    return ArchConfig(
        args.arch, groups=groups, width=args.width, num_classes=classes, module="FLGC" if module == "FLGC" else None
    )


def train_rows(path: Path) -> dict[tuple, dict]:
    """(mode, module, groups, seed) -> the row of a training already in ``path``."""
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["mode"], r["module"], r["groups"], r["seed"]): r for r in rows if r["part"] == "train"}


def append(path: Path, row: dict) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(row) + "\n")


def train_part(args: argparse.Namespace) -> None:
    data = load_data(DataConfig(name="food101", root=args.data_root, resolution=args.resolution))
    done = train_rows(args.out)
    modes = ("proxy", "full") if args.only is None else (args.only,)
    for groups, seed, module in itertools.product(args.groups, args.seeds, MODULES):
        arch_config = config_of(args, module, groups, data.num_classes)
        structure = done.get(("proxy", module, groups, seed), {}).get("structure")
        for mode in modes:
            if (mode, module, groups, seed) in done:
                continue
            if mode == "proxy":
                config = TrainConfig(epochs=args.proxy_epochs, seed=seed, threads=1, progress=False)
            else:
                config = TrainConfig.full_training(
                    args.full_epochs,
                    seed=seed,
                    threads=1,
                    progress=False,
                    checkpoint_dir=str(args.out.parent / f"ckpt-{module}-g{groups}-s{seed}"),
                )
            result = train_model(arch_config, data, config, structure=structure if mode == "full" else None)
            structure = result.structure if mode == "proxy" else structure
            row = {
                "part": "train",
                "mode": mode,
                "module": module,
                "groups": groups,
                "seed": seed,
                "arch": arch_config.label(),
                "top1": result.top1,
                "status": result.status,
                "epochs": config.epochs,
                "wall_s": round(result.wall_s, 1),
                "macs": network_cost(arch_config, data.resolution).macs,
            }
            print(json.dumps(row), flush=True)
            append(args.out, {**row, "structure": result.structure} if mode == "proxy" else row)


def epf_part(args: argparse.Namespace) -> None:
    time_forms(args)
    profile = ProfileConfig(
        batch_sizes=tuple(args.batch_sizes),
        resolution=args.resolution,
        backend="estimate",
        device="cpu",
        repeats=args.repeats,
        use_cache=False,
        threads=1,
    )
    configs = [config_of(args, module, groups) for groups in args.groups for module in MODULES]
    for round_index in range(args.rounds):
        for arch_config in configs:  # interleaved: a load change hits every network alike
            result = profile_model(arch_config, profile)
            for batch, figures in sorted(result.batches.items()):
                row = {
                    "part": "epf",
                    "round": round_index,
                    "module": arch_config.module,
                    "groups": arch_config.groups,
                    "arch": arch_config.label(),
                    "batch_size": batch,
                    "epf_mj": figures.epf_mj,
                    "epf_std_mj": figures.epf_std_mj,
                    "backend": result.backend,
                    "is_estimate": result.is_estimate,
                }
                append(args.out, row)
                print(json.dumps(row), flush=True)


def _step_seconds(model: torch.nn.Module, images: torch.Tensor) -> float:
    model.zero_grad(set_to_none=True)
    started = time.perf_counter()
    model(images).sum().backward()
    return time.perf_counter() - started


def uneven_part(args: argparse.Namespace) -> None:
    data = load_data(DataConfig(name="food101", root=args.data_root, resolution=args.resolution))
    for groups in args.groups:
        uneven = config_of(args, "FLGC", groups, data.num_classes).replace(uneven=True)
        result = train_model(uneven, data, TrainConfig(epochs=args.proxy_epochs, seed=0, threads=1, progress=False))
        sizes = [
            size
            for layer in result.structure.values()
            for size in torch.bincount(torch.tensor(layer["in"]), minlength=groups).tolist()
        ]
        row = {
            "part": "uneven",
            "groups": groups,
            "arch": uneven.label(),
            "top1": result.top1,
            "group_sizes_min": min(sizes),
            "group_sizes_max": max(sizes),
            "empty_groups": sizes.count(0),
            "macs": learned_cost(uneven, result.structure, data.resolution).macs,
            "balanced_macs": network_cost(uneven.replace(uneven=False), data.resolution).macs,
        }
        print(json.dumps(row), flush=True)
        append(args.out, {**row, "structure": result.structure})


def time_forms(args: argparse.Namespace) -> None:
    """Median time of one forward + backward pass (B=16) of each form of FLGC g, interleaved: the
    deployed balanced network, the deployed uneven one (the groups ``uneven`` learned) and the masked
    dense training form; as ratios to the deployed balanced one."""
    rows = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    for learned in (r for r in rows if r["part"] == "uneven"):
        balanced = config_of(args, "FLGC", learned["groups"])
        trained = create_model(balanced.replace(uneven=True))
        load_structure(trained, learned["structure"])
        models = {
            "balanced deployed": deploy(create_model(balanced)),
            "uneven deployed": deploy(trained),
            "masked dense (training form)": create_model(balanced),
        }
        images = torch.randn(16, 3, args.resolution, args.resolution)
        times: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(args.rounds * 10):
            for name, model in models.items():
                times[name].append(_step_seconds(model.train(), images))
        reference = statistics.median(times["balanced deployed"])
        row = {
            "part": "timing",
            "groups": learned["groups"],
            "batch_size": 16,
            "step_ms": {name: round(1000 * statistics.median(t), 2) for name, t in times.items()},
            "time_ratio_to_balanced": {name: round(statistics.median(t) / reference, 2) for name, t in times.items()},
        }
        append(args.out, row)
        print(json.dumps(row), flush=True)


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {std:.1f} (n={len(values)})"


def table_part(args: argparse.Namespace) -> None:
    rows = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    batches = sorted({r["batch_size"] for r in rows if r["part"] == "epf"})
    backend = next((r["backend"] for r in rows if r["part"] == "epf"), "?")
    head = ["g", "module", "MACs", "proxy top-1 %", "full top-1 %"] + [
        f"EPF@{b} (mJ/frame, {backend})" for b in batches
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for groups, module in itertools.product(sorted({r["groups"] for r in rows if r["part"] != "uneven"}), MODULES):
        mine = [r for r in rows if r["groups"] == groups and r.get("module") == module]
        macs = next((r["macs"] for r in mine if "macs" in r), None)
        cells = [str(groups), module, f"{macs / 1e6:.2f} M" if macs else "-"]
        for mode in ("proxy", "full"):
            cells.append(
                _mean_std(
                    [r["top1"] for r in mine if r["part"] == "train" and r["mode"] == mode and r["status"] == "ok"]
                )
            )
        for batch in batches:
            values = [r["epf_mj"] for r in mine if r["part"] == "epf" and r["batch_size"] == batch]
            cells.append(f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else "-")
        print("| " + " | ".join(cells) + " |")
    uneven = [r for r in rows if r["part"] == "uneven"]
    if not uneven:
        return
    timing = {r["groups"]: r for r in rows if r["part"] == "timing"}
    print(
        "\n| g | FLGC-uneven proxy top-1 % (seed 0) | group sizes (min-max, empty) | deployed MACs (balanced) "
        "| fwd+bwd B=16 ms: balanced / uneven / masked dense |"
    )
    print("|---|---|---|---|---|")
    for r in uneven:
        ms = timing.get(r["groups"], {}).get("step_ms", {})
        times = (
            " / ".join(f"{ms[k]:.1f}" for k in ("balanced deployed", "uneven deployed", "masked dense (training form)"))
            if ms
            else "-"
        )
        print(
            f"| {r['groups']} | {r['top1']:.1f} | {r['group_sizes_min']}-{r['group_sizes_max']}, {r['empty_groups']} "
            f"| {r['macs'] / 1e6:.2f} M ({r['balanced_macs'] / 1e6:.2f} M) | {times} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("train", "epf", "uneven", "table"))
    parser.add_argument("--out", type=Path, default=Path("flgc_vs_fggc.jsonl"))
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared/data/food101-mini"))
    parser.add_argument("--arch", default="mobilenet_v1")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--groups", type=lambda s: [int(v) for v in s.split(",")], default=[4, 8])
    parser.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--proxy-epochs", type=int, default=8)
    parser.add_argument("--full-epochs", type=int, default=30)
    parser.add_argument("--only", choices=("proxy", "full"))
    parser.add_argument("--batch-sizes", type=lambda s: [int(v) for v in s.split(",")], default=[1, 4, 16])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    {"train": train_part, "epf": epf_part, "uneven": uneven_part, "table": table_part}[args.part](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
