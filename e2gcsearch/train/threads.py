"""``--threads auto``: time a few real steps with one thread and with every core, keep the faster.

Torch's default (one intra-op thread per core) is fastest on an idle machine, but on a CPU shared
with another job every step waits at a barrier for a preempted sibling thread: a two-trial search
took 311 s instead of 12 s with one thread. Nothing predicts which case holds, so it is measured.

Example:
    >>> timings = {1: 0.041, 2: 0.097}                         # seconds per step, by thread count
    >>> choice = choose_threads(timings.__getitem__, candidates=(1, 2))
    >>> choice.threads, choice.line()
    (1, 'threads: auto chose 1 (1 thread 41 ms/step, 2 threads 97 ms/step)')
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable

import torch

from ..config import ArchConfig
from ..data import LoadedData
from ..data.augment import augment_batch
from ..devices import resolve_device
from .config import TrainConfig
from .layout import LAYOUTS, apply_layout, choose_fastest, to_layout
from .loop import Trainer
from .runtime import DistInfo, build_model, check_inputs, thread_limit

AUTO = "auto"
TIMED_STEPS = 3  # per candidate, after one untimed step


@dataclasses.dataclass(frozen=True)
class ThreadChoice:
    """The thread count kept and the seconds per step measured for each candidate."""

    threads: int
    seconds_per_step: dict[int, float]

    def line(self) -> str:
        shown = ", ".join(
            f"{n} thread{'s' if n > 1 else ''} {s * 1e3:.0f} ms/step" for n, s in self.seconds_per_step.items()
        )
        return f"threads: auto chose {self.threads} ({shown})"


def usable_cores() -> set[int]:
    """The cores this process may run on."""
    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))


def thread_candidates() -> tuple[int, ...]:
    """One thread, and every core this process may use."""
    return tuple(sorted({1, max(1, len(usable_cores()))}))


def worker_threads(workers: int) -> int:
    """Threads of each of ``workers`` processes sharing this CPU: its share of the cores (at least one).

    Timing candidates as ``auto`` does would measure one worker on an idle CPU; with N workers busy the
    cores are N-way shared, and more threads than that only wait on each other."""
    return max(1, len(usable_cores()) // workers)


def choose_threads(seconds_per_step: Callable[[int], float], candidates: tuple[int, ...] | None = None) -> ThreadChoice:
    """Time each candidate thread count with ``seconds_per_step(threads)`` and keep the fastest (fewer
    threads on a tie: they leave cores to others)."""
    candidates = candidates or thread_candidates()
    timings = {threads: float(seconds_per_step(threads)) for threads in candidates}
    best = min(timings, key=lambda threads: (timings[threads], threads))
    return ThreadChoice(best, timings)


def training_step(arch_config: ArchConfig, data: LoadedData, config: TrainConfig) -> Callable[[str], None]:
    """``step(layout)``: one real optimiser step of ``arch_config`` on the first images of ``data`` at
    the training batch size, with the network and the batch in ``layout`` (converted when it changes).

    Raises whatever the step raises (a network that cannot train at this resolution or batch size, a
    device that does not exist): the caller's pre-flight check reports it."""
    check_inputs(arch_config, data)
    device = torch.device(resolve_device(config.device))
    start_layout = LAYOUTS[0] if config.layout == AUTO else config.layout
    trainer = Trainer(
        build_model(arch_config, config.seed),
        data,
        config.replace(progress=False, layout=start_layout),
        device,
        DistInfo(),
    )
    images, labels = trainer.train_x[: trainer.batch], trainer.train_y[: trainer.batch]
    generator = torch.Generator().manual_seed(0)

    def step(layout: str) -> None:
        if layout != trainer.layout:
            trainer.layout = layout
            apply_layout(trainer.model, layout)
        x = to_layout(augment_batch(images, trainer.mean, trainer.std, generator, trainer.augment), layout)
        loss = trainer._step(x, labels, config.lr * 1e-3)  # a tiny rate: the weights are thrown away
        loss.item()  # waits for the device

    return step


def _seconds_per_step(step: Callable[[], None], steps: int, timer: Callable[[], float]) -> float:
    """One untimed step, then the mean of ``steps`` timed ones."""
    step()
    start = timer()
    for _ in range(steps):
        step()
    return (timer() - start) / steps


def training_step_timer(
    arch_config: ArchConfig,
    data: LoadedData,
    config: TrainConfig,
    steps: int = TIMED_STEPS,
    timer: Callable[[], float] = time.perf_counter,
) -> Callable[[int], float]:
    """A ``seconds_per_step(threads)`` for :func:`choose_threads` (see :func:`training_step`)."""
    step = training_step(arch_config, data, config)
    layout = LAYOUTS[0] if config.layout == AUTO else config.layout

    def seconds_per_step(threads: int) -> float:
        with thread_limit(threads):
            return _seconds_per_step(lambda: step(layout), steps, timer)

    return seconds_per_step


def resolve_layout(
    config: TrainConfig, arch_config: ArchConfig, data: LoadedData, note: Callable[[str], None] | None = None
) -> TrainConfig:
    """``config`` with ``layout="auto"`` replaced by the faster layout for this network and batch,
    chosen as the profiler's ``--impl auto`` chooses (:func:`~e2gcsearch.train.layout.choose_fastest`
    on a few real optimiser steps in each layout); said through ``note``."""
    if config.layout != AUTO:
        return config
    step = training_step(arch_config, data, config)
    with thread_limit(config.threads if isinstance(config.threads, int) else None):
        choice = choose_fastest(LAYOUTS, lambda layout: _seconds_per_step(lambda: step(layout), 2, time.perf_counter))
    if note is not None:
        note(choice.line("training layout"))
    return config.replace(layout=choice.chosen)


def resolve_threads(
    config: TrainConfig, arch_config: ArchConfig, data: LoadedData, note: Callable[[str], None] | None = None
) -> TrainConfig:
    """``config`` with ``threads="auto"`` replaced by the measured choice (said through ``note``)."""
    if config.threads != AUTO:
        return config
    choice = choose_threads(training_step_timer(arch_config, data, config))
    if note is not None:
        note(choice.line())
    return config.replace(threads=choice.threads)
