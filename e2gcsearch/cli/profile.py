"""``e2gcsearch profile``: energy per frame (EPF), latency and CV of one network per batch size."""

from __future__ import annotations

import argparse

import pandas as pd

from ..errors import ConfigError
from ..models import check_resolution
from ..profiling import ProfileResult, profile_model
from ..profiling.attribution import Attribution, attribute_profile
from ..profiling.layer_roofline import RooflineReport, attribution_roofline
from ..profiling.peaks import device_peaks
from ..profiling.probe import step_timer
from ..profiling.protocol import load_text
from ..report.roofline import roofline_text
from ..report.tables import fixed, render, to_json
from ..train import choose_threads
from ._common import HelpFormatter, emit, note
from .configs import arch_config_from, profile_config
from .options import MEASUREMENT, MODEL, OUTPUT, add_option, add_options

EXAMPLES = """\
examples:
  e2gcsearch profile mobilenet_v1 --group-size 4 --width 0.25 --resolution 64
  e2gcsearch profile mobilenet_v1 -G 1 --resolution 112 --batch-sizes 16 --format csv
  e2gcsearch profile mobilenet_v1 -G 1 --resolution 112 --threads 0   # all cores (torch's default)
  e2gcsearch profile resnext50 --groups 32 --device cuda --backend nvml --format json
  E2GCSEARCH_CPU_POWER_W=35 e2gcsearch profile mobilenet_v1 -G 8 --width 0.5 --resolution 64
  e2gcsearch profile mobilenet_v1 -G 2 --resolution 112 --batch-sizes 16 --impl auto --per-layer
  e2gcsearch profile mobilenet_v1 -G 4 --resolution 112 --mode infer --impl channels_last --format json
  e2gcsearch profile mobilenet_v1 -G 2 --resolution 112 --batch-sizes 16 --per-layer --roofline

EPF = energy of one forward + backward pass of a batch / batch size, in mJ per frame (train mode,
no optimizer step). Backends (auto tries them in this order): nvml (NVIDIA energy counter or sampled
power), rapl (Linux powercap, CPU package + DRAM), estimate (measured time x a TDP power model:
7.5 W per busy core on a CPU; override with --cpu-power-w or E2GCSEARCH_CPU_POWER_W). Estimates are
labelled "estimate" everywhere. --impl picks how the network runs (nchw, channels_last, compile, or
auto: the faster of nchw and channels_last, timed per batch size; the choice and every candidate's
ms/step are printed and recorded); --mode infer measures a forward pass in eval mode instead of the
training step. --per-layer then times every layer at the largest batch size and apportions the
window's energy to the layers by their share of the time (an attribution, not a per-layer
measurement), and names cliffs: grouped convs at >= 3x the median time per MAC; --roofline adds each
layer's achieved FLOP/s against the device's measured peaks (docs: roofline.md). Defaults: windows of at least 5 s on a GPU and 0.25 s on a CPU;
--threads auto (the faster of 1 thread and every core, timed on the measured step; --threads 1 gives
figures comparable across runs on a shared CPU). Measurements are cached in <cache home>/profiles: --cache-dir, else $E2GCSEARCH_CACHE_DIR,
else ~/.cache/e2gcsearch; --no-cache measures afresh.
"""

FORMATTERS = {
    "epf_mj": fixed(3),
    "epf_std_mj": fixed(3),
    "cv": lambda v: fixed(1)(None if v is None else 100 * v),
    "latency_ms": fixed(2),
    "throughput_ips": fixed(1),
    "idle_power_w": fixed(2),
    "epf_idle_subtracted_mj": fixed(3),
}
HUMAN_COLUMNS = [
    "batch_size",
    "status",
    "epf_mj",
    "epf_std_mj",
    "cv",
    "latency_ms",
    "throughput_ips",
    "idle_power_w",
    "epf_idle_subtracted_mj",
    "steps",
    "cached",
]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="EPF (mJ/frame), latency and CV of one network per batch size, naming the backend",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    groups = add_options(parser, MODEL, MEASUREMENT, OUTPUT, defaults={"threads": "auto"})
    add_option(groups["energy measurement"], "per_layer")
    add_option(groups["energy measurement"], "roofline")
    parser.set_defaults(func=run)


def backend_lines(result: ProfileResult) -> list[str]:
    """``backend: …`` (saying "estimate" when it is one) and why other backends were skipped."""
    kind = (
        "an estimate from measured time, not a measured energy"
        if result.is_estimate
        else "measured by a hardware counter"
    )
    lines = [f"backend: {result.backend_label} -- {kind}"]
    if result.backend_notes:
        lines.append("skipped: " + "; ".join(result.backend_notes))
    return lines


def run(args: argparse.Namespace) -> None:
    arch_config = arch_config_from(args)
    if args.roofline and not args.per_layer:
        raise ConfigError(
            "--roofline sets each layer's time against the device's peaks, so it needs the per-layer "
            "times: add --per-layer"
        )
    threads = args.threads
    check_resolution(arch_config.arch, args.resolution, min(args.batch_sizes) if args.mode == "train" else None)
    if threads == "auto":  # time the measured step with 1 thread and with every core, keep the faster
        choice = choose_threads(step_timer(arch_config, profile_config(args, threads=1)))
        note(choice.line())
        threads = choice.threads
    config = profile_config(args, threads=threads)
    result = profile_model(arch_config, config, progress=note)
    layers = attribute_profile(result, config) if args.per_layer else None
    roofline = None
    if args.roofline:
        peaks = device_peaks(config, progress=note)
        roofline = attribution_roofline(layers, result, config, peaks)
    backend_line, *skipped = backend_lines(result)
    for line in ([] if args.format in ("table", "markdown") else [backend_line]) + skipped:
        note(line)
    if args.format == "json":
        extra = ({"per_layer": layers.to_dict()} if layers else {}) | (
            {"roofline": roofline.to_dict()} if roofline else {}
        )
        emit(to_json(result.to_dict() | extra))
        return
    frame = pd.DataFrame(result.rows())
    if args.format == "csv":
        emit(render(frame, "csv"))
        if layers:
            emit(render(pd.DataFrame(layers.rows()), "csv"))
        if roofline:
            emit(roofline_text(roofline, "csv"))
        return
    fp = result.fingerprint
    frame["steps"] = [f"{row.iterations} x {row.repeats}" for row in frame.itertuples()]
    headers = {
        "batch_size": "B",
        "epf_mj": f"EPF mJ/frame ({result.backend})",
        "epf_std_mj": "std mJ/frame",
        "cv": "CV %",
        "latency_ms": "latency ms/batch",
        "throughput_ips": "img/s",
        "idle_power_w": "idle W",
        "epf_idle_subtracted_mj": f"EPF-idle mJ/frame ({result.backend})",
        "steps": "steps x windows",
    }
    emit(
        f"{result.arch_config.label()} at {result.resolution}x{result.resolution} px, {fp.dtype}, {result.mode} mode, "
        f"impl {result.impl}, {fp.device} ({fp.device_model}, threads: {fp.threads}, torch {fp.torch})"
    )
    emit(backend_line)
    emit(render(frame[HUMAN_COLUMNS], args.format, FORMATTERS, headers))
    for batch in result.batches.values():
        if batch.impl_choice:
            emit(f"B={batch.batch_size}: impl auto chose {batch.impl} ({batch.impl_choice['reason']})")
        if batch.compile_s is not None:
            emit(
                f"B={batch.batch_size}: compiled in {batch.compile_s:.1f} s (before the warm-up, outside every window)"
            )
        if batch.under_load:
            emit(
                f"B={batch.batch_size}: EPF measured {load_text(batch)}, so it may read high; "
                "measure again when the machine is quiet (--no-cache)"
            )
    if layers:
        emit(per_layer_text(layers, args.format))
    if roofline:
        emit(roofline_lines(roofline, args.format))


LAYER_FORMATTERS = {
    "group_size": fixed(0),
    "forward_ms": fixed(3),
    "backward_ms": fixed(3),
    "time_share": lambda v: fixed(1)(100 * v),
    "energy_mj_apportioned": fixed(3),
    "ps_per_mac": fixed(1),
}


def per_layer_text(layers: Attribution, fmt: str) -> str:
    """The per-layer table, its rest row and the cliffs, with units and the 'apportioned' label."""
    headers = {
        "group_size": "G",
        "forward_ms": "fwd ms",
        "backward_ms": "bwd ms",
        "time_share": "time %",
        "energy_mj_apportioned": f"energy mJ/batch (apportioned, {layers.backend})",
        "macs": "MACs",
        "ps_per_mac": "ps/MAC",
    }
    lines = [
        f"per layer at B={layers.batch_size}, impl {layers.impl}, {layers.mode} mode: "
        f"{layers.step_ms:.1f} ms per instrumented step ({100 * layers.covered:.1f} % in layers), "
        f"{layers.window_latency_ms:.1f} ms per step in the windows, {layers.window_energy_mj:.2f} mJ per batch "
        f"({layers.backend}) apportioned by time share",
        render(pd.DataFrame(layers.rows()), fmt, LAYER_FORMATTERS, headers),
    ]
    lines += [cliff.line() for cliff in layers.cliffs] or ["no cliff: no grouped conv at >= 3x the median time per MAC"]
    if layers.layout_plan is not None:
        lines.append(layers.layout_plan.line())
    return "\n".join(lines)


def roofline_lines(roofline: RooflineReport, fmt: str) -> str:
    """The roofline table, then per implementation timed alone the median time over roofline time."""
    lines = [roofline_text(roofline, fmt)]
    for impl in dict.fromkeys(row.impl for row in roofline.rows if row.timed == "alone"):
        ratios = sorted(row.time_over_roofline for row in roofline.chosen(impl))
        lines.append(
            f"{impl}, layers alone: median time / roofline time {ratios[len(ratios) // 2]:.1f}, "
            f"range {ratios[0]:.1f}-{ratios[-1]:.1f} over {len(ratios)} layers"
        )
    return "\n".join(lines)
