"""Energy per frame (EPF) of a network on a device: the measurement protocol, its result types, the
on-disk cache that keeps a search from measuring anything twice, and the device fingerprint that
says when two measurements are comparable.

Example:
    >>> from e2gcsearch import ArchConfig
    >>> config = ProfileConfig(batch_sizes=(4,), resolution=64, backend="estimate", repeats=2,
    ...                        min_window_s=0.05, threads=1, use_cache=False)
    >>> result = profile_model(ArchConfig("mobilenet_v1", group_size=4, width=0.25, num_classes=10), config)
    >>> result.backend, result.is_estimate, result.batches[4].status
    ('estimate', True, 'ok')
"""

from __future__ import annotations

from ..devices import resolve_device
from .cache import ProfileCache, default_cache_dir
from .fingerprint import DeviceFingerprint, device_fingerprint
from .lock import DeviceLock
from .protocol import epf_columns, extend_measurement, profile_many, profile_model
from .results import BatchProfile, ProfileError, ProfileResult
from .settings import ProfileConfig

__all__ = [
    "BatchProfile",
    "DeviceFingerprint",
    "DeviceLock",
    "ProfileCache",
    "ProfileConfig",
    "ProfileError",
    "ProfileResult",
    "default_cache_dir",
    "device_fingerprint",
    "epf_columns",
    "extend_measurement",
    "profile_many",
    "profile_model",
    "resolve_device",
]
