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
    >>> study_name("food101-G4_w0.5")
    'food101-G4_w0.5'
    >>> study_name("../escape")
    Traceback (most recent call last):
    ...
    e2gcsearch.errors.ConfigError: study name '../escape' may hold only letters, digits, '.', '_' and '-' (e.g. food101-tpe), and must not start with '.'
"""

from __future__ import annotations

import re
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


MAX_RESOLUTION = 2048  # px: Food-101's photos are at most 512 px; beyond this a batch of activations fills memory


def resolution(value: Any, minimum: int = 8) -> int:
    """``value`` when it is an image side a run can hold: ``minimum`` to :data:`MAX_RESOLUTION` pixels."""
    if not is_int(value, minimum=minimum) or value > MAX_RESOLUTION:
        raise ConfigError(
            f"resolution must be a whole number of pixels from {minimum} to {MAX_RESOLUTION} (e.g. 64), got {value!r}"
        )
    return value


STUDY_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
STUDY_NAME_MAX = 100


def study_name(name: Any) -> str:
    """``name`` when it is a study name every command can use: 1 to 100 letters, digits, ``.``, ``_``
    and ``-``, not starting with ``.``. Study names become folder names (``validate``'s checkpoints), so
    a separator, ``..``, an absolute path or an overlong name is refused before anything is written."""
    if not isinstance(name, str) or not name:
        raise ConfigError("the study name is empty; give one with --study NAME (e.g. --study food101-tpe)")
    if len(name) > STUDY_NAME_MAX:
        raise ConfigError(f"study name of {len(name)} characters is too long; use at most {STUDY_NAME_MAX}")
    if not STUDY_NAME.fullmatch(name):
        raise ConfigError(
            f"study name {name!r} may hold only letters, digits, '.', '_' and '-' (e.g. food101-tpe), "
            "and must not start with '.'"
        )
    return name
