"""EPF profiler: energy per frame of one training step, per batch size, on top of an energy meter.

EPF (the E2GC paper's figure) = energy of one forward + one backward pass of a batch / batch size B,
in millijoules (mode ``train``); mode ``infer`` measures one forward pass in eval mode instead, what
a deployed model costs. The protocol, per batch size B:

1. build the network from its :class:`~e2gcsearch.config.ArchConfig` on the device, in the dtype
   asked, set up as the implementation asked (:mod:`~e2gcsearch.profiling.implementations`: nchw,
   channels_last, compile; ``auto`` first times the candidates for a few steps and keeps the
   fastest); synthetic input ``(B, 3, R, R)`` and random labels; one step = ``zero_grad`` + forward
   + cross-entropy + backward in train mode (no optimizer step), or a forward pass under
   ``torch.inference_mode()`` in eval mode; a compiled model's first, compiling step runs here and
   is timed apart (``compile_s``);
2. warm up (``warmup`` steps; on a GPU also at least 1 s so clocks and power settle) and time the
   warm-up steps to calibrate: ``iterations = ceil(min_window_s / step time)``, so every measured
   window lasts at least ``min_window_s``;
3. ``repeats`` windows of ``iterations`` steps each; EPF of a window = its energy / (iterations x B);
   report mean, standard deviation and CV over the windows, latency per batch, throughput, and —
   when the backend can measure it — idle power (read once while sleeping, before the first batch)
   and the idle-subtracted EPF.

Window length defaults: **5 s on a GPU** (NVML's energy counter refreshes every 20-100 ms, so 5 s keeps
the edge error near 2 %, and GPU power needs a few hundred ms to ramp), **0.25 s on a CPU**. On a
CPU the meter is RAPL (a counter updated about every millisecond) or the estimate (time from
``perf_counter``, nanosecond resolution), so a short window loses no precision to the counter; what
remains is scheduler noise, which the repeats average. 0.25 s keeps a search trial cheap: a
width-0.25 MobileNet at 64 px, B in (1, 4, 16), 3 repeats profiles in about 3 s on one core
(the default: ``threads=1``, see :class:`ProfileConfig`).

Steps 2 and 3, for one batch size, are :mod:`e2gcsearch.profiling.measure`. An out-of-memory batch
size is reported with status ``"out of memory"`` and the others still run.
Results are cached on disk (see :mod:`e2gcsearch.profiling.cache`). While a network is measured, no
other e2gcsearch process of the host trains on the device (:mod:`e2gcsearch.profiling.lock`), and every
window records the load of the processes that are not e2gcsearch's; a window under such load is
measured again, and a figure that could only be taken under load is flagged ``under_load``
(:mod:`e2gcsearch.profiling.measure`). A flagged cache entry keeps its flag when it is reused.

Example:
    >>> from e2gcsearch import ArchConfig
    >>> arch_config = ArchConfig("mobilenet_v1", group_size=4, width=0.25, num_classes=10)
    >>> config = ProfileConfig(batch_sizes=(4,), resolution=64, backend="estimate", repeats=2,
    ...                        min_window_s=0.05, threads=1, use_cache=False)
    >>> result = profile_model(arch_config, config)
    >>> result.backend, result.is_estimate, result.batches[4].status
    ('estimate', True, 'ok')
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config import ArchConfig
from ..devices import resolve_device
from ..energy import Meter, create_meter
from ..energy.load import LoadReader, load_reader
from ..models import check_resolution, validate_config
from ..train.layout import Choice
from .cache import ProfileCache, cache_key, choice_key
from .fingerprint import DeviceFingerprint, device_fingerprint
from .implementations import (
    AUTO,
    AUTO_CANDIDATES,
    IMPLEMENTATIONS,
    STEPS,
    calibrate,
    make_step,
    prepare,
)
from .lock import DeviceLock
from .measure import guarded, measure_batch
from .results import BatchProfile, ProfileResult
from .settings import ProfileConfig, build_model, synchronize, synthetic_batch

Progress = Callable[[str], None]


def _usable(entry: dict[str, Any] | None, config: ProfileConfig, window_s: float) -> BatchProfile | None:
    """A cached entry, if it is at least as precise as asked (and, when the device lock is on, was not
    measured without it)."""
    if not entry:
        return None
    try:
        cached = BatchProfile.from_dict(entry)
    except (TypeError, ValueError):
        return None
    if cached.status != "ok" or cached.repeats < config.repeats or cached.window_s + 1e-9 < window_s:
        return None
    if config.device_lock and cached.isolated is False:  # measured beside other processes' training
        return None
    return dataclasses.replace(cached, cached=True)


def profile_model(
    arch_config: ArchConfig,
    config: ProfileConfig | None = None,
    progress: Progress | None = None,
    lock: DeviceLock | None = None,
    load: LoadReader | None = None,
) -> ProfileResult:
    """Profile ``arch_config`` per batch size (see the module docstring for the protocol).

    Args:
        arch_config: the network.
        config: how to profile; defaults to :class:`ProfileConfig()`.
        progress: called with one status line per batch size (the CLI prints them on stderr).
        lock: the device's measurement lock (its ``waited_s`` counts the wait); ``None``: this
            device's host-wide lock, when ``config.device_lock``.
        load: what reads other processes' load in every window; ``None``: the device's reader
            (:func:`e2gcsearch.energy.load.load_reader`).

    Raises:
        ConfigError: bad configuration (grouping, resolution, device, dtype).
        UnknownNameError / MeterUnavailableError: the backend is unknown or cannot measure here.
    """
    config = config or ProfileConfig()
    check_resolution(arch_config.arch, config.resolution)
    validate_config(arch_config)
    device = resolve_device(config.device)
    previous_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        with contextlib.ExitStack() as held:
            if config.device_lock and lock is None:
                lock = DeviceLock.host_wide(device, ProfileCache(config.cache_dir).directory)
                held.callback(lock.close)
            if load is None:
                load = load_reader(device)
                held.callback(load.close)
            claim = (lambda: held.enter_context(lock.exclusive())) if config.device_lock else (lambda: None)
            return _profile(arch_config, config, device, progress or (lambda line: None), claim, load)
    finally:
        torch.set_num_threads(previous_threads)


class _Bench:
    """The network on the device, built on first use (after the idle-power reading) and set up as
    one implementation at a time."""

    def __init__(
        self,
        arch_config: ArchConfig,
        config: ProfileConfig,
        device: str,
        meter: Meter,
        claim: Callable[[], None],
        load: LoadReader | None = None,
    ) -> None:
        self.arch_config, self.config, self.device, self.meter = arch_config, config, device, meter
        self.claim, self.load = claim, load
        self.base: nn.Module | None = None
        self.compiled: nn.Module | None = None
        self.idle_power_w: float | None = None

    def model_as(self, impl: str) -> nn.Module:
        if self.base is None:  # only when something must be measured (calibrated or profiled)
            self.claim()  # the device to ourselves until the last batch size is measured
            self.idle_power_w = self.meter.idle_power_w()
            self.base = build_model(self.arch_config, self.device, self.config)
        if IMPLEMENTATIONS[impl].compiled:
            if self.compiled is None:
                self.compiled = prepare(self.base, impl, self.config.mode)
            return self.compiled
        return prepare(self.base, impl, self.config.mode)

    def choose(self, batch_size: int) -> Choice:
        """``auto``: calibrate the candidates at ``batch_size`` (see implementations.calibrate)."""
        inputs, targets = synthetic_batch(self.arch_config, batch_size, self.device, self.config)
        return calibrate(
            AUTO_CANDIDATES,
            lambda impl: make_step(self.model_as(impl), inputs, targets, impl, self.config.mode),
            lambda: synchronize(self.device),
        )


def _profile(
    arch_config: ArchConfig,
    config: ProfileConfig,
    device: str,
    progress: Progress,
    claim: Callable[[], None] = lambda: None,
    load: LoadReader | None = None,
) -> ProfileResult:
    options = {} if config.power_w is None else {"power_w": config.power_w}
    with create_meter(config.backend, device, **options) as meter:
        fingerprint = device_fingerprint(device, config.dtype, config.impl, meter)
        cache = ProfileCache(config.cache_dir) if config.use_cache else None
        bench = _Bench(arch_config, config, device, meter, claim, load)
        batches = {
            batch_size: _profile_batch(bench, batch_size, fingerprint, cache, progress)
            for batch_size in config.batch_sizes
        }
        return ProfileResult(
            arch_config=arch_config,
            backend=meter.name,
            is_estimate=meter.is_estimate,
            fingerprint=fingerprint,
            batches=batches,
            backend_notes=[f"{name}: {reason}" for name, reason in meter.unavailable],
            backend_label=meter.label,
            resolution=config.resolution,
            device=device,
            impl=config.impl,
            mode=config.mode,
            protocol={
                "repeats": config.repeats,
                "min_window_s": config.window_s(device),
                "warmup": config.warmup,
                "step": STEPS[config.mode],
            },
        )


def _profile_batch(
    bench: _Bench, batch_size: int, fingerprint: DeviceFingerprint, cache: ProfileCache | None, progress: Progress
) -> BatchProfile:
    """One batch size: the auto choice (cached or calibrated), then the measurement (cached or made)."""
    arch_config, config = bench.arch_config, bench.config
    window_s = config.window_s(bench.device)
    impl, choice = config.impl, None
    if impl == AUTO:
        request = choice_key(cache_key(arch_config, batch_size, config.resolution, fingerprint, config.mode))
        choice = _stored_choice(cache.load(request) if cache is not None and not config.refresh else None)
        if choice is None:
            choice = guarded(lambda: bench.choose(batch_size), batch_size, config)
            if choice is None:
                return BatchProfile.failed(batch_size, "out of memory", config.repeats, window_s, 0.0)
            if cache is not None:
                cache.store(request, choice.to_dict())
        impl = choice.chosen
        progress(f"{arch_config.label()} B={batch_size}: {choice.line()}")
    key = cache_key(arch_config, batch_size, config.resolution, fingerprint.with_implementation(impl), config.mode)
    batch = _usable(cache.load(key), config, window_s) if cache is not None and not config.refresh else None
    if batch is None:
        batch = dataclasses.replace(
            measure_batch(
                bench.model_as(impl),
                bench.meter,
                arch_config,
                batch_size,
                bench.device,
                config,
                bench.idle_power_w,
                impl,
                bench.load,
            ),
            isolated=config.device_lock,
        )
        if cache is not None and batch.status == "ok":
            cache.store(key, batch.to_dict())
    batch = dataclasses.replace(batch, impl=impl, impl_choice=choice.to_dict() if choice else None)
    progress(_progress_line(arch_config, batch, bench.meter))
    return batch


def _stored_choice(entry: dict[str, Any] | None) -> Choice | None:
    try:
        return Choice.from_dict(entry) if entry else None
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _progress_line(arch_config: ArchConfig, batch: BatchProfile, meter: Meter) -> str:
    if batch.status != "ok":
        return f"{arch_config.label()} B={batch.batch_size}: {batch.status}"
    source = "cached" if batch.cached else f"{batch.iterations} steps x {batch.repeats} windows"
    if batch.compile_s is not None:
        source += f", compiled in {batch.compile_s:.1f} s before the windows"
    return (
        f"{arch_config.label()} B={batch.batch_size}: EPF {batch.epf_mj:.3f} mJ/frame ({meter.name}), "
        f"CV {100 * batch.cv:.1f} %, {batch.latency_ms:.1f} ms/batch, {batch.impl} [{source}]{load_text(batch, ' - ')}"
    )


def load_text(batch: BatchProfile, prefix: str = "") -> str:
    """``under load (1.40 busy cores from other processes, after 3 windows measured again)`` for a
    flagged figure, else ``""``."""
    if not batch.under_load:
        return ""
    return (
        f"{prefix}under load ({batch.foreign_load:.2f} {batch.foreign_load_unit} from other processes, "
        f"after {batch.load_retries} window{'s' if batch.load_retries != 1 else ''} measured again)"
    )


def profile_many(
    configs: list[ArchConfig], config: ProfileConfig, progress: Progress | None = None
) -> list[ProfileResult]:
    """:func:`profile_model` for each network, in order."""
    return [profile_model(arch, config, progress) for arch in configs]


def extend_measurement(
    arch_config: ArchConfig,
    config: ProfileConfig,
    batch_size: int,
    windows: int,
    earlier: BatchProfile | None = None,
    progress: Progress | None = None,
) -> BatchProfile:
    """Measure ``windows`` more windows of ``arch_config`` at ``batch_size`` and pool them with the
    cached measurement (else with ``earlier``, e.g. what a trial stored), so precision only grows.

    The pooled measurement replaces the cache entry (it holds every window so far), and is returned.
    """
    impl = config.impl
    if impl == AUTO and earlier is not None and earlier.status == "ok":
        impl = earlier.impl  # pool windows of one implementation only: the one auto chose before
    fresh_config = dataclasses.replace(config, batch_sizes=(batch_size,), repeats=windows, use_cache=False, impl=impl)
    result = profile_model(arch_config, fresh_config, progress)
    fresh = result.batches[batch_size]
    if fresh.status != "ok":
        return fresh
    cache = ProfileCache(config.cache_dir) if config.use_cache else None
    key = cache_key(
        arch_config, batch_size, config.resolution, result.fingerprint.with_implementation(fresh.impl), config.mode
    )
    stored = _usable(cache.load(key), dataclasses.replace(config, repeats=1), 0.0) if cache is not None else None
    known = [
        b
        for b in (stored, earlier)
        if b is not None
        and b.status == "ok"
        and b.repeats >= 1
        and b.impl == fresh.impl
        and not (config.device_lock and b.isolated is False)
    ]  # no shared-device windows in a locked pool (loaded windows may pool: the pool keeps their flag)
    base = max(known, key=lambda b: b.repeats, default=None)  # whichever holds more windows
    pooled = base.pooled_with(fresh) if base is not None else fresh
    if cache is not None:
        cache.store(key, dataclasses.replace(pooled, cached=False).to_dict())
    return pooled


def epf_columns(results: list[ProfileResult]) -> list[dict[str, Any]]:
    """Per result, ``epf_mj_b<B>`` for every batch size plus the backend and the implementation(s)
    measured (``epf_impl``: one name, or ``B:name`` per batch size when auto chose differently) —
    columns for a table."""
    rows = []
    for result in results:
        row: dict[str, Any] = {f"epf_mj_b{b}": result.batches[b].epf_mj for b in sorted(result.batches)}
        chosen = result.implementations()
        row["epf_impl"] = (
            next(iter(chosen.values()))
            if len(set(chosen.values())) == 1
            else " ".join(f"{b}:{impl}" for b, impl in chosen.items())
        )
        row["epf_backend"] = result.backend
        rows.append(row)
    return rows
