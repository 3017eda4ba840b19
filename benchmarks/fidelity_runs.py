"""One run of ``benchmarks/proxy_fidelity.py``: what a run is (a proxy budget, a job) and what it measures
into its row (a full or proxy training with top-1 and seconds after every epoch, a training-free score,
EPF), kept apart from the script's planning and table handling."""

from __future__ import annotations

import argparse
import datetime
import os
import time
from typing import NamedTuple


class Proxy(NamedTuple):
    epochs: int
    train_per_class: int | None  # None: every training image
    resolution: int

    @property
    def key(self) -> str:
        return f"e{self.epochs}-n{self.train_per_class or 'all'}-r{self.resolution}"


def parse_proxy(text: str) -> Proxy:
    """``e4-n100-r64`` -> 4 epochs, 100 images per class, 64 px (``nall``: every image)."""
    try:
        epochs, images, resolution = text.split("-")
        return Proxy(int(epochs[1:]), None if images == "nall" else int(images[1:]), int(resolution[1:]))
    except ValueError:
        raise SystemExit(
            f"bad proxy {text!r}; write e<epochs>-n<images per class or all>-r<pixels>, e.g. e4-n100-r64"
        ) from None


class Job(NamedTuple):
    arch: object  # ArchConfig
    kind: str
    setting: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.arch.label()}|{self.kind}|{self.setting}|{self.seed}"


# --- one run ----------------------------------------------------------------------------------------


def load_average() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


NETWORK_COLUMNS = ["label", "arch", "module", "value", "width"]  # the first columns of every row: which network


def base_row(arch, job: Job, hold: str) -> dict:
    from e2gcsearch import network_cost

    cost = network_cost(arch.deployed() if not arch.uneven else arch, 64)
    return {
        "label": arch.label(),
        "arch": arch.arch,
        "module": arch.module,
        "value": arch.group_size or arch.groups,
        "width": arch.width,
        "params": cost.params,
        "macs": cost.macs,
        "kind": job.kind,
        "setting": job.setting,
        "seed": job.seed,
        "hold": hold,
        "measured_at": f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M}",
    }


def train_row(job: Job, data, config) -> dict:
    from e2gcsearch.train import train_model

    ticks, curve = [time.perf_counter()], []

    def on_epoch_end(epochs_done: int, metrics: dict) -> bool:
        ticks.append(time.perf_counter())
        curve.append(metrics["top1"])
        return False

    result = train_model(job.arch, data, config, on_epoch_end=on_epoch_end)
    epoch_s = [b - a for a, b in zip(ticks, ticks[1:])]
    return {
        "epochs": config.epochs,
        "top1": f"{result.top1:.4f}",
        "top1_curve": ";".join(f"{v:.4f}" for v in curve),
        "epoch_s": ";".join(f"{s:.2f}" for s in epoch_s),
        "train_s": f"{sum(epoch_s):.2f}",
        "status": result.status,
        "val_size": result.val_size,
        "val_order": result.val_order,  # per-image results, for paired_separation.py's table
        "correct": result.correct,
    }


def run_job(job: Job, args: argparse.Namespace, memo: dict) -> dict:
    from e2gcsearch.data import DataConfig, load_data
    from e2gcsearch.train import FULL_RECIPE, TrainConfig

    def data(train_per_class: int | None, resolution: int):
        key = (train_per_class, resolution)
        if key not in memo:
            memo[key] = load_data(
                DataConfig(
                    name="food101",
                    root=str(args.data_root),
                    train_per_class=train_per_class,
                    val_per_class=None,
                    resolution=resolution,
                    seed=0,
                ),
                progress=False,
            )
        return memo[key]

    row = base_row(job.arch, job, args.hold)
    load_before = load_average()
    common = dict(threads=1, progress=False, device="cpu", seed=job.seed, layout="auto")  # the faster layout
    if job.kind == "full":
        budget = parse_proxy(job.setting)
        config = FULL_RECIPE.train_config(full=False, epochs=budget.epochs, **common)  # no checkpoints
        row.update(
            train_per_class="all", resolution=budget.resolution, **train_row(job, data(None, budget.resolution), config)
        )
    elif job.kind == "proxy":
        proxy = parse_proxy(job.setting)
        config = TrainConfig(epochs=proxy.epochs, **common)
        row.update(
            train_per_class=proxy.train_per_class or "all",
            resolution=proxy.resolution,
            **train_row(job, data(proxy.train_per_class, proxy.resolution), config),
        )
    elif job.kind == "score":
        from e2gcsearch.train.scores import score_network

        started = time.perf_counter()
        value = score_network(job.setting, job.arch, data(None, 64), seed=job.seed)
        row.update(
            resolution=64,
            value_out=f"{value:.6g}",
            unit="score",
            train_s=f"{time.perf_counter() - started:.2f}",
            status="ok",
        )
    else:
        row.update(resolution=64, **epf_row(job.arch))
    row["load"] = f"{load_before} -> {load_average()}"
    return row


def epf_row(arch) -> dict:
    from e2gcsearch.profiling import ProfileConfig, profile_model

    config = ProfileConfig(batch_sizes=(1, 4, 16), resolution=64, use_cache=False, threads=1, impl="auto")
    result = profile_model(arch.deployed(), config)
    largest = result.batches[max(result.batches)]
    return {
        "value_out": f"{largest.epf_mj:.4f}",
        "unit": f"mJ/frame@{max(result.batches)} ({result.backend})",
        "status": largest.status,
        "epoch_s": ";".join(
            f"{size}:{batch.epf_mj:.4f}:{batch.epf_std_mj:.4f}:{batch.impl}"
            for size, batch in sorted(result.batches.items())
        ),
    }


# --- driving ----------------------------------------------------------------------------------------
