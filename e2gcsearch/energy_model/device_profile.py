"""A fitted device profile: the energy model's parameters for one device, saved as JSON.

The file (``kind: e2gcsearch.device-profile``, version 1) keeps everything needed to trust or redo
the fit: the device fingerprint, the energy backend (and whether its figures are estimates), the
model form, one fit per batch size (β, κ, γ, γ_dw, e0, R², LOO error, Spearman ρ) and every
measurement used.

Example:
    >>> profile = DeviceProfile.load("device-profile.json")            # doctest: +SKIP
    >>> profile.predict_epf_mj(ArchConfig("mobilenet_v1", group_size=4, width=0.5, num_classes=10))  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import ArchConfig
from ..energy import create_meter
from ..errors import ConfigError, DataError
from ..paths import cache_home
from ..profiling.fingerprint import DeviceFingerprint, device_fingerprint
from ..version import __version__
from .data import EpfDataset, EpfMeasurement, read_document
from .fit import MODEL_FORM, EnergyFit, config_terms, fit_energy_model

PROFILE_KIND = "e2gcsearch.device-profile"
PROFILE_VERSION = 1
Progress = Callable[[str], None]


@dataclasses.dataclass
class DeviceProfile:
    """The energy model fitted to one device (see :mod:`.fit` for the model form)."""

    fingerprint: DeviceFingerprint
    backend: str
    is_estimate: bool
    fits: dict[int, EnergyFit]
    measurements: list[EpfMeasurement]
    resolution: int
    source: str = ""
    created: str = ""
    model_form: str = MODEL_FORM

    @property
    def reference_batch(self) -> int:
        """The batch size used when none is asked: the largest one fitted."""
        return max(self.fits)

    @property
    def energy_note(self) -> str:
        """How to read the energy figures, e.g. ``estimate backend: estimated energy (time x power model)``."""
        if self.is_estimate:
            return (
                f"{self.backend} backend: the fit is of ESTIMATED energy (measured time x a constant power model), "
                "so it models where time goes"
            )
        return f"{self.backend} backend: measured energy"

    def fit_for(self, batch_size: int | None = None) -> EnergyFit:
        batch = self.reference_batch if batch_size is None else int(batch_size)
        if batch not in self.fits:
            raise ConfigError(
                f"the profile has no fit for batch size {batch}; it has "
                f"{', '.join(map(str, sorted(self.fits)))} (use --batch-size)"
            )
        return self.fits[batch]

    def predict_epf_mj(
        self, arch_config: ArchConfig, resolution: int | None = None, batch_size: int | None = None
    ) -> float:
        """The model's EPF (mJ/frame) of ``arch_config`` at ``resolution`` (default: the profile's)."""
        return self.fit_for(batch_size).predict_mj(config_terms(arch_config, resolution or self.resolution))

    def measured_epf_mj(
        self, arch_config: ArchConfig, resolution: int | None = None, batch_size: int | None = None
    ) -> float | None:
        """The measured EPF of ``arch_config`` when the profile holds it, else ``None``."""
        batch = self.reference_batch if batch_size is None else int(batch_size)
        for item in reversed(self.measurements):
            if item.arch_config == arch_config and item.resolution == (resolution or self.resolution):
                return item.epf_mj.get(batch)
        return None

    def setting_for(
        self, arch: str, width: float | None = None, num_classes: int | None = None, resolution: int | None = None
    ) -> tuple[float, int, int]:
        """(width, num_classes, resolution) to predict ``arch`` at: the values given, else the most
        common width and classes among this profile's measurements of ``arch`` (1.0 and 1000 when it
        has none) and the profile's resolution."""
        mine = [m.arch_config for m in self.measurements if m.arch_config.arch == arch]
        width = width or (collections.Counter(c.width for c in mine).most_common(1)[0][0] if mine else 1.0)
        num_classes = num_classes or (
            collections.Counter(c.num_classes for c in mine).most_common(1)[0][0] if mine else 1000
        )
        return float(width), int(num_classes), int(resolution or self.resolution)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": PROFILE_KIND,
            "version": PROFILE_VERSION,
            "e2gcsearch_version": __version__,
            "created": self.created,
            "source": self.source,
            "model_form": self.model_form,
            "energy_unit": "mJ/frame",
            "backend": self.backend,
            "is_estimate": self.is_estimate,
            "energy_note": self.energy_note,
            "fingerprint": self.fingerprint.to_dict(),
            "resolution": self.resolution,
            "fits": {str(b): fit.to_dict() for b, fit in sorted(self.fits.items())},
            "measurements": [m.to_dict() for m in self.measurements],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceProfile:
        return cls(
            fingerprint=DeviceFingerprint.from_dict(data.get("fingerprint")),
            backend=str(data["backend"]),
            is_estimate=bool(data["is_estimate"]),
            fits={int(b): EnergyFit.from_dict(fit) for b, fit in data["fits"].items()},
            measurements=[EpfMeasurement.from_dict(m) for m in data.get("measurements", [])],
            resolution=int(data["resolution"]),
            source=str(data.get("source", "")),
            created=str(data.get("created", "")),
            model_form=str(data.get("model_form", MODEL_FORM)),
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        except OSError as exc:
            raise DataError(
                f"cannot write the device profile to {path} ({exc.strerror or exc}); choose a writable path with --out"
            ) from None
        return path

    @classmethod
    def load(cls, path: str | Path) -> DeviceProfile:
        path = Path(path)
        data = read_document(
            path,
            PROFILE_KIND,
            "device profile",
            f"fit one with 'e2gcsearch model fit --out {path}'",
            "fit one with 'e2gcsearch model fit'",
        )
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"{path} is a malformed device profile ({exc}); fit it again with 'e2gcsearch model fit'"
            ) from None


def _main_resolution(dataset: EpfDataset) -> int:
    counts = collections.Counter(m.resolution for m in dataset.measurements)
    return counts.most_common(1)[0][0]


def fit_device_profile(
    dataset: EpfDataset, batch_sizes: tuple[int, ...] | None = None, progress: Progress | None = None
) -> DeviceProfile:
    """Fit the energy model once per batch size of ``dataset`` (see :func:`.fit.fit_energy_model`).

    A batch size with too few measurements is skipped with a note; if none can be fitted the
    :class:`DataError` of the largest says how many measurements are needed.
    """
    say = progress or (lambda line: None)
    if not dataset.measurements:
        raise DataError("no measurements to fit; run a sweep ('e2gcsearch model fit --sweep') or give a study")
    wanted = sorted(batch_sizes or dataset.batch_sizes)
    fits, errors = {}, {}
    for batch in wanted:
        points = dataset.points(batch)
        try:
            fits[batch] = fit_energy_model(
                [config_terms(p.arch_config, p.resolution) for p in points],
                [p.epf_mj[batch] for p in points],
                batch_size=batch,
            )
        except DataError as exc:
            errors[batch] = exc
    if fits:
        for batch, exc in errors.items():
            say(f"note: batch size {batch} not fitted: {exc}")
    else:
        if errors:
            raise errors[max(errors)]
        raise DataError(
            f"the measurements have no EPF at batch size(s) {', '.join(map(str, wanted))}; "
            f"they have {', '.join(map(str, dataset.batch_sizes)) or 'none'}"
        )
    return DeviceProfile(
        fingerprint=dataset.fingerprint,
        backend=dataset.backend,
        is_estimate=dataset.is_estimate,
        fits=fits,
        measurements=list(dataset.measurements),
        resolution=_main_resolution(dataset),
        source=dataset.source,
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )


def current_fingerprint(device: str = "cpu", dtype: str = "float32", impl: str = "nchw") -> DeviceFingerprint:
    """This machine's fingerprint for ``device`` (the profiler's, with the estimate meter's label)."""
    with create_meter("estimate", device=device) as meter:
        return device_fingerprint(device, dtype, impl, meter)


def fingerprint_warning(profile: DeviceProfile, current: DeviceFingerprint | None = None) -> str | None:
    """One line when ``profile`` was fitted on another device (or software), else ``None``."""
    stored = profile.fingerprint
    if current is None:
        device = stored.device or "cpu"
        try:
            current = current_fingerprint(device, stored.dtype or "float32", stored.implementation_name)
        except Exception as exc:  # noqa: BLE001 - e.g. a CUDA profile read on a machine without a GPU
            return f"warning: the profile was fitted on {device}, which this machine cannot use ({exc}); predictions are for that device"
    differences = stored.differences(current, mine="in the profile")
    if not differences:
        return None
    return (
        "warning: the profile was fitted on another device or setup ("
        + "; ".join(differences)
        + "); its predictions may not hold here - refit with 'e2gcsearch model fit'"
    )


def default_profile_path(
    fingerprint: DeviceFingerprint, cache_dir: str | Path | None = None, resolution: int | None = None
) -> Path:
    """Where the calibration of a device is kept: ``<cache>/device-profiles/<identity digest>.json``, the
    identity naming the device, its threads and (when given) the resolution calibrated at, so that
    studies at two resolutions keep a calibration each (:meth:`DeviceFingerprint.identity_digest`)."""
    root = Path(cache_dir) if cache_dir else cache_home()
    return root / "device-profiles" / f"{fingerprint.identity_digest(resolution)}.json"
