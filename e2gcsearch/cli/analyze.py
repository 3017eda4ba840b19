"""``e2gcsearch analyze``: the paper's Table II quantities of every grouped conv of a network, and its
Fig. 3 (MACs, AI and 1/AI of one layer against G) as a PNG or HTML plot."""

from __future__ import annotations

import argparse

from ..energy_model import DeviceProfile, fig3_frame, layer_table
from ..energy_model.equations import FIG3_SHAPE
from ..errors import ConfigError
from ..report.tables import fixed, human_count, render, to_json
from ._common import HelpFormatter, emit, int_list, note
from .configs import arch_config_from
from .options import MODEL, OUTPUT, add_options

EXAMPLES = """\
examples:
  e2gcsearch analyze mobilenet_v1 --group-size 4 --plot fig3.png    # per-layer table + the paper's Fig. 3
  e2gcsearch analyze resnext50 --groups 32 --format csv
  e2gcsearch analyze mobilenet_v1 -G 8 --plot fig3.html --fig3-shape 256,256,3,28
  e2gcsearch analyze mobilenet_v1 -G 4 --plot fig3.png --profile device-profile.json   # + modelled energy

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


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="Table II quantities (M_c, P, A, AI) of every grouped conv; the paper's Fig. 3",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    add_options(parser, MODEL, OUTPUT)
    parser.add_argument("--plot", metavar="FILE", help="draw Fig. 3 to FILE (.png, .pdf, .svg or .html)")
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
