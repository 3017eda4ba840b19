"""One batch size measured: warm up, calibrate the window from the warm-up steps, then time
``repeats`` windows on the meter (steps 2 and 3 of the protocol in :mod:`e2gcsearch.profiling.protocol`).

Every window also reads the load other processes put on the device meanwhile
(:mod:`e2gcsearch.energy.load`). A window over the threshold is thrown away and measured again, up to
``LOAD_RETRIES`` extra windows per batch size; when the budget is spent the windows still over it are
kept and the figure is flagged ``under_load``, so a figure that could only be taken under load is
stored and shown as such, never as clean.

A batch size the device has no memory for becomes a failed :class:`~.results.BatchProfile` (the other
batch sizes still run); one that BatchNorm cannot train is a :class:`~e2gcsearch.errors.ConfigError`
saying what to change.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config import ArchConfig
from ..energy import Meter
from ..energy.load import LoadReader, UnknownLoad
from ..errors import ConfigError
from .implementations import IMPLEMENTATIONS, compile_first_step, make_step
from .results import BatchProfile
from .settings import ProfileConfig, synchronize, synthetic_batch

GPU_WARMUP_S = 1.0  # on a GPU the warm-up also lasts this long, so clocks and power settle
# Extra windows per batch size when other processes load the device: enough to outlast a burst (a
# compile, another user's epoch boundary), few enough that a machine loaded for good costs at most
# 3 windows more (0.75 s on a CPU, 15 s on a GPU) before the figure is kept and flagged.
LOAD_RETRIES = 3


@dataclasses.dataclass
class Windows:
    """The windows kept for one batch size, with each one's foreign load (``None``: unknown)."""

    measurements: list[Any] = dataclasses.field(default_factory=list)
    loads: list[float | None] = dataclasses.field(default_factory=list)
    retries: int = 0

    def load_fields(self, reader: LoadReader) -> dict[str, Any]:
        """The BatchProfile fields that record the foreign load of the kept windows."""
        if not self.loads or None in self.loads:
            return {"foreign_load_unit": reader.unit, "load_retries": self.retries}  # unknown: never 0
        worst = max(self.loads)
        return {
            "foreign_load": worst,
            "foreign_load_unit": reader.unit,
            "load_retries": self.retries,
            "under_load": worst > reader.threshold,
        }


def measure_windows(
    step: Callable[[], None], meter: Meter, reader: LoadReader, iterations: int, repeats: int
) -> Windows:
    """``repeats`` windows of ``iterations`` steps, each one over the foreign-load threshold measured
    again while the batch size's ``LOAD_RETRIES`` last."""
    kept = Windows()
    while len(kept.measurements) < repeats:
        first = reader.sample()
        meter.begin_window("epf")
        try:
            for _ in range(iterations):
                step()
        finally:
            measurement = meter.end_window("epf")
        load = reader.foreign(first, reader.sample())
        if load is not None and load > reader.threshold and kept.retries < LOAD_RETRIES:
            kept.retries += 1
            continue
        kept.measurements.append(measurement)
        kept.loads.append(load)
    return kept


def _warm_up(step: Callable[[], None], device: str, config: ProfileConfig) -> float:
    """Run the warm-up steps; return the calibrated seconds per step (median after the first)."""
    times_s: list[float] = []
    started = time.perf_counter()
    while len(times_s) < max(1, config.warmup) or (
        device.startswith("cuda") and time.perf_counter() - started < GPU_WARMUP_S
    ):
        tic = time.perf_counter()
        step()
        synchronize(device)
        times_s.append(time.perf_counter() - tic)
    steady = sorted(times_s[1:] or times_s)
    return max(steady[len(steady) // 2], 1e-6)


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _untrainable(exc: ValueError, batch_size: int, config: ProfileConfig) -> ConfigError | None:
    """The user-facing error for a batch that BatchNorm cannot train (B=1 on a 1x1 final map)."""
    if "expected more than 1 value per channel" not in str(exc).lower():
        return None
    return ConfigError(
        f"batch size {batch_size} cannot be trained at resolution {config.resolution}: the last "
        "BatchNorm sees one value per channel; use --resolution 64 or larger, or batch sizes >= 2"
    )


def guarded(call: Callable[[], Any], batch_size: int, config: ProfileConfig) -> Any:
    """``call()``, or ``None`` when the device ran out of memory; a batch BatchNorm cannot train is
    a ConfigError saying what to change."""
    try:
        return call()
    except ValueError as exc:
        error = _untrainable(exc, batch_size, config)
        if error is None:
            raise
        raise error from None
    except (RuntimeError, MemoryError) as exc:
        if not (isinstance(exc, MemoryError) or _is_out_of_memory(exc)):
            raise
    # Out of memory: the failed step's tensors are freed once the exception is gone, then the cache.
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return None


def measure_batch(
    model: nn.Module,
    meter: Meter,
    arch_config: ArchConfig,
    batch_size: int,
    device: str,
    config: ProfileConfig,
    idle_power_w: float | None,
    impl: str,
    reader: LoadReader | None = None,
) -> BatchProfile:
    """Warm up, calibrate and measure one batch size with ``model`` prepared as ``impl`` (steps 2 and 3
    of the protocol in :mod:`e2gcsearch.profiling.protocol`); ``reader`` reads the foreign load of
    every window (``None``: not read, recorded as unknown)."""
    window_s = config.window_s(device)
    timing = {"wall_start": time.perf_counter(), "compile_s": None}
    reading = reader or UnknownLoad("", float("inf"), "not read")

    def measure() -> tuple[int, Windows]:
        inputs, targets = synthetic_batch(arch_config, batch_size, device, config)
        step = make_step(model, inputs, targets, impl, config.mode)
        if IMPLEMENTATIONS[impl].compiled:
            timing["compile_s"] = compile_first_step(step, lambda: synchronize(device))
            timing["wall_start"] = time.perf_counter()  # compile time is reported apart, not in wall_s
        iterations = max(1, math.ceil(window_s / _warm_up(step, device, config)))
        return iterations, measure_windows(step, meter, reading, iterations, config.repeats)

    outcome = guarded(measure, batch_size, config)
    wall_s = time.perf_counter() - timing["wall_start"]
    if outcome is None:
        model.zero_grad(set_to_none=True)
        batch = BatchProfile.failed(batch_size, "out of memory", config.repeats, window_s, wall_s)
    else:
        iterations, windows = outcome
        batch = BatchProfile.from_measurements(
            batch_size, windows.measurements, iterations, window_s, idle_power_w, wall_s
        )
        batch = dataclasses.replace(batch, **(windows.load_fields(reader) if reader else {}))
    return dataclasses.replace(batch, impl=impl, compile_s=timing["compile_s"])
