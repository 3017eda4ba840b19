"""What one command-line option is (:class:`Option`) and how the option tables declare one
(:func:`option`): :mod:`.option_table` holds the options every command shares, :mod:`.search_options`
those of ``run``'s search and its space."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Option:
    """One command-line option: its flags, how its text is read, its default and its help."""

    flags: tuple[str, ...]
    help: str
    type: Callable[[str], Any] | None = None
    default: Any = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    action: str | None = None  # "store_true" or "append"

    @property
    def dest(self) -> str:
        return self.flags[0].lstrip("-").replace("-", "_")


def option(*flags: str, help: str, **settings: Any) -> Option:
    """An :class:`Option`; a ``store_true`` flag defaults to False."""
    if settings.get("action") == "store_true":
        settings.setdefault("default", False)
    return Option(flags=flags, help=help, **settings)


__all__ = ["Option", "option"]
