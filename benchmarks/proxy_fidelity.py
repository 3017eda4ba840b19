"""Proxy fidelity: does the short proxy training rank networks the way full training does?

Every configuration is trained with every seed twice over, side by side in one run (interleaved per
configuration and seed, so a load change on the shared machine hits both alike):

  full   all training images, ``--full-epochs`` epochs, step schedule (``TrainConfig.full_training``)
  proxy  ``--proxy-train-per-class`` images per class (a fixed subset, data seed 0), ``--proxy-epochs``
         epochs, cosine schedule (``TrainConfig``) -- the per-trial training the search runs

Validation is always the whole official test split (160 images on food101-mini), so both rankings
are judged on the same images. Printed per proxy setting: Kendall tau between the proxy ranking and
the full ranking (each the mean top-1 over seeds), a bootstrap 95 % interval for tau (configurations
resampled with replacement; seed noise of the full results is not resampled), the mean over
configurations of the seed std of top-1, proxy seconds per run and the cost ratio proxy / full in
wall time. Comma lists in ``--proxy-epochs``, ``--proxy-train-per-class`` and ``--proxy-resolution``
form a grid of proxy settings judged against the same full results, computed once.

food101-mini has 48 train images per class, so the default proxy (24 per class, 8 epochs) sees half
the images for 8 epochs. A default run (8 configurations x 2 seeds, 15 full epochs, 1 torch thread)
takes about 20 minutes on a quiet CPU core, 30 on two cores shared with other jobs. At 15 epochs the
preset's step schedule (x0.1 after epochs 5 and 10) leaves MobileNet near chance on food101-mini
(one G=16 w=0.25 run: 13.8 % step, 24.4 % with ``--full-schedule cosine``); the script warns when the
full results are within two standard errors of chance, because tau against them is then noise.

Run from the repository root:
    python benchmarks/proxy_fidelity.py                                   # ../shared/data/food101-mini
    python benchmarks/proxy_fidelity.py --proxy-epochs 4,8 --proxy-train-per-class 16,24 --json out.json
    python benchmarks/proxy_fidelity.py --limit 3 --proxy-epochs 1 --full-epochs 1 --proxy-train-per-class 4
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from scipy.stats import kendalltau, rankdata

from e2gcsearch import ArchConfig, network_cost
from e2gcsearch.data import DataConfig, LoadedData, load_data
from e2gcsearch.stats import bootstrap_tau
from e2gcsearch.train import TrainConfig, train_model

DEFAULT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "food101-mini"
# MobileNet-V1 at 64 px, 3.3 to 33 MMACs: E2GC G in {1, 4, 16} and FgGC g in {4, 32}, widths 0.25 and 0.5.
DEFAULT_CONFIGS = "G1w0.25,G4w0.25,g32w0.25,G16w0.25,G1w0.5,g32w0.5,G16w0.5,g4w0.5"
CONFIG_SPEC = re.compile(r"^(?P<family>[Gg])(?P<value>\d+)w(?P<width>\d*\.?\d+)$")


class ProxySetting(NamedTuple):
    epochs: int
    train_per_class: int
    resolution: int

    @property
    def key(self) -> str:
        return f"e{self.epochs}-n{self.train_per_class}-r{self.resolution}"

    @property
    def label(self) -> str:
        return f"{self.epochs} ep, {self.train_per_class}/class, {self.resolution} px"


def parse_config(spec: str, arch: str, num_classes: int) -> ArchConfig:
    """``G4w0.5`` -> E2GC group size 4, width 0.5; ``g32w0.25`` -> FgGC 32 groups, width 0.25."""
    match = CONFIG_SPEC.match(spec.strip())
    if not match:
        raise SystemExit(f"bad --configs entry {spec!r}; write G<group size>w<width> or g<groups>w<width>, e.g. G4w0.5")
    family = "group_size" if match["family"] == "G" else "groups"
    return ArchConfig(arch, width=float(match["width"]), num_classes=num_classes, **{family: int(match["value"])})


def int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_ROOT, help="folder holding food-101/")
    parser.add_argument("--arch", default="mobilenet_v1")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma list of G<size>w<width> / g<groups>w<width>")
    parser.add_argument("--limit", type=int, help="keep only the first N configurations (smoke runs)")
    parser.add_argument("--seeds", type=int, default=2, help="training seeds per configuration (0, 1, ...)")
    parser.add_argument("--proxy-epochs", type=int_list, default=[8], help="comma list for a grid")
    parser.add_argument("--proxy-train-per-class", type=int_list, default=[24], help="comma list for a grid")
    parser.add_argument("--proxy-resolution", type=int_list, default=[64], help="pixels; comma list for a grid")
    parser.add_argument("--full-epochs", type=int, default=15)
    parser.add_argument("--full-resolution", type=int, default=64, help="pixels")
    parser.add_argument("--full-schedule", choices=("step", "cosine"), default="step",
                        help="step: the full-training preset (x0.1 at 1/3 and 2/3 of the epochs)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per training")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the tau interval")
    parser.add_argument("--json", type=Path, help="write every run (per config, seed, setting) here")
    return parser.parse_args()


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg()) + f" on {os.cpu_count()} cores"


def load(args: argparse.Namespace, train_per_class: int | None, resolution: int,
         memo: dict[tuple, LoadedData]) -> LoadedData:
    """One decoded split per (subset, resolution); the test split is always whole (val_per_class=None)."""
    key = (train_per_class, resolution)
    if key not in memo:
        memo[key] = load_data(DataConfig(name="food101", root=str(args.data_root), train_per_class=train_per_class,
                                         val_per_class=None, resolution=resolution, seed=0), progress=False)
    return memo[key]


def train_once(arch: ArchConfig, data: LoadedData, config: TrainConfig) -> dict:
    with tempfile.TemporaryDirectory() as folder:  # full training checkpoints; a fresh folder each run
        result = train_model(arch, data, config.replace(checkpoint_dir=folder) if config.full else config)
    return {"top1": result.top1, "wall_s": result.wall_s, "status": result.status,
            "train_size": result.train_size, "val_size": result.val_size, "device": result.device}


def collect(args: argparse.Namespace, archs: list[ArchConfig], settings: list[ProxySetting]) -> dict:
    """Runs as ``{"full": {label: [run per seed]}, "proxy": {setting key: {label: [run per seed]}}}``."""
    memo: dict[tuple, LoadedData] = {}
    common = dict(batch_size=args.batch_size, threads=args.threads, device=args.device, progress=False)
    runs: dict = {"full": {}, "proxy": {setting.key: {} for setting in settings}}
    for index, arch in enumerate(archs, 1):
        label = arch.label()
        for seed in range(args.seeds):  # full then every proxy, per seed: interleaved against load drift
            full = train_once(arch, load(args, None, args.full_resolution, memo),
                              TrainConfig.full_training(epochs=args.full_epochs, seed=seed,
                                                        schedule=args.full_schedule, **common))
            runs["full"].setdefault(label, []).append(full)
            line = f"full {full['top1']:5.1f} % {full['wall_s']:6.1f} s"
            for setting in settings:
                proxy = train_once(arch, load(args, setting.train_per_class, setting.resolution, memo),
                                   TrainConfig(epochs=setting.epochs, seed=seed, **common))
                runs["proxy"][setting.key].setdefault(label, []).append(proxy)
                line += f" | {setting.key} {proxy['top1']:5.1f} % {proxy['wall_s']:5.1f} s"
            print(f"  [{index}/{len(archs)}] {label:32s} seed {seed}: {line}", flush=True)
    return runs


def mean_std(runs: list[dict]) -> tuple[float, float]:
    values = [run["top1"] for run in runs]
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def fmt(value: float, spec: str = "5.1f") -> str:
    return "  n/a" if math.isnan(value) else format(value, spec)


def report_setting(setting: ProxySetting, runs: dict, macs: dict[str, int], args: argparse.Namespace) -> dict:
    """Print one proxy setting's agreement with full training; return the figures."""
    labels = list(macs)
    proxy_stats = [mean_std(runs["proxy"][setting.key][label]) for label in labels]
    full_stats = [mean_std(runs["full"][label]) for label in labels]
    proxy = np.array([mean for mean, _ in proxy_stats])
    full = np.array([mean for mean, _ in full_stats])
    result = kendalltau(proxy, full) if len(labels) > 1 else None
    tau = math.nan if result is None else float(result.statistic)
    p_value = math.nan if result is None else float(result.pvalue)
    low, high, used = bootstrap_tau(proxy, full, args.bootstrap)
    proxy_s = [run["wall_s"] for label in labels for run in runs["proxy"][setting.key][label]]
    full_s = [run["wall_s"] for label in labels for run in runs["full"][label]]
    figures = {"tau": tau, "p_value": p_value, "tau_ci95": [low, high], "bootstrap_used": used,
               "proxy_seed_std_pct": statistics.fmean(std for _, std in proxy_stats) if args.seeds > 1 else math.nan,
               "full_seed_std_pct": statistics.fmean(std for _, std in full_stats) if args.seeds > 1 else math.nan,
               "proxy_s_per_run": statistics.fmean(proxy_s), "cost_ratio": sum(proxy_s) / sum(full_s)}
    print(f"\n== proxy {setting.label}  vs  full {args.full_epochs} ep ({args.full_schedule}), all images, "
          f"{args.full_resolution} px")
    print(f"   Kendall tau                    : {fmt(tau, '+.3f')}   "
          f"(p = {fmt(p_value, '.3f')}, {len(labels)} configs)")
    print(f"   bootstrap 95 % interval of tau : [{fmt(low, '+.3f')}, {fmt(high, '+.3f')}]   "
          f"({used}/{args.bootstrap} resamples usable)")
    if math.isnan(tau):
        print("   -> tau is undefined (fewer than 2 configurations, or one ranking is all ties): no verdict")
    elif math.isnan(low) or low <= 0 <= high:
        print("   -> the interval includes 0: the proxy ranking is not distinguishable from chance at this sample size")
    else:
        print(f"   -> the interval excludes 0: the proxy ranks {'like' if tau > 0 else 'against'} full training")
    print(f"   mean seed std of top-1         : proxy {fmt(figures['proxy_seed_std_pct'], '.2f')} pp, "
          f"full {fmt(figures['full_seed_std_pct'], '.2f')} pp   ({args.seeds} seed(s))")
    print(f"   proxy wall time                : {figures['proxy_s_per_run']:.1f} s per run (one config, one seed)")
    print(f"   cost ratio proxy / full        : {figures['cost_ratio']:.3f}   (wall time, same configs and seeds)")
    everything = [run for label in labels for run in runs["full"][label] + runs["proxy"][setting.key][label]]
    failed = sorted({run["status"] for run in everything if run["status"] != "ok"})
    if failed:
        print(f"   !! some runs did not finish cleanly ({', '.join(failed)}); their top-1 is used as reported")
    proxy_rank, full_rank = rankdata(-proxy), rankdata(-full)  # 1 = best top-1; ties share the mean rank
    print(f"\n   {'configuration':32s} {'MMACs':>7s} {'proxy top-1 %':>14s} {'full top-1 %':>14s} "
          f"{'rank proxy':>10s} {'rank full':>9s}")
    for i, label in enumerate(labels):
        print(f"   {label:32s} {macs[label] / 1e6:7.2f} {proxy[i]:6.1f} ± {fmt(proxy_stats[i][1], '4.1f'):>5s} "
              f"{full[i]:6.1f} ± {fmt(full_stats[i][1], '4.1f'):>5s} {proxy_rank[i]:10.1f} {full_rank[i]:9.1f}")
    return figures


def warn_if_full_near_chance(runs: dict, data: LoadedData) -> None:
    """A full ranking made of near-chance accuracies is noise, and so is any tau against it."""
    chance = 1 / data.num_classes
    mean = statistics.fmean(run["top1"] for seeds in runs["full"].values() for run in seeds)
    ceiling = 100 * (chance + 2 * math.sqrt(chance * (1 - chance) / data.val_labels.numel()))
    if mean < ceiling:
        print(f"\n!! full training is near chance: mean top-1 {mean:.1f} % < {ceiling:.1f} % (chance "
              f"{100 * chance:.0f} % + 2 std errors); its ranking is noise. Train longer (--full-epochs) "
              "or try --full-schedule cosine.")


def no_nan(value):
    """NaN (an undefined std or tau) as JSON null, so the file is strict JSON."""
    if isinstance(value, dict):
        return {key: no_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [no_nan(item) for item in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def check_root(root: Path) -> None:
    if not (root / "food-101" / "meta" / "train.json").is_file():
        print(f"proxy_fidelity: no Food-101 at {root} (looked for {root / 'food-101' / 'meta' / 'train.json'}); "
              "pass --data-root DIR, the folder holding food-101/", file=sys.stderr)
        raise SystemExit(2)


def main() -> None:
    args = parse_args()
    command = shlex.join([sys.executable, *sys.argv])
    check_root(args.data_root)
    print(f"command: {command}")
    print(f"load average before: {load_average()}")
    print(f"torch {torch.__version__}, {args.threads} torch thread(s) per training (default here "
          f"{torch.get_num_threads()}), device {args.device}, batch {args.batch_size}")
    started = time.perf_counter()
    full_data = load(args, None, args.full_resolution, {})
    print(full_data.summary_line())
    print(f"one top-1 on {full_data.val_labels.numel()} validation images has a binomial std error of up to "
          f"{50 / math.sqrt(full_data.val_labels.numel()):.1f} pp (at 50 %); differences below that are noise")
    specs = [spec for spec in args.configs.split(",") if spec.strip()][:args.limit]
    archs = [parse_config(spec, args.arch, full_data.num_classes) for spec in specs]
    settings = [ProxySetting(*values) for values in itertools.product(
        args.proxy_epochs, args.proxy_train_per_class, args.proxy_resolution)]
    print(f"{len(archs)} configurations x {args.seeds} seed(s); full: {args.full_epochs} epoch(s), "
          f"{args.full_schedule} schedule; proxy settings: {'; '.join(setting.label for setting in settings)}\n")
    runs = collect(args, archs, settings)
    macs = {arch.label(): network_cost(arch, args.full_resolution).macs for arch in archs}
    warn_if_full_near_chance(runs, full_data)
    figures = {setting.key: report_setting(setting, runs, macs, args) for setting in settings}
    total_s = time.perf_counter() - started
    print(f"\nwall time: {total_s:.0f} s in all ({sum(r['wall_s'] for v in runs['full'].values() for r in v):.0f} s "
          f"full training); load average after: {load_average()}")
    if args.json:
        args.json.write_text(json.dumps({
            "command": command, "torch": torch.__version__, "args": {k: str(v) for k, v in vars(args).items()},
            "data": full_data.summary_line(), "settings": {s.key: s._asdict() for s in settings},
            "configs": {arch.label(): dict(arch.to_dict(), macs=macs[arch.label()]) for arch in archs},
            "runs": no_nan(runs), "figures": no_nan(figures), "total_s": total_s}, indent=1))
        print(f"raw results written to {args.json}")


if __name__ == "__main__":
    main()
