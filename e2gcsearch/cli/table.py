"""``e2gcsearch table``: the paper's Tables III and IV (params and MACs of every E2GC/FgGC row),
optionally with measured EPF per batch size (``--measure``)."""

from __future__ import annotations

import argparse

import pandas as pd

from .. import paper
from ..profiling import epf_columns, profile_many
from ..report.tables import fixed, human_count, render
from ._common import HelpFormatter, emit, name_list, note
from .configs import profile_config
from .options import MEASUREMENT, MODEL, OUTPUT, Group, add_options
from .profile import backend_lines

EXAMPLES = """\
examples:
  e2gcsearch table                       # 22 rows at 224x224, 1000 classes
  e2gcsearch table --format csv          # raw integer counts: arch,module,value,params,macs,...
  e2gcsearch table --resolution 112 --width 0.5
  e2gcsearch table --arch resnext50      # the same rows for one network (any registered one)
  e2gcsearch table --arch regnet_y_400mf,mobilenet_v2 --format markdown   # torchvision's networks
  e2gcsearch table --measure --resolution 64 --width 0.25 --batch-sizes 1,4,16
                                         # + EPF columns (mJ/frame) per batch size, naming the backend
"""

# Human-readable rendering of the columns (CSV/JSON keep raw integers).
FORMATTERS = {"params": human_count, "macs": human_count, "activations": human_count, "ai": fixed(1)}
HEADERS = {"value": "G/g", "params": "params", "macs": "MACs", "activations": "activations", "ai": "AI (MAC/elem)"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "table",
        help="the paper's Tables III/IV: params and MACs of every E2GC and FgGC row",
        description=__doc__ + "\n\nE2GC rows fix the group size G; FgGC rows fix the number of groups g.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--arch",
        type=name_list,
        default=None,
        metavar="NAME[,NAME]",
        help="comma list of architectures; default: the networks of the paper's Tables III/IV",
    )
    add_options(parser, Group("network", ("width", "resolution", "classes"), MODEL.defaults))
    parser.add_argument(
        "--measure",
        action="store_true",
        help="also profile every row and add EPF columns (mJ/frame) per batch size at this "
        "resolution and width; on a CPU keep it small, e.g. --resolution 64 --width 0.25",
    )
    add_options(parser, MEASUREMENT._replace(title="energy measurement (with --measure)"), OUTPUT)
    parser.set_defaults(func=run)


def table_frame(args: argparse.Namespace):
    return paper.cost_table(resolution=args.resolution, width=args.width, num_classes=args.classes, archs=args.arch)


def run(args: argparse.Namespace) -> None:
    for config, reason in paper.refused_configs(args.width, args.classes, args.arch):
        note(f"note: no row for {config.label()}: {reason}")
    frame = table_frame(args)
    formatters, headers = dict(FORMATTERS), dict(HEADERS)
    if args.measure:
        configs = paper.table_configs(width=args.width, num_classes=args.classes, archs=args.arch)
        results = profile_many(configs, profile_config(args, threads=args.threads), progress=note)
        frame = pd.concat([frame, pd.DataFrame(epf_columns(results))], axis=1)
        backend = results[0].backend
        for batch_size in args.batch_sizes:
            formatters[f"epf_mj_b{batch_size}"] = fixed(3)
            headers[f"epf_mj_b{batch_size}"] = f"EPF B={batch_size} (mJ/frame, {backend})"
        headers["epf_backend"] = "backend"
        headers["epf_impl"] = f"impl ({results[0].mode} mode)"
        backend_line, *skipped = backend_lines(results[0])
        for line in skipped if args.format in ("table", "markdown") else [backend_line, *skipped]:
            note(line)
        if args.format in ("table", "markdown"):
            emit(f"EPF at {args.resolution}x{args.resolution} px, width {args.width:g}; {backend_line}")
    if args.format in ("table", "markdown"):
        frame = frame.drop(columns=["width", "resolution"])
    emit(render(frame, args.format, formatters, headers))
