"""The ``nvml`` backend: NVIDIA GPU energy through NVML (the ``nvidia-ml-py`` package, ``pynvml``).

Two methods, picked per GPU when the meter is created:

* **energy counter** (Volta and newer): ``nvmlDeviceGetTotalEnergyConsumption`` returns the energy in
  millijoules since the driver was loaded; a window is the difference of two readings. The counter
  is refreshed about every 20-100 ms, so a window must be much longer than that — the profiler's
  default GPU window is 5 s, which bounds the edge error to about 2 %.
* **power sampling** (older GPUs such as the paper's P100/P4000, where the counter is "not
  supported"): a background thread reads the instantaneous board power every ``poll_interval_s``
  (``nvmlDeviceGetFieldValues`` with ``NVML_FI_DEV_POWER_INSTANT``, in milliwatts; falls back to
  ``nvmlDeviceGetPowerUsage``, which is instantaneous on those GPUs) and the window integrates the
  samples with the trapezoid rule, interpolated at both edges.

CUDA is synchronised at both window edges so queued kernels are counted in the window they belong to.

Device mapping: torch's ``cuda:N`` is the N-th GPU of ``CUDA_VISIBLE_DEVICES`` (all GPUs when it is
unset). Entries may be NVML indices or UUIDs (``GPU-…``, prefixes allowed, as CUDA accepts them).
When torch can report the device's UUID, that UUID is used directly, which also removes any doubt
about CUDA's default "fastest first" ordering versus NVML's PCI order.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..devices import cuda_uuid
from .base import Meter, MeterError, MeterUnavailableError

_STALL_WINDOW_S = 1.0  # the counter refreshes every 20-100 ms; silence over 1 s means it is stuck
ADVICE = "use --backend auto (falls back to rapl or an estimate) or --backend estimate"


def load_nvml(module: Any = None) -> Any:
    """The ``pynvml`` module (or the given stand-in), initialised.

    Raises:
        MeterUnavailableError: the package is missing, or NVML cannot start (no driver, …).
    """
    if module is None:
        try:
            import pynvml as module  # noqa: PLC0415 - optional at run time
        except ImportError:
            raise MeterUnavailableError(
                "nvml", "the nvidia-ml-py package (pynvml) is not installed", f"pip install nvidia-ml-py, or {ADVICE}"
            ) from None
    try:
        module.nvmlInit()
    except module.NVMLError as exc:
        raise MeterUnavailableError("nvml", _init_reason(module, exc), ADVICE) from None
    return module


def _init_reason(nvml: Any, exc: Any) -> str:
    code = getattr(exc, "value", None)
    reasons = {
        "NVML_ERROR_LIBRARY_NOT_FOUND": "the NVML library (libnvidia-ml.so) was not found, so there is no NVIDIA driver",
        "NVML_ERROR_DRIVER_NOT_LOADED": "the NVIDIA driver is not loaded (no NVIDIA GPU, or its kernel module failed)",
        "NVML_ERROR_NO_PERMISSION": "NVML refused access to the GPU (permission denied)",
        "NVML_ERROR_LIB_RM_VERSION_MISMATCH": "the NVML library and the NVIDIA kernel driver versions differ (reboot)",
    }
    for name, reason in reasons.items():
        if code is not None and code == getattr(nvml, name, object()):
            return reason
    return f"NVML failed to start ({exc})"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def visible_devices(environ: Mapping[str, str]) -> list[str] | None:
    """Entries of ``CUDA_VISIBLE_DEVICES`` as CUDA reads them, or ``None`` when it is unset.

    CUDA stops at the first entry that is neither an index nor a ``GPU-``/``MIG-`` UUID.
    """
    raw = environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return None
    entries = []
    for part in (p.strip() for p in raw.split(",")):
        if not (part.isdigit() or part.startswith(("GPU-", "MIG-"))):
            break
        entries.append(part)
    return entries


def nvml_handle(nvml: Any, device_index: int, environ: Mapping[str, str], uuid: str | None = None) -> Any:
    """NVML handle of torch's ``cuda:device_index`` (see the module docstring for the mapping)."""
    if uuid is not None:
        try:
            return nvml.nvmlDeviceGetHandleByUUID(uuid)
        except nvml.NVMLError:
            pass  # fall back to CUDA_VISIBLE_DEVICES
    visible = visible_devices(environ)
    count = nvml.nvmlDeviceGetCount()
    if visible is None:
        entry = str(device_index)
    elif device_index >= len(visible):
        raise MeterUnavailableError(
            "nvml",
            f"cuda:{device_index} is not visible: CUDA_VISIBLE_DEVICES="
            f"{environ.get('CUDA_VISIBLE_DEVICES')!r} exposes {len(visible)} GPU(s)",
            ADVICE,
        )
    else:
        entry = visible[device_index]
    if entry.startswith("MIG-"):
        raise MeterUnavailableError(
            "nvml",
            f"cuda:{device_index} is the MIG instance {entry}, which has no energy counter or power reading of its own",
            ADVICE,
        )
    if entry.startswith("GPU-"):
        for index in range(count):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            if _text(nvml.nvmlDeviceGetUUID(handle)).startswith(entry):
                return handle
        raise MeterUnavailableError("nvml", f"no GPU has the UUID {entry} named in CUDA_VISIBLE_DEVICES", ADVICE)
    if int(entry) >= count:
        raise MeterUnavailableError(
            "nvml", f"NVML sees {count} GPU(s), so GPU index {entry} (torch cuda:{device_index}) does not exist", ADVICE
        )
    return nvml.nvmlDeviceGetHandleByIndex(int(entry))


def integrate_power_j(samples: list[tuple[float, float]], start_s: float, end_s: float) -> float:
    """Trapezoid integral of (time s, power W) samples over [start_s, end_s], interpolating edges."""
    if not samples or end_s <= start_s:
        return 0.0

    def power_at(t: float) -> float:
        if t <= samples[0][0]:
            return samples[0][1]
        if t >= samples[-1][0]:
            return samples[-1][1]
        for (t0, p0), (t1, p1) in zip(samples, samples[1:], strict=False):
            if t0 <= t <= t1:
                return p0 if t1 == t0 else p0 + (p1 - p0) * (t - t0) / (t1 - t0)
        return samples[-1][1]

    points = [(start_s, power_at(start_s))] + [s for s in samples if start_s < s[0] < end_s]
    points.append((end_s, power_at(end_s)))
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(points, points[1:], strict=False))


class PowerSampler:
    """Reads power in a background thread while at least one window is open."""

    def __init__(self, read_power_w: Callable[[], float], interval_s: float) -> None:
        self._read_power_w = read_power_w
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None

    def sample(self) -> None:
        """Take one reading now (also used at window edges)."""
        power_w = self._read_power_w()
        with self._lock:
            self._samples.append((time.perf_counter(), power_w))

    def start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            self._samples = []
        self.error = None
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="e2gcsearch-nvml-power", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.sample()
            except Exception as exc:  # noqa: BLE001 - reported by energy_j, in the caller's thread
                self.error = exc
                return

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def energy_j(self, start_s: float, end_s: float) -> float:
        if self.error is not None:
            raise MeterError(f"reading the GPU power failed during the window: {self.error}")
        with self._lock:
            samples = sorted(self._samples)
        return integrate_power_j(samples, start_s, end_s)


class NvmlMeter(Meter):
    """NVIDIA GPU energy through NVML's energy counter or sampled instantaneous power.

    Args:
        device_index: torch's CUDA device index (``cuda:N``).
        nvml_module: a stand-in for ``pynvml`` (tests); the real package by default.
        poll_interval_s: power sampling period when the GPU has no energy counter.
        idle_window_s: length of the idle-power window (longer than the counter's update period).
        environ: where ``CUDA_VISIBLE_DEVICES`` is read.
        synchronize: called at window edges (``torch.cuda.synchronize`` by default through the factory).
    """

    name = "nvml"
    OPTIONS = frozenset({"nvml_module", "poll_interval_s", "idle_window_s", "environ", "synchronize"})

    def __init__(
        self,
        device_index: int = 0,
        nvml_module: Any = None,
        poll_interval_s: float = 0.02,
        idle_window_s: float = 1.0,
        environ: Mapping[str, str] | None = None,
        synchronize: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(synchronize=synchronize, idle_window_s=idle_window_s)
        self.poll_interval_s = poll_interval_s
        self._sampler: PowerSampler | None = None
        self._nvml = load_nvml(nvml_module)
        try:
            environ = os.environ if environ is None else environ
            self._handle = nvml_handle(self._nvml, device_index, environ, cuda_uuid(device_index))
            self.gpu_name = _text(self._nvml.nvmlDeviceGetName(self._handle))
            self.driver_version = _text(self._nvml.nvmlSystemGetDriverVersion())
            if not self._has_counter():
                self._sampler = PowerSampler(self._power_source(), poll_interval_s)
        except BaseException:
            self.close()
            raise

    @property
    def method(self) -> str:
        if self._sampler is None:
            return "energy counter"
        return f"{self._power_method} power sampled every {self.poll_interval_s * 1000:g} ms"

    @property
    def label(self) -> str:
        return f"nvml ({self.method}, {self.gpu_name})"

    def _has_counter(self) -> bool:
        try:
            self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except self._nvml.NVMLError:
            return False  # pre-Volta: NVML_ERROR_NOT_SUPPORTED
        return True

    def _power_source(self) -> Callable[[], float]:
        """A function returning board power in watts: the instant field, else nvmlDeviceGetPowerUsage."""
        nvml, handle = self._nvml, self._handle
        field = getattr(nvml, "NVML_FI_DEV_POWER_INSTANT", None)

        def instant_w() -> float:
            value = nvml.nvmlDeviceGetFieldValues(handle, [field])[0]
            if value.nvmlReturn != nvml.NVML_SUCCESS:
                raise nvml.NVMLError(value.nvmlReturn)
            return value.value.uiVal / 1000.0  # mW -> W

        def usage_w() -> float:
            return nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0  # mW -> W

        for method, read in (("instant", instant_w), ("reported", usage_w)):
            if method == "instant" and field is None:
                continue
            try:
                read()
            except nvml.NVMLError:
                continue
            self._power_method = method
            return read
        raise MeterUnavailableError(
            "nvml", f"{self.gpu_name} reports neither an energy counter nor its power draw", ADVICE
        )

    def _begin(self) -> Any:
        if self._sampler is None:
            return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)  # mJ
        self._sampler.start()
        self._sampler.sample()
        return None

    def _end(self, state: Any, start_s: float, end_s: float) -> float:
        if self._sampler is None:
            end_mj = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            if end_mj < state:
                raise MeterError(
                    f"the NVML energy counter of {self.gpu_name} went backwards "
                    f"({state} -> {end_mj} mJ; was the driver reloaded?)"
                )
            if end_mj == state and end_s - start_s > _STALL_WINDOW_S:
                raise MeterError(
                    f"the NVML energy counter of {self.gpu_name} did not advance in "
                    f"{end_s - start_s:.1f} s; use --backend estimate"
                )
            return (end_mj - state) / 1000.0
        self._sampler.sample()
        return self._sampler.energy_j(start_s, end_s)

    def _idle(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()

    def close(self) -> None:
        sampler = getattr(self, "_sampler", None)
        if sampler is not None:
            sampler.stop()
        if getattr(self, "_nvml", None) is not None:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass
            self._nvml = None
