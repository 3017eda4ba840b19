"""Energy meters: one shared suite every backend passes, then each backend's own behaviour.

``estimate`` runs for real; ``rapl`` reads a fake powercap tree in ``tmp_path``; ``nvml`` talks to a
fake ``pynvml`` module. The fakes stand only where the hardware would be.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import types

import pytest

from e2gcsearch.energy import (
    EstimateMeter,
    MeterError,
    MeterUnavailableError,
    NvmlMeter,
    RaplMeter,
    WindowError,
    available_backends,
    create_meter,
)
from e2gcsearch.energy import rapl as rapl_module
from e2gcsearch.energy.estimate import cpu_tdp_model_w
from e2gcsearch.energy.nvml import integrate_power_j, visible_devices
from e2gcsearch.errors import ConfigError, UnknownNameError, UserError

# --- fake powercap tree --------------------------------------------------------------------------


def write_zone(path, name, energy_uj=0, max_range_uj=262_143_328_850):
    path.mkdir(parents=True, exist_ok=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
    return path


def make_rapl_tree(root, max_range_uj=262_143_328_850):
    """One package with core and dram sub-zones, plus a psys zone that must be ignored."""
    package = write_zone(root / "intel-rapl:0", "package-0", 1_000_000, max_range_uj)
    write_zone(package / "intel-rapl:0:0", "core", 500_000, max_range_uj)
    write_zone(package / "intel-rapl:0:1", "dram", 200_000, max_range_uj)
    write_zone(root / "intel-rapl:1", "psys", 9_000_000, max_range_uj)
    return root


def add_uj(zone_dir, delta_uj):
    energy = zone_dir / "energy_uj"
    max_range = int((zone_dir / "max_energy_range_uj").read_text())
    temporary = zone_dir / ".energy_uj.tmp"  # replace atomically: a reader never sees a half-written file
    temporary.write_text(f"{(int(energy.read_text()) + delta_uj) % max_range}\n")
    os.replace(temporary, energy)


class Ticker:
    """Runs ``tick`` every ``period_s`` in a thread, like a hardware counter that keeps counting."""

    def __init__(self, tick, period_s=0.002):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(tick, period_s), daemon=True)
        self._thread.start()

    def _run(self, tick, period_s):
        while not self._stop.wait(period_s):
            tick()

    def stop(self):
        self._stop.set()
        self._thread.join()


# --- fake pynvml ---------------------------------------------------------------------------------


class FakeNVMLError(Exception):
    def __init__(self, value):
        super().__init__(f"NVML error {value}")
        self.value = value


class FakeNvml(types.SimpleNamespace):
    """The slice of pynvml the meter uses; ``energy_mj`` and ``power_w`` are the hardware state."""

    NVMLError = FakeNVMLError
    NVML_SUCCESS = 0
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_NOT_FOUND = 6
    NVML_ERROR_DRIVER_NOT_LOADED = 9
    NVML_ERROR_LIBRARY_NOT_FOUND = 12
    NVML_FI_DEV_POWER_INSTANT = 186

    def __init__(
        self, uuids=("GPU-aaaa-1111", "GPU-bbbb-2222"), counter=True, instant_field=True, init_error=None, power_w=100.0
    ):
        super().__init__(
            uuids=list(uuids),
            counter=counter,
            instant_field=instant_field,
            init_error=init_error,
            power_w=power_w,
            energy_mj=[0] * len(uuids),
            shutdowns=0,
        )

    def nvmlInit(self):
        if self.init_error is not None:
            raise FakeNVMLError(self.init_error)

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetCount(self):
        return len(self.uuids)

    def nvmlDeviceGetHandleByIndex(self, index):
        return ("gpu", index)

    def nvmlDeviceGetHandleByUUID(self, uuid):
        if uuid not in self.uuids:
            raise FakeNVMLError(self.NVML_ERROR_NOT_FOUND)
        return ("gpu", self.uuids.index(uuid))

    def nvmlDeviceGetUUID(self, handle):
        return self.uuids[handle[1]]

    def nvmlDeviceGetName(self, handle):
        return b"Tesla P100-PCIE-16GB" if not self.counter else b"Tesla V100-SXM2-16GB"

    def nvmlSystemGetDriverVersion(self):
        return "535.104.05"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.counter:
            raise FakeNVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        return self.energy_mj[handle[1]]

    def nvmlDeviceGetFieldValues(self, handle, field_ids):
        assert field_ids == [self.NVML_FI_DEV_POWER_INSTANT]
        status = self.NVML_SUCCESS if self.instant_field else self.NVML_ERROR_NOT_SUPPORTED
        return [types.SimpleNamespace(nvmlReturn=status, value=types.SimpleNamespace(uiVal=int(self.power_w * 1000)))]

    def nvmlDeviceGetPowerUsage(self, handle):
        return int(self.power_w * 1000)


# --- the shared suite ----------------------------------------------------------------------------


def _estimate_case(tmp_path):
    return EstimateMeter(power_w=20.0), None


def _rapl_case(tmp_path):
    root = make_rapl_tree(tmp_path / "powercap")
    package = root / "intel-rapl:0"

    def tick():  # 2 ms of 25 W package + 5 W DRAM
        add_uj(package, 50_000)
        add_uj(package / "intel-rapl:0:1", 10_000)

    return RaplMeter(sysfs_root=root, idle_window_s=0.05), Ticker(tick)


def _nvml_counter_case(tmp_path):
    fake = FakeNvml()

    def tick():  # 2 ms at 150 W
        fake.energy_mj[0] += 300

    return NvmlMeter(0, nvml_module=fake, environ={}, idle_window_s=0.05), Ticker(tick)


def _nvml_polling_case(tmp_path):
    fake = FakeNvml(counter=False)
    return NvmlMeter(0, nvml_module=fake, environ={}, poll_interval_s=0.005, idle_window_s=0.05), None


CASES = {
    "estimate": _estimate_case,
    "rapl": _rapl_case,
    "nvml-counter": _nvml_counter_case,
    "nvml-polling": _nvml_polling_case,
}


@pytest.fixture(params=sorted(CASES))
def meter_case(request, tmp_path):
    """A meter whose device keeps consuming energy, and a function that lets some time pass."""
    meter, ticker = CASES[request.param](tmp_path)
    yield meter, lambda: time.sleep(0.02)
    if ticker is not None:
        ticker.stop()
    meter.close()


def test_window_measures_positive_time_and_energy(meter_case):
    meter, advance = meter_case
    meter.begin_window("a")
    advance()
    first = meter.end_window("a")
    meter.begin_window("a")  # a key can be reused once closed
    advance()
    second = meter.end_window("a")
    for m in (first, second):
        assert m.time_s > 0
        assert m.energy_j > 0
        assert m.power_w == pytest.approx(m.energy_j / m.time_s)


def test_nested_windows_contain_their_inner_windows(meter_case):
    meter, advance = meter_case
    meter.begin_window("outer")
    advance()
    meter.begin_window("inner")
    advance()
    inner = meter.end_window("inner")
    advance()
    outer = meter.end_window("outer")
    assert outer.time_s > inner.time_s > 0
    assert outer.energy_j > inner.energy_j > 0


def test_window_misuse_is_an_error_and_leaves_the_meter_usable(meter_case):
    meter, advance = meter_case
    with pytest.raises(WindowError, match="never begun"):
        meter.end_window("nope")
    meter.begin_window("outer")
    with pytest.raises(WindowError, match="already open"):
        meter.begin_window("outer")
    meter.begin_window("inner")
    with pytest.raises(WindowError, match="must nest"):
        meter.end_window("outer")
    advance()
    assert meter.end_window("inner").energy_j >= 0
    assert meter.end_window("outer").energy_j >= 0
    assert meter.open_windows() == []


def test_meter_names_itself_and_reports_idle_power_or_none(meter_case):
    meter, _ = meter_case
    assert meter.name in ("estimate", "rapl", "nvml")
    assert meter.label.startswith(meter.name)
    assert meter.is_estimate == (meter.name == "estimate")
    idle_w = meter.idle_power_w()
    assert (idle_w is None) == meter.is_estimate
    assert meter.open_windows() == []


# --- estimate ------------------------------------------------------------------------------------


def test_estimate_is_time_times_power():
    meter = EstimateMeter(power_w=15.0)
    meter.begin_window("w")
    time.sleep(0.02)
    m = meter.end_window("w")
    assert m.energy_j == pytest.approx(15.0 * m.time_s)
    assert meter.label == "estimate (time x 15 W, set by the caller)"


def test_estimate_power_model_precedence():
    assert cpu_tdp_model_w(threads=1) == 7.5
    default = EstimateMeter(environ={})
    assert default.label.endswith("W TDP model)") and default.power_w == cpu_tdp_model_w()
    from_env = EstimateMeter(environ={"E2GCSEARCH_CPU_POWER_W": "42"})
    assert from_env.power_w == 42.0 and "E2GCSEARCH_CPU_POWER_W" in from_env.label
    assert EstimateMeter(power_w=9, environ={"E2GCSEARCH_CPU_POWER_W": "42"}).power_w == 9.0
    assert EstimateMeter(device="cuda", environ={}).power_w == 250.0
    with pytest.raises(ConfigError, match="E2GCSEARCH_CPU_POWER_W"):
        EstimateMeter(environ={"E2GCSEARCH_CPU_POWER_W": "lots"})


# --- rapl ----------------------------------------------------------------------------------------


def test_rapl_sums_package_and_dram_only(tmp_path):
    root = make_rapl_tree(tmp_path)
    meter = RaplMeter(sysfs_root=root)
    assert [z.name for z in meter.zones] == ["package-0", "dram"]
    assert meter.label == "rapl (package-0 + dram)"
    meter.begin_window("w")
    add_uj(root / "intel-rapl:0", 2_000_000)
    add_uj(root / "intel-rapl:0" / "intel-rapl:0:1", 500_000)
    add_uj(root / "intel-rapl:0" / "intel-rapl:0:0", 1_500_000)  # core: already inside the package
    add_uj(root / "intel-rapl:1", 7_000_000)  # psys: overlaps the package
    assert meter.end_window("w").energy_j == pytest.approx(2.5)


def test_rapl_handles_counter_wrap_around(tmp_path):
    max_range = 1_000_000
    package = write_zone(tmp_path / "intel-rapl:0", "package-0", 900_000, max_range)
    meter = RaplMeter(sysfs_root=tmp_path)
    meter.begin_window("w")
    add_uj(package, 250_000)  # 900_000 -> 150_000 after wrapping at 1_000_000
    assert (package / "energy_uj").read_text().strip() == "150000"
    assert meter.end_window("w").energy_j == pytest.approx(0.25)


def test_rapl_finds_dram_listed_at_the_class_root(tmp_path):
    write_zone(tmp_path / "intel-rapl:0", "package-0")
    write_zone(tmp_path / "intel-rapl:0:0", "dram")  # flattened layout
    assert [z.name for z in RaplMeter(sysfs_root=tmp_path).zones] == ["package-0", "dram"]


def test_rapl_permission_denied_says_how_to_fix(tmp_path, monkeypatch):
    make_rapl_tree(tmp_path)
    real_read = rapl_module._read_int

    def root_only(path):
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    monkeypatch.setattr(rapl_module, "_read_int", root_only)
    with pytest.raises(MeterUnavailableError, match="permission denied") as info:
        create_meter("rapl", "cpu", sysfs_root=tmp_path)
    assert "Linux 5.10" in str(info.value) and "chmod" in str(info.value)
    assert isinstance(info.value, UserError)


def test_rapl_without_powercap_is_unavailable(tmp_path):
    with pytest.raises(MeterUnavailableError, match="does not exist"):
        RaplMeter(sysfs_root=tmp_path / "missing")
    with pytest.raises(MeterUnavailableError, match="no RAPL package zone"):
        RaplMeter(sysfs_root=tmp_path)


def test_rapl_counter_that_never_moves_is_an_error_not_zero_joules(tmp_path):
    make_rapl_tree(tmp_path)
    meter = RaplMeter(sysfs_root=tmp_path)
    meter.begin_window("w")
    time.sleep(0.08)
    with pytest.raises(MeterError, match="did not advance"):
        meter.end_window("w")


# --- nvml ----------------------------------------------------------------------------------------


def test_nvml_uses_the_energy_counter_when_present():
    fake = FakeNvml()
    meter = create_meter("nvml", "cuda:0", nvml_module=fake, environ={})
    assert meter.label == "nvml (energy counter, Tesla V100-SXM2-16GB)"
    assert meter.driver_version == "535.104.05"
    meter.begin_window("w")
    fake.energy_mj[0] += 12_345
    fake.energy_mj[1] += 99_999  # another GPU
    assert meter.end_window("w").energy_j == pytest.approx(12.345)
    meter.close()
    assert fake.shutdowns == 1


def test_nvml_without_counter_integrates_sampled_power():
    fake = FakeNvml(counter=False, power_w=80.0)
    meter = NvmlMeter(0, nvml_module=fake, environ={}, poll_interval_s=0.005)
    assert "instant power sampled every 5 ms" in meter.label
    meter.begin_window("w")
    time.sleep(0.1)
    m = meter.end_window("w")
    assert m.energy_j == pytest.approx(80.0 * m.time_s, rel=0.02)
    meter.close()


def test_nvml_falls_back_to_power_usage_without_the_instant_field():
    fake = FakeNvml(counter=False, instant_field=False, power_w=50.0)
    meter = NvmlMeter(0, nvml_module=fake, environ={}, poll_interval_s=0.005)
    assert "reported power" in meter.label
    meter.begin_window("w")
    time.sleep(0.03)
    m = meter.end_window("w")
    assert m.energy_j == pytest.approx(50.0 * m.time_s, rel=0.02)
    meter.close()


def test_trapezoid_interpolates_at_the_window_edges():
    samples = [(0.0, 0.0), (1.0, 100.0), (2.0, 100.0)]
    assert integrate_power_j(samples, 0.0, 2.0) == pytest.approx(150.0)
    assert integrate_power_j(samples, 0.5, 1.5) == pytest.approx(12.5 + 50.0 + 25.0)


def test_nvml_not_installed_is_a_clear_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    with pytest.raises(MeterUnavailableError, match="nvidia-ml-py"):
        create_meter("nvml", "cuda")


@pytest.mark.parametrize("code, reason", [(12, "no NVIDIA driver"), (9, "driver is not loaded")])
def test_nvml_without_driver_is_unavailable_and_auto_falls_back(code, reason):
    fake = FakeNvml(init_error=code)
    with pytest.raises(MeterUnavailableError, match=reason):
        create_meter("nvml", "cuda", nvml_module=fake)
    meter = create_meter("auto", "cuda", nvml_module=fake)
    assert meter.name == "estimate" and meter.is_estimate
    assert dict(meter.unavailable)["nvml"].find(reason) >= 0
    assert "rapl" in dict(meter.unavailable)
    rows = available_backends("cuda", nvml_module=fake)
    assert [(name, ok) for name, ok, _ in rows] == [("nvml", False), ("rapl", False), ("estimate", True)]


def test_nvml_on_a_cpu_model_says_so():
    with pytest.raises(MeterUnavailableError, match="runs on the CPU"):
        create_meter("nvml", "cpu", nvml_module=FakeNvml())


def test_nvml_respects_cuda_visible_devices():
    fake = FakeNvml(uuids=("GPU-aaaa-1111", "GPU-bbbb-2222", "GPU-cccc-3333"))
    fake.energy_mj = [0, 0, 0]

    def measured_gpu(environ, index=0):
        meter = NvmlMeter(index, nvml_module=fake, environ=environ)
        meter.begin_window("w")
        for gpu in range(3):
            fake.energy_mj[gpu] += 1000 * (gpu + 1)
        joules = meter.end_window("w").energy_j
        meter.close()
        return int(joules) - 1

    assert measured_gpu({}) == 0
    assert measured_gpu({"CUDA_VISIBLE_DEVICES": "2,0"}) == 2
    assert measured_gpu({"CUDA_VISIBLE_DEVICES": "2,0"}, index=1) == 0
    assert measured_gpu({"CUDA_VISIBLE_DEVICES": "GPU-bbbb"}) == 1  # UUID prefix, as CUDA accepts
    with pytest.raises(MeterUnavailableError, match="not visible"):
        NvmlMeter(1, nvml_module=fake, environ={"CUDA_VISIBLE_DEVICES": "1"})
    with pytest.raises(MeterUnavailableError, match="MIG"):
        NvmlMeter(0, nvml_module=fake, environ={"CUDA_VISIBLE_DEVICES": "MIG-1234"})
    assert visible_devices({"CUDA_VISIBLE_DEVICES": "0,1,-1,2"}) == ["0", "1"]
    assert visible_devices({"CUDA_VISIBLE_DEVICES": ""}) == []


# --- factory -------------------------------------------------------------------------------------


def test_auto_on_this_kind_of_machine_ends_at_a_labelled_estimate(tmp_path):
    fake = FakeNvml(init_error=12)
    meter = create_meter("auto", "cpu", nvml_module=fake, sysfs_root=tmp_path / "none")
    assert meter.name == "estimate" and "estimate" in meter.label
    assert [name for name, _ in meter.unavailable] == ["nvml", "rapl"]


def test_auto_prefers_rapl_over_the_estimate_on_a_cpu(tmp_path):
    make_rapl_tree(tmp_path)
    meter = create_meter("auto", "cpu", nvml_module=FakeNvml(init_error=12), sysfs_root=tmp_path)
    assert meter.name == "rapl" and not meter.is_estimate


def test_bad_names_and_options():
    with pytest.raises(UnknownNameError, match="unknown energy backend 'joulemeter'"):
        create_meter("joulemeter")
    with pytest.raises(ConfigError, match="unknown meter option"):
        create_meter("estimate", watts=3)
    with pytest.raises(ConfigError, match="unknown device"):
        create_meter("estimate", device="tpu")
