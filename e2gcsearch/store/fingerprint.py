"""What makes the objectives of two trials comparable, beyond the objectives, the space and the data:
the proxy training, the measurement protocol and the device. Stored on the study when it is created
and compared on every resume (see :func:`e2gcsearch.search.study.open_or_create_study`); each trial
also records the settings it ran with.

The training part leaves out thread counts and progress bars. A thread count does change a proxy
top-1, but as a seed does: it reorders floating-point sums, and four epochs amplify that (E2GC G=16
w0.5 on the default proxy: 90.25 % with 1 thread, 96.75 % with 2), so it belongs to seed noise, not
to what makes two trials comparable; refusing a resume whenever ``--threads auto`` chose another
count would only get in the way. The trial's own record keeps the threads it used. The device
fingerprint keeps the measurement threads, which change a CPU's energy per frame systematically.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..profiling import DeviceFingerprint, ProfileConfig
from ..train import TrainConfig
from ..train.config import augmentation_for
from . import record

# TrainConfig fields that do not change a trained network's top-1.
NOT_OBJECTIVE = ("threads", "progress", "device", "checkpoint_dir", "resume", "full")
# ProfileConfig fields that do not change a measured figure (the cache only saves time).
NOT_MEASURED = ("cache_dir", "use_cache", "refresh", "device", "device_lock")


def training_key(train: TrainConfig, dataset: str) -> dict[str, Any]:
    """The proxy training settings that change top-1 (augmentation resolved for ``dataset``)."""
    key = {name: value for name, value in train.to_dict().items() if name not in NOT_OBJECTIVE}
    key["augment"] = augmentation_for(train, dataset)
    return key


def profiling_key(profile: ProfileConfig) -> dict[str, Any]:
    """The measurement protocol (batch sizes, resolution, precision, layout, windows, backend, power model)."""
    key = {name: value for name, value in dataclasses.asdict(profile).items() if name not in NOT_MEASURED}
    key["batch_sizes"] = list(profile.batch_sizes)
    return key


def study_fingerprint(
    train: TrainConfig | None, profile: ProfileConfig, dataset: str, device: DeviceFingerprint
) -> dict[str, Any]:
    """Study attrs (beyond objectives, space and data) that must match to resume."""
    out = {record.PROFILING: profiling_key(profile), record.DEVICE: device.to_dict()}
    if train is not None:
        out[record.TRAINING] = training_key(train, dataset)
    return out


def trial_settings(train: TrainConfig | None, profile: ProfileConfig) -> dict[str, Any]:
    """What a trial records about how it ran (``record.SETTINGS``)."""
    out: dict[str, Any] = {
        "profile": profiling_key(profile) | {"device": profile.device, "device_lock": profile.device_lock}
    }
    if train is not None:
        out["train"] = train.to_dict()
    return out
