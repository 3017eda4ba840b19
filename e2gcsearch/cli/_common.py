"""Argument helpers shared by the subcommands: model flags, output format, one-line errors."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from ..config import ArchConfig
from ..report.tables import FORMATS


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (what is wrong + where to look) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps example blocks as written and shows defaults."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def int_list(text: str) -> tuple[int, ...]:
    """'1,4,16' → (1, 4, 16)."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of integers like 1,4,16, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers like 1,4,16, got {text!r}")
    return values


def float_list(text: str) -> tuple[float, ...]:
    """'0.25,0.5' → (0.25, 0.5)."""
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of numbers like 0.25,0.5, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers like 0.25,0.5, got {text!r}")
    return values


def name_list(text: str) -> tuple[str, ...]:
    """'mobilenet_v1,resnext50' → ('mobilenet_v1', 'resnext50')."""
    values = tuple(part.strip() for part in text.split(",") if part.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of names, got {text!r}")
    return values


def add_format_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="output format: human table, CSV/JSON with raw values, or Markdown")


def add_model_args(parser: argparse.ArgumentParser, resolution: int = 224, classes: int = 1000) -> None:
    """ARCH (--group-size G | --groups g) [--width W] [--resolution R] [--classes C]."""
    parser.add_argument("arch", metavar="ARCH", help="architecture: mobilenet_v1 or resnext50 (see 'e2gcsearch table')")
    parser.add_argument("--group-size", "-G", type=positive_int, metavar="G",
                        help="E2GC: channels per group of every grouped 3x3 conv (1 = depthwise)")
    parser.add_argument("--groups", "-g", type=positive_int, metavar="g",
                        help="FgGC: number of groups of every grouped 3x3 conv")
    parser.add_argument("--width", type=float, default=1.0,
                        help="width multiplier; channels are rounded so every grouped conv stays divisible")
    parser.add_argument("--resolution", type=int, default=resolution, help="input height and width in pixels")
    parser.add_argument("--classes", type=positive_int, default=classes, help="number of output classes")


def arch_config(args: argparse.Namespace) -> ArchConfig:
    """The ArchConfig the model flags describe (raises ConfigError with a fix)."""
    return ArchConfig(args.arch, group_size=args.group_size, groups=args.groups,
                      width=args.width, num_classes=args.classes)


def emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def note(text: str) -> None:
    """Status lines go to stderr so that stdout stays machine-readable."""
    sys.stderr.write(text + "\n")
