"""What one profiled batch size records, the device fingerprint, and the on-disk cache that
stores them so a search never measures the same thing twice.

One JSON file per measurement, named by the SHA-256 of its key::

    key = (ArchConfig, batch size, resolution, device fingerprint)

where the fingerprint holds the device model, driver, torch version, dtype, memory format, thread
count and the meter's label (backend and, for the estimate, its power model) — so a different
machine, precision, layout or power model is a different entry. Protocol settings (repeats, window
length) are not in the key: an entry is reused when it is at least as precise as asked (as many
repeats, a window as long), and replaced otherwise.

Location: ``ProfileConfig.cache_dir`` when given; else ``$E2GCSEARCH_CACHE_DIR/profiles``; else
``${XDG_CACHE_HOME:-~/.cache}/e2gcsearch/profiles``. Delete the directory to forget everything.
Writes are atomic (temporary file + rename), so parallel search workers can share one cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch

from .config import ArchConfig
from .energy import Measurement, Meter, parse_device

CACHE_ENV = "E2GCSEARCH_CACHE_DIR"
SCHEMA = 1


@dataclasses.dataclass
class BatchProfile:
    """The figures of one batch size (energies in mJ per frame, times in ms or s as named).

    ``status`` is ``"ok"`` or ``"out of memory"`` (then every figure is ``None``).
    ``idle_power_w``/``epf_idle_subtracted_mj`` are ``None`` when the backend cannot measure idle
    power (the estimate). ``window_s`` is the minimum window asked, ``measured_s`` the time spent
    inside windows and ``wall_s`` the whole time spent on this batch size (warm-up included).
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

    @classmethod
    def failed(cls, batch_size: int, status: str, repeats: int, window_s: float, wall_s: float) -> "BatchProfile":
        return cls(batch_size, status, None, None, None, None, None, None, None, 0, repeats,
                   window_s=window_s, wall_s=wall_s)

    @classmethod
    def from_measurements(cls, batch_size: int, measurements: list[Measurement], iterations: int,
                          window_s: float, idle_power_w: float | None, wall_s: float) -> "BatchProfile":
        """Figures from measured windows, each of ``iterations`` steps of ``batch_size`` images."""
        frames = iterations * batch_size
        epf_mj = [1000 * m.energy_j / frames for m in measurements]  # mJ per frame, one per window
        mean_mj = sum(epf_mj) / len(epf_mj)
        std_mj = statistics.stdev(epf_mj) if len(epf_mj) > 1 else 0.0
        measured_s = sum(m.time_s for m in measurements)
        idle_mj = None
        if idle_power_w is not None:
            idle_mj = sum(1000 * (m.energy_j - idle_power_w * m.time_s) / frames
                          for m in measurements) / len(measurements)
        return cls(
            batch_size=batch_size, status="ok", epf_mj=mean_mj, epf_std_mj=std_mj,
            cv=std_mj / mean_mj if mean_mj > 0 else 0.0,
            latency_ms=1000 * measured_s / (iterations * len(measurements)),
            throughput_ips=frames * len(measurements) / measured_s if measured_s > 0 else 0.0,
            idle_power_w=idle_power_w, epf_idle_subtracted_mj=idle_mj, iterations=iterations,
            repeats=len(measurements), window_s=window_s, measured_s=measured_s, wall_s=wall_s)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BatchProfile":
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


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


def device_fingerprint(device: str, dtype: str, channels_last: bool, meter: Meter) -> dict[str, Any]:
    """What makes two measurements comparable: hardware, software, precision, layout, meter."""
    kind, index = parse_device(device)
    if kind == "cuda":
        model = getattr(meter, "gpu_name", None) or torch.cuda.get_device_name(index)
        driver = getattr(meter, "driver_version", None) or f"CUDA {torch.version.cuda}"
    else:
        model = cpu_model()
        driver = f"{platform.system()} {platform.release()}"
    return {
        "device": device,
        "device_model": model,
        "driver": driver,
        "torch": torch.__version__,
        "dtype": dtype,
        "memory_format": "channels_last" if channels_last else "contiguous",
        "threads": torch.get_num_threads(),
        "meter": meter.label,
    }


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where profiles are cached when no directory is given (see the module docstring)."""
    environ = os.environ if environ is None else environ
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV]).expanduser() / "profiles"
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "e2gcsearch" / "profiles"


def cache_key(arch: ArchConfig, batch_size: int, resolution: int, fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """The identity of one measurement, as a JSON-ready dict."""
    return {"schema": SCHEMA, "arch": arch.to_dict(), "batch_size": int(batch_size),
            "resolution": int(resolution), "fingerprint": dict(fingerprint)}


class ProfileCache:
    """A directory of cached :class:`~e2gcsearch.profile.BatchProfile` dicts.

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
