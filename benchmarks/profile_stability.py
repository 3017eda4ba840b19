"""Profiler stability and overhead, measured side by side in one run.

For a few networks and every batch size it prints the CV of EPF across repeats (targets: <= 5 % at
B = 16 for the CPU estimate, <= 2 % where a real counter exists) and the profiler's own overhead:
time spent outside the measured windows (warm-up, calibration, input synthesis, model build,
meter setup) / time inside them. Nothing is read from or written to the cache.

Run:
    python benchmarks/profile_stability.py                       # default window, 5 repeats
    python benchmarks/profile_stability.py --windows 0.25,1.0    # compare window lengths
    python benchmarks/profile_stability.py --threads 2 --backend estimate

The machine's load average is printed before and after: on a shared CPU other jobs are the main
source of variance, so read the CV next to it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

from e2gcsearch import ArchConfig
from e2gcsearch.profiling import ProfileConfig, ProfileResult, profile_model

CONFIGS: tuple[tuple[ArchConfig, int], ...] = (
    (ArchConfig("mobilenet_v1", group_size=1, width=0.25), 64),
    (ArchConfig("mobilenet_v1", group_size=8, width=0.25), 64),
    (ArchConfig("mobilenet_v1", group_size=4, width=0.5), 64),
    (ArchConfig("resnext50", groups=32, width=0.25), 64),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="auto", help="auto, nvml, rapl or estimate")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch default)")
    parser.add_argument("--batch-sizes", default="1,4,16")
    parser.add_argument("--windows", default="default",
                        help="comma list of minimum window lengths in s; 'default' = the profiler's default")
    return parser.parse_args()


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} logical CPUs"


def run_config(arch: ArchConfig, resolution: int, config: ProfileConfig) -> tuple[list[str], ProfileResult]:
    """Profile one network; one printed line per batch size plus a whole-run overhead line."""
    start = time.perf_counter()
    result = profile_model(arch, config)
    total_s = time.perf_counter() - start
    lines = []
    for batch in result.batches.values():
        if batch.status != "ok":
            lines.append(f"{arch.label():32s} {resolution:4d} {batch.batch_size:3d}  {batch.status}")
            continue
        overhead = (batch.wall_s - batch.measured_s) / batch.measured_s
        lines.append(f"{arch.label():32s} {resolution:4d} {batch.batch_size:3d} {batch.window_s:7.2f} "
                     f"{batch.iterations:6d} {batch.epf_mj:12.3f} {100 * batch.cv:7.2f} {overhead:9.2f}")
    inside_s = sum(b.measured_s for b in result.batches.values())
    lines.append(f"{'':32s} whole profile: {total_s:.2f} s, outside/inside windows = "
                 f"{(total_s - inside_s) / inside_s:.2f}")
    return lines, result


def main() -> None:
    args = parse_args()
    batch_sizes = tuple(int(b) for b in args.batch_sizes.split(","))
    windows = [None] if args.windows == "default" else [float(w) for w in args.windows.split(",")]
    print(f"before: {load_line()}")
    cv_at_16: dict[str, list[float]] = {}
    target = 0.05
    for window_s in windows:
        config = ProfileConfig(batch_sizes=batch_sizes, device=args.device, backend=args.backend,
                               repeats=args.repeats, min_window_s=window_s, threads=args.threads or None,
                               use_cache=False)
        header_done = False
        for arch, resolution in CONFIGS:
            config = dataclasses.replace(config, resolution=resolution)
            lines, result = run_config(arch, resolution, config)
            if not header_done:
                print(f"\nbackend: {result.backend_label}; {args.repeats} repeats; threads {args.threads}; "
                      f"min window {config.window_s(result.device):g} s")
                print(f"{'network':32s} {'res':>4s} {'B':>3s} {'win(s)':>7s} {'steps':>6s} "
                      f"{'EPF (mJ/fr)':>12s} {'CV (%)':>7s} {'out/in':>9s}")
                header_done = True
            print("\n".join(lines), flush=True)
            if 16 in result.batches and result.batches[16].cv is not None:
                cv_at_16.setdefault(f"{config.window_s(result.device):g} s", []).append(result.batches[16].cv)
            target = 0.05 if result.is_estimate else 0.02  # the targets of the module docstring
    print(f"\nafter: {load_line()}")
    for window, cvs in cv_at_16.items():
        met = sum(cv <= target for cv in cvs)
        print(f"B=16, window {window}: CV median {100 * sorted(cvs)[len(cvs) // 2]:.2f} %, max {100 * max(cvs):.2f} %; "
              f"{met}/{len(cvs)} networks meet the {100 * target:g} % target")


if __name__ == "__main__":
    main()
