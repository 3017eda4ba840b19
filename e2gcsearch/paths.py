"""Where e2gcsearch keeps what it caches (decoded data, profiles, device profiles, checkpoints).

One base folder: ``$E2GCSEARCH_CACHE_DIR`` when set, else ``${XDG_CACHE_HOME:-~/.cache}/e2gcsearch``.
Each kind of cache is a subfolder of it (``data``, ``profiles``, …).

Example:
    >>> str(cache_home({"E2GCSEARCH_CACHE_DIR": "/tmp/e2gc"}))
    '/tmp/e2gc'
    >>> str(cache_home({"XDG_CACHE_HOME": "/var/cache"}))
    '/var/cache/e2gcsearch'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

CACHE_ENV = "E2GCSEARCH_CACHE_DIR"


def user_cache_home(environ: Mapping[str, str] | None = None) -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/e2gcsearch``, whatever ``$E2GCSEARCH_CACHE_DIR`` says."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "e2gcsearch"


def cache_home(environ: Mapping[str, str] | None = None) -> Path:
    """Base folder of everything e2gcsearch caches (see the module docstring)."""
    environ = os.environ if environ is None else environ
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV]).expanduser()
    return user_cache_home(environ)
