"""Measured EPF of several configurations on one device: the data the energy model is fitted to.

Three sources give the same :class:`EpfDataset`:

* a profiling sweep run here (:func:`run_sweep`, ``e2gcsearch model fit --sweep``),
* a sweep JSON file written earlier (:func:`load_sweep`, ``--from-profile FILE``; the format is below),
* the trials of a search study (:func:`e2gcsearch.search.warm_start.dataset_from_study`,
  ``--study NAME --storage URL``).

Sweep file (``kind: e2gcsearch.epf-sweep``, version 1)::

    {"kind": "e2gcsearch.epf-sweep", "version": 1,
     "backend": "estimate", "is_estimate": true, "fingerprint": {...device fingerprint...},
     "measurements": [{"arch_config": {...ArchConfig...}, "resolution": 64,
                       "epf": {"16": {"epf_mj": 1.23, "epf_std_mj": 0.01, "status": "ok"}, ...}}, ...]}

Energy is in mJ per frame, from the backend named in the file; ``is_estimate`` marks figures made
of measured time x a power model (no energy counter).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import ArchConfig
from ..errors import ConfigError, DataError
from ..models import DEFAULT_ARCH
from ..paper import GROUP_SIZES, GROUPS, design_grid
from ..profiling.fingerprint import DeviceFingerprint

SWEEP_KIND = "e2gcsearch.epf-sweep"
SWEEP_VERSION = 1
Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class EpfMeasurement:
    """EPF of one configuration at one resolution, per batch size (mJ/frame; ``None`` = not usable)."""

    arch_config: ArchConfig
    resolution: int
    epf_mj: dict[int, float]
    epf_std_mj: dict[int, float] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        epf = {
            str(b): {"epf_mj": v, "epf_std_mj": self.epf_std_mj.get(b), "status": "ok"}
            for b, v in sorted(self.epf_mj.items())
        }
        return {
            "arch_config": self.arch_config.to_dict(),
            "label": self.arch_config.label(),
            "resolution": self.resolution,
            "epf": epf,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpfMeasurement:
        epf, std = {}, {}
        for batch, figures in dict(data.get("epf", {})).items():
            if figures.get("status", "ok") == "ok" and figures.get("epf_mj") is not None:
                epf[int(batch)] = float(figures["epf_mj"])
                if figures.get("epf_std_mj") is not None:
                    std[int(batch)] = float(figures["epf_std_mj"])
        return cls(ArchConfig.from_dict(data["arch_config"]), int(data["resolution"]), epf, std)


@dataclasses.dataclass
class EpfDataset:
    """Measurements from one device and one energy backend."""

    backend: str
    is_estimate: bool
    fingerprint: DeviceFingerprint
    measurements: list[EpfMeasurement]
    source: str = ""

    @property
    def batch_sizes(self) -> list[int]:
        return sorted({b for m in self.measurements for b in m.epf_mj})

    def points(self, batch_size: int) -> list[EpfMeasurement]:
        """Measurements that have EPF at ``batch_size`` (the last one wins for a repeated config)."""
        latest = {(m.arch_config, m.resolution): m for m in self.measurements if batch_size in m.epf_mj}
        return list(latest.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": SWEEP_KIND,
            "version": SWEEP_VERSION,
            "backend": self.backend,
            "is_estimate": self.is_estimate,
            "energy_unit": "mJ/frame",
            "fingerprint": self.fingerprint.to_dict(),
            "source": self.source,
            "measurements": [m.to_dict() for m in self.measurements],
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        try:
            path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        except OSError as exc:
            raise DataError(
                f"cannot write the sweep to {path} ({exc.strerror or exc}); choose a writable path"
            ) from None
        return path


def read_document(path: Path, kind: str, what: str, make_one: str, wrong_kind_hint: str) -> dict[str, Any]:
    """The JSON object at ``path`` whose ``kind`` is ``kind``; a one-line :class:`DataError` naming
    ``what`` it should be and how to make one (``make_one``) otherwise."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"no {what} at {path}; {make_one}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a {what} (not a text file); {wrong_kind_hint}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read the {what} {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise DataError(f'{path} is not a {what} (expected "kind": "{kind}"); {wrong_kind_hint}')
    return data


def load_sweep(path: str | Path) -> EpfDataset:
    """Read a sweep file (format in the module docstring)."""
    path = Path(path)
    data = read_document(
        path,
        SWEEP_KIND,
        "sweep file",
        f"write one with 'e2gcsearch model fit --sweep --save-sweep {path}'",
        "a device profile is read with --profile, not --from-profile",
    )
    try:
        measurements = [EpfMeasurement.from_dict(item) for item in data.get("measurements", [])]
        fingerprint = DeviceFingerprint.from_dict(data.get("fingerprint"))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(
            f"{path} has a malformed measurement ({exc}); regenerate it with 'e2gcsearch model fit --sweep'"
        ) from None
    return EpfDataset(
        str(data.get("backend", "unknown")),
        bool(data.get("is_estimate", False)),
        fingerprint,
        measurements,
        source=f"sweep file {path}",
    )


def default_sweep_configs(
    arch: str = DEFAULT_ARCH,
    widths: Sequence[float] = (0.25, 0.5),
    num_classes: int = 10,
    group_sizes: Sequence[int] = GROUP_SIZES,
    groups: Sequence[int] = GROUPS,
) -> list[ArchConfig]:
    """The paper's design points (E2GC G and FgGC g) at each width: 11 configs per width by default."""
    return design_grid([arch], widths, num_classes, group_sizes, groups)


def run_sweep(configs: Sequence[ArchConfig], profile_config: Any, progress: Progress | None = None) -> EpfDataset:
    """Profile every configuration (see :mod:`e2gcsearch.profile`) and collect the EPF per batch size.

    Args:
        configs: the networks to measure (unbuildable ones are skipped with a note).
        profile_config: a :class:`e2gcsearch.profile.ProfileConfig`.
        progress: called with one status line per measurement.
    """
    from ..models import validate_config
    from ..profiling import profile_model

    say = progress or (lambda line: None)
    measurements, backend, is_estimate, fingerprint = [], "unknown", False, DeviceFingerprint()
    for index, arch_config in enumerate(configs, start=1):
        try:
            validate_config(arch_config)
        except ConfigError as exc:
            say(f"[{index}/{len(configs)}] skipped {arch_config.label()}: {exc}")
            continue
        result = profile_model(
            arch_config, profile_config, progress=lambda line, i=index: say(f"[{i}/{len(configs)}] {line}")
        )
        backend, is_estimate, fingerprint = result.backend, result.is_estimate, result.fingerprint
        epf = {b: batch.epf_mj for b, batch in result.batches.items() if batch.status == "ok" and batch.epf_mj}
        std = {b: batch.epf_std_mj for b, batch in result.batches.items() if batch.epf_std_mj is not None}
        measurements.append(EpfMeasurement(arch_config, result.resolution, epf, std))
    return EpfDataset(
        backend, is_estimate, fingerprint, measurements, source=f"sweep of {len(measurements)} configurations"
    )
