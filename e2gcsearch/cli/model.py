"""``e2gcsearch model``: fit the optimum-group-size energy model (E2GC Eq. 1) to measured EPF of one
device, and predict with it: per-layer optimal g (Eq. 2), the G it favours, EPF of every configuration."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pandas as pd

from ..config import ArchConfig
from ..energy_model import (
    DeviceProfile,
    config_predictions,
    default_sweep_configs,
    favoured_group_size,
    fingerprint_warning,
    fit_device_profile,
    layer_optima,
    load_sweep,
    run_sweep,
    stage_group_sizes,
)
from ..energy_model.fit import MIN_CONFIGS, MODEL_FORM
from ..errors import ConfigError
from ..models import DEFAULT_ARCH, get_entry
from ..report.tables import fixed, human_count, render, to_json
from ..search.warm_start import dataset_from_study
from ._common import HelpFormatter, emit, note, positive_int
from .configs import profile_config
from .options import MEASUREMENT, MODEL, OUTPUT, add_option, add_options

FIT_EXAMPLES = f"""\
examples:
  e2gcsearch model fit --sweep --widths 0.25,0.5 --resolution 64 --threads 1 --out device-profile.json
  e2gcsearch model fit --sweep --save-sweep sweep.json       # keep the measurements to refit later
  e2gcsearch model fit --from-profile sweep.json --out device-profile.json
  e2gcsearch model fit --study e2gcsearch --storage sqlite:///studies/e2gcsearch.db

model (one fit per batch size B, EPF in mJ/frame):
  {MODEL_FORM}
The fit needs EPF of at least {MIN_CONFIGS} different configurations on one device. With no source flag
it runs the sweep itself (E2GC G=1..32 and FgGC g=2..32 at each --widths). On a machine without an
energy counter the backend is 'estimate' (time x a power model): the fit is then of estimated energy.
"""

PREDICT_EXAMPLES = """\
examples:
  e2gcsearch model predict mobilenet_v1 --profile device-profile.json
  e2gcsearch model predict mobilenet_v1 --profile device-profile.json --width 1.0 --resolution 224 --format json
  e2gcsearch model predict resnext50 --profile device-profile.json --groups 32 --batch-size 4

Per grouped layer: g* = sqrt(m·n·k²·(h·w)^(1-beta)/gamma), the continuous optimum (Eq. 2 with Eq. 1
read per group, A neglected), and the best power-of-two G with A included. Then the predicted EPF of
every E2GC G and FgGC g next to the measured EPF where the profile has it, and the G the model favours
for the whole network and per stage. Unset width, classes and resolution are those the profile measured most.
"""

FIT_FORMATTERS = {
    "beta": fixed(3),
    "gamma": fixed(1),
    "gamma_dw": fixed(1),
    "kappa_mj": lambda v: f"{v:.3g}",
    "e0_mj": fixed(3),
    "r2": fixed(3),
    "mape_pct": fixed(1),
    "loo_mape_pct": fixed(1),
    "loo_r2": fixed(3),
    "loo_spearman": fixed(2),
}
LAYER_FORMATTERS = {
    "groups_eq2": fixed(1),
    "group_size_eq2": fixed(2),
    "energy_mj": fixed(4),
    "energy_best_mj": fixed(4),
}
CONFIG_FORMATTERS = {
    "params": human_count,
    "macs": human_count,
    "predicted_epf_mj": fixed(3),
    "measured_epf_mj": fixed(3),
    "error_pct": fixed(1),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "model",
        help="fit the optimum-group-size energy model; predict G and EPF with it",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    commands = parser.add_subparsers(dest="model_command", metavar="SUBCOMMAND", parser_class=type(parser))
    fit = commands.add_parser(
        "fit",
        help="fit a device profile to a sweep, a sweep file or a study",
        description=__doc__,
        epilog=FIT_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    source = fit.add_mutually_exclusive_group()
    source.add_argument("--sweep", action="store_true", help="profile a sweep of configurations now (the default)")
    source.add_argument("--from-profile", metavar="FILE", help="a sweep file written by --save-sweep")
    add_option(source, "study", default=None)  # fit the complete trials of this study
    add_option(fit, "storage")
    fit.add_argument("--out", default="device-profile.json", help="where to save the fitted device profile (JSON)")
    sweep = fit.add_argument_group("sweep")
    sweep.add_argument("--arch", default=DEFAULT_ARCH, help="architecture of the sweep")
    add_option(sweep, "widths", (0.25, 0.5))
    add_option(sweep, "resolution", 64)
    add_option(sweep, "classes", 10)
    sweep.add_argument("--save-sweep", metavar="FILE", help="also save the measurements (refit with --from-profile)")
    add_options(fit, MEASUREMENT._replace(title="energy measurement (sweep)"), OUTPUT)
    fit.set_defaults(func=run_fit)

    predict = commands.add_parser(
        "predict",
        help="per-layer optimal g, favoured G, predicted EPF of every config",
        description=__doc__,
        epilog=PREDICT_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    # Unset width, classes and resolution: the ones the profile measured most.
    add_options(predict, MODEL, OUTPUT, defaults={"width": None, "classes": None, "resolution": None})
    predict.add_argument("--profile", required=True, metavar="FILE", help="device profile from 'e2gcsearch model fit'")
    predict.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="the batch size B of the fit to predict with (default: the largest fitted)",
    )
    predict.set_defaults(func=run_predict)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _energy_lines(profile: DeviceProfile) -> list[str]:
    fp = profile.fingerprint.to_dict()
    return [
        f"device: {fp.get('device_model', '?')} ({fp.get('device', '?')}, threads {fp.get('threads', '?')}, "
        f"torch {fp.get('torch', '?')}); data: {profile.source}",
        f"energy: {profile.energy_note}; EPF in mJ/frame",
    ]


def _fit_frame(profile: DeviceProfile) -> pd.DataFrame:
    rows = []
    for batch, fit in sorted(profile.fits.items()):
        rows.append(
            {
                "batch_size": batch,
                "n": fit.n,
                "beta": fit.beta,
                "gamma": fit.gamma,
                "gamma_dw": fit.gamma_dw,
                "kappa_mj": fit.kappa_mj,
                "e0_mj": fit.e0_mj,
                "r2": fit.r2,
                "mape_pct": 100 * fit.mape,
                "loo_mape_pct": 100 * fit.loo_mape,
                "loo_r2": fit.loo_r2,
                "loo_spearman": fit.loo_spearman,
                "backend": profile.backend,
                "is_estimate": profile.is_estimate,
            }
        )
    return pd.DataFrame(rows)


def _dataset(args: argparse.Namespace):
    if args.from_profile:
        return load_sweep(args.from_profile)
    if args.study:
        return dataset_from_study(args.storage, args.study, progress=note)
    configs = default_sweep_configs(args.arch, args.widths, args.classes)
    note(
        f"sweep: {len(configs)} networks ({args.arch}, widths {', '.join(f'{w:g}' for w in args.widths)}, "
        f"{args.resolution}x{args.resolution} px)"
    )
    dataset = run_sweep(configs, profile_config(args, threads=args.threads), progress=note)
    if args.save_sweep:
        note(f"saved the sweep to {dataset.save(args.save_sweep)}")
    return dataset


def run_fit(args: argparse.Namespace) -> None:
    profile = fit_device_profile(_dataset(args), progress=note)
    note(f"saved the device profile to {profile.save(args.out)}")
    note(_energy_lines(profile)[1])
    frame = _fit_frame(profile)
    if _emitted_raw(args.format, lambda: profile.to_dict() | {"measurements": len(profile.measurements)}, frame):
        return
    for line in _energy_lines(profile):
        emit(line)
    emit(f"model: {MODEL_FORM}")
    headers = {
        "batch_size": "B",
        "kappa_mj": "kappa (mJ)",
        "e0_mj": "e0 (mJ/frame)",
        "r2": "R2",
        "mape_pct": "MAPE (%)",
        "loo_mape_pct": "LOO MAPE (%)",
        "loo_r2": "LOO R2",
        "loo_spearman": "LOO rho",
    }
    emit(render(frame.drop(columns=["is_estimate"]), args.format, FIT_FORMATTERS, headers))


def run_predict(args: argparse.Namespace) -> None:
    get_entry(args.arch)
    profile = DeviceProfile.load(args.profile)
    warning = fingerprint_warning(profile)
    if warning:
        note(warning)
    width, classes, resolution = profile.setting_for(args.arch, args.width, args.classes, args.resolution)
    fit = profile.fit_for(args.batch_size)
    fitted_archs = sorted({m.arch_config.arch for m in profile.measurements})
    if fitted_archs and args.arch not in fitted_archs:
        note(
            f"note: the profile was fitted on {', '.join(fitted_archs)} only; its predictions for {args.arch} extrapolate"
        )
    if args.group_size or args.groups:
        arch_config = ArchConfig(
            args.arch, group_size=args.group_size, groups=args.groups, width=width, num_classes=classes
        )
    else:
        arch_config = get_entry(args.arch).baseline.replace(width=width, num_classes=classes)
    note(
        f"predicting {args.arch} at width {width:g}, {classes} classes, {resolution}x{resolution} px, B={fit.batch_size}"
    )
    layers = pd.DataFrame([vars(layer) for layer in layer_optima(profile, arch_config, resolution, fit.batch_size)])
    configs = config_predictions(profile, args.arch, width, classes, resolution, fit.batch_size)
    if configs.empty:
        raise ConfigError(f"no E2GC/FgGC configuration of {args.arch} can be built at width {width:g}; try --width 0.5")
    favoured = favoured_group_size(profile, args.arch, width, classes, resolution, fit.batch_size)
    staged = stage_group_sizes(profile, args.arch, width, classes, resolution, fit.batch_size, start=favoured)
    _emit_prediction(args, profile, fit, arch_config, layers, configs, favoured, staged)


def _emitted_raw(fmt: str, document: Callable[[], dict], frame: pd.DataFrame) -> bool:
    """Emit ``document()`` for json or ``frame`` for csv; False when the format is a human one."""
    if fmt == "json":
        emit(to_json(document()))
    elif fmt == "csv":
        emit(render(frame, "csv"))
    return fmt in ("json", "csv")


def _emit_prediction(args, profile, fit, arch_config, layers, configs, favoured, staged) -> None:
    document = lambda: {  # noqa: E731
        "profile": {
            "source": profile.source,
            "backend": profile.backend,
            "is_estimate": profile.is_estimate,
            "energy_note": profile.energy_note,
            "fingerprint": profile.fingerprint.to_dict(),
            "model_form": profile.model_form,
            "fit": fit.to_dict(),
        },
        "config": arch_config.to_dict(),
        "units": {"epf": "mJ/frame", "energy": "mJ/frame", "gamma": "MAC^(1-beta)*element^beta"},
        "layers": layers.to_dict(orient="records"),
        "configs": configs.to_dict(orient="records"),
        "favoured_group_size": favoured,
        "favoured_stage_group_sizes": list(staged),
    }
    if _emitted_raw(args.format, document, configs):
        return
    for line in _energy_lines(profile):
        emit(line)
    emit(
        f"fit at B={fit.batch_size}: beta={fit.beta:.3f}, gamma={fit.gamma or float('nan'):.1f}, "
        f"gamma_dw={fit.gamma_dw or float('nan'):.1f}, R2={fit.r2:.3f}, LOO MAPE={100 * fit.loo_mape:.1f} %"
    )
    emit(f"\nper grouped layer of {arch_config.label()} (energies: modelled, mJ/frame, {profile.backend}):")
    shown = layers[
        [
            "name",
            "stage",
            "m",
            "n",
            "out_h",
            "stride",
            "group_size",
            "groups",
            "groups_eq2",
            "group_size_eq2",
            "groups_best",
            "group_size_best",
            "energy_mj",
            "energy_best_mj",
        ]
    ]
    emit(
        render(
            shown,
            args.format,
            LAYER_FORMATTERS,
            {
                "out_h": "h=w",
                "group_size": "G",
                "groups": "g",
                "groups_eq2": "g* (Eq.2)",
                "group_size_eq2": "G*",
                "groups_best": "g best",
                "group_size_best": "G best",
            },
        )
    )
    emit(f"\nEPF per configuration (mJ/frame, backend: {profile.backend}):")
    emit(
        render(
            configs.drop(columns=["arch", "batch_size", "backend"]),
            args.format,
            CONFIG_FORMATTERS,
            {"predicted_epf_mj": "predicted EPF", "measured_epf_mj": "measured EPF", "error_pct": "error (%)"},
        )
    )
    emit(f"\nthe model favours G={favoured} for the whole network; per stage: G={'-'.join(map(str, staged))}")
