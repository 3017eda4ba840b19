"""Checks of user-facing numbers that every config class shares, each failing with one sentence.

Example:
    >>> positive_int("repeats", 5, example="5")
    5
    >>> positive_int("repeats", 0, example="5")
    Traceback (most recent call last):
    ...
    e2gcsearch.errors.ConfigError: repeats must be a positive integer (e.g. 5), got 0
    >>> is_int(True), is_int(8, minimum=8), is_int(4.0)
    (False, True, False)
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError


def is_int(value: Any, minimum: int = 1) -> bool:
    """True when ``value`` is an ``int`` (``bool`` is not a number here) of at least ``minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def positive_int(name: str, value: Any, example: str | None = None, optional: bool = False) -> Any:
    """``value`` when it is a positive integer (or ``None`` with ``optional``), else a :class:`ConfigError`
    saying ``<name> must be a positive integer (e.g. <example>)[ or None], got <value>``."""
    if (optional and value is None) or is_int(value):
        return value
    hint = f" (e.g. {example})" if example else ""
    alternative = " or None" if optional else ""
    raise ConfigError(f"{name} must be a positive integer{hint}{alternative}, got {value!r}")
