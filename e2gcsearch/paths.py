"""Where e2gcsearch keeps what it caches (decoded data, profiles, device profiles, checkpoints).

One base folder: ``$E2GCSEARCH_CACHE_DIR`` when set, else ``${XDG_CACHE_HOME:-~/.cache}/e2gcsearch``.
Each kind of cache is a subfolder of it (``tensors``, ``profiles``, ``checkpoints``, …); a command's
``--cache-dir DIR`` moves the base folder, as the environment variable does.

Example:
    >>> str(cache_home({"E2GCSEARCH_CACHE_DIR": "/tmp/e2gc"}))
    '/tmp/e2gc'
    >>> str(cache_home({"XDG_CACHE_HOME": "/var/cache"}))
    '/var/cache/e2gcsearch'
    >>> str(cache_folder(PROFILES, "/tmp/e2gc"))
    '/tmp/e2gc/profiles'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

CACHE_ENV = "E2GCSEARCH_CACHE_DIR"
TENSORS = "tensors"    # decoded images of a data subset (e2gcsearch.data)
PROFILES = "profiles"  # EPF measurements (e2gcsearch.profiling)


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


def cache_folder(kind: str, home: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The folder of one kind of cache (``TENSORS``, ``PROFILES``) under ``home``, else under :func:`cache_home`."""
    return (Path(home).expanduser() if home else cache_home(environ)) / kind
