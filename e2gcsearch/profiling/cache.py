"""What one profiled batch size records, the device fingerprint, and the on-disk cache that
stores them so a search never measures the same thing twice.

One JSON file per measurement, named by the SHA-256 of its key::

    key = (ArchConfig, batch size, resolution, device fingerprint, mode)

where the fingerprint (:class:`~e2gcsearch.profiling.fingerprint.DeviceFingerprint`) holds the device
model, driver, torch version, dtype, memory format (and the implementation where the layout does not
name it, e.g. ``compile``), thread count and the meter's label (backend and, for the estimate, its
power model) — so a different machine, precision,
implementation or power model is a different entry. The mode is left out of the key for ``train``
(the paper's step, which entries written before modes existed measured) and written for ``infer``.
``--impl auto`` stores its choice per batch size under the key of the request (implementation
``auto``, :func:`choice_key`) and the measurement under the key of the implementation it chose, so
a later run neither calibrates nor measures again, and shares the entry with a run that asked for
that implementation by name. Protocol settings (repeats, window
length) are not in the key: an entry is reused when it is at least as precise as asked (as many
repeats, a window as long), and replaced otherwise.

Location: ``ProfileConfig.cache_dir`` when given; else ``$E2GCSEARCH_CACHE_DIR/profiles``; else
``${XDG_CACHE_HOME:-~/.cache}/e2gcsearch/profiles``. Delete the directory to forget everything.
Writes are atomic (temporary file + rename), so parallel search workers can share one cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import ArchConfig
from ..paths import PROFILES, cache_folder
from .fingerprint import DeviceFingerprint

SCHEMA = 1


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where profiles are cached when no directory is given (see the module docstring)."""
    return cache_folder(PROFILES, environ=environ)


def cache_key(
    arch_config: ArchConfig, batch_size: int, resolution: int, fingerprint: DeviceFingerprint, mode: str = "train"
) -> dict[str, Any]:
    """The identity of one measurement, as a JSON-ready dict."""
    key = {
        "schema": SCHEMA,
        "arch": arch_config.to_dict(),
        "batch_size": int(batch_size),
        "resolution": int(resolution),
        "fingerprint": fingerprint.key(),
    }
    return key if mode == "train" else key | {"mode": mode}


def choice_key(measurement_key: Mapping[str, Any]) -> dict[str, Any]:
    """The identity of an ``auto`` choice made for a measurement whose key (of the request) is given."""
    return dict(measurement_key) | {"entry": "implementation choice"}


class ProfileCache:
    """A directory of cached :class:`~e2gcsearch.profiling.BatchProfile` dicts.

    Args:
        directory: where the entries live (created on the first write).
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory else default_cache_dir()

    def path(self, key: Mapping[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        return self.directory / digest[:2] / f"{digest}.json"

    def load(self, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """The stored profile dict for ``key``, or ``None`` (missing, unreadable or another key)."""
        path = self.path(key)
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(document, dict) or document.get("key") != json.loads(json.dumps(key)):
            return None  # a hash collision or a damaged file: measure again
        profile = document.get("profile")
        return profile if isinstance(profile, dict) else None

    def store(self, key: Mapping[str, Any], profile: Mapping[str, Any]) -> Path:
        """Write ``profile`` under ``key`` atomically; returns the file written."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {"key": key, "profile": dict(profile)}
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w") as stream:
                json.dump(document, stream, indent=1, sort_keys=True)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("??/*.json")) if self.directory.is_dir() else 0
