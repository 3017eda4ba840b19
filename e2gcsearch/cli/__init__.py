"""The ``e2gcsearch`` command: parses arguments and calls the library, nothing else.

Each subcommand lives in its own module with ``register(subparsers)``; it sets ``func`` to a
function ``(args) -> int | None`` that does the work.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

from ..console import DEBUG_ENV, debugging
from ..errors import UserError
from ..paths import is_disk_full
from ..version import __version__
from ._common import HelpFormatter, Parser

# Subcommand modules, in the order `e2gcsearch --help` lists them.
COMMANDS = (
    "table",
    "cost",
    "profile",
    "train",
    "run",
    "confirm",
    "studies",
    "front",
    "export",
    "validate",
    "analyze",
    "model",
)

DESCRIPTION = """\
Search the group size (E2GC) or number of groups (FgGC) of MobileNet-V1 and ResNeXt-50 against
measured energy per frame and proxy accuracy.

examples:
  e2gcsearch run --objective epf,top1               # search; resumable, ends with the Pareto front
  e2gcsearch front --plot front.png                 # inspect the front
  e2gcsearch export --trial 7 --out model.py        # take a point away as a torch-only builder
  e2gcsearch validate --top 3                       # full training: did the proxy rank them right?
  e2gcsearch table                                  # the paper's Tables III/IV (params, MACs)
  e2gcsearch profile mobilenet_v1 --group-size 4 --width 0.25 --resolution 64
  e2gcsearch --debug run --trials 2                 # full tracebacks instead of one line per error
"""


def build_parser() -> Parser:
    parser = Parser(prog="e2gcsearch", description=DESCRIPTION, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"e2gcsearch {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show full tracebacks (of errors, failed trials and Ctrl-C) instead of one line each; "
        "give it before the command: e2gcsearch --debug run ...",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.debug:
        os.environ[DEBUG_ENV] = "1"  # worker processes inherit it
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        _traceback()
        sys.stderr.write(f"e2gcsearch {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        _traceback()
        sys.stderr.write(f"e2gcsearch {args.command}: interrupted\n")
        return 130
    except BrokenPipeError:  # e.g. `e2gcsearch table | head`
        return 0
    except Exception as exc:  # a bug or an environment problem nobody foresaw: one line, the rest on request
        if debugging():
            raise
        if is_disk_full(exc):
            sys.stderr.write(
                f"e2gcsearch {args.command}: error: the disk is full; free some space and run it again "
                "(what was written before is kept)\n"
            )
            return 2
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        sys.stderr.write(
            f"e2gcsearch {args.command}: error: {type(exc).__name__}: {first} (unexpected; "
            f"'e2gcsearch --debug {args.command} ...' shows the traceback, please report it)\n"
        )
        return 1


def _traceback() -> None:
    if debugging():
        traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main())
