"""Profiler stability and overhead, measured side by side in one run.

For a few networks and every batch size it prints the CV of EPF across repeats (targets: <= 5 % at
B = 16 for the CPU estimate, <= 2 % where a real counter exists) and the profiler's own overhead:
time spent outside the measured windows (warm-up, calibration, input synthesis, model build,
meter setup) / time inside them. Nothing is read from or written to the cache.

Run:
    python benchmarks/profile_stability.py                       # default window, 5 repeats
    python benchmarks/profile_stability.py --windows 0.25,1.0    # compare window lengths
    python benchmarks/profile_stability.py --threads 2 --backend estimate
    python benchmarks/profile_stability.py --rounds 4 --repeats 3 --resolution 48   # between measurements

``--rounds K`` profiles every network K times, round-robin, and asks whether the 95 % interval of
one measurement (from its windows, the interval ``front`` shows) covers what another measurement of
the same network reads a minute later: it prints, per network at B = 16, the spread between rounds
next to the half-width of one round's interval, and counts the pairs of rounds whose intervals do
not overlap, which ``front`` would read as two networks that differ beyond noise. With honest
intervals about 1 pair in 200 is disjoint.

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
from e2gcsearch.stats import Summary

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
    parser.add_argument(
        "--windows",
        default="default",
        help="comma list of minimum window lengths in s; 'default' = the profiler's default",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="profile every network this many times, round-robin, and compare the rounds",
    )
    parser.add_argument("--resolution", type=int, default=None, help="override every network's resolution")
    parser.add_argument("--impl", default="nchw", help="nchw, channels_last, compile or auto (run's default)")
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
        lines.append(
            f"{arch.label():32s} {resolution:4d} {batch.batch_size:3d} {batch.window_s:7.2f} "
            f"{batch.iterations:6d} {batch.epf_mj:12.3f} {100 * batch.cv:7.2f} {overhead:9.2f}"
        )
    inside_s = sum(b.measured_s for b in result.batches.values())
    lines.append(
        f"{'':32s} whole profile: {total_s:.2f} s, outside/inside windows = {(total_s - inside_s) / inside_s:.2f}"
    )
    return lines, result


def main() -> None:
    args = parse_args()
    batch_sizes = tuple(int(b) for b in args.batch_sizes.split(","))
    windows = [None] if args.windows == "default" else [float(w) for w in args.windows.split(",")]
    print(f"before: {load_line()}")
    cv_at_16: dict[str, list[float]] = {}
    rounds: dict[str, list[Summary]] = {}
    target = 0.05
    for window_s in windows:
        config = ProfileConfig(
            batch_sizes=batch_sizes,
            device=args.device,
            backend=args.backend,
            repeats=args.repeats,
            min_window_s=window_s,
            threads=args.threads or None,
            use_cache=False,
            impl=args.impl,
        )
        header_done = False
        for _, (arch, resolution) in ((r, c) for r in range(args.rounds) for c in CONFIGS):
            resolution = args.resolution or resolution
            config = dataclasses.replace(config, resolution=resolution)
            lines, result = run_config(arch, resolution, config)
            if 16 in result.batches and result.batches[16].status == "ok":
                rounds.setdefault(arch.label(), []).append(result.batches[16].epf())
            if not header_done:
                print(
                    f"\nbackend: {result.backend_label}; {args.repeats} repeats; threads {args.threads}; "
                    f"min window {config.window_s(result.device):g} s"
                )
                print(
                    f"{'network':32s} {'res':>4s} {'B':>3s} {'win(s)':>7s} {'steps':>6s} "
                    f"{'EPF (mJ/fr)':>12s} {'CV (%)':>7s} {'out/in':>9s}"
                )
                header_done = True
            print("\n".join(lines), flush=True)
            if 16 in result.batches and result.batches[16].cv is not None:
                cv_at_16.setdefault(f"{config.window_s(result.device):g} s", []).append(result.batches[16].cv)
            target = 0.05 if result.is_estimate else 0.02  # the targets of the module docstring
    print(f"\nafter: {load_line()}")
    for window, cvs in cv_at_16.items():
        met = sum(cv <= target for cv in cvs)
        print(
            f"B=16, window {window}: CV median {100 * sorted(cvs)[len(cvs) // 2]:.2f} %, max {100 * max(cvs):.2f} %; "
            f"{met}/{len(cvs)} networks meet the {100 * target:g} % target"
        )

    if args.rounds > 1:
        print_rounds(rounds)


def print_rounds(rounds: dict[str, list[Summary]]) -> None:
    """Per network (B = 16): the rounds' spread against one round's 95 % interval, and the pairs of
    rounds whose intervals are disjoint."""
    print("\nbetween rounds, B=16 (EPF mJ/frame; half-width = 95 % interval of one round, from its windows)")
    print(
        f"{'network':32s} {'rounds':>6s} {'mean':>9s} {'between CV %':>12s} {'median half-width %':>19s} "
        f"{'disjoint pairs':>14s}"
    )
    disjoint = pairs = 0
    for label, summaries in rounds.items():
        means = [s.mean for s in summaries]
        between = Summary.of(means)
        halves = sorted(s.half_width() / s.mean for s in summaries)
        apart = sum(
            max(a.interval()[0], b.interval()[0]) > min(a.interval()[1], b.interval()[1])
            for i, a in enumerate(summaries)
            for b in summaries[i + 1 :]
        )
        count = len(summaries) * (len(summaries) - 1) // 2
        disjoint, pairs = disjoint + apart, pairs + count
        print(
            f"{label:32s} {len(means):6d} {between.mean:9.3f} {100 * between.std / between.mean:12.2f} "
            f"{100 * halves[len(halves) // 2]:19.2f} {f'{apart}/{count}':>14s}"
        )
    print(
        f"{disjoint} of {pairs} pairs of measurements of one network have disjoint 95 % intervals "
        "(honest intervals: about 1 in 200)"
    )


if __name__ == "__main__":
    main()
