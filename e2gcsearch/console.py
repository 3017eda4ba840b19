"""The one writer of progress and notes: a line on standard error, so standard output keeps only
the table or document a command was asked for (and stays pipeable)."""

from __future__ import annotations

import sys


def note(text: str) -> None:
    """Print ``text`` as one line (or several, if it holds newlines) on standard error."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
