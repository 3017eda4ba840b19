"""Does a worker's training leak into another worker's energy measurement? Measured side by side in one run.

One fixed network is profiled three ways, in this order and repeated in ``--rounds`` rounds so that a
drift of the machine shows in every column alike:

* **alone**: nothing else of ours runs;
* **beside training, lock on**: a second process trains continuously on the same CPU (a search
  worker's proxy training, with the device lock's step boundary), and the measurement takes the
  device lock (:mod:`e2gcsearch.profiling.lock`): the trainer stands aside between two steps;
* **beside training, lock off**: the same trainer, and the measurement does not wait (what
  ``--workers 2`` measured before the lock).

It prints EPF (mean ± standard deviation over the measurement windows of all rounds), the difference
to "alone" in units of the combined standard deviation, the seconds the measurement waited for the
trainer, and how many training steps the trainer completed meanwhile.

Run (quiet machine; the estimate backend on a CPU, one measuring thread):
    python benchmarks/measurement_isolation.py
    python benchmarks/measurement_isolation.py --train-threads 1 --rounds 4
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import torch

from e2gcsearch import ArchConfig
from e2gcsearch.data import DataConfig, load_data
from e2gcsearch.profiling import DeviceLock, ProfileConfig, profile_model
from e2gcsearch.train import TrainConfig, train_model

NETWORK = ArchConfig("mobilenet_v1", group_size=8, width=0.5, num_classes=10)
RESOLUTION, BATCH = 64, 16


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="windows per measurement")
    parser.add_argument("--window-s", type=float, default=0.25)
    parser.add_argument(
        "--train-threads",
        type=int,
        default=0,
        help="threads of the training process (0 = every core, as torch's default)",
    )
    return parser.parse_args()


def _trainer(folder: str, key: str, threads: int, stop: str, steps_file: str) -> None:
    """Train for ever (epoch after epoch) until ``stop`` exists, standing aside at step boundaries."""
    torch.set_num_threads(threads or os.cpu_count() or 1)
    data = load_data(
        DataConfig(name="digits", train_per_class=64, val_per_class=4, resolution=RESOLUTION), progress=False
    )
    arch = dataclasses.replace(NETWORK, group_size=4)  # another network than the measured one
    lock, steps = DeviceLock(folder, key), [0]

    def boundary() -> None:
        steps[0] += 1
        Path(steps_file).write_text(str(steps[0]))
        if Path(stop).exists():
            raise KeyboardInterrupt
        step_aside()

    with lock.shared() as step_aside:
        try:
            while True:
                train_model(
                    arch,
                    data,
                    TrainConfig(epochs=1, batch_size=32, threads=threads or None, progress=False, device="cpu"),
                    between_steps=boundary,
                )
        except KeyboardInterrupt:
            pass


def measure(config: ProfileConfig):
    """The measured batch (its windows' mean and std), the seconds waited for the device, the backend."""
    lock = DeviceLock.for_device("cpu", config.cache_dir) if config.device_lock else None
    result = profile_model(NETWORK, config, lock=lock)
    return result.batches[BATCH], (lock.waited_s if lock else 0.0), result.backend


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    folder = tempfile.mkdtemp(prefix="isolation-")
    config = ProfileConfig(
        batch_sizes=(BATCH,),
        resolution=RESOLUTION,
        device="cpu",
        backend="estimate",
        repeats=args.repeats,
        min_window_s=args.window_s,
        use_cache=False,
        cache_dir=folder,
        threads=1,
    )
    key = DeviceLock.for_device("cpu", folder).key
    context = multiprocessing.get_context("spawn")
    columns = {"alone": None, "beside training, lock on": None, "beside training, lock off": None}
    waits = {name: 0.0 for name in columns}
    steps = {name: 0 for name in columns}
    measure(config)  # warm the process (first-call costs)
    for _ in range(args.rounds):
        for name in columns:
            trainer = None
            stop, steps_file = Path(folder) / "stop", Path(folder) / "steps"
            stop.unlink(missing_ok=True)
            steps_file.write_text("0")
            if name != "alone":
                trainer = context.Process(
                    target=_trainer, args=(folder, key, args.train_threads, str(stop), str(steps_file))
                )
                trainer.start()
                while int(steps_file.read_text() or 0) < 5:  # training has started
                    time.sleep(0.1)
            before = int(steps_file.read_text() or 0)
            batch, waited, backend = measure(
                dataclasses.replace(config, device_lock=name != "beside training, lock off")
            )
            steps[name] += int(steps_file.read_text() or 0) - before
            columns[name] = batch if columns[name] is None else columns[name].pooled_with(batch)
            waits[name] += waited
            if trainer is not None:
                stop.touch()
                trainer.join(timeout=120)
    base = columns["alone"].epf()
    print(
        f"{NETWORK.label()} at {RESOLUTION} px, B={BATCH}, {args.repeats} windows of >= {args.window_s} s per "
        f"measurement, {args.rounds} rounds; backend {backend}; trainer threads "
        f"{args.train_threads or os.cpu_count()} on {os.cpu_count()} CPUs"
    )
    print(
        f"{'measurement':28s} {'EPF@16 (mJ/frame, ' + backend + ')':>26s} {'windows':>7s} {'diff / std':>10s} "
        f"{'waited (s)':>10s} {'trainer steps meanwhile':>24s}"
    )
    for name, batch in columns.items():
        epf = batch.epf()
        combined = math.sqrt(base.std**2 + epf.std**2)
        print(
            f"{name:28s} {epf.mean:>16.3f} ± {epf.std:<7.3f} {epf.n:>7d} {(epf.mean - base.mean) / combined:>+10.2f} "
            f"{waits[name]:>10.2f} {steps[name]:>24d}"
        )


if __name__ == "__main__":
    main()
