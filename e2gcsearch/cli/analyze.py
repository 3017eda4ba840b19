"""``e2gcsearch analyze``: the paper's Table II quantities of every grouped conv of a network, and its
Fig. 3 (MACs, AI and 1/AI of one layer against G) as a PNG or HTML plot."""

from __future__ import annotations

import argparse

from ..config import ArchConfig
from ..energy_model import DeviceProfile, fig3_frame, layer_table
from ..energy_model.equations import FIG3_SHAPE
from ..errors import ConfigError
from ..paths import PROFILES
from ..profiling import ProfileConfig
from ..profiling.layer_roofline import network_roofline
from ..profiling.peaks import device_peaks
from ..report.roofline import check_roofline_path, roofline_points, save_roofline_plot, summary_lines
from ..report.tables import fixed, human_count, render, to_json
from ._common import HelpFormatter, emit, int_list, note
from .configs import arch_config_from, cached_under
from .options import MODEL, OUTPUT, Group, add_options

EXAMPLES = """\
examples:
  e2gcsearch analyze mobilenet_v1 --group-size 4 --plot fig3.png    # per-layer table + the paper's Fig. 3
  e2gcsearch analyze resnext50 --groups 32 --format csv
  e2gcsearch analyze mobilenet_v1 -G 8 --plot fig3.html --fig3-shape 256,256,3,28
  e2gcsearch analyze mobilenet_v1 -G 4 --plot fig3.png --profile device-profile.json   # + modelled energy
  e2gcsearch analyze mobilenet_v1 -G 2 --roofline --plot roofline.png --resolution 112
  e2gcsearch analyze mobilenet_v1 -G 2 --roofline --roofline-group-sizes 1,4,16 --roofline-groups 2,8,32 \\
      --plot roofline.html --resolution 112

--roofline times every grouped conv alone on this device (forward + backward at the largest of
--batch-sizes, in the --impl layout; auto: the faster of nchw and channels_last per layer) and prints
each one's achieved GFLOP/s against the device's measured peaks; with --plot it draws them on the
roofline instead of Fig. 3 (.png or .html), one panel per grouping rule, coloured by G or g.

Table II quantities per grouped conv (counting as 'e2gcsearch cost'): M_c = MACs, P = weights,
A = input + output activations, AI = M_c / (A + P). The *_norm columns divide each by its value for
the same layer made depthwise (G = 1), as the paper's Fig. 3 does; memory = A + P.
"""

FORMATTERS = {
    "macs": human_count,
    "params": human_count,
    "activations": human_count,
    "ai": fixed(2),
    "macs_norm": fixed(2),
    "params_norm": fixed(2),
    "memory_norm": fixed(3),
    "ai_norm": fixed(2),
    "inv_ai_norm": fixed(3),
}
HEADERS = {
    "macs": "M_c",
    "params": "P",
    "activations": "A",
    "ai": "AI",
    "macs_norm": "M_c/dw",
    "params_norm": "P/dw",
    "memory_norm": "(A+P)/dw",
    "ai_norm": "AI/dw",
    "inv_ai_norm": "(1/AI)/dw",
}


ROOFLINE = Group(
    "roofline",
    (
        "roofline",
        "batch_sizes",
        "device",
        "impl",
        "mode",
        "dtype",
        "threads",
        "cache_dir",
        "no_cache",
        "no_device_lock",
    ),
    {"batch_sizes": (16,), "threads": 1},
)
POINT_FORMATTERS = {
    "ai_flop_per_byte": fixed(2),
    "achieved_gflops": fixed(2),
    "bound_gflops": fixed(2),
    "fraction": lambda value: fixed(1)(100 * value),
    "ms": fixed(3),
}
POINT_HEADERS = {
    "ai_flop_per_byte": "AI FLOP/B (counted)",
    "achieved_gflops": "GFLOP/s (measured)",
    "bound_gflops": "bound GFLOP/s",
    "fraction": "% of bound",
    "ms": "ms (measured)",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="Table II quantities (M_c, P, A, AI) of every grouped conv; the paper's Fig. 3",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    groups = add_options(parser, MODEL, OUTPUT, ROOFLINE)
    parser.add_argument(
        "--plot",
        metavar="FILE",
        help="draw Fig. 3 to FILE (.png, .pdf, .svg or .html); with --roofline the roofline (.png or .html)",
    )
    parser.add_argument(
        "--fig3-shape",
        type=int_list,
        metavar="m,n,k,hw",
        default=",".join(str(FIG3_SHAPE[key]) for key in ("m", "n", "kernel", "h")),
        help="the layer of Fig. 3: channels in, channels out, kernel size, output height = width",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="a device profile (from 'e2gcsearch model fit'): add its modelled layer energy to Fig. 3",
    )
    groups["roofline"].add_argument(
        "--roofline-group-sizes",
        type=int_list,
        metavar="G,…",
        help="with --roofline: also time the network as E2GC with these group sizes (a panel beside FgGC)",
    )
    groups["roofline"].add_argument(
        "--roofline-groups",
        type=int_list,
        metavar="g,…",
        help="with --roofline: also time the network as FgGC with these numbers of groups",
    )
    parser.set_defaults(func=run)


def fig3_with_model(args: argparse.Namespace):
    """Fig. 3's frame for ``--fig3-shape``, with the profile's modelled energy when ``--profile`` is given."""
    if len(args.fig3_shape) != 4:
        raise ConfigError(f"--fig3-shape takes four numbers m,n,k,hw (e.g. 512,512,3,14), got {args.fig3_shape}")
    m, n, kernel, size = args.fig3_shape
    frame = fig3_frame(m, n, kernel, size, size)
    note_text = None
    if args.profile:
        profile = DeviceProfile.load(args.profile)
        fit = profile.fit_for()
        energy = [
            fit.layer_mj(row.macs, row.params + row.activations, row.groups, depthwise=row.groups == m)
            for row in frame.itertuples()
        ]
        frame["energy_norm"] = [value / energy[0] for value in energy]
        note_text = f"fit to {profile.backend} EPF, B={fit.batch_size}"
    return frame, note_text


def run(args: argparse.Namespace) -> None:
    arch_config = arch_config_from(args)
    if args.roofline:
        return run_roofline(args, arch_config)
    if args.roofline_group_sizes or args.roofline_groups:
        raise ConfigError(
            "--roofline-group-sizes and --roofline-groups choose the networks of the roofline: add --roofline"
        )
    frame = layer_table(arch_config, args.resolution)
    if args.plot:
        from ..report.fig3 import save_fig3

        fig3, model_note = fig3_with_model(args)
        note(
            f"wrote {save_fig3(fig3, args.plot, model_note)} (Fig. 3 for m={args.fig3_shape[0]}, "
            f"n={args.fig3_shape[1]}, {args.fig3_shape[2]}x{args.fig3_shape[2]}, {args.fig3_shape[3]}x{args.fig3_shape[3]})"
        )
    if args.format == "json":
        emit(
            to_json(
                {
                    "config": arch_config.to_dict(),
                    "resolution": args.resolution,
                    "layers": frame.to_dict(orient="records"),
                }
            )
        )
        return
    if args.format in ("table", "markdown"):
        emit(
            f"{arch_config.label()} at {args.resolution}x{args.resolution}: {len(frame)} grouped convs "
            "(each ratio is to the same layer made depthwise, G = 1)"
        )
    emit(render(frame, args.format, FORMATTERS, HEADERS))


def roofline_config(args: argparse.Namespace) -> ProfileConfig:
    """How ``analyze --roofline`` times layers: the measurement flags it takes, checked."""
    if args.threads == "auto":
        raise ConfigError("analyze --roofline takes --threads N (or 0 for torch's default), not auto")
    if args.impl == "compile":
        raise ConfigError(
            "analyze --roofline times each layer alone, and compile fuses layers into one graph; "
            "use --impl nchw, channels_last or auto"
        )
    if args.profile:
        raise ConfigError("--profile adds modelled energy to Fig. 3, which --roofline replaces; drop one of them")
    return ProfileConfig(
        batch_sizes=args.batch_sizes,
        resolution=args.resolution,
        device=args.device,
        dtype=args.dtype,
        impl=args.impl or "nchw",
        mode=args.mode,
        cache_dir=cached_under(args.cache_dir, PROFILES),
        use_cache=not args.no_cache,
        threads=args.threads,
        device_lock=not args.no_device_lock,
    )


def roofline_networks(args: argparse.Namespace, arch_config: ArchConfig) -> list[ArchConfig]:
    """The network asked, then the E2GC and FgGC variants of ``--roofline-group-sizes`` / ``--roofline-groups``."""
    configs = [arch_config]
    configs += [arch_config.replace(module=None, group_size=size) for size in args.roofline_group_sizes or ()]
    configs += [arch_config.replace(module=None, groups=groups) for groups in args.roofline_groups or ()]
    return list(dict.fromkeys(configs))


def run_roofline(args: argparse.Namespace, arch_config: ArchConfig) -> None:
    """``analyze --roofline``: the grouped convs of each network timed alone against the device's peaks."""
    plot = check_roofline_path(args.plot) if args.plot else None
    config = roofline_config(args)
    configs = roofline_networks(args, arch_config)
    peaks = device_peaks(config, progress=note)
    networks = []
    for network in configs:
        note(f"timing the grouped convs of {network.label()} alone (nchw, channels_last)")
        networks.append((network, network_roofline(network, config, peaks, grouped_only=True)))
    points = roofline_points(networks, config.impl)
    fp, batch = peaks.fingerprint, max(config.batch_sizes)
    title = (
        f"{arch_config.arch} at {config.resolution} px, B={batch}, {config.mode} step, impl {config.impl}: "
        f"{fp.device} ({fp.device_model}), {fp.dtype}, {fp.threads} thread(s)"
    )
    if plot:
        note(f"wrote {save_roofline_plot(points, peaks, plot, 'Roofline of ' + title)}")
    if args.format == "json":
        document = {
            "impl": config.impl,
            "resolution": config.resolution,
            "peaks": peaks.to_dict(),
            "networks": [{"config": c.to_dict(), "roofline": report.to_dict()} for c, report in networks],
            "points": points.to_dict(orient="records"),
        }
        emit(to_json(document))
        return
    if args.format in ("table", "markdown"):
        emit("\n".join([f"roofline of {title}", *peaks.lines(), f"time measured; {networks[0][1].traffic}"]))
    columns = ["network", "layer", "impl", *POINT_HEADERS]
    emit(render(points[columns], args.format, POINT_FORMATTERS, POINT_HEADERS))
    if args.format in ("table", "markdown"):
        emit("\n".join(summary_lines(points)))
