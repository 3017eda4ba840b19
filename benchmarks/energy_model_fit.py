"""Fit the optimum-group-size energy model to a profiling sweep of MobileNet-V1 on this machine, and
check whether it ranks held-out configurations the way the measurements do.

Sweep: MobileNet-V1, E2GC G = 1..32 and FgGC g = 2..32 at each width (11 networks per width), EPF per
batch size with the profiler (default backend ``auto``: on a machine without an energy counter that is
the *estimate* backend, i.e. measured time x a constant power model, so the fit then models time).
A shared CPU disturbs timings (other jobs take a varying share of the cores), so every network is
measured side by side with its width's G=1 reference network (reference, network, reference, ...):
its EPF is the ratio to the geometric mean of the two neighbouring reference readings, times the
lowest (least-disturbed) reference reading of the run. The sweep runs ``--passes`` times in
shuffled order and averages the ratios. The raw readings (lowest per network) are fitted too, for
comparison.

``--clock cpu`` is the cross-check for a machine whose other jobs leave no quiet moment: the same
training step (zero_grad + forward + cross-entropy + backward, one thread), timed by the *process
CPU time* (which time-slicing by other processes does not inflate) x the estimate backend's power
model. It is not a product backend; it only shows what the model does with less disturbed data.

Printed per batch size: β, γ, γ_dw, R², MAPE, leave-one-out MAPE and Spearman ρ, and the Spearman ρ /
MAPE on a held-out width (fit on the other widths, predict all 11 networks of the held-out one), then
the G the model favours next to the measured best.

    python benchmarks/energy_model_fit.py                               # ~20 min on 2 busy cores
    python benchmarks/energy_model_fit.py --from-sweep sweep.json       # refit a saved sweep, seconds
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

from e2gcsearch import create_model
from e2gcsearch.energy.estimate import cpu_tdp_model_w
from e2gcsearch.energy_model import (
    EpfDataset,
    EpfMeasurement,
    config_predictions,
    config_terms,
    current_fingerprint,
    default_sweep_configs,
    favoured_group_size,
    fit_device_profile,
    load_sweep,
    run_sweep,
    stage_group_sizes,
)
from e2gcsearch.energy_model.fit import fit_and_predict
from e2gcsearch.profiling import ProfileConfig


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", default="0.25,0.5,0.75")
    parser.add_argument("--resolution", type=int, default=96)
    parser.add_argument("--batch-sizes", default="1,4,16")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend", default="auto")
    parser.add_argument(
        "--window-s",
        type=float,
        help="shortest measured window in s (unset: the profiler's default; 0.2 with --clock cpu)",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: the profiler (side by side with G=1); cpu: process CPU time x power model",
    )
    parser.add_argument("--from-sweep", help="skip profiling; fit these sweep files (comma-separated)")
    parser.add_argument("--sweep-out", default="energy_model_sweep.json", help="where the sweep is saved")
    parser.add_argument("--profile-out", default="energy_model_profile.json", help="where the device profile is saved")
    return parser.parse_args()


def _profile(cfg, profile_config) -> dict[int, float]:
    result = run_sweep([cfg], profile_config).measurements[0]
    return result.epf_mj


def sweep(args: argparse.Namespace) -> tuple[EpfDataset, EpfDataset]:
    """(side-by-side normalised dataset, raw lowest-reading dataset)."""
    widths = tuple(float(w) for w in args.widths.split(","))
    configs = default_sweep_configs("mobilenet_v1", widths=widths, num_classes=10)
    profile_config = ProfileConfig(
        batch_sizes=tuple(int(b) for b in args.batch_sizes.split(",")),
        resolution=args.resolution,
        device="cpu",
        backend=args.backend,
        repeats=args.repeats,
        threads=args.threads,
        use_cache=False,
        min_window_s=args.window_s,
    )
    probe = run_sweep(configs[:1], profile_config)
    ratios: dict = {}  # config -> batch -> [ratio per pass]
    raw: dict = {}  # config -> batch -> lowest reading
    floor: dict = {}  # width -> batch -> lowest reference reading
    for index in range(args.passes):
        start = time.perf_counter()
        for width in random.Random(index).sample(widths, len(widths)):
            reference = next(c for c in configs if c.width == width and c.group_size == 1)
            members = [c for c in configs if c.width == width and c != reference]
            random.Random(index).shuffle(members)
            before = _profile(reference, profile_config)
            for cfg in members:
                reading, after = _profile(cfg, profile_config), _profile(reference, profile_config)
                for batch, epf in reading.items():
                    ref = (before[batch] * after[batch]) ** 0.5
                    ratios.setdefault(cfg, {}).setdefault(batch, []).append(epf / ref)
                    raw.setdefault(cfg, {})[batch] = min(epf, raw.get(cfg, {}).get(batch, float("inf")))
                for reading_ref in (before, after):
                    for batch, epf in reading_ref.items():
                        floor.setdefault(width, {})[batch] = min(epf, floor.get(width, {}).get(batch, float("inf")))
                        raw.setdefault(reference, {})[batch] = floor[width][batch]
                        ratios.setdefault(reference, {})[batch] = [1.0]
                print(
                    f"pass {index + 1}: {cfg.label()}: "
                    + ", ".join(f"B={b}: {ratios[cfg][b][-1]:.2f} x G=1" for b in sorted(reading)),
                    file=sys.stderr,
                )
                before = after
        print(f"pass {index + 1}/{args.passes} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    resolution = probe.measurements[0].resolution
    normalised = [
        EpfMeasurement(cfg, resolution, {b: float(np.mean(r)) * floor[cfg.width][b] for b, r in per.items()})
        for cfg, per in ratios.items()
    ]
    lowest = [EpfMeasurement(cfg, resolution, dict(per)) for cfg, per in raw.items()]
    note = f"benchmarks/energy_model_fit.py, {args.passes} passes"
    return (
        EpfDataset(
            probe.backend,
            probe.is_estimate,
            probe.fingerprint,
            normalised,
            source=f"{note}, side by side with G=1 (ratio x lowest G=1 reading)",
        ),
        EpfDataset(probe.backend, probe.is_estimate, probe.fingerprint, lowest, source=f"{note}, lowest reading"),
    )


def _cpu_epf_mj(cfg, batch: int, resolution: int, power_w: float, min_cpu_s: float = 0.2, repeats: int = 3) -> float:
    """EPF from process CPU time of the training step (lowest of ``repeats`` windows) x ``power_w``."""
    model = create_model(cfg).train()
    inputs, targets = torch.randn(batch, 3, resolution, resolution), torch.randint(0, cfg.num_classes, (batch,))

    def step() -> None:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(inputs), targets).backward()

    step()
    start = time.process_time()
    step()
    iterations = max(1, int(np.ceil(min_cpu_s / max(time.process_time() - start, 1e-6))))
    windows = []
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(iterations):
            step()
        windows.append(time.process_time() - start)
    return 1000.0 * power_w * min(windows) / (iterations * batch)


def cpu_sweep(args: argparse.Namespace) -> EpfDataset:
    torch.set_num_threads(args.threads)
    widths = tuple(float(w) for w in args.widths.split(","))
    batches = tuple(int(b) for b in args.batch_sizes.split(","))
    power_w = cpu_tdp_model_w(args.threads)
    measurements = []
    for cfg in default_sweep_configs("mobilenet_v1", widths=widths, num_classes=10):
        epf = {b: _cpu_epf_mj(cfg, b, args.resolution, power_w, min_cpu_s=args.window_s or 0.2) for b in batches}
        print(f"cpu clock: {cfg.label()}: " + ", ".join(f"B={b}: {v:.1f} mJ" for b, v in epf.items()), file=sys.stderr)
        measurements.append(EpfMeasurement(cfg, args.resolution, epf))
    return EpfDataset(
        "estimate-cpu-time",
        True,
        current_fingerprint("cpu"),
        measurements,
        source=f"benchmarks/energy_model_fit.py --clock cpu (process CPU time x {power_w:g} W)",
    )


def held_out_width(dataset: EpfDataset, batch: int, width: float) -> tuple[float, float]:
    """Fit without ``width``; Spearman ρ and MAPE of the predictions for that width's networks."""
    points = dataset.points(batch)
    train = [p for p in points if p.arch_config.width != width]
    test = [p for p in points if p.arch_config.width == width]
    predicted = fit_and_predict(
        [config_terms(p.arch_config, p.resolution) for p in train],
        [p.epf_mj[batch] for p in train],
        [config_terms(p.arch_config, p.resolution) for p in test],
    )
    measured = np.array([p.epf_mj[batch] for p in test])
    return float(stats.spearmanr(predicted, measured).statistic), float(
        np.mean(np.abs(predicted - measured) / measured)
    )


def report(dataset: EpfDataset, title: str) -> None:
    """Fit per batch size; print the fit, LOO and held-out-width figures."""
    profile = fit_device_profile(dataset)
    widths = sorted({m.arch_config.width for m in dataset.measurements})
    print(
        f"\n{title}: {len(dataset.measurements)} networks (widths {widths}), {profile.resolution}x{profile.resolution} px"
    )
    print("  B   beta    gamma  gamma_dw     R2   MAPE  LOO-MAPE  LOO-rho  | Spearman rho on a held-out width; MAPE")
    for batch, fit in sorted(profile.fits.items()):
        held = [held_out_width(dataset, batch, w) for w in widths] if len(widths) > 1 else []
        rho = ", ".join(f"w={w:g}: {r:+.2f}" for w, (r, _) in zip(widths, held))
        mape = np.mean([m for _, m in held]) if held else float("nan")
        print(
            f"{batch:3d}  {fit.beta:5.3f}  {fit.gamma or 0:7.0f}  {fit.gamma_dw or 0:8.0f}  {fit.r2:5.3f}  "
            f"{100 * fit.mape:4.1f}%  {100 * fit.loo_mape:7.1f}%  {fit.loo_spearman:+7.2f}  | {rho}; {100 * mape:.1f}%"
        )


def favoured(profile) -> None:
    batch = profile.reference_batch
    widths = sorted({m.arch_config.width for m in profile.measurements})
    print(f"\nfavoured G at B={batch}: model (network; per stage) vs measured best E2GC G")
    for width in widths:
        frame = config_predictions(profile, "mobilenet_v1", width, 10, profile.resolution, batch)
        e2gc = frame[frame["module"] == "E2GC"]
        measured_best = int(e2gc.loc[e2gc["measured_epf_mj"].idxmin(), "value"])
        staged = stage_group_sizes(profile, "mobilenet_v1", width, 10, profile.resolution, batch)
        model_best = favoured_group_size(profile, "mobilenet_v1", width, 10, profile.resolution, batch)
        print(
            f"  width {width:g}: model G={model_best} (per stage {'-'.join(map(str, staged))}), measured G={measured_best}"
        )


def main() -> None:
    args = parse_args()
    if args.from_sweep:
        datasets = [load_sweep(path) for path in args.from_sweep.split(",")]
    elif args.clock == "cpu":
        datasets = [cpu_sweep(args)]
        print(f"sweep saved to {datasets[0].save(args.sweep_out)}", file=sys.stderr)
    else:
        datasets = list(sweep(args))
        print(
            f"sweeps saved to {datasets[0].save(args.sweep_out)} and "
            f"{datasets[1].save(args.sweep_out.replace('.json', '_raw.json'))}",
            file=sys.stderr,
        )
    fp = datasets[0].fingerprint.to_dict()
    print(
        f"device: {fp.get('device_model')} ({fp.get('device')}, threads {fp.get('threads')}, torch {fp.get('torch')})"
    )
    profile = fit_device_profile(datasets[0])
    print(f"energy: {profile.energy_note}; EPF in mJ/frame")
    for dataset in datasets:
        report(dataset, dataset.source)
    profile.save(args.profile_out)
    favoured(profile)
    print(f"\ndevice profile ({datasets[0].source}) saved to {args.profile_out}")


if __name__ == "__main__":
    main()
