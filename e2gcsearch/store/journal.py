"""Journal files that survive a torn write: a full disk, a power cut or a killed process can leave the
last record of an Optuna journal half-written.

Optuna tolerates a torn *last* line when reading, but the next record is appended right after the
torn bytes, and the merged line then fails to parse on every later read: the whole study becomes
unreadable. Two defences:

- :func:`open_journal` writes through :class:`WholeRecordBackend`, whose appends are whole or absent: a
  write that fails part-way (``ENOSPC``) is cut back off the file before the error is raised, as one
  :class:`~e2gcsearch.errors.DataError` sentence;
- :func:`repair_journal` runs before a journal is opened, for the tears no process could undo (a power
  cut, ``kill -9`` mid-write, an older version): under the journal's own lock it cuts a torn tail off
  (it can only be a record that never completed), salvages the whole record that follows torn bytes
  inside a line, and keeps every byte it removes in a ``<journal>.torn-<time>`` file beside the
  journal, so nothing is lost silently.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "s.log"
    >>> _ = path.write_bytes(b'{"op_code":0,"study_name":"s"}\\n{"op_code":4,"stu')
    >>> repair_journal(path)[0].startswith(f"journal {path}: removed 1 torn record")
    True
    >>> path.read_bytes()
    b'{"op_code":0,"study_name":"s"}\\n'
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from pathlib import Path
from typing import Any

from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage

from ..errors import ConfigError, DataError, DiskFullError
from ..paths import is_disk_full, write_problem

RECORD_START = b'{"op_code"'  # how Optuna writes every journal record (json.dumps, compact separators)


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _mend(lines: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """(lines to keep, bytes removed): a last line without its newline is torn; a line that does not
    parse keeps the last whole record in it, if any."""
    kept, removed = [], []
    for index, line in enumerate(lines):
        if not line.endswith(b"\n") and index == len(lines) - 1:
            removed.append(line)
            continue
        if _parses(line):
            kept.append(line)
            continue
        start = line.rfind(RECORD_START)
        if start > 0 and _parses(line[start:]):
            kept.append(line[start:])
            removed.append(line[:start])
        else:
            removed.append(line)
    return kept, removed


def require_journal(path: str | Path, data: bytes | None = None) -> None:
    """Nothing, when ``path`` is missing, empty or an Optuna journal; else a one-line error (another
    program's log, say, which must not be appended to or repaired)."""
    path = Path(path)
    if data is None:
        if not path.is_file():
            return
        with path.open("rb") as handle:
            data = handle.readline()
    first = data.split(b"\n", 1)[0]
    if data and not (first.startswith(RECORD_START) and _parses(first)):
        raise ConfigError(
            f"{path} is not an Optuna journal (its first line is no journal record), so it was left "
            "as it is; give a new or an existing journal file (.log or .jsonl) with --storage"
        )


def repair_journal(path: str | Path) -> list[str]:
    """Cut torn records out of the journal at ``path`` (under Optuna's journal lock); return one line per
    repair made, for the user (empty when the journal was whole or does not exist).

    Raises:
        ConfigError: the file is not an Optuna journal (its first line is no journal record), e.g. another
            program's log: it is left untouched.
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return []
    data = path.read_bytes()
    require_journal(path, data)
    if data.endswith(b"\n") and all(_parses(line) for line in data.splitlines(keepends=True)):
        return []
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        lines = path.read_bytes().splitlines(keepends=True)  # again, now that no process appends
        kept, removed = _mend(lines)
        if not removed:
            return []
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%f")
        aside = path.with_name(f"{path.name}.torn-{stamp}")
        aside.write_bytes(b"\n".join(part.rstrip(b"\n") for part in removed) + b"\n")
        temporary = path.with_name(f".{path.name}.repair")
        temporary.write_bytes(b"".join(kept))
        os.replace(temporary, path)
    finally:
        lock.release()
    return [
        f"journal {path}: removed {len(removed)} torn record(s) left by an interrupted write (a full disk or a "
        f"killed process); the bytes are kept in {aside}. A trial that was running then is failed and its "
        "point queued again at the next 'e2gcsearch run'"
    ]


def write_all(fd: int, data: bytes) -> None:
    """Write ``data`` at the end of the file open as ``fd`` (``O_APPEND``) and onto the disk: the one place
    a journal write happens, unbuffered, so that no buffer is flushed after a failed write is undone."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


class WholeRecordBackend(JournalFileBackend):
    """Optuna's journal file backend, whose appends are whole or absent: if the write fails part-way (a
    full disk, a quota), the file is cut back to its length before the write, under the journal's lock,
    and the error is one sentence (:func:`~e2gcsearch.paths.write_problem`). Reads are Optuna's."""

    def __init__(self, path: str) -> None:
        self._path, self._whole_lock = path, JournalFileSymlinkLock(path)
        super().__init__(path, lock_obj=self._whole_lock)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode("utf-8")
        self._whole_lock.acquire()
        try:
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND)
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                write_all(fd, data)
            except OSError as exc:
                with contextlib.suppress(OSError):  # if even this fails, repair_journal cuts it at the next open
                    os.ftruncate(fd, start)
                kind = DiskFullError if is_disk_full(exc) else DataError
                raise kind(write_problem(exc, self._path, "the study storage")) from None
            finally:
                os.close(fd)
        finally:
            self._whole_lock.release()


def open_journal(path: str | Path) -> JournalStorage:
    """The journal at ``path`` as an Optuna storage, repaired first (warnings through ``note``) and written
    through :class:`WholeRecordBackend`."""
    from ..console import note

    for line in repair_journal(path):  # a torn record would make every later read fail
        note(f"warning: {line}")
    return JournalStorage(WholeRecordBackend(str(path)))
