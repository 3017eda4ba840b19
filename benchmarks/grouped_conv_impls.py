"""Grouped-conv implementations side by side in one run: does the best group size depend on the kernel?

(a) One layer: a 3x3 grouped conv, 512 channels, 14x14, batch 16 (MobileNet-V1's 14x14 stage), for
    G in {1, 2, 4, 8, 16, 32}: forward + backward time of every implementation divided by NCHW's, and
    what ``--impl auto`` chooses (its calibration, as the profiler runs it). ``bmm`` is an
    implementation of our own (unfold + one batched matmul per group, weights packed per group),
    checked against ``F.conv2d`` to 1e-4 before it is timed; it is only a candidate if it wins.
(b) The network: MobileNet-V1 width 1.0 at 112 px, B = 16, EPF@16 (the profiler's protocol) for every
    G under ``--impl nchw`` and under ``--impl auto``, and the group size each one ranks best.
(c) The layer of (a) against the device's roofline: the device's peaks (dense matmul / conv FLOP/s
    and copy bandwidth, measured here at one thread), and for every G the time of the implementation
    ``auto`` chose (and of nchw) divided by the layer's roofline time, forward + backward (FLOPs and
    compulsory bytes counted as ``e2gcsearch.profiling.roofline`` says). Reported, not a target yet.

Targets: auto / nchw time >= 2.0x faster at G = 2 (the layer); auto never more than 3 % slower
than nchw for any G (the network).

Run:
    python benchmarks/grouped_conv_impls.py                 # one thread, estimate backend
    python benchmarks/grouped_conv_impls.py --compile       # also torch.compile (30-60 s per G)
    python benchmarks/grouped_conv_impls.py --quick         # tiny sizes, to check the script runs
    python benchmarks/grouped_conv_impls.py --skip-network  # (a) and (c) only: the layer, ~1 min
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from e2gcsearch import ArchConfig
from e2gcsearch.profiling import ProfileConfig, profile_model
from e2gcsearch.profiling.implementations import AUTO_CANDIDATES, calibrate
from e2gcsearch.profiling.peaks import PeakSizes, measure_peaks
from e2gcsearch.profiling.roofline import Ceiling, layer_traffic
from e2gcsearch.train.layout import memory_format

GROUP_SIZES = (1, 2, 4, 8, 16, 32)


def bmm_conv(x: torch.Tensor, weight: torch.Tensor, groups: int) -> torch.Tensor:
    """3x3 stride-1 'same' grouped conv as unfold + a batched matmul over the groups.

    x (B, C, H, W), weight (C_out, C/groups, 3, 3) -> (B, C_out, H, W)."""
    batch, channels, height, width = x.shape
    group_size = channels // groups
    cols = F.unfold(x, 3, padding=1).view(batch, groups, group_size * 9, height * width)  # (B, g, G*9, HW)
    packed = weight.view(groups, -1, group_size * 9)  # (g, C_out/g, G*9)
    out = torch.matmul(packed.unsqueeze(0), cols)  # (B, g, C_out/g, HW)
    return out.reshape(batch, -1, height, width)


def check_bmm(channels: int, group_size: int) -> None:
    """The own implementation equals F.conv2d, forward and backward, to 1e-4."""
    groups = channels // group_size
    x = torch.randn(2, channels, 6, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(channels, group_size, 3, 3, dtype=torch.float64, requires_grad=True)
    ours, theirs = bmm_conv(x, w, groups), F.conv2d(x, w, padding=1, groups=groups)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    grads = torch.autograd.grad(ours.sum(), (x, w)), torch.autograd.grad(theirs.sum(), (x, w))
    for mine, reference in zip(*grads):
        torch.testing.assert_close(mine, reference, rtol=1e-4, atol=1e-4)


def step_of(conv: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        conv(x).sum().backward()

    return step


def seconds(step: Callable[[], None], repeats: int) -> float:
    """Median of ``repeats`` timed steps after one untimed one."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def layer_steps(
    channels: int, size: int, batch: int, group_size: int, with_compile: bool
) -> dict[str, Callable[[], None]]:
    groups = channels // group_size
    steps = {}
    for impl in ("nchw", "channels_last"):
        conv = torch.nn.Conv2d(channels, channels, 3, padding=1, groups=groups, bias=False)
        conv = conv.to(memory_format=memory_format(impl))
        x = torch.randn(batch, channels, size, size).contiguous(memory_format=memory_format(impl))
        steps[impl] = step_of(conv, x.requires_grad_(True))
    weight = torch.randn(channels, group_size, 3, 3, requires_grad=True)
    steps["bmm (own)"] = step_of(
        lambda x: bmm_conv(x, weight, groups), torch.randn(batch, channels, size, size, requires_grad=True)
    )
    if with_compile:
        conv = torch.compile(
            torch.nn.Conv2d(channels, channels, 3, padding=1, groups=groups, bias=False), dynamic=False
        )
        steps["compile"] = step_of(conv, torch.randn(batch, channels, size, size, requires_grad=True))
    return steps


def layer_shape(quick: bool) -> tuple[int, int, int]:
    """(channels, side, batch) of the layer of (a) and (c)."""
    return (64, 7, 4) if quick else (512, 14, 16)


def layer_table(args: argparse.Namespace) -> dict[int, tuple[str, dict[str, float]]]:
    """Print (a); return per G the implementation auto chose and every implementation's seconds."""
    channels, size, batch = layer_shape(args.quick)
    print(
        f"(a) 3x3 grouped conv, {channels} channels, {size}x{size}, B={batch}, forward + backward; "
        "time / nchw (lower is faster)"
    )
    names = ["channels_last", "bmm (own)"] + (["compile"] if args.compile else [])
    print(f"{'G':>3} {'nchw ms':>8} " + " ".join(f"{n:>14}" for n in names) + f" {'auto chose':>14} {'nchw/auto':>9}")
    measured = {}
    for group_size in GROUP_SIZES:
        if channels % group_size:
            continue
        check_bmm(16, min(group_size, 16))
        steps = layer_steps(channels, size, batch, group_size, args.compile)
        if "compile" in steps:
            start = time.perf_counter()
            steps["compile"]()
            compile_s = time.perf_counter() - start
        times = {name: seconds(step, args.layer_repeats) for name, step in steps.items()}
        choice = calibrate(AUTO_CANDIDATES, steps.__getitem__, lambda: None)
        ratios = " ".join(f"{times[n] / times['nchw']:>14.2f}" for n in names)
        speedup = times["nchw"] / times[choice.chosen]
        print(
            f"{group_size:>3} {1000 * times['nchw']:>8.2f} {ratios} {choice.chosen:>14} {speedup:>9.2f}"
            + (f"   (compile took {compile_s:.1f} s)" if "compile" in steps else "")
        )
        measured[group_size] = (choice.chosen, times)
    return measured


def roofline_seconds(ceiling: Ceiling, channels: int, size: int, batch: int, group_size: int) -> tuple[float, str]:
    """The layer's roofline time, forward + backward (dX and dW), float32, and what bounds its forward."""
    elements = channels * size * size  # per sample, input = output (3x3, stride 1, 'same')
    forward, backward = layer_traffic(
        elements * group_size * 9, channels * group_size * 9, elements, elements, batch, 4, input_grad=True
    )
    limit = "memory" if forward.ai < ceiling.ridge else "compute"
    return ceiling.seconds(forward.flops, forward.bytes) + ceiling.seconds(backward.flops, backward.bytes), limit


def roofline_table(args: argparse.Namespace, measured: dict[int, tuple[str, dict[str, float]]]) -> None:
    """(c): the peaks, then per G the chosen implementation's time / the layer's roofline time."""
    sizes = PeakSizes(128, 2, 32, 8, 8) if args.quick else None
    peaks = measure_peaks("cpu", "float32", repeats=2 if args.quick else 5, sizes=sizes)
    channels, size, batch = layer_shape(args.quick)
    print("\n(c) the layer of (a) against this CPU's roofline (1 thread, float32; peaks measured now):")
    for line in peaks.lines():
        print("  " + line)
    print(
        "  time measured (forward + backward, median, as in (a)); roofline time = max(FLOPs / peak, bytes / "
        "bandwidth) per pass, FLOPs = 2 x MACs (backward 4 x), bytes = compulsory traffic, counted"
    )
    print(
        f"{'G':>3} {'roofline ms':>11} {'fwd limit':>9} {'auto chose':>14} {'chosen ms':>9} {'chosen/roofline':>15} {'nchw/roofline':>13}"
    )
    for group_size, (chosen, times) in measured.items():
        bound_s, limit = roofline_seconds(peaks.ceiling, channels, size, batch, group_size)
        print(
            f"{group_size:>3} {1000 * bound_s:>11.3f} {limit:>9} {chosen:>14} {1000 * times[chosen]:>9.2f} "
            f"{times[chosen] / bound_s:>15.1f} {times['nchw'] / bound_s:>13.1f}",
            flush=True,
        )


def network_table(args: argparse.Namespace) -> None:
    width, resolution, batch = (0.25, 32, 4) if args.quick else (1.0, 112, 16)
    print(
        f"\n(b) MobileNet-V1 width {width:g} at {resolution} px, EPF@{batch} (mJ/frame, estimate backend), "
        "train step; auto measured with the implementation it chose"
    )
    print(f"{'G':>3} {'nchw':>9} {'auto':>9} {'auto/nchw':>9}  auto chose (reason)")
    best: dict[str, tuple[float, int]] = {}
    with tempfile.TemporaryDirectory() as cache:  # auto's choice of nchw reuses nchw's measurement
        for group_size in GROUP_SIZES:
            arch = ArchConfig("mobilenet_v1", group_size=group_size, width=width, num_classes=1000)
            epf = {}
            for impl in ("nchw", "auto"):
                config = ProfileConfig(
                    batch_sizes=(batch,),
                    resolution=resolution,
                    backend="estimate",
                    device="cpu",
                    repeats=args.repeats,
                    warmup=2,
                    threads=1,
                    impl=impl,
                    cache_dir=cache,
                )
                result = profile_model(arch, config)
                epf[impl] = result.epf_mj(batch)
                best[impl] = min(best.get(impl, (float("inf"), 0)), (epf[impl], group_size))
                chosen = result.batches[batch]
            reason = chosen.impl_choice["reason"] if chosen.impl_choice else ""
            print(
                f"{group_size:>3} {epf['nchw']:>9.1f} {epf['auto']:>9.1f} {epf['auto'] / epf['nchw']:>9.3f}  "
                f"{chosen.impl} ({reason})",
                flush=True,
            )
    print(
        f"optimum G: nchw G={best['nchw'][1]} ({best['nchw'][0]:.1f} mJ/frame), "
        f"auto G={best['auto'][1]} ({best['auto'][0]:.1f} mJ/frame) -> "
        + ("the optimum moves" if best["nchw"][1] != best["auto"][1] else "the optimum stays")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile in (a) (slow to compile)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that the script runs")
    parser.add_argument("--layer-repeats", type=int, default=7, help="timed steps per implementation in (a)")
    parser.add_argument("--repeats", type=int, default=3, help="measured windows per network in (b)")
    parser.add_argument("--skip-network", action="store_true", help="only (a) and (c)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    one, five, _ = os.getloadavg()
    print(f"torch {torch.__version__}, 1 thread, load average {one:.2f} {five:.2f}")
    measured = layer_table(args)
    roofline_table(args, measured)
    if not args.skip_network:
        network_table(args)
    one, five, _ = os.getloadavg()
    print(f"load average after: {one:.2f} {five:.2f}")


if __name__ == "__main__":
    main()
