"""Fit the optimum-group-size energy model to a profiling sweep of MobileNet-V1 on this machine, and
check whether it ranks held-out configurations the way the measurements do.

Sweep: MobileNet-V1, E2GC G = 1..32 and FgGC g = 2..32 at each width (11 networks per width), EPF per
batch size with the profiler (default backend ``auto``: on a machine without an energy counter that is
the *estimate* backend, i.e. measured time x a constant power model, so the fit then models time).
A shared CPU disturbs timings, so the sweep runs ``--passes`` times in shuffled order and keeps, per
network and batch size, the lowest EPF (the least-disturbed measurement).

Printed per batch size: β, γ, γ_dw, R², MAPE, leave-one-out MAPE and Spearman ρ, and the Spearman ρ /
MAPE on a held-out width (fit on the other widths, predict all 11 networks of the held-out one), then
the G the model favours next to the measured best.

    python benchmarks/energy_model_fit.py                               # ~15 min on 2 busy cores
    python benchmarks/energy_model_fit.py --from-sweep sweep.json       # refit a saved sweep, seconds
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import numpy as np
from scipy import stats

from e2gcsearch.energy_model import (EpfDataset, EpfMeasurement, config_predictions, config_terms,
                                     default_sweep_configs, favoured_group_size, fit_device_profile,
                                     fit_energy_model, load_sweep, run_sweep, stage_group_sizes)
from e2gcsearch.profile import ProfileConfig


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", default="0.25,0.5,0.75")
    parser.add_argument("--resolution", type=int, default=96)
    parser.add_argument("--batch-sizes", default="1,4,16")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--from-sweep", help="skip profiling; fit this sweep file")
    parser.add_argument("--sweep-out", default="energy_model_sweep.json", help="where the sweep is saved")
    parser.add_argument("--profile-out", default="energy_model_profile.json", help="where the device profile is saved")
    return parser.parse_args()


def sweep(args: argparse.Namespace) -> EpfDataset:
    widths = tuple(float(w) for w in args.widths.split(","))
    configs = default_sweep_configs("mobilenet_v1", widths=widths, num_classes=10)
    profile_config = ProfileConfig(batch_sizes=tuple(int(b) for b in args.batch_sizes.split(",")),
                                   resolution=args.resolution, device="cpu", backend=args.backend,
                                   repeats=args.repeats, threads=args.threads, use_cache=False)
    best: dict = {}
    dataset = None
    for index in range(args.passes):
        order = list(configs)
        random.Random(index).shuffle(order)
        start = time.perf_counter()
        dataset = run_sweep(order, profile_config, progress=lambda line: print(f"pass {index + 1}: {line}", file=sys.stderr))
        print(f"pass {index + 1}/{args.passes}: {len(order)} networks in {time.perf_counter() - start:.0f} s",
              file=sys.stderr)
        for item in dataset.measurements:
            kept = best.setdefault((item.config, item.resolution), {})
            for batch, epf in item.epf_mj.items():
                kept[batch] = min(epf, kept.get(batch, float("inf")))
    measurements = [EpfMeasurement(cfg, res, epf) for (cfg, res), epf in best.items()]
    return EpfDataset(dataset.backend, dataset.is_estimate, dataset.fingerprint, measurements,
                      source=f"benchmarks/energy_model_fit.py: {args.passes} passes, lowest EPF kept")


def held_out_width(dataset: EpfDataset, batch: int, width: float) -> tuple[float, float]:
    """Fit without ``width``; Spearman ρ and MAPE of the predictions for that width's networks."""
    points = dataset.points(batch)
    train = [p for p in points if p.config.width != width]
    test = [p for p in points if p.config.width == width]
    fit = fit_energy_model([config_terms(p.config, p.resolution) for p in train],
                           [p.epf_mj[batch] for p in train], batch, leave_one_out=False)
    predicted = np.array([fit.predict_mj(config_terms(p.config, p.resolution)) for p in test])
    measured = np.array([p.epf_mj[batch] for p in test])
    return float(stats.spearmanr(predicted, measured).statistic), float(np.mean(np.abs(predicted - measured) / measured))


def main() -> None:
    args = parse_args()
    dataset = load_sweep(args.from_sweep) if args.from_sweep else sweep(args)
    if not args.from_sweep:
        print(f"sweep saved to {dataset.save(args.sweep_out)}", file=sys.stderr)
    profile = fit_device_profile(dataset)
    profile.save(args.profile_out)
    fp = dataset.fingerprint
    print(f"device: {fp.get('device_model')} ({fp.get('device')}, threads {fp.get('threads')}, torch {fp.get('torch')})")
    print(f"energy: {profile.energy_note}")
    widths = sorted({m.config.width for m in dataset.measurements})
    print(f"data: MobileNet-V1, {len(dataset.measurements)} networks (widths {widths}), "
          f"{profile.resolution}x{profile.resolution} px, EPF in mJ/frame")
    print("\n  B   beta   gamma  gamma_dw     R2   MAPE  LOO-MAPE  LOO-rho  | held-out width: rho  MAPE")
    for batch, fit in sorted(profile.fits.items()):
        held = [held_out_width(dataset, batch, w) for w in widths] if len(widths) > 1 else []
        rho = ", ".join(f"w={w:g}: {r:+.2f}" for w, (r, _) in zip(widths, held))
        mape = np.mean([m for _, m in held]) if held else float("nan")
        print(f"{batch:3d}  {fit.beta:5.3f}  {fit.gamma or 0:6.0f}  {fit.gamma_dw or 0:8.0f}  {fit.r2:5.3f}  "
              f"{100 * fit.mape:4.1f}%  {100 * fit.loo_mape:7.1f}%  {fit.loo_spearman:+7.2f}  | {rho}; {100 * mape:.1f}%")
    batch = profile.reference_batch
    print(f"\nfavoured G at B={batch} (model) vs measured best E2GC G:")
    for width in widths:
        frame = config_predictions(profile, "mobilenet_v1", width, 10, profile.resolution, batch)
        e2gc = frame[frame["module"] == "E2GC"]
        measured_best = int(e2gc.loc[e2gc["measured_epf_mj"].idxmin(), "value"])
        staged = stage_group_sizes(profile, "mobilenet_v1", width, 10, profile.resolution, batch)
        print(f"  width {width:g}: model G={favoured_group_size(profile, 'mobilenet_v1', width, 10, profile.resolution, batch)}"
              f" (per stage {'-'.join(map(str, staged))}), measured G={measured_best}")
    print(f"\ndevice profile saved to {args.profile_out}")


if __name__ == "__main__":
    main()
