"""The measurement layer every energy backend shares: windows that return (seconds, joules).

A :class:`Meter` measures *windows*. ``begin_window(key)`` marks the start, ``end_window(key)``
returns a :class:`Measurement` with the elapsed wall time and the energy the device used in between.
Windows may nest (an outer window around inner ones) but must close innermost first; misuse raises
:class:`WindowError`. Backends only implement two hooks, ``_begin`` and ``_end``; the window
bookkeeping, the device synchronisation at both edges and the idle-power measurement live here.

Example:
    >>> from e2gcsearch.energy import create_meter
    >>> meter = create_meter("estimate", power_w=10.0)
    >>> meter.begin_window("step")
    >>> m = meter.end_window("step")
    >>> m.energy_j == m.time_s * 10.0
    True
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from ..errors import UserError


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One closed window: wall time in seconds and energy in joules."""

    time_s: float
    energy_j: float

    @property
    def power_w(self) -> float:
        """Mean power over the window in watts (0 for an empty window)."""
        return self.energy_j / self.time_s if self.time_s > 0 else 0.0


class WindowError(RuntimeError):
    """A window was begun twice, ended without being begun, or ended out of nesting order."""


class MeterUnavailableError(UserError, RuntimeError):
    """A backend cannot measure on this machine; the message says why and what to do instead.

    Attributes:
        backend: the backend's name (``"nvml"``, ``"rapl"``, ``"estimate"``).
        reason: the bare reason, without the advice, for listings such as
            :func:`e2gcsearch.energy.available_backends`.
    """

    def __init__(self, backend: str, reason: str, advice: str = "") -> None:
        self.backend = backend
        self.reason = reason
        message = f"the {backend} energy backend is unavailable: {reason}"
        super().__init__(f"{message}; {advice}" if advice else message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MeterError(UserError, RuntimeError):
    """A counter misbehaved during a window (went backwards, stopped, vanished); says what to use instead."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Meter:
    """Base of every backend: window bookkeeping, device synchronisation, idle power.

    Attributes:
        name: backend name recorded next to every figure (``"nvml"``, ``"rapl"``, ``"estimate"``).
        is_estimate: True when energies are modelled from time rather than read from a counter.
        unavailable: ``(backend, reason)`` pairs of the backends ``auto`` tried before this one.

    Args:
        synchronize: called at both window edges before the clock and the counter are read (e.g.
            ``torch.cuda.synchronize``), so that queued GPU work lands inside the window.
        idle_window_s: length of the window :meth:`idle_power_w` measures while sleeping.
    """

    name = "meter"
    is_estimate = False
    measures_idle = True

    def __init__(self, synchronize: Callable[[], Any] | None = None, idle_window_s: float = 1.0) -> None:
        self._synchronize = synchronize or (lambda: None)
        self._idle_window_s = float(idle_window_s)
        self._open: list[tuple[str, float, Any]] = []  # (key, start time in s, backend state), innermost last
        self.unavailable: list[tuple[str, str]] = []

    @property
    def label(self) -> str:
        """Human description of the backend and its method, e.g. ``rapl (package-0 + dram)``."""
        return self.name

    def open_windows(self) -> list[str]:
        """Keys of the windows currently open, outermost first."""
        return [key for key, _, _ in self._open]

    def begin_window(self, key: str) -> None:
        """Start measuring the window ``key`` (raises :class:`WindowError` if it is already open)."""
        if key in self.open_windows():
            raise WindowError(f"window {key!r} is already open; end it before beginning it again")
        self._synchronize()
        state = self._begin()
        self._open.append((key, time.perf_counter(), state))

    def end_window(self, key: str) -> Measurement:
        """Stop the window ``key`` and return its time and energy.

        Raises:
            WindowError: ``key`` is not open, or a window begun inside it is still open.
        """
        keys = self.open_windows()
        if key not in keys:
            raise WindowError(f"window {key!r} was never begun (or already ended); call begin_window({key!r}) first")
        if keys[-1] != key:
            raise WindowError(
                f"window {key!r} cannot end while {keys[-1]!r}, begun inside it, is still open; "
                f"end {keys[-1]!r} first (windows must nest)"
            )
        self._synchronize()
        end_s = time.perf_counter()
        _, start_s, state = self._open.pop()
        energy_j = float(self._end(state, start_s, end_s))
        if energy_j < 0:
            raise MeterError(f"{self.name} reported a negative energy ({energy_j} J) for window {key!r}")
        if not self._open:
            self._idle()
        return Measurement(time_s=end_s - start_s, energy_j=energy_j)

    def idle_power_w(self) -> float | None:
        """Power drawn while the process sleeps, in watts, or ``None`` if the backend cannot tell.

        Sleeps for ``idle_window_s`` inside a window; call it while the device has no queued work.
        """
        if not self.measures_idle:
            return None
        key = "__idle__"
        self.begin_window(key)
        time.sleep(self._idle_window_s)
        return self.end_window(key).power_w

    def close(self) -> None:
        """Release what the backend holds (threads, library handles). Safe to call twice."""

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"

    # Backend hooks ---------------------------------------------------------------------------

    def _begin(self) -> Any:
        """Read whatever the backend needs at the start of a window; returned to :meth:`_end`."""
        return None

    def _end(self, state: Any, start_s: float, end_s: float) -> float:
        """Energy in joules used between ``start_s`` and ``end_s`` (``time.perf_counter`` seconds)."""
        raise NotImplementedError

    def _idle(self) -> None:
        """Called when the last open window closes (e.g. to stop a sampling thread)."""
