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

import errno
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .errors import DataError

CACHE_ENV = "E2GCSEARCH_CACHE_DIR"
TENSORS = "tensors"  # decoded images of a data subset (e2gcsearch.data)
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


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an exception it was raised from or during, is a write that failed for want of
    space (``ENOSPC``, a quota, SQLite's "database or disk is full" inside the storage's own error)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "disk is full" in str(exc).lower():
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def write_problem(exc: OSError, path: Path | str, what: str) -> str:
    """One sentence for an ``OSError`` met while writing ``path`` (``what``: "the study storage",
    "the cache dir"): a read-only file or folder, a full disk, a file where a folder should be."""
    code = getattr(exc, "errno", None)
    if is_disk_full(exc):
        return f"the disk holding {what} {path} is full; free some space or choose another location"
    if code in (errno.EROFS,) or "readonly" in str(exc).lower().replace("-", "").replace(" ", ""):
        return f"{what} {path} is read-only; make it writable or choose another location"
    if code in (errno.EACCES, errno.EPERM):
        return f"{what} {path} is not writable (permission denied); make it writable or choose another location"
    if code in (errno.ENOTDIR, errno.EEXIST):
        return f"{what} {path} is (inside) a file, not a folder; choose a folder"
    return f"cannot write {what} {path} ({exc.strerror or exc}); choose another location"


def probe_writable(folder: Path | str, what: str, file: Path | str | None = None) -> None:
    """Check that ``folder`` (``what``: "the checkpoint folder") takes a new file (a missing one: that
    its nearest existing parent does), and that ``file`` (if it exists) can be written, by writing and
    removing a small probe; an ``OSError`` becomes one :class:`DataError` sentence (see
    :func:`write_problem`). Nothing is left behind, not even a folder."""
    folder = Path(folder).expanduser().absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(existing))
        if _read_only(existing):
            raise PermissionError(errno.EROFS, "read-only", str(existing))
        handle, probe = tempfile.mkstemp(prefix=".e2gcsearch-probe-", dir=existing)
        try:
            os.write(handle, b"\0" * 4096)
            os.fsync(handle)
        finally:
            os.close(handle)
            os.unlink(probe)
    except OSError as exc:
        raise DataError(write_problem(exc, existing if existing.is_file() else folder, what)) from None
    if file is not None and Path(file).exists() and _read_only(Path(file)):
        raise DataError(write_problem(OSError(errno.EROFS, "read-only"), file, "the file"))


def _read_only(path: Path) -> bool:
    """True when ``path`` cannot be written, or is marked read-only for everyone (``chmod a-w``: the
    superuser could still write it, but the mark says the owner does not want that)."""
    return not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222
