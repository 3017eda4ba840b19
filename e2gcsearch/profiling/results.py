"""What profiling yields: the figures of one batch size (:class:`BatchProfile`) and of one network on
one device (:class:`ProfileResult`), each with the meter that made them."""

from __future__ import annotations

import dataclasses
import datetime
import statistics
from collections.abc import Mapping
from typing import Any

from ..config import ArchConfig, from_known_fields
from ..energy import Measurement
from ..errors import UserError
from ..stats import Summary, pool
from .fingerprint import DeviceFingerprint


def utc_minute() -> str:
    """Now, to the minute, in UTC: ``YYYY-MM-DD HH:MM`` (sorts as text)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")


class ProfileError(UserError, ValueError):
    """A figure was asked for a batch size that was not profiled or did not fit in memory."""


@dataclasses.dataclass
class BatchProfile:
    """The figures of one batch size (energies in mJ per frame, times in ms or s as named).

    ``status`` is ``"ok"`` or ``"out of memory"`` (then every figure is ``None``). EPF and latency
    are means over the ``repeats`` windows; ``epf_std_mj``/``latency_std_ms`` their spread between
    windows, from which :meth:`epf` and :meth:`latency` give the 95 % interval of the mean.
    ``idle_power_w``/``epf_idle_subtracted_mj`` are ``None`` when the backend cannot measure idle
    power (the estimate). ``window_s`` is the minimum window asked, ``measured_s`` the time spent
    inside windows and ``wall_s`` the whole time spent on this batch size (warm-up included).
    ``impl`` is the implementation measured (see :mod:`e2gcsearch.profiling.implementations`);
    ``impl_choice`` what ``--impl auto`` chose and why, with every candidate's ms per step
    (``None`` when the implementation was asked by name); ``compile_s`` the seconds the first,
    compiling step of ``compile`` took, outside every window and not in ``wall_s``; ``measured_at``
    the UTC minute (``YYYY-MM-DD HH:MM``) of each sitting whose windows the figures pool, since EPF
    drifts between sessions by more than one sitting's interval. ``foreign_load`` is the most load
    other processes put on the device in any kept window (busy cores on a CPU, % of the GPU's time:
    ``foreign_load_unit``), ``load_retries`` the windows measured again because of it, and
    ``under_load`` whether a kept window was still over the threshold (``None``: the load could not
    be read, or the entry is older than the record); see :mod:`e2gcsearch.energy.load`.
    """

    batch_size: int
    status: str
    epf_mj: float | None
    epf_std_mj: float | None
    cv: float | None
    latency_ms: float | None
    throughput_ips: float | None
    idle_power_w: float | None
    epf_idle_subtracted_mj: float | None
    iterations: int
    repeats: int
    cached: bool = False
    window_s: float = 0.0
    measured_s: float = 0.0
    wall_s: float = 0.0
    latency_std_ms: float | None = None  # None in entries cached before it was recorded
    impl: str = "nchw"  # entries cached before implementations were recorded measured nchw or named their layout
    impl_choice: dict[str, Any] | None = None
    compile_s: float | None = None
    isolated: bool | None = None  # measured holding the device lock; None in entries cached before it was recorded
    measured_at: list[str] | None = None  # UTC minute of each sitting whose windows these are; None: not recorded
    foreign_load: float | None = None  # None: unknown (not readable here, or not recorded)
    foreign_load_unit: str | None = None
    load_retries: int = 0
    under_load: bool | None = None

    def epf(self) -> Summary:
        """EPF over the windows (mJ/frame): n, mean, std; ``.interval()`` is its 95 % interval."""
        return Summary(self.repeats, float(self.epf_mj), float(self.epf_std_mj or 0.0))

    def latency(self) -> Summary:
        """Latency per batch over the windows (ms)."""
        return Summary(self.repeats, float(self.latency_ms), float(self.latency_std_ms or 0.0))

    def pooled_with(self, more: BatchProfile) -> BatchProfile:
        """This measurement extended by the windows of ``more`` (same network, device and batch size)."""
        epf, latency = pool(self.epf(), more.epf()), pool(self.latency(), more.latency())
        measured_s = self.measured_s + more.measured_s
        frames = self.iterations * self.repeats * self.batch_size + more.iterations * more.repeats * more.batch_size
        idle = None
        if self.epf_idle_subtracted_mj is not None and more.epf_idle_subtracted_mj is not None:
            idle = (self.repeats * self.epf_idle_subtracted_mj + more.repeats * more.epf_idle_subtracted_mj) / epf.n
        return dataclasses.replace(
            self,
            epf_mj=epf.mean,
            epf_std_mj=epf.std,
            cv=epf.std / epf.mean if epf.mean > 0 else 0.0,
            latency_ms=latency.mean,
            latency_std_ms=latency.std,
            repeats=epf.n,
            measured_s=measured_s,
            throughput_ips=frames / measured_s if measured_s > 0 else 0.0,
            epf_idle_subtracted_mj=idle,
            iterations=max(self.iterations, more.iterations),
            wall_s=self.wall_s + more.wall_s,
            cached=False,
            isolated=None if None in (self.isolated, more.isolated) else self.isolated and more.isolated,
            measured_at=None if None in (self.measured_at, more.measured_at) else self.measured_at + more.measured_at,
            **_pooled_load(self, more),
        )

    def load_figures(self) -> dict[str, Any]:
        """What a stored figure keeps of the foreign load (``{}`` when it was never read)."""
        if self.foreign_load_unit is None:
            return {}
        return {
            "under_load": self.under_load,
            "foreign_load": self.foreign_load,
            "foreign_load_unit": self.foreign_load_unit,
            "load_retries": self.load_retries,
        }

    @classmethod
    def failed(cls, batch_size: int, status: str, repeats: int, window_s: float, wall_s: float) -> BatchProfile:
        return cls(
            batch_size, status, None, None, None, None, None, None, None, 0, repeats, window_s=window_s, wall_s=wall_s
        )

    @classmethod
    def from_measurements(
        cls,
        batch_size: int,
        measurements: list[Measurement],
        iterations: int,
        window_s: float,
        idle_power_w: float | None,
        wall_s: float,
    ) -> BatchProfile:
        """Figures from measured windows, each of ``iterations`` steps of ``batch_size`` images."""
        frames = iterations * batch_size
        epf_mj = [1000 * m.energy_j / frames for m in measurements]  # mJ per frame, one per window
        mean_mj = sum(epf_mj) / len(epf_mj)
        std_mj = statistics.stdev(epf_mj) if len(epf_mj) > 1 else 0.0
        measured_s = sum(m.time_s for m in measurements)
        latency_ms = [1000 * m.time_s / iterations for m in measurements]  # per batch, one per window
        idle_mj = None
        if idle_power_w is not None:
            idle_mj = sum(1000 * (m.energy_j - idle_power_w * m.time_s) / frames for m in measurements) / len(
                measurements
            )
        return cls(
            batch_size=batch_size,
            status="ok",
            epf_mj=mean_mj,
            epf_std_mj=std_mj,
            cv=std_mj / mean_mj if mean_mj > 0 else 0.0,
            latency_ms=1000 * measured_s / (iterations * len(measurements)),
            latency_std_ms=statistics.stdev(latency_ms) if len(latency_ms) > 1 else 0.0,
            throughput_ips=frames * len(measurements) / measured_s if measured_s > 0 else 0.0,
            idle_power_w=idle_power_w,
            epf_idle_subtracted_mj=idle_mj,
            iterations=iterations,
            repeats=len(measurements),
            window_s=window_s,
            measured_s=measured_s,
            wall_s=wall_s,
            measured_at=[utc_minute()],
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchProfile:
        return from_known_fields(cls, data)


def _pooled_load(first: BatchProfile, second: BatchProfile) -> dict[str, Any]:
    """The foreign load of two measurements pooled: the worst window, flagged when either was."""
    loads = [b.foreign_load for b in (first, second)]
    flags = [b.under_load for b in (first, second)]
    return {
        "foreign_load": None if None in loads else max(loads),
        "foreign_load_unit": first.foreign_load_unit or second.foreign_load_unit,
        "load_retries": first.load_retries + second.load_retries,
        "under_load": True if True in flags else (None if None in flags else False),
    }


@dataclasses.dataclass
class ProfileResult:
    """EPF and timing per batch size for one network on one device, with the meter that made them."""

    arch_config: ArchConfig
    backend: str
    is_estimate: bool
    fingerprint: DeviceFingerprint
    batches: dict[int, BatchProfile]
    backend_notes: list[str] = dataclasses.field(default_factory=list)
    backend_label: str = ""
    resolution: int = 224
    device: str = "cpu"
    protocol: dict[str, Any] = dataclasses.field(default_factory=dict)
    impl: str = "nchw"  # as asked; ``auto`` chose per batch size (``BatchProfile.impl``)
    mode: str = "train"

    def implementations(self) -> dict[int, str]:
        """The implementation measured at every batch size."""
        return {b: self.batches[b].impl for b in sorted(self.batches)}

    def epf_mj(self, batch_size: int) -> float:
        """Mean EPF in mJ/frame at ``batch_size``.

        Raises:
            ProfileError: the batch size was not profiled, or ran out of memory.
        """
        batch = self.batches.get(batch_size)
        if batch is None:
            raise ProfileError(
                f"batch size {batch_size} was not profiled; profiled: {', '.join(map(str, sorted(self.batches)))}"
            )
        if batch.status != "ok" or batch.epf_mj is None:
            raise ProfileError(f"batch size {batch_size} has no EPF: {batch.status}; use a smaller batch size")
        return batch.epf_mj

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document (schema ``e2gcsearch.profile/1``)."""
        return {
            "schema": "e2gcsearch.profile/1",
            "impl": self.impl,
            "mode": self.mode,
            "arch": self.arch_config.to_dict(),
            "label": self.arch_config.label(),
            "resolution": self.resolution,
            "device": self.device,
            "backend": self.backend,
            "backend_label": self.backend_label,
            "is_estimate": self.is_estimate,
            "energy_unit": "mJ/frame",
            "backend_notes": list(self.backend_notes),
            "fingerprint": self.fingerprint.to_dict(),
            "protocol": dict(self.protocol),
            "batches": [self.batches[b].to_dict() for b in sorted(self.batches)],
        }

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per batch size, each naming the network and the backend (for CSV/tables)."""
        head = {
            "arch": self.arch_config.arch,
            "module": self.arch_config.module,
            "value": self.arch_config.grouping_value,
            "width": self.arch_config.width,
            "resolution": self.resolution,
        }
        tail = {"backend": self.backend, "is_estimate": self.is_estimate}
        rows = []
        for b in sorted(self.batches):
            row = {**head, **self.batches[b].to_dict()}
            choice = row.pop("impl_choice")
            row["impl_reason"] = choice["reason"] if choice else "asked by name"
            row["measured_at"] = "; ".join(row["measured_at"] or [])  # UTC minutes of the sittings
            rows.append({**row, "mode": self.mode, **tail})
        return rows
