"""Errors a user can fix.

Every exception derived from :class:`UserError` carries one sentence that says what is wrong and
how to fix it. The command line prints it on one line and exits with status 2; library callers get
an ordinary ``ValueError`` (or ``LookupError``/``OSError``) subclass they can catch.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input that the user can fix; the message says how."""


class ConfigError(UserError, ValueError):
    """An architecture or run configuration that cannot be built as asked."""


class UnknownNameError(UserError, LookupError):
    """A name (architecture, backend, dataset, study, trial, …) that does not exist."""

    def __str__(self) -> str:  # LookupError would quote the message; keep it a plain sentence
        return str(self.args[0]) if self.args else ""


class DataError(UserError, OSError):
    """Missing, unreadable or insufficient data."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DiskFullError(DataError):
    """A write that failed for want of space (``ENOSPC``, SQLite's "database or disk is full")."""
