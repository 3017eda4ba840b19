"""``e2gcsearch studies``: the studies in a storage, with their objectives, trial counts and what the
search itself used: the energy of every training and measurement its trials, calibration and
validation recorded (with the meter that read it: 'estimate' is time x a power model), and their time."""

from __future__ import annotations

import argparse

import optuna

from ..report.search_cost import duration_text, energy_text
from ..report.tables import render
from ..store.storage import open_study, redact, studies_frame
from ._common import HelpFormatter, emit, note
from .options import OUTPUT, STUDY, add_option, add_options

EXAMPLES = """\
examples:
  e2gcsearch studies                                     # studies in sqlite:///studies/e2gcsearch.db
  e2gcsearch studies --storage studies/e2gcsearch.log    # a journal file written by 'run --workers N'
  e2gcsearch studies --format csv
"""


def add_study_args(parser: argparse.ArgumentParser) -> None:
    """--study NAME and --storage URL, with the defaults every command shares."""
    add_options(parser, STUDY)


def load_study(args: argparse.Namespace) -> optuna.Study:
    """The study named by --study in --storage (one-line errors for unknown names or storages)."""
    return open_study(args.storage, args.study)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "studies",
        help="list the studies in a storage with trial counts and objectives",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    add_option(parser, "storage")
    add_options(parser, OUTPUT)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    frame = studies_frame(args.storage)
    if frame.empty and args.format in ("table", "markdown"):
        note(f"{redact(args.storage)} holds no study yet; 'e2gcsearch run --storage {redact(args.storage)}' starts one")
        return
    emit(render(frame, args.format, FORMATTERS, HEADERS))


def _energy(joules: float | None) -> str:
    return "not recorded" if joules is None or joules != joules else energy_text(joules)  # NaN: not recorded


def _time(seconds: float | None) -> str:
    return "-" if seconds is None or seconds != seconds else duration_text(seconds)


FORMATTERS = {"search_energy_j": _energy, "search_energy_source": lambda source: source or "-", "search_time_s": _time}
HEADERS = {"search_energy_j": "search energy", "search_energy_source": "meter", "search_time_s": "search time"}
