"""The roofline: the fraction arithmetic with known numbers, the device peaks (a fake clock at the
timer boundary, the cache beside the device profile), and ``profile --per-layer --roofline`` /
``analyze --roofline --plot`` on tiny networks."""

from __future__ import annotations

import dataclasses
import itertools
import json

import pytest
import torch

from e2gcsearch import ArchConfig
from e2gcsearch.cli import main
from e2gcsearch.cost import network_cost
from e2gcsearch.profiling import DeviceFingerprint, ProfileConfig
from e2gcsearch.profiling.layer_roofline import (
    LayerShape,
    RooflineReport,
    layer_shapes,
    pass_seconds,
    roofline_row,
)
from e2gcsearch.profiling.peaks import DevicePeaks, PeakSizes, Rate, device_peaks, measure_peaks, peaks_path
from e2gcsearch.profiling.roofline import Ceiling, layer_traffic, pass_roofline

TINY_SIZES = PeakSizes(matmul_n=32, conv_batch=1, conv_channels=8, conv_size=4, copy_mib=1)


class FakeClock:
    """A timer whose successive readings are apart by the given steps, in turn."""

    def __init__(self, *steps: float) -> None:
        self.now, self.steps, self.calls = 0.0, itertools.cycle(steps), 0

    def __call__(self) -> float:
        self.calls += 1
        self.now += next(self.steps)
        return self.now


def known_peaks(flops_per_s: float, bytes_per_s: float) -> DevicePeaks:
    return DevicePeaks(
        fingerprint=DeviceFingerprint(device="cpu", dtype="float32", threads=1),
        matmul=Rate("matmul", "FLOP/s", (flops_per_s, 0.5 * flops_per_s)),
        conv=Rate("conv", "FLOP/s", (0.8 * flops_per_s,)),
        copy=Rate("copy", "byte/s", (bytes_per_s, 0.9 * bytes_per_s)),
        sizes=TINY_SIZES,
        repeats=2,
    )


# --- the arithmetic --------------------------------------------------------------------------------


def test_bound_and_fraction_of_a_pass_at_known_flops_bytes_and_time():
    ceiling = Ceiling(flops_per_s=100e9, bytes_per_s=10e9)  # ridge at 10 FLOP/byte
    memory = pass_roofline(seconds=0.04, flops=0.4e9, bytes=0.2e9, ceiling=ceiling)  # AI 2
    assert memory.limit == "memory" and memory.bound_flops_per_s == pytest.approx(20e9)
    assert memory.achieved_flops_per_s == pytest.approx(10e9) and memory.fraction == pytest.approx(0.5)
    compute = pass_roofline(seconds=0.05, flops=1e9, bytes=0.01e9, ceiling=ceiling)  # AI 100
    assert compute.limit == "compute" and compute.bound_flops_per_s == pytest.approx(100e9)
    assert compute.roofline_s == pytest.approx(0.01) and compute.fraction == pytest.approx(0.2)


def test_a_conv_layer_counts_twice_its_macs_and_its_compulsory_bytes():
    # 8 -> 8 channels, G = 2 (4 groups), 3x3 'same' on 4x4, batch 2, float32
    macs, params, elements = 8 * 4 * 4 * 2 * 9, 8 * 2 * 9, 8 * 4 * 4
    forward, backward = layer_traffic(macs, params, elements, elements, 2, 4)
    assert (forward.flops, forward.bytes) == (2 * 2304 * 2, 4 * (256 + 256 + 144))  # x, y, W
    assert (backward.flops, backward.bytes) == (4 * 2304 * 2, 4 * (256 + 2 * 256 + 2 * 144))  # dy, x, W, dX, dW
    weight_only = layer_traffic(macs, params, elements, elements, 2, 4, input_grad=False)[1]
    assert (weight_only.flops, weight_only.bytes) == (2 * 2304 * 2, 4 * (256 + 256 + 144))  # dW: x, dy read


def test_a_layer_timed_by_a_fake_clock_reaches_the_known_fraction():
    conv = torch.nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)
    shape = LayerShape("conv", "grouped", 2, 4, 3, 2304, 144, 128, 128, (2, 8, 4, 4), True)
    clock = FakeClock(0.001, 0.02, 0.05)  # 1 ms between steps, forward 20 ms, backward 50 ms
    seconds = pass_seconds(conv, shape, "nchw", "train", "cpu", torch.float32, steps=3, timer=clock)
    assert seconds == pytest.approx((0.02, 0.05)) and clock.calls == 3 * 4  # one untimed step + 3
    compute_bound = roofline_row(shape, "nchw", "alone", seconds, 2, known_peaks(1e6, 1e6))  # ridge at 1
    # forward: 9216 FLOPs at AI 3.51 -> bound 1 MFLOP/s -> 9.216 ms of 20 ms; backward 18.432 of 50 ms
    assert compute_bound.forward.limit == "compute" and compute_bound.forward.fraction == pytest.approx(0.4608)
    assert compute_bound.backward.fraction == pytest.approx(0.36864)
    assert compute_bound.roofline_s == pytest.approx(0.009216 + 0.018432)
    assert compute_bound.time_over_roofline == pytest.approx(0.07 / 0.027648)
    memory_bound = roofline_row(shape, "nchw", "alone", seconds, 2, known_peaks(1e7, 1e6))  # ridge at 10
    # forward: 2624 bytes at 1 MB/s -> 2.624 ms of 20 ms; backward 4224 bytes -> 4.224 ms of 50 ms
    assert memory_bound.forward.limit == "memory" and memory_bound.forward.fraction == pytest.approx(0.1312)
    assert memory_bound.backward.fraction == pytest.approx(0.08448)
    row = memory_bound.to_dict()
    assert row["fwd_achieved_gflops"] == pytest.approx(9216 / 0.02 / 1e9) and row["bwd_limit"] == "memory"


def test_in_infer_mode_a_layer_has_a_forward_pass_only():
    conv = torch.nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)
    shape = LayerShape("conv", "grouped", 2, 4, 3, 2304, 144, 128, 128, (2, 8, 4, 4), True)
    seconds = pass_seconds(conv, shape, "channels_last", "infer", "cpu", torch.float32, 2, FakeClock(0.001, 0.02, 0.0))
    assert seconds == pytest.approx((0.02, None))
    row = roofline_row(shape, "channels_last", "alone", seconds, 2, known_peaks(1e6, 1e6))
    assert row.backward is None and row.roofline_s == pytest.approx(0.009216)
    assert row.to_dict()["bwd_fraction"] is None and row.to_dict()["fwd_fraction"] == pytest.approx(0.4608)


def test_auto_keeps_nchw_per_layer_unless_channels_last_is_5_percent_faster():
    shape = LayerShape("conv", "grouped", 2, 4, 3, 2304, 144, 128, 128, (2, 8, 4, 4), True)
    peaks = known_peaks(1e6, 1e6)

    def alone(name: str, impl: str, seconds: float):
        return roofline_row(dataclasses.replace(shape, name=name), impl, "alone", (seconds, None), 2, peaks)

    rows = [alone("a", "nchw", 1.0), alone("a", "channels_last", 0.97), alone("b", "nchw", 1.0)]
    rows += [alone("b", "channels_last", 0.5)]
    report = RooflineReport(peaks, 2, "infer", rows)
    assert [(row.layer, row.impl) for row in report.chosen("auto")] == [("a", "nchw"), ("b", "channels_last")]
    assert [row.layer for row in report.chosen("channels_last")] == ["a", "b"]


def test_layer_shapes_follow_the_network_and_its_counts():
    arch = ArchConfig("mobilenet_v1", group_size=4, width=0.25, num_classes=10)
    shapes = layer_shapes(arch, 3, 32)
    costs = network_cost(arch, 32).layers
    assert [s.name for s in shapes] == [c.name for c in costs] and [s.macs for s in shapes] == [c.macs for c in costs]
    assert not shapes[0].input_grad and all(s.input_grad for s in shapes[1:])  # the image needs no gradient
    assert all(s.input_shape[0] == 3 for s in shapes) and shapes[-1].kind == "linear"


# --- the peaks -------------------------------------------------------------------------------------


def test_peaks_are_work_over_the_timed_windows():
    clock = FakeClock(1.0)  # every window lasts 1 s, so a rate is the work of one call
    peaks = measure_peaks("cpu", "float32", repeats=3, sizes=TINY_SIZES, timer=clock)
    assert peaks.matmul.samples == (2.0 * 32**3,) * 3 and peaks.matmul.unit == "FLOP/s"
    assert peaks.conv.samples == (2.0 * 1 * 8 * 8 * 9 * 4 * 4,) * 3
    assert peaks.copy.samples == (2.0 * 2**20,) * 3 and peaks.copy.unit == "byte/s"
    assert peaks.ceiling == Ceiling(2.0 * 32**3, 2.0 * 2**20)  # the matmul beats this conv
    assert "GFLOP/s" in peaks.lines()[0] and "GB/s" in peaks.lines()[1] and "measured" in peaks.lines()[0]


def test_peaks_spread_over_windows_and_the_ceiling_is_the_best():
    rate = Rate("copy", "byte/s", (8e9, 10e9, 9e9))
    assert (rate.best, rate.median, rate.low) == (10e9, 9e9, 8e9)
    assert "10.0 GB/s" in rate.line(1e9, "GB/s") and "8.0-10.0 over 3 windows" in rate.line(1e9, "GB/s")


def test_the_peaks_are_cached_beside_the_device_profile_and_keyed_by_dtype_and_threads(tmp_path):
    config = ProfileConfig(device="cpu", threads=1, cache_dir=str(tmp_path / "profiles"), device_lock=False)
    first = device_peaks(config, repeats=2, sizes=TINY_SIZES, timer=FakeClock(1.0))
    path = peaks_path(first.fingerprint, config.cache_dir)
    assert path.is_file() and path.parent == tmp_path / "profiles" / "device-profiles"
    assert path.name == f"{first.fingerprint.identity_digest()}-peaks.json" and first.fingerprint.threads == 1

    def no_clock() -> float:
        raise AssertionError("a cached peak was measured again")

    again = device_peaks(config, repeats=2, sizes=TINY_SIZES, timer=no_clock)
    assert again.cached and again.ceiling == first.ceiling
    assert device_peaks(config, repeats=1, sizes=TINY_SIZES, timer=no_clock).cached  # fewer repeats: reused
    for other in (
        ProfileConfig(device="cpu", threads=2, cache_dir=config.cache_dir, device_lock=False),
        ProfileConfig(device="cpu", threads=1, dtype="bfloat16", cache_dir=config.cache_dir, device_lock=False),
    ):
        clock = FakeClock(0.5)
        measured = device_peaks(other, repeats=2, sizes=TINY_SIZES, timer=clock)
        assert clock.calls and not measured.cached
        assert peaks_path(measured.fingerprint, other.cache_dir) != path
    assert len(list(path.parent.glob("*-peaks.json"))) == 3
    clock = FakeClock(0.25)
    more = device_peaks(config, repeats=3, sizes=TINY_SIZES, timer=clock)  # more repeats asked: measured
    assert clock.calls and not more.cached and json.loads(path.read_text())["repeats"] == 3


def test_no_cache_measures_afresh_and_writes_nothing(tmp_path):
    config = ProfileConfig(device="cpu", threads=1, cache_dir=str(tmp_path), use_cache=False, device_lock=False)
    clock = FakeClock(1.0)
    assert not device_peaks(config, repeats=1, sizes=TINY_SIZES, timer=clock).cached and clock.calls
    assert not any(tmp_path.rglob("*.json"))


# --- the command line ------------------------------------------------------------------------------

NETWORK = ["mobilenet_v1", "-G", "2", "--width", "0.25", "--classes", "10", "--resolution", "32", "--threads", "1"]


@pytest.fixture
def cached_peaks(tmp_path):
    """The device's peaks in the cache the commands read (float32, 1 thread), measured by a fake clock."""
    config = ProfileConfig(device="cpu", threads=1, cache_dir=str(tmp_path / "profiles"), device_lock=False)
    return device_peaks(config, repeats=5, timer=FakeClock(1.0))


def test_profile_per_layer_roofline_json_and_csv(tmp_path, cached_peaks, capsys):
    profile = ["profile", *NETWORK, "--batch-sizes", "2", "--repeats", "2", "--min-window-s", "0.02"]
    profile += ["--warmup", "1", "--backend", "estimate", "--per-layer", "--roofline", "--cache-dir", str(tmp_path)]
    assert main([*profile, "--format", "json"]) == 0
    roofline = json.loads(capsys.readouterr().out)["roofline"]
    assert roofline["peaks"]["cached"] and roofline["peaks"]["peak_flops_per_s"] == cached_peaks.ceiling.flops_per_s
    assert "compulsory" in roofline["traffic"] and "GFLOP/s" in roofline["units"]
    rows = roofline["rows"]
    assert {(row["timed"], row["impl"]) for row in rows} == {
        ("in network", "nchw"),
        ("alone", "nchw"),
        ("alone", "channels_last"),
    }
    grouped = [row for row in rows if row["kind"] == "grouped"]
    assert grouped and all(
        row["group_size"] == 2 and row["fwd_fraction"] > 0 and row["bwd_fraction"] > 0 for row in grouped
    )
    assert main([*profile, "--format", "csv"]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if "fwd_fraction" in line)
    assert {"fwd_achieved_gflops", "fwd_bound_gflops", "bwd_fraction", "timed", "time_over_roofline"} <= set(
        header.split(",")
    )
    assert main(profile) == 0
    out = capsys.readouterr().out
    assert "fwd % of bound" in out and "peak memory bandwidth (measured)" in out and "time / roofline" in out


def test_analyze_draws_the_roofline_of_e2gc_and_fggc(tmp_path, cached_peaks, capsys):
    png, page = tmp_path / "roofline.png", tmp_path / "roofline.html"
    analyze = ["analyze", *NETWORK, "--batch-sizes", "2", "--roofline", "--cache-dir", str(tmp_path)]
    assert main([*analyze, "--plot", str(png)]) == 0
    out, err = capsys.readouterr()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {png}" in err
    assert "features.12.conv_grouped" in out and "% of bound" in out and "stem" not in out
    both = [*analyze, "--roofline-group-sizes", "8", "--roofline-groups", "4", "--impl", "auto"]
    assert main([*both, "--plot", str(page), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    points = document["points"]
    assert {(p["rule"], p["value"]) for p in points} == {("E2GC", 2), ("E2GC", 8), ("FgGC", 4)}
    assert len(points) == 3 * 13 and all(p["fraction"] > 0 for p in points)
    text = page.read_text()
    assert "<svg" in text and "GFLOP/s" in text and "compulsory" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["profile", *NETWORK, "--roofline"], "add --per-layer"),
        (["analyze", *NETWORK, "--roofline", "--plot", "roofline.gif"], "ending in .png or .html"),
        (["analyze", *NETWORK, "--roofline-groups", "4"], "add --roofline"),
        (["analyze", *NETWORK, "--roofline", "--impl", "compile"], "use --impl nchw, channels_last or auto"),
    ],
)
def test_bad_roofline_input_is_one_line_and_status_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
