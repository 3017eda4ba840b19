"""``e2gcsearch table``: the paper's Tables III and IV (params and MACs of every E2GC/FgGC row)."""

from __future__ import annotations

import argparse

from .. import paper
from ..tables import fixed, human_count, render
from ._common import HelpFormatter, add_format_arg, emit, positive_int

EXAMPLES = """\
examples:
  e2gcsearch table                       # 22 rows at 224x224, 1000 classes
  e2gcsearch table --format csv          # raw integer counts: arch,module,value,params,macs,...
  e2gcsearch table --resolution 112 --width 0.5
"""

# Human-readable rendering of the columns (CSV/JSON keep raw integers).
FORMATTERS = {"params": human_count, "macs": human_count, "activations": human_count, "ai": fixed(1)}
HEADERS = {"value": "G/g", "params": "params", "macs": "MACs", "activations": "activations", "ai": "AI (MAC/elem)"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "table", help="the paper's Tables III/IV: params and MACs of every E2GC and FgGC row",
        description=__doc__ + "\n\nE2GC rows fix the group size G; FgGC rows fix the number of groups g.",
        epilog=EXAMPLES, formatter_class=HelpFormatter)
    parser.add_argument("--resolution", type=int, default=224, help="input height and width in pixels")
    parser.add_argument("--width", type=float, default=1.0, help="width multiplier")
    parser.add_argument("--classes", type=positive_int, default=1000, help="number of output classes")
    add_format_arg(parser)
    parser.set_defaults(func=run)


def table_frame(args: argparse.Namespace):
    return paper.cost_table(resolution=args.resolution, width=args.width, num_classes=args.classes)


def run(args: argparse.Namespace) -> None:
    frame = table_frame(args)
    if args.format in ("table", "markdown"):
        frame = frame.drop(columns=["width", "resolution"])
    emit(render(frame, args.format, FORMATTERS, HEADERS))
