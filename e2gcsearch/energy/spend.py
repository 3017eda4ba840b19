"""What a whole piece of work cost: one window of a meter around a training, a measurement or a
calibration, kept as :class:`Spent` (joules, seconds, the backend that read them).

The EPF protocol measures short windows of one step; a search also wants to know what its trainings
and measurements used in all. :class:`Ledger` meters each such *phase* with the backend the study's
EPF uses (built by a :class:`MeterSpec` on the phase's device), keeps the phases in order and tells its
owner after each one, so that a phase cut short by an error or Ctrl-C is still written down.

A long phase is read in chunks of :data:`CHUNK_S` seconds by a background thread and the chunks are
summed: a RAPL counter wraps around after some hundreds of kilojoules (half an hour of a busy server
package), and one window can only undo one wrap. A meter that fails (a counter that stops) leaves the
phase with its wall time and an ``error``, never a made-up 0 J.

Example:
    >>> ledger = Ledger(MeterSpec("estimate", power_w=10.0))
    >>> with ledger.phase("training", "cpu"):
    ...     pass
    >>> phase = Spent.from_dict(ledger.phases[0])
    >>> phase.kind, phase.backend, phase.is_estimate, 0 <= phase.energy_j <= phase.time_s * 10.0
    ('training', 'estimate', True, True)
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .base import Measurement, Meter, MeterError, MeterUnavailableError

CHUNK_S = 60.0  # a window per minute: far below the ~30 min a RAPL counter takes to wrap at 150 W
KINDS = ("training", "measurement", "calibration", "full training", "full measurement")


@dataclasses.dataclass(frozen=True)
class MeterSpec:
    """How to build the meter of a phase: the backend and power model of the study's EPF.

    Args:
        backend: ``auto``, ``nvml``, ``rapl`` or ``estimate`` (as ``--backend``).
        power_w: the estimate's power in watts (``--cpu-power-w``); ``None``: its model.
    """

    backend: str = "auto"
    power_w: float | None = None

    def meter(self, device: str, threads: int | None = None) -> Meter:
        """The meter for work on ``device``; ``threads``: the CPU threads that work runs with (the
        estimate's power model counts them)."""
        from . import create_meter  # the factory lives in the package's __init__

        options: dict[str, Any] = {"synchronize": _no_sync}  # edges are synchronised once, by the phase
        if self.power_w is not None:
            options["power_w"] = self.power_w
        if threads is not None:
            options["threads"] = threads
        return create_meter(self.backend, device, **options)


def _no_sync() -> None:
    """Chunk edges inside a phase are read from a background thread, which must not wait on the GPU."""


@dataclasses.dataclass(frozen=True)
class Spent:
    """One metered phase. ``energy_j`` is ``None`` when the meter failed (``error`` says why).

    Args:
        kind: one of :data:`KINDS`.
        energy_j: joules used over the phase, as read by ``backend``.
        time_s: the phase's wall time in seconds.
        backend: ``nvml``, ``rapl`` or ``estimate``.
        is_estimate: True when ``energy_j`` is time x a power model, not a counter reading.
        label: the meter's own description (``estimate (time x 7.5 W TDP model)``).
        cached: a measurement answered wholly from the measurement cache (only the look-up ran).
        error: why the phase could not be metered.
    """

    kind: str
    energy_j: float | None
    time_s: float
    backend: str | None = None
    is_estimate: bool = False
    label: str = ""
    cached: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Spent:
        known = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in stored.items() if key in known}
        values.setdefault("energy_j", None)
        values.setdefault("time_s", 0.0)
        return cls(**values)


class _ChunkedWindow:
    """One meter read as consecutive windows of ``chunk_s`` by a background thread, summed."""

    def __init__(self, meter: Meter, chunk_s: float) -> None:
        self.meter, self.chunk_s = meter, chunk_s
        self.energy_j, self.error = 0.0, None
        self._stop = threading.Event()
        self.meter.begin_window("phase")
        self._thread = threading.Thread(target=self._run, name="e2gcsearch-phase-meter", daemon=True)
        self._thread.start()

    def _add(self, measurement: Measurement) -> None:
        self.energy_j += measurement.energy_j

    def _run(self) -> None:
        while not self._stop.wait(self.chunk_s):
            try:
                self._add(self.meter.end_window("phase"))
                self.meter.begin_window("phase")
            except Exception as exc:  # noqa: BLE001 - a counter that fails leaves the phase unmetered, not the work
                self.error = str(exc) if isinstance(exc, MeterError) else f"{type(exc).__name__}: {exc}"
                return

    def stop(self) -> float | None:
        """Joules over the whole phase, or ``None`` when the meter failed (``error`` says why)."""
        self._stop.set()
        self._thread.join()
        if self.error is None:
            try:
                self._add(self.meter.end_window("phase"))
            except MeterError as exc:
                self.error = str(exc)
        return None if self.error is not None else self.energy_j


class Phase:
    """What the code inside :meth:`Ledger.phase` may say about its phase."""

    def __init__(self) -> None:
        self.cached = False


class Ledger:
    """The phases of work of one owner (a trial, a validation, a calibration), each metered whole.

    Args:
        spec: how to build each phase's meter.
        on_change: called with :attr:`phases` (dicts, ready to store) after every phase, also one cut
            short by an exception.
        chunk_s: seconds per chunk of a long phase (see the module docstring); ``None``: :data:`CHUNK_S`.
    """

    def __init__(
        self,
        spec: MeterSpec,
        on_change: Callable[[list[dict[str, Any]]], None] | None = None,
        chunk_s: float | None = None,
    ) -> None:
        self.spec, self.on_change, self.chunk_s = spec, on_change, chunk_s
        self.phases: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def phase(self, kind: str, device: str, threads: int | None = None) -> Iterator[Phase]:
        """Meter the block as one phase of ``kind`` on ``device`` (``threads``: see :meth:`MeterSpec.meter`)."""
        if kind not in KINDS:
            raise ValueError(f"unknown phase kind {kind!r}; use one of {', '.join(KINDS)}")
        said, start, error = Phase(), time.perf_counter(), None
        try:
            meter = self.spec.meter(device, threads)
        except MeterUnavailableError as exc:  # the EPF measurement says it louder; the phase keeps its time
            meter, error = None, str(exc)
        window = None
        try:
            if meter is not None:
                _synchronize(device)
                window = _ChunkedWindow(meter, CHUNK_S if self.chunk_s is None else self.chunk_s)
            yield said
        finally:
            _synchronize(device)
            energy_j = window.stop() if window is not None else None
            spent = Spent(
                kind=kind,
                energy_j=energy_j,
                time_s=time.perf_counter() - start,
                backend=meter.name if meter is not None else None,
                is_estimate=bool(meter is not None and meter.is_estimate),
                label=meter.label if meter is not None else "",
                cached=said.cached,
                error=window.error if window is not None else error,
            )
            if meter is not None:
                meter.close()
            self.phases.append(spent.to_dict())
            if self.on_change is not None:
                self.on_change(list(self.phases))

    def metering(self, kind: str) -> Callable[[str, int | None], contextlib.AbstractContextManager[Phase]]:
        """``phase`` with ``kind`` fixed: what :func:`e2gcsearch.train.train_model` takes as ``metering``,
        opened once the training knows its device and threads."""
        return lambda device, threads=None: self.phase(kind, device, threads)


def _synchronize(device: str) -> None:
    """Queued GPU work lands inside the phase it belongs to."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize(device)


__all__ = ["CHUNK_S", "KINDS", "Ledger", "MeterSpec", "Phase", "Spent"]
