"""Trials per hour with 1 and 2 workers, per storage, with the device lock on — and what the lock
costs (2 workers with it off). Measured side by side in one run.

Each configuration runs a fresh study of ``--trials`` trials of a small search on the embedded digits
(estimate backend on the CPU, no measurement cache, so every trial measures and trains) through
``e2gcsearch.search.run.search``: worker start-up, the pre-flight, the baselines and every trial count,
as they do for a user. Storages: a journal file, SQLite (one process only: it refuses several
writers) and PostgreSQL (a throwaway server, as the tests start it; skipped with the reason where
none can be started, or give one with ``--postgres URL``).

Run (quiet machine):
    python benchmarks/workers_scaling.py
    python benchmarks/workers_scaling.py --trials 6 --storages journal,postgres --lock-off journal
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the throwaway server of the tests

from optuna.trial import TrialState  # noqa: E402

from e2gcsearch.data import DataConfig  # noqa: E402
from e2gcsearch.profiling import ProfileConfig  # noqa: E402
from e2gcsearch.search.objectives import parse_objectives  # noqa: E402
from e2gcsearch.search.run import SearchConfig, search  # noqa: E402
from e2gcsearch.search.space import SearchSpace  # noqa: E402
from e2gcsearch.search.trial import TrialSettings  # noqa: E402
from e2gcsearch.train import TrainConfig  # noqa: E402

SPACE = SearchSpace(
    archs=("mobilenet_v1",),
    modules=("E2GC", "FgGC"),
    group_sizes=(1, 2, 4, 8, 16),
    groups=(2, 4, 8, 16),
    widths=(0.25, 0.5),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--storages", default="journal,sqlite,postgres")
    parser.add_argument(
        "--lock-off",
        default="journal,postgres",
        help="storages where 2 workers also run with the lock off (what the lock costs)",
    )
    parser.add_argument("--postgres", metavar="URL", help="an existing server (else a throwaway one is started)")
    return parser.parse_args()


def settings(folder: Path, device_lock: bool) -> TrialSettings:
    return TrialSettings(
        objectives=parse_objectives("epf@16,top1"),
        constraints=(),
        space=SPACE,
        profile=ProfileConfig(
            batch_sizes=(4, 16),
            resolution=32,
            backend="estimate",
            device="cpu",
            repeats=3,
            min_window_s=0.1,
            use_cache=False,
            cache_dir=str(folder / "profiles"),
            device_lock=device_lock,
        ),
        train=TrainConfig(epochs=2, batch_size=32, progress=False, device="cpu", threads="auto"),
    )


def run_one(storage: str, workers: int, device_lock: bool, trials: int, folder: Path, name: str) -> tuple[float, int]:
    """Seconds for one fresh study of ``trials`` trials, and how many completed."""
    config = SearchConfig(
        settings=settings(folder, device_lock),
        storage=storage,
        study_name=name,
        data=DataConfig(name="digits", train_per_class=40, val_per_class=10, resolution=32),
        sampler="random",
        seed=0,
        trials=trials,
        workers=workers,
        progress=False,
    )
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):  # one line per trial: not the point here
        outcome = search(config)
    seconds = time.perf_counter() - start
    return seconds, sum(t.state == TrialState.COMPLETE for t in outcome.ran)


@contextlib.contextmanager
def postgres(url: str | None):
    if url:
        yield url
        return
    from pgserver import Unavailable, throwaway_postgres

    try:
        with throwaway_postgres("bench", "bench-password") as started:
            yield started
    except Unavailable as exc:
        print(f"postgres: skipped ({exc})")
        yield None


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="scaling-"))
    wanted = args.storages.split(",")
    rows = []
    with postgres(args.postgres) if "postgres" in wanted else contextlib.nullcontext() as pg_url:
        storages = {"journal": str(folder / "study.log"), "sqlite": f"sqlite:///{folder}/study.db", "postgres": pg_url}
        plan = [
            (kind, workers, lock)
            for kind in wanted
            if storages.get(kind)
            for workers, lock in ((1, True), (2, True), (2, False))
            if not (kind == "sqlite" and workers > 1) and (lock or kind in args.lock_off.split(","))
        ]
        for index, (kind, workers, lock) in enumerate(plan):
            seconds, done = run_one(storages[kind], workers, lock, args.trials, folder, f"bench-{index}")
            rows.append((kind, workers, lock, seconds, done))
            print(
                f"{kind:9s} workers={workers} lock={'on ' if lock else 'off'} {done:3d} trials in {seconds:6.1f} s "
                f"= {3600 * done / seconds:6.0f} trials/h",
                flush=True,
            )
    print(
        f"\n{os.cpu_count()} CPUs; {args.trials} trials per study (random sampler, digits at 32 px, 2 proxy "
        "epochs, EPF at B = 4 and 16, estimate backend, no cache); SQLite takes one worker only"
    )
    print(
        f"{'storage':9s} {'1 worker (lock on)':>19s} {'2 workers (lock on)':>20s} {'2 ÷ 1':>6s} "
        f"{'2 workers (lock off)':>21s} {'lock costs':>10s}"
    )
    for kind in dict.fromkeys(row[0] for row in rows):
        rate = {(w, lock): 3600 * done / seconds for k, w, lock, seconds, done in rows if k == kind}
        one, two, free = rate.get((1, True)), rate.get((2, True)), rate.get((2, False))
        shown = lambda value: f"{value:.0f}/h" if value else "-"  # noqa: E731
        print(
            f"{kind:9s} {shown(one):>19s} {shown(two):>20s} {(two / one if one and two else 0):>6.2f} "
            f"{shown(free):>21s} {(f'{100 * (1 - two / free):.0f} %' if two and free else '-'):>10s}"
        )


if __name__ == "__main__":
    main()
