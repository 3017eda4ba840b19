"""The one writer of progress and notes: a line on standard error, so standard output keeps only
the table or document a command was asked for (and stays pipeable)."""

from __future__ import annotations

import os
import sys


def note(text: str) -> None:
    """Print ``text`` as one line (or several, if it holds newlines) on standard error."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


DEBUG_ENV = "E2GCSEARCH_DEBUG"  # set by 'e2gcsearch --debug'; inherited by worker processes


def debugging() -> bool:
    """True under ``e2gcsearch --debug`` (or ``$E2GCSEARCH_DEBUG=1``): show tracebacks, not one line."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")
