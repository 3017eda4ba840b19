"""Measurements that know when the machine was not theirs: every window reads the load of other
processes (the kernel's counters on a CPU, NVML on a GPU), a loaded window is measured again, and a
figure that could only be taken under load is stored and shown as such — never silently as clean.

Fakes stand only at the hardware boundary: a ``/proc`` under ``tmp_path`` and the ``pynvml`` stand-in
of the meter tests; one test loads the real machine with busy processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from test_energy_meters import FakeNvml, FakeNVMLError

from e2gcsearch import ArchConfig
from e2gcsearch.energy.load import (
    CPU_THRESHOLD_CORES,
    GPU_UNIT,
    NvmlLoad,
    ProcLoad,
    UnknownLoad,
    load_reader,
)
from e2gcsearch.profiling import ProfileConfig, profile_model
from e2gcsearch.profiling.measure import LOAD_RETRIES
from e2gcsearch.report.front import render_front
from e2gcsearch.search.trial import epf_figures
from e2gcsearch.store.record import TrialRecord
from e2gcsearch.store.results import under_load_text

NETWORK = ArchConfig("mobilenet_v1", group_size=8, width=0.25, num_classes=10)


def _config(tmp_path: Path, **changes) -> ProfileConfig:
    settings = dict(
        batch_sizes=(2,),
        resolution=32,
        device="cpu",
        backend="estimate",
        repeats=2,
        min_window_s=0.02,
        warmup=1,
        cache_dir=str(tmp_path / "profiles"),
        device_lock=False,
    )
    return ProfileConfig(**(settings | changes))


# --- the CPU reader against a /proc of our own ------------------------------------------------------


class FakeProc:
    """A ``/proc`` whose host and own busy ticks the test sets; one clock second per sample."""

    def __init__(self, root: Path) -> None:
        self.root, self.now = root, 0.0
        (root / "self").mkdir(parents=True)
        self.set(0, 0)

    def set(self, host_busy: int, own_busy: int, steal: int = 300, idle: int = 9000) -> None:
        # /proc/stat: cpu user nice system idle iowait irq softirq steal guest guest_nice
        user, system = host_busy - host_busy // 4, host_busy // 4
        line = f"cpu  {user} 0 {system} {idle} 40 0 0 {steal} 0 0"
        (self.root / "stat").write_text(f"{line}\ncpu0 0 0 0 0 0 0 0 0 0 0\n")
        fields = ["S"] + ["0"] * 10 + [str(own_busy - 3), "3"] + ["0"] * 30  # utime, stime: fields 14, 15
        (self.root / "self" / "stat").write_text(f"4242 (python3 (x)) {' '.join(fields)}\n")

    def clock(self) -> float:
        self.now += 1.0
        return self.now


def test_the_cpu_reader_counts_other_processes_busy_cores(tmp_path):
    proc = FakeProc(tmp_path / "proc")
    reader = ProcLoad(proc.root, ticks_per_s=100, clock=proc.clock)
    first = reader.sample()
    proc.set(host_busy=400, own_busy=100)  # 4 busy core-seconds in 1 s, 1 of them ours
    assert reader.foreign(first, reader.sample()) == pytest.approx(3.0)
    quiet = reader.sample()
    proc.set(host_busy=400, own_busy=100, steal=900, idle=9500)  # only steal (other VMs) and idle moved
    assert reader.foreign(quiet, reader.sample()) == 0.0


def test_where_the_counters_cannot_be_read_the_load_is_unknown_never_zero(tmp_path):
    reader = ProcLoad(tmp_path / "no-proc", ticks_per_s=100)
    assert reader.sample() is None and reader.foreign(None, None) is None
    unknown = load_reader("cpu", proc_root=tmp_path / "no-proc")
    assert isinstance(unknown, UnknownLoad) and unknown.foreign(unknown.sample(), unknown.sample()) is None
    batch = profile_model(NETWORK, _config(tmp_path, use_cache=False), load=unknown).batches[2]
    assert batch.foreign_load is None and batch.under_load is None and batch.foreign_load_unit == "busy cores"


# --- retries and the flag, with a scripted reader ------------------------------------------------


class ScriptedLoad:
    """A reader whose windows carry the loads given, in order (the last one repeats)."""

    unit, threshold = "busy cores", CPU_THRESHOLD_CORES

    def __init__(self, *loads: float) -> None:
        self.loads, self.windows = list(loads), 0

    def sample(self) -> int:
        return self.windows

    def foreign(self, first, second) -> float:
        self.windows += 1
        return self.loads[min(self.windows, len(self.loads)) - 1]

    def close(self) -> None:
        pass


def test_a_loaded_window_is_measured_again_and_the_clean_figure_is_stored(tmp_path):
    reader = ScriptedLoad(1.8, 0.1, 1.2, 0.2)  # windows 1 and 3 are loaded
    batch = profile_model(NETWORK, _config(tmp_path, use_cache=False), load=reader).batches[2]
    assert reader.windows == 4 and batch.repeats == 2 and batch.load_retries == 2
    assert batch.under_load is False and batch.foreign_load == pytest.approx(0.2)


def test_a_figure_that_could_only_be_taken_under_load_is_flagged_in_the_cache_and_the_trial(tmp_path):
    reader = ScriptedLoad(2.5)  # loaded for good
    config = _config(tmp_path)
    batch = profile_model(NETWORK, config, load=reader).batches[2]
    assert reader.windows == 2 + LOAD_RETRIES  # the retry limit, then the windows are kept
    assert batch.under_load is True and batch.foreign_load == pytest.approx(2.5) and batch.repeats == 2
    assert batch.load_retries == LOAD_RETRIES
    again = profile_model(NETWORK, config, load=ScriptedLoad(0.0)).batches[2]
    assert again.cached and again.under_load is True  # a flagged entry is never served as clean

    figures = epf_figures(batch)
    assert figures["under_load"] is True and figures["foreign_load_unit"] == "busy cores"
    stored = TrialRecord.from_trial(
        types.SimpleNamespace(
            number=3,
            state=types.SimpleNamespace(name="COMPLETE"),
            values=(1.0,),
            user_attrs={"arch_config": NETWORK.to_dict(), "epf": {"2": figures}},
        )
    )
    assert list(stored.under_load()) == ["EPF@2"] and under_load_text(stored) == "EPF@2 (2.50 busy cores)"


def test_figures_from_before_the_load_was_recorded_read_as_unflagged():
    old = {"epf_mj": 10.0, "status": "ok", "repeats": 3}
    stored = TrialRecord.from_trial(
        types.SimpleNamespace(
            number=0,
            state=types.SimpleNamespace(name="COMPLETE"),
            values=(1.0,),
            user_attrs={"arch_config": NETWORK.to_dict(), "epf": {"16": old}},
        )
    )
    assert stored.under_load() == {} and under_load_text(stored) == ""


def test_front_marks_a_point_measured_under_load(tmp_path):
    from e2gcsearch.metrics import Metric
    from e2gcsearch.report.front import front_info_from_rows

    rows = [
        {
            "trial": n,
            "arch": "mobilenet_v1",
            "module": "E2GC",
            "value": value,
            "grouping": f"G={value}",
            "width": 0.5,
            "epf@16": epf,
            "params": 1000,
            "macs": 2000,
            "backend": "estimate",
            "resolution": 64,
            "feasible": True,
            "violations": "",
            "baseline": None,
            "under_load": text,
        }
        for n, value, epf, text in ((0, 1, 104.1, "EPF@16 (1.40 busy cores)"), (1, 4, 49.3, ""))
    ]
    front = front_info_from_rows(rows, [Metric.of("epf", 16), Metric.of("params")], "s", {"complete": 2}, True)
    table = render_front(front, "table")
    assert "under load: EPF@16 (1.40 busy cores)" in table
    assert front.frame.set_index("trial").loc[1, "under_load"] == ""


# --- the GPU reader through the pynvml stand-in ---------------------------------------------------


class LoadedNvml(FakeNvml):
    """The pynvml stand-in with per-process utilisation samples (pid, smUtil, timeStamp in µs)."""

    def __init__(self, samples=(), per_process=True, running=()):
        super().__init__()
        self.samples, self.per_process, self.running = list(samples), per_process, list(running)

    def nvmlDeviceGetProcessUtilization(self, handle, last_seen_us):
        if not self.per_process:
            raise FakeNVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        found = [s for s in self.samples if s.timeStamp > last_seen_us]
        if not found:
            raise FakeNVMLError(self.NVML_ERROR_NOT_FOUND)
        return found

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [types.SimpleNamespace(pid=pid, usedGpuMemory=1 << 20) for pid in self.running]


def _sample(pid, util, stamp):
    return types.SimpleNamespace(pid=pid, smUtil=util, memUtil=0, timeStamp=stamp)


def test_the_gpu_reader_counts_other_processes_utilisation():
    ours, other = 100, 200
    nvml = LoadedNvml([_sample(ours, 70, 1_000), _sample(other, 30, 1_000), _sample(ours, 60, 2_000)])
    reader = NvmlLoad(nvml, ("gpu", 0), own_pids={ours})
    assert reader.unit == GPU_UNIT
    assert reader.foreign(500, 3_000) == pytest.approx(15.0)  # 30 % in one of two samples
    assert reader.foreign(2_500, 3_000) == 0.0  # nothing sampled since: NVML_ERROR_NOT_FOUND
    stranger = NvmlLoad(nvml, ("gpu", 0), own_pids={999})  # NVML sees other pids (a container)
    assert stranger.foreign(500, 3_000) is None


def test_without_per_process_figures_the_gpu_load_is_zero_or_unknown():
    alone = NvmlLoad(LoadedNvml(per_process=False, running=[100]), ("gpu", 0), own_pids={100})
    assert alone.foreign(0, 1) == 0.0
    shared = NvmlLoad(LoadedNvml(per_process=False, running=[100, 200]), ("gpu", 0), own_pids={100})
    assert shared.foreign(0, 1) is None  # the device's total would include ours: unknown, never 0


def test_a_gpu_without_nvml_reads_unknown():
    reader = load_reader("cuda:0", nvml_module=FakeNvml(init_error=FakeNvml.NVML_ERROR_LIBRARY_NOT_FOUND))
    assert isinstance(reader, UnknownLoad) and reader.unit == GPU_UNIT and reader.foreign(None, None) is None


# --- the check: a real busy process beside a real measurement ---------------------------------------


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs the kernel's counters in /proc")
def test_a_busy_process_beside_a_measurement_is_never_stored_as_clean(tmp_path):
    """Busy loops on every core (at least two): whatever else the machine runs, the windows see other
    processes' load, so every batch size is measured again or flagged — never silently clean."""
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(2, min(8, os.cpu_count() or 2)))
    ]
    try:
        reader = load_reader("cpu")
        first = reader.sample()
        time.sleep(0.5)
        assert reader.foreign(first, reader.sample()) > CPU_THRESHOLD_CORES  # the real counters see them
        config = _config(tmp_path, batch_sizes=(2, 4), repeats=3, min_window_s=0.1)
        result = profile_model(NETWORK, config)
    finally:
        for process in busy:
            process.kill()
        for process in busy:
            process.wait()
    for batch in result.batches.values():
        assert batch.status == "ok" and batch.foreign_load_unit == "busy cores"
        assert batch.load_retries > 0 or batch.under_load  # retried, or flagged
        assert not (batch.under_load is False and batch.load_retries == 0)
        if batch.under_load:
            assert batch.foreign_load > CPU_THRESHOLD_CORES and batch.load_retries == LOAD_RETRIES
