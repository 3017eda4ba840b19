"""Foreign load: how busy the device was, over one measurement window, with work that was not ours.

An energy window charges everything the device did to the measured network (NVML reads the whole
board, RAPL the whole package), and the estimate's clock slows when other processes share the
cores. The device lock keeps other e2gcsearch processes out, but not a colleague's training or a
compile job. So every window also records the load that was not its own:

* **CPU** (:class:`ProcLoad`): the host's busy time from the kernel's counters (``/proc/stat``:
  user + nice + system + irq + softirq, in clock ticks, summed over every core) minus this process's
  own CPU time (``/proc/self/stat``: utime + stime, all its threads), divided by the window's
  seconds — the number of cores other processes kept busy. Steal time (other virtual machines) is
  not counted: it is not work of this host's processes.
* **GPU** (:class:`NvmlLoad`): NVML's per-process utilisation samples
  (``nvmlDeviceGetProcessUtilization``) of every other process, in percent of the device's time; where
  the driver has no per-process figures, 0 when no other process has a context on the device and
  unknown when one has (the device's total utilisation would include ours).

A reader that cannot tell (no ``/proc``, as on macOS; no NVML) says ``None``: unknown, never 0.

Example (a fake ``/proc`` under a temporary folder, as the tests do):
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "self").mkdir()
    >>> def write(host_busy, own_busy):
    ...     (root / "stat").write_text(f"cpu  {host_busy} 0 0 1000 0 0 0 0 0 0\\n")
    ...     (root / "self" / "stat").write_text(f"1 (python) R {' '.join(['0'] * 10)} {own_busy} 0 0 0\\n")
    >>> clock = iter([0.0, 1.0])
    >>> reader = ProcLoad(root, ticks_per_s=100, clock=lambda: next(clock))
    >>> write(0, 0); first = reader.sample()
    >>> write(250, 100); second = reader.sample()       # 2.5 busy core-seconds, 1.0 of them ours
    >>> reader.foreign(first, second)
    1.5
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .base import MeterUnavailableError
from .nvml import load_nvml, nvml_handle

# A window is measured again when other processes kept more than this busy. On a CPU, half a core:
# the profiler runs one thread, so half a core of others' work on a small machine can already share
# its core or its memory bandwidth, while the kernel's 10 ms ticks leave about +-0.1 core of noise in
# a 0.25 s window. On a GPU, 10 % of the device's time: NVML samples utilisation coarsely (1/6 s),
# and a tenth of the board's time spent on another process shifts EPF well beyond its window noise.
CPU_THRESHOLD_CORES = 0.5
GPU_THRESHOLD_PERCENT = 10.0
CPU_UNIT, GPU_UNIT = "busy cores", "% GPU"


class LoadReader(Protocol):
    """What measures foreign load: ``sample()`` at both window edges, ``foreign(first, second)`` the
    load between them in ``unit`` (``None``: unknown); a window over ``threshold`` was not ours."""

    unit: str
    threshold: float

    def sample(self) -> Any: ...

    def foreign(self, first: Any, second: Any) -> float | None: ...

    def close(self) -> None: ...


class UnknownLoad:
    """The reader of a device whose foreign load cannot be read here: every window's is unknown."""

    def __init__(self, unit: str, threshold: float, reason: str) -> None:
        self.unit, self.threshold, self.reason = unit, threshold, reason

    def sample(self) -> None:
        return None

    def foreign(self, first: Any, second: Any) -> None:
        return None

    def close(self) -> None:
        pass


class ProcLoad:
    """Other processes' busy cores from the kernel's counters (see the module docstring).

    Args:
        proc_root: where ``stat`` and ``self/stat`` are read (a temporary folder in tests).
        ticks_per_s: the kernel's clock ticks per second (``SC_CLK_TCK``, usually 100).
        clock: seconds, monotonic (the window's length).
    """

    unit, threshold = CPU_UNIT, CPU_THRESHOLD_CORES

    def __init__(
        self,
        proc_root: str | Path = "/proc",
        ticks_per_s: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = Path(proc_root)
        self.ticks_per_s = ticks_per_s or os.sysconf("SC_CLK_TCK")
        self._clock = clock

    def sample(self) -> tuple[float, int, int] | None:
        """(seconds, host busy ticks, own busy ticks), or ``None`` when the counters cannot be read."""
        try:
            host = (self.root / "stat").read_text().splitlines()[0].split()
            own = (self.root / "self" / "stat").read_text()
            own_fields = own[own.rindex(")") + 2 :].split()  # after "pid (comm) ": state is field 3
            user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in host[1:8])
            own_ticks = int(own_fields[11]) + int(own_fields[12])  # utime, stime (fields 14, 15)
        except (OSError, ValueError, IndexError):
            return None
        if host[0] != "cpu":
            return None
        return self._clock(), user + nice + system + irq + softirq, own_ticks

    def foreign(self, first: Any, second: Any) -> float | None:
        if first is None or second is None or second[0] <= first[0]:
            return None
        others = (second[1] - first[1]) - (second[2] - first[2])
        return max(0.0, others / self.ticks_per_s / (second[0] - first[0]))

    def close(self) -> None:
        pass


class NvmlLoad:
    """Other processes' share of the GPU's time from NVML (see the module docstring).

    Args:
        nvml: the initialised ``pynvml`` module (or a stand-in in tests).
        handle: the device's NVML handle.
        own_pids: this process's ids (its id in every pid namespace it can see).
    """

    unit, threshold = GPU_UNIT, GPU_THRESHOLD_PERCENT

    def __init__(self, nvml: Any, handle: Any, own_pids: set[int] | None = None) -> None:
        self._nvml, self._handle = nvml, handle
        self.own_pids = own_pids if own_pids is not None else own_process_ids()

    @classmethod
    def open(cls, device_index: int, nvml_module: Any = None) -> NvmlLoad:
        """The reader of torch's ``cuda:device_index`` (raises MeterUnavailableError without NVML)."""
        from ..devices import cuda_uuid  # noqa: PLC0415 - torch is imported only where a GPU is read

        nvml = load_nvml(nvml_module)
        try:
            return cls(nvml, nvml_handle(nvml, device_index, os.environ, cuda_uuid(device_index)))
        except (MeterUnavailableError, nvml.NVMLError) as exc:
            nvml.nvmlShutdown()
            raise MeterUnavailableError("nvml", getattr(exc, "reason", str(exc))) from None

    def sample(self) -> int:
        return int(time.time() * 1e6)  # NVML stamps its samples in microseconds since the epoch

    def foreign(self, first: Any, second: Any) -> float | None:
        nvml = self._nvml
        try:
            samples = nvml.nvmlDeviceGetProcessUtilization(self._handle, first)
        except nvml.NVMLError as exc:
            if getattr(exc, "value", None) == getattr(nvml, "NVML_ERROR_NOT_FOUND", object()):
                return 0.0  # no process used the device since the window began
            return self._without_samples()
        samples = [s for s in samples if s.timeStamp > first]
        stamps = {s.timeStamp for s in samples}
        if not stamps:
            return 0.0
        if not any(s.pid in self.own_pids for s in samples):
            return None  # our own work is not among them: NVML sees another pid namespace (a container)
        return sum(s.smUtil for s in samples if s.pid not in self.own_pids) / len(stamps)

    def _without_samples(self) -> float | None:
        """0 when no other process holds a context on the device, else unknown."""
        try:
            running = self._nvml.nvmlDeviceGetComputeRunningProcesses(self._handle)
        except self._nvml.NVMLError:
            return None
        return None if any(p.pid not in self.own_pids for p in running) else 0.0

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass
            self._nvml = None


def own_process_ids(status: str | Path = "/proc/self/status") -> set[int]:
    """This process's id, and its id in every pid namespace ``/proc`` shows (the ``NSpid`` line)."""
    ids = {os.getpid()}
    try:
        for line in Path(status).read_text().splitlines():
            if line.startswith("NSpid:"):
                ids.update(int(v) for v in line.split()[1:])
    except (OSError, ValueError):
        pass
    return ids


def load_reader(device: str, nvml_module: Any = None, proc_root: str | Path = "/proc") -> LoadReader:
    """The foreign-load reader of ``device`` (``cpu`` or ``cuda:N``); one that says "unknown" where
    the counters cannot be read. Close it when done (NVML is shut down)."""
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        try:
            return NvmlLoad.open(index, nvml_module)
        except MeterUnavailableError as exc:
            return UnknownLoad(GPU_UNIT, GPU_THRESHOLD_PERCENT, exc.reason)
    reader = ProcLoad(proc_root)
    if reader.sample() is None:
        return UnknownLoad(CPU_UNIT, CPU_THRESHOLD_CORES, f"{Path(proc_root) / 'stat'} cannot be read")
    return reader
