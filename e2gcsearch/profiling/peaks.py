"""The device's measured peaks: the two ceilings of its roofline (:mod:`.roofline`).

* **compute** (FLOP/s): a large dense matmul (``n x n`` by ``n x n``, 2n^3 FLOPs) and a large dense
  3x3 conv (forward, 2 x MACs FLOPs), in the measured dtype at the measured thread count; the
  ceiling is the better of the two (on a GPU cuDNN may run float32 convs in TF32, faster than a
  float32 matmul, so the conv can set it).
* **memory bandwidth** (byte/s): a copy of a buffer several times the last-level cache, counted as
  reading it once and writing it once (2 x its size), as STREAM's *copy* counts.

Each kernel is warmed up, timed once to size a window of at least ``min_window_s``, then timed over
``repeats`` such windows; every window's rate is kept, so the spread (median, lowest, highest) is
reported beside the ceiling, which is the highest rate seen (what the device showed it can do; on a
shared machine lower rates are other jobs' doing). On a GPU the same kernels run as CUDA kernels, the
device synchronised at every window's edges.

The peaks are measured once per device and cached beside the device profile, under the same key:
``<profiles cache>/device-profiles/<identity digest>-peaks.json``, the digest of the device fingerprint
(device and its model, torch, dtype, thread count; :meth:`DeviceFingerprint.identity_digest`). An entry
is reused when it was measured with the same kernel sizes and at least as many repeats;
``use_cache=False`` (``--no-cache``) measures afresh and stores nothing, ``refresh`` measures afresh
and replaces it.

Example:
    >>> config = ProfileConfig(device="cpu", threads=1, use_cache=False, device_lock=False)
    >>> peaks = device_peaks(config, repeats=2, sizes=PeakSizes(64, 2, 8, 8, 1), min_window_s=0.001)
    >>> peaks.ceiling.flops_per_s > 0 and peaks.ceiling.bytes_per_s > 0
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..devices import resolve_device
from ..energy import create_meter
from ..train.runtime import thread_limit
from .cache import ProfileCache
from .fingerprint import DeviceFingerprint, device_fingerprint
from .lock import DeviceLock
from .results import utc_minute
from .roofline import Ceiling
from .settings import DTYPES, ProfileConfig, synchronize

PEAKS_KIND = "e2gcsearch.device-peaks"
PEAKS_VERSION = 1
REPEATS = 5
Timer = Callable[[], float]


@dataclasses.dataclass(frozen=True)
class PeakSizes:
    """The kernels' sizes: matmul ``n``; dense 3x3 conv batch, channels (in = out) and side; copy MiB."""

    matmul_n: int
    conv_batch: int
    conv_channels: int
    conv_size: int
    copy_mib: int


CPU_SIZES = PeakSizes(matmul_n=1024, conv_batch=8, conv_channels=256, conv_size=14, copy_mib=128)
GPU_SIZES = PeakSizes(matmul_n=8192, conv_batch=64, conv_channels=512, conv_size=28, copy_mib=1024)
WINDOW_S = {"cpu": 0.2, "cuda": 0.5}  # the least time of one timed window
WARMUP_S = {"cpu": 0.05, "cuda": 1.0}  # a GPU runs this long first, so clocks and power settle


@dataclasses.dataclass(frozen=True)
class Rate:
    """One kernel's rate in every timed window (``unit`` per second, e.g. FLOP/s)."""

    kernel: str
    unit: str
    samples: tuple[float, ...]

    @property
    def best(self) -> float:
        return max(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    def line(self, scale: float, unit: str) -> str:
        """e.g. ``61.2 GFLOP/s (matmul ...; median 58.1, 52.0-61.2 over 5 windows)``."""
        return (
            f"{self.best / scale:.1f} {unit} ({self.kernel}; median {self.median / scale:.1f}, "
            f"{self.low / scale:.1f}-{self.best / scale:.1f} over {len(self.samples)} windows)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel,
            "unit": self.unit,
            "best": self.best,
            "median": self.median,
            "low": self.low,
            "samples": list(self.samples),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rate:
        return cls(str(data["kernel"]), str(data["unit"]), tuple(float(v) for v in data["samples"]))


@dataclasses.dataclass(frozen=True)
class DevicePeaks:
    """The measured ceilings of one device at one dtype and thread count (see the module docstring)."""

    fingerprint: DeviceFingerprint
    matmul: Rate  # FLOP/s
    conv: Rate  # FLOP/s
    copy: Rate  # byte/s
    sizes: PeakSizes
    repeats: int
    measured_at: str = ""
    cached: bool = False

    @property
    def compute(self) -> Rate:
        """The compute kernel that set the ceiling (the faster of matmul and conv)."""
        return max((self.matmul, self.conv), key=lambda rate: rate.best)

    @property
    def ceiling(self) -> Ceiling:
        return Ceiling(self.compute.best, self.copy.best)

    def lines(self) -> list[str]:
        """Two lines with units, saying the figures are measured and how."""
        fp = self.fingerprint
        where = f"{fp.device} ({fp.device_model}), {fp.dtype}, threads: {fp.threads}"
        cached = f", cached from {self.measured_at} UTC" if self.cached else f", {self.measured_at} UTC"
        return [
            f"peak compute (measured, {where}{cached}): {self.compute.line(1e9, 'GFLOP/s')}; "
            f"the other kernel: {min((self.matmul, self.conv), key=lambda r: r.best).line(1e9, 'GFLOP/s')}",
            f"peak memory bandwidth (measured): {self.copy.line(1e9, 'GB/s')}; "
            f"ridge at {self.ceiling.ridge:.1f} FLOP/byte",
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": PEAKS_KIND,
            "version": PEAKS_VERSION,
            "fingerprint": self.fingerprint.to_dict(),
            "peak_flops_per_s": self.ceiling.flops_per_s,
            "peak_bytes_per_s": self.ceiling.bytes_per_s,
            "ridge_flop_per_byte": self.ceiling.ridge,
            "matmul": self.matmul.to_dict(),
            "conv": self.conv.to_dict(),
            "copy": self.copy.to_dict(),
            "sizes": dataclasses.asdict(self.sizes),
            "repeats": self.repeats,
            "measured_at": self.measured_at,
            "cached": self.cached,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DevicePeaks:
        return cls(
            fingerprint=DeviceFingerprint.from_dict(data["fingerprint"]),
            matmul=Rate.from_dict(data["matmul"]),
            conv=Rate.from_dict(data["conv"]),
            copy=Rate.from_dict(data["copy"]),
            sizes=PeakSizes(**data["sizes"]),
            repeats=int(data["repeats"]),
            measured_at=str(data.get("measured_at", "")),
        )


def window_rates(
    kernel: Callable[[], None],
    work: float,
    repeats: int,
    sync: Callable[[], None],
    min_window_s: float,
    warmup_s: float = 0.0,
    timer: Timer = time.perf_counter,
) -> tuple[float, ...]:
    """``work`` (FLOPs or bytes per call of ``kernel``) per second in each of ``repeats`` windows of at
    least ``min_window_s``, after a warm-up of at least ``warmup_s`` (one call at the least)."""
    start = timer()
    while True:  # warm-up: allocations, caches, clocks
        kernel()
        sync()
        if timer() - start >= warmup_s:
            break
    start = timer()
    kernel()
    sync()
    once = timer() - start
    calls = max(1, math.ceil(min_window_s / once)) if once > 0 else 1
    rates = []
    for _ in range(repeats):
        sync()
        start = timer()
        for _ in range(calls):
            kernel()
        sync()
        elapsed = timer() - start
        if not elapsed > 0:
            raise RuntimeError(f"the timer measured {elapsed!r} s for {calls} kernel call(s); it cannot time them")
        rates.append(work * calls / elapsed)
    return tuple(rates)


def _kernels(device: str, dtype: torch.dtype, sizes: PeakSizes) -> dict[str, tuple[str, Callable[[], None], float]]:
    """name -> (description, kernel, work per call) of the three peak kernels, on ``device``."""
    n = sizes.matmul_n
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    out = torch.empty(n, n, device=device, dtype=dtype)
    batch, channels, side = sizes.conv_batch, sizes.conv_channels, sizes.conv_size
    x = torch.randn(batch, channels, side, side, device=device).to(dtype)
    weight = torch.randn(channels, channels, 3, 3, device=device).to(dtype)
    elements = sizes.copy_mib * 2**20 // (torch.finfo(dtype).bits // 8)
    source = torch.ones(elements, device=device, dtype=dtype)
    target = torch.empty_like(source)
    name = str(dtype).removeprefix("torch.")
    return {
        "matmul": (f"matmul {n}x{n} by {n}x{n}, {name}", lambda: torch.matmul(a, b, out=out), 2.0 * n**3),
        "conv": (
            f"3x3 conv {channels}->{channels}, {side}x{side}, B={batch}, {name}",
            lambda: F.conv2d(x, weight, padding=1),
            2.0 * batch * channels * channels * 9 * side * side,
        ),
        "copy": (f"copy of {sizes.copy_mib} MiB, read + write", lambda: target.copy_(source), 2.0 * source.nbytes),
    }


def measure_peaks(
    device: str,
    dtype: str = "float32",
    repeats: int = REPEATS,
    sizes: PeakSizes | None = None,
    min_window_s: float | None = None,
    timer: Timer = time.perf_counter,
) -> DevicePeaks:
    """Measure the peaks of ``device`` (``cpu`` or ``cuda:N``) at ``dtype`` and torch's current thread
    count (see the module docstring); ``timer`` is injectable so that a test can fake the clock."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    sizes = sizes or (GPU_SIZES if kind == "cuda" else CPU_SIZES)
    window = WINDOW_S[kind] if min_window_s is None else min_window_s
    rates = {}
    for name, (description, kernel, work) in _kernels(device, DTYPES[dtype], sizes).items():
        with torch.no_grad():
            samples = window_rates(kernel, work, repeats, lambda: synchronize(device), window, WARMUP_S[kind], timer)
        rates[name] = Rate(description, "byte/s" if name == "copy" else "FLOP/s", samples)
    return DevicePeaks(
        peaks_fingerprint(device, dtype), rates["matmul"], rates["conv"], rates["copy"], sizes, repeats, utc_minute()
    )


def peaks_fingerprint(device: str, dtype: str) -> DeviceFingerprint:
    """What the peaks depend on: the device and its model, software, dtype and the current thread
    count (not the layout or implementation of a network, nor the energy meter)."""
    with create_meter("estimate", device=device) as meter:
        return dataclasses.replace(device_fingerprint(device, dtype, "nchw", meter), meter=None)


def peaks_path(fingerprint: DeviceFingerprint, cache_dir: str | Path | None = None) -> Path:
    """``<profiles cache>/device-profiles/<identity digest>-peaks.json``, beside the device profile."""
    return ProfileCache(cache_dir).directory / "device-profiles" / f"{fingerprint.identity_digest()}-peaks.json"


def _load(path: Path, fingerprint: DeviceFingerprint, sizes: PeakSizes, repeats: int) -> DevicePeaks | None:
    try:
        peaks = DevicePeaks.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    same = peaks.fingerprint.identity_digest() == fingerprint.identity_digest()
    return (
        dataclasses.replace(peaks, cached=True) if same and peaks.sizes == sizes and peaks.repeats >= repeats else None
    )


def _store(path: Path, peaks: DevicePeaks) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(peaks.to_dict() | {"cached": False}, stream, indent=1)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def device_peaks(
    config: ProfileConfig,
    repeats: int = REPEATS,
    sizes: PeakSizes | None = None,
    min_window_s: float | None = None,
    timer: Timer = time.perf_counter,
    progress: Callable[[str], None] | None = None,
) -> DevicePeaks:
    """The peaks of ``config``'s device at its dtype and threads: from the cache when it holds them
    (see the module docstring), else measured (holding the device lock when ``config.device_lock``)
    and stored."""
    device = resolve_device(config.device)
    sizes = sizes or (GPU_SIZES if device.startswith("cuda") else CPU_SIZES)
    with thread_limit(config.threads):
        fingerprint = peaks_fingerprint(device, config.dtype)
        path = peaks_path(fingerprint, config.cache_dir)
        if config.use_cache and not config.refresh and (cached := _load(path, fingerprint, sizes, repeats)):
            return cached
        if progress:
            progress(f"measuring the device's peaks (matmul, conv, copy; {repeats} windows each)")
        with contextlib.ExitStack() as held:
            if config.device_lock:
                lock = DeviceLock.host_wide(device, ProfileCache(config.cache_dir).directory)
                held.callback(lock.close)
                held.enter_context(lock.exclusive())
            peaks = measure_peaks(device, config.dtype, repeats, sizes, min_window_s, timer)
    if config.use_cache:
        _store(path, peaks)
    return peaks
