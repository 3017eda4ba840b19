"""What every subcommand shares besides its options (those are in :mod:`.options`): the parser with
one-line errors, the help formatter, the readers of option text, and the two output streams."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from ..console import note  # noqa: F401 - the commands' stderr writer, beside emit
from ..errors import ConfigError


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (what is wrong + where to look) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps example blocks as written and shows defaults; an unset default (``None``: the help says what
    happens then) and an off switch are not shown as "(default: None)" / "(default: False)"."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


SEED_MAX = 2**32 - 1  # numpy's and Optuna's samplers take seeds in [0, 2**32 - 1]


def seed(text: str) -> int:
    """A random seed: a whole number from 0 to 2**32 - 1."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to {SEED_MAX}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def trial_number(text: str) -> int:
    """A trial's number: a whole number from 0 (as 'e2gcsearch front --all' lists them)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"expected a trial number (0, 1, 2, ...; 'e2gcsearch front --all' lists them), got {text!r}"
        )
    return value


def resolution(text: str) -> int:
    """An image side in pixels: 8 to :data:`~e2gcsearch.checks.MAX_RESOLUTION`."""
    from ..checks import resolution as check

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of pixels (e.g. 64), got {text!r}") from None
    try:
        return check(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def folder(text: str) -> str:
    """A folder to write into: missing (it is made) or a folder, never an existing file."""
    path = Path(text).expanduser()
    if not text or (path.exists() and not path.is_dir()):
        raise argparse.ArgumentTypeError(
            f"{text!r} is a file, not a folder; give a folder (it is made if missing)"
            if text
            else "expected a folder, got ''"
        )
    return text


def watts(text: str) -> float:
    """A power in watts for the estimate backend (the meter's own rule)."""
    from ..energy.estimate import parse_power

    try:
        return parse_power(text, "the power")
    except ValueError as exc:  # ConfigError
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_float(text: str) -> float:
    """A number of seconds (or the like) above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _positive_list(text: str, kind: type, noun: str, example: str) -> tuple:
    """``text`` as a tuple of positive ``kind`` values, or one line saying what was expected."""
    try:
        values = tuple(kind(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {noun}s like {example}, got {text!r}"
        ) from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive {noun}s like {example}, got {text!r}")
    return values


def int_list(text: str) -> tuple[int, ...]:
    """'1,4,16' → (1, 4, 16)."""
    return _positive_list(text, int, "integer", "1,4,16")


def float_list(text: str) -> tuple[float, ...]:
    """'0.25,0.5' → (0.25, 0.5)."""
    return _positive_list(text, float, "number", "0.25,0.5")


def class_list(text: str) -> int | tuple[str, ...]:
    """'10' → 10 (the first ten classes); 'apple_pie,baklava' → those classes."""
    text = text.strip()
    if text.isdigit():
        return positive_int(text)
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected a number or a comma-separated list of class names, got {text!r}")
    return names


def threads(text: str) -> int | str | None:
    """A torch thread count: ``auto`` (measured), a positive number, or 0 for torch's default (``None``)."""
    text = text.strip().lower()
    if text == "auto":
        return "auto"
    try:
        return None if text == "0" else positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected auto, 0 or a positive number of threads, got {text!r}") from None


def name_list(text: str) -> tuple[str, ...]:
    """'mobilenet_v1,resnext50' → ('mobilenet_v1', 'resnext50')."""
    values = tuple(part.strip() for part in text.split(",") if part.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of names, got {text!r}")
    return values


def emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def index_list(text: str) -> tuple[int, ...]:
    """'0,1' → (0, 1): device indices (zero or more, no repeats)."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 0 or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"expected distinct device indices like 0,1, got {text!r}")
    return values
