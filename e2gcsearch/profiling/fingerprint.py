"""The device fingerprint: what makes two measurements comparable (hardware, software, precision,
layout, threads, meter), how two fingerprints differ, and the keys that file measurements and
calibrations under it.

Example:
    >>> fingerprint = DeviceFingerprint(device="cpu", device_model="Test CPU", dtype="float32", threads=4,
    ...                                 memory_format="contiguous")
    >>> fingerprint.with_implementation("compile").differences(fingerprint)
    ["implementation: None here, 'compile' stored"]
    >>> DeviceFingerprint.from_dict(fingerprint.to_dict()) == fingerprint
    True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from ..devices import parse_device
from ..energy import Meter

# How each implementation lays out its tensors (nchw and every other one: contiguous).
_LAYOUTS = {"channels_last": "channels_last", "auto": "chosen per batch size"}
# Implementations that the layout alone names, so that their fingerprint carries no ``implementation``.
_NAMED_BY_LAYOUT = {"contiguous": "nchw", "channels_last": "channels_last"}


@dataclasses.dataclass(frozen=True)
class DeviceFingerprint:
    """What a measurement was made on and with. ``None`` means not recorded: a document written
    before the field existed (``memory_format``, ``implementation``) or by hand.

    Attributes:
        device: ``cpu`` or ``cuda:N``, as measured.
        device_model: the CPU's or GPU's model name.
        driver: the GPU driver (or CUDA) version; for a CPU, the operating system and kernel.
        torch: the PyTorch version.
        dtype: the measured precision, e.g. ``float32``.
        threads: PyTorch's intra-op thread count during the measurement.
        meter: the energy meter's label (backend and, for the estimate, its power model).
        memory_format: ``contiguous``, ``channels_last`` or ``chosen per batch size`` (``auto``).
        implementation: the implementation when the layout does not name it (``compile``, ``auto``);
            ``None`` for nchw and channels_last, so a measurement has one fingerprint whether its
            implementation was asked by name or chosen by ``auto``, and is measured once.
    """

    device: str | None = None
    device_model: str | None = None
    driver: str | None = None
    torch: str | None = None
    dtype: str | None = None
    threads: int | None = None
    meter: str | None = None
    memory_format: str | None = None
    implementation: str | None = None

    # The fields that decide whether a fit made on one device applies on another: hardware model,
    # software, precision, layout. Threads and the meter change the figures, not the model's shape.
    IDENTITY: ClassVar[tuple[str, ...]] = ("device_model", "torch", "dtype", "memory_format", "implementation")

    @property
    def implementation_name(self) -> str:
        """The implementation measured (for a fingerprint older than implementations: its layout's)."""
        return self.implementation or _NAMED_BY_LAYOUT.get(self.memory_format or "contiguous", "nchw")

    def with_implementation(self, impl: str) -> DeviceFingerprint:
        """This fingerprint (of any implementation) as a measurement by ``impl`` carries it."""
        layout = _LAYOUTS.get(impl, "contiguous")
        return dataclasses.replace(
            self, memory_format=layout, implementation=None if _NAMED_BY_LAYOUT.get(layout) == impl else impl
        )

    def differences(self, other: DeviceFingerprint, mine: str = "stored", theirs: str = "here") -> list[str]:
        """One line per identity field (:attr:`IDENTITY`) that this fingerprint records and ``other``
        has otherwise, e.g. ``device_model: 'Other CPU' here, 'Test CPU' stored``; ``mine`` and
        ``theirs`` say where each fingerprint comes from. Empty when a fit made under this one holds
        under ``other``."""
        lines = []
        for name in self.IDENTITY:
            value, theirs_value = getattr(self, name), getattr(other, name)
            if value is not None and value != theirs_value:
                lines.append(f"{name}: {theirs_value!r} {theirs}, {value!r} {mine}")
        return lines

    def key(self) -> dict[str, Any]:
        """What the measurement cache files a measurement under (part of
        :func:`e2gcsearch.profiling.cache.cache_key`): every recorded field. A field that is not
        recorded is left out, so that entries written before it existed keep their key."""
        return self.to_dict()

    def identity_digest(self, resolution: int | None = None) -> str:
        """12 hex digits naming a calibration of this device: the identity fields, the device and the
        threads (unrecorded ones as ``null``), and ``resolution`` when given."""
        keys: dict[str, Any] = {name: getattr(self, name) for name in (*self.IDENTITY, "device", "threads")}
        identity = json.dumps(keys if resolution is None else {**keys, "resolution": resolution}, sort_keys=True)
        return hashlib.sha1(identity.encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the recorded fields (the stored form of profiles, sweeps, studies and cache keys)."""
        return {
            field.name: value for field in dataclasses.fields(self) if (value := getattr(self, field.name)) is not None
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> DeviceFingerprint:
        """A stored fingerprint (missing keys: not recorded; unknown keys are ignored)."""
        if data is not None and not isinstance(data, Mapping):
            raise TypeError(f"a device fingerprint is a JSON object, not {type(data).__name__}")
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in (data or {}).items() if key in names})


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as stream:
            for line in stream:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_fingerprint(device: str, dtype: str, impl: str, meter: Meter) -> DeviceFingerprint:
    """The fingerprint of a measurement on ``device`` at ``dtype`` by ``impl`` (an implementation of
    :mod:`e2gcsearch.profiling.implementations` or ``auto``) with ``meter``, at the current threads."""
    kind, index = parse_device(device)
    if kind == "cuda":
        model = getattr(meter, "gpu_name", None) or torch.cuda.get_device_name(index)
        driver = getattr(meter, "driver_version", None) or f"CUDA {torch.version.cuda}"
    else:
        model = cpu_model()
        driver = f"{platform.system()} {platform.release()}"
    return DeviceFingerprint(
        device=device,
        device_model=model,
        driver=driver,
        torch=torch.__version__,
        dtype=dtype,
        threads=torch.get_num_threads(),
        meter=meter.label,
    ).with_implementation(impl)
