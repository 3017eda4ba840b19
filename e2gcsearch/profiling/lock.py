"""Exclusive measurement per device: while one process measures energy on a device, no other
e2gcsearch process of the host trains on it.

Energy counters read a whole device (NVML the whole board, RAPL the whole CPU package), and the
estimate's clock slows down when another process shares the cores. A measurement window that overlaps
another worker's training therefore charges that training to the measured network. So every process
of a host coordinates through two lock files per device (``<device key>.{room,turnstile}``, the key
naming the device model and board), kept in one folder of the host that every user can open
(:func:`host_lock_folder`: ``/tmp/e2gcsearch-locks``, or ``$E2GCSEARCH_LOCK_DIR``), so two users,
or one user with two cache folders, still take turns. The folder is made like ``/tmp`` (mode 1777:
anyone may create a file, no one may remove another's) and the files mode 666; where it cannot be
made or opened, the lock falls back to ``<profiles>/.locks`` beside the profile cache, with a note
(it then coordinates only the processes that share that cache):

* a **trainer** holds ``room`` shared while it runs steps. Between two steps it probes ``turnstile``
  (shared, non-blocking); when a measurement holds it, the trainer lets go of ``room`` and waits on
  ``turnstile`` until the measurement is over, then takes ``room`` again and carries on;
* a **measurement** takes ``turnstile`` exclusive first (from then on no trainer enters the room), then
  ``room`` exclusive, which it gets as soon as every trainer has reached the end of its current step.

Without the turnstile a measurement waiting for ``room`` could wait for ever: flock/fcntl give no
preference to a waiting exclusive lock, and trainers that take the shared lock back between steps
always overlap. With it, a measurement waits at most one step of each trainer; trainers hold the
turnstile only for the instant of a probe, so a measurement wanting it gets it at once.

The seconds a measurement waited for the device and the seconds a trainer stood aside are counted
(:attr:`DeviceLock.waited_s`, :attr:`DeviceLock.paused_s`); a trial records them.

Locks are ``flock`` locks on local files: they coordinate the processes of one host, which is what
shares a device. A lock folder on a network file system may not honour them. Processes that are not
e2gcsearch's never take the lock; the windows record their load instead (:mod:`e2gcsearch.energy.load`).

Example:
    >>> import tempfile
    >>> lock = DeviceLock(tempfile.mkdtemp(), "cpu")   # DeviceLock.for_device("cpu"): the host-wide one
    >>> with lock.exclusive():
    ...     pass                                   # measure here: no trainer of this host runs
    >>> with lock.shared() as step_boundary:
    ...     for step in range(3):
    ...         step_boundary()                    # a trainer stands aside here while someone measures
    >>> lock.waited_s >= 0 and lock.paused_s >= 0
    True
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from ..console import note
from ..devices import cuda_uuid, parse_device
from ..errors import DataError
from ..paths import write_problem
from .fingerprint import cpu_model

LOCKS = ".locks"  # the fallback folder's name under the profile cache
LOCK_DIR_ENV = "E2GCSEARCH_LOCK_DIR"
HOST_LOCKS = "e2gcsearch-locks"
NAMES = ("turnstile", "room")


def host_lock_folder(environ: dict[str, str] | None = None) -> Path:
    """The host-wide lock folder: ``$E2GCSEARCH_LOCK_DIR``, else ``/tmp/e2gcsearch-locks`` (``/tmp``
    itself, not ``$TMPDIR``, which may be private to one user, as on macOS)."""
    environ = os.environ if environ is None else environ
    return Path(environ.get(LOCK_DIR_ENV) or Path("/tmp") / HOST_LOCKS).expanduser()


def _shared_folder(folder: Path) -> None:
    """Make ``folder`` like /tmp (sticky, everyone may create files), unless it exists; a folder
    that is a symbolic link is refused (another user could point it anywhere)."""
    try:
        folder.mkdir(mode=0o1777, parents=True)
        os.chmod(folder, 0o1777)  # mkdir's mode passes through the umask
    except FileExistsError:
        pass
    if not stat.S_ISDIR(os.lstat(folder).st_mode):
        raise NotADirectoryError(f"{folder} is not a folder of its own")


def _open_lock_file(path: Path) -> int:
    """A descriptor of ``path`` for flock: created mode 666 so other users can lock it too; one made
    by another user without write access for us is opened read-only (flock needs no more)."""
    flags = os.O_CREAT | os.O_EXCL | os.O_RDWR | getattr(os, "O_NOFOLLOW", 0)
    try:
        handle = os.open(path, flags, 0o666)
        os.fchmod(handle, 0o666)  # past the umask
        return handle
    except FileExistsError:
        pass
    try:
        return os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except PermissionError:
        return os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))


def device_key(device: str) -> str:
    """A file-name-safe key naming one device of this host: its kind, model and board UUID, so that two
    processes that see one board under different ``CUDA_VISIBLE_DEVICES`` indices share its lock (the
    index stands in when torch gives no UUID); every CPU socket of the host is one key."""
    kind, index = parse_device(device)
    if kind == "cuda":
        model = torch.cuda.get_device_name(index)
        name = f"cuda-{model}-{cuda_uuid(index) or index}"
    else:
        name = f"cpu-{cpu_model()}"
    readable = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:60]
    return f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


class DeviceLock:
    """The measurement lock of one device (see the module docstring).

    Args:
        folder: where the lock files are (:func:`host_lock_folder` through :meth:`for_device`).
        key: the device's key (:func:`device_key`).
        device: the torch device (``cuda:N``): a trainer waits for its queued kernels before it
            stands aside, so that none of them runs inside another process's window.
        fallback: the folder to use, with a note, when ``folder`` cannot be made or opened.

    Not for two threads of one process at once; a process measuring while it holds the shared lock
    lets go of it for the measurement (it cannot train and measure at the same time anyway).
    """

    def __init__(
        self, folder: str | Path, key: str, device: str | None = None, fallback: str | Path | None = None
    ) -> None:
        self.folder = Path(folder).expanduser()
        self.fallback = Path(fallback).expanduser() if fallback is not None else None
        self.key, self.device = key, device
        self.waited_s = 0.0  # seconds measurements of this process waited for the device
        self.paused_s = 0.0  # seconds trainers of this process stood aside for other measurements
        self._files: dict[str, int] = {}
        self._sharing = False

    @classmethod
    def for_device(
        cls, device: str, folder: str | Path | None = None, *, fallback: str | Path | None = None
    ) -> DeviceLock:
        """The host-wide lock of ``device`` (in ``folder`` when given), falling back to ``fallback``
        (e.g. ``<profile cache>/.locks``) when that folder cannot be used."""
        return cls(folder if folder is not None else host_lock_folder(), device_key(device), device, fallback)

    @classmethod
    def host_wide(cls, device: str, profiles: str | Path) -> DeviceLock:
        """The lock every e2gcsearch process of the host takes for ``device``, whatever its user or
        cache; ``<profiles>/.locks`` (the profile cache's) when the host-wide folder cannot be used."""
        return cls.for_device(device, fallback=Path(profiles).expanduser() / LOCKS)

    def _file(self, name: str) -> int:
        if not self._files:  # both files at once, so a fallback never splits them between two folders
            try:
                self._open_in(self.folder, shared=self.folder == host_lock_folder())
            except OSError as exc:
                if self.fallback is None or self.fallback == self.folder:
                    raise DataError(write_problem(exc, self.folder, "the measurement lock folder")) from None
                note(
                    f"note: the host-wide measurement lock folder {self.folder} cannot be used ({exc.strerror or exc}); "
                    f"locking in {self.fallback} instead, which coordinates only processes sharing that cache"
                )
                self.folder, self.fallback = self.fallback, None
                return self._file(name)
        return self._files[name]

    def _open_in(self, folder: Path, shared: bool) -> None:
        if shared:  # the host-wide folder: every user's processes create and lock files in it
            _shared_folder(folder)
        else:
            folder.mkdir(parents=True, exist_ok=True)
        files: dict[str, int] = {}
        try:
            for name in NAMES:
                files[name] = _open_lock_file(folder / f"{self.key}.{name}")
        except OSError:
            for handle in files.values():
                os.close(handle)
            raise
        self._files = files

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the device alone: wait until every trainer of the host stood aside (counted in
        :attr:`waited_s`), and keep new ones out until the block ends."""
        turnstile, room = self._file("turnstile"), self._file("room")
        was_sharing = self._sharing
        if was_sharing:
            self._leave()
        start = time.perf_counter()
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(room, fcntl.LOCK_EX)
            self.waited_s += time.perf_counter() - start
            try:
                yield
            finally:
                fcntl.flock(room, fcntl.LOCK_UN)
        finally:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
            if was_sharing:
                self._enter()

    @contextlib.contextmanager
    def shared(self) -> Iterator[Callable[[], None]]:
        """Run work on the device beside other trainers; yields the function to call between steps,
        which stands aside while another process measures (counted in :attr:`paused_s`)."""
        self._enter()
        try:
            yield self._step_boundary
        finally:
            self._leave()

    def _enter(self) -> None:
        start = time.perf_counter()
        turnstile = self._file("turnstile")
        fcntl.flock(turnstile, fcntl.LOCK_SH)  # waits while a measurement holds or wants the device
        try:
            fcntl.flock(self._file("room"), fcntl.LOCK_SH)
        finally:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        self._sharing = True
        self.paused_s += time.perf_counter() - start

    def _leave(self) -> None:
        fcntl.flock(self._file("room"), fcntl.LOCK_UN)
        self._sharing = False

    def _step_boundary(self) -> None:
        if self.measurement_waiting():
            if self.device and self.device.startswith("cuda"):
                torch.cuda.synchronize(self.device)
            self._leave()
            self._enter()

    def measurement_waiting(self) -> bool:
        """Whether another process holds or wants the device for a measurement (a cheap probe)."""
        turnstile = self._file("turnstile")
        try:
            fcntl.flock(turnstile, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(turnstile, fcntl.LOCK_UN)
        return False

    def close(self) -> None:
        for handle in self._files.values():
            os.close(handle)
        self._files.clear()
        self._sharing = False

    def __getstate__(self) -> dict:  # a copy in another process opens its own files
        return {
            "folder": self.folder,
            "fallback": self.fallback,
            "key": self.key,
            "device": self.device,
            "waited_s": 0.0,
            "paused_s": 0.0,
            "_files": {},
            "_sharing": False,
        }
