"""Training checkpoints: one ``last.pt`` per run folder, written atomically after every epoch with
``torch.save`` of plain state dicts and read back with ``torch.load(weights_only=True)``.

A checkpoint records the *identity* of its run (architecture, data subset, training settings); a
resume with a different identity is refused, because it would not continue the same run. Settings
that do not change the arithmetic (progress bar, thread count, device, checkpoint folder) are left
out of the identity.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..config import ArchConfig
from ..errors import ConfigError
from ..paths import cache_home

if TYPE_CHECKING:
    from ..data import LoadedData
    from .config import TrainConfig

CHECKPOINT_FORMAT = 1
CHECKPOINT_NAME = "last.pt"
# TrainConfig fields that may differ between a run and its resumption.
RUN_INDEPENDENT = ("resume", "progress", "threads", "device", "checkpoint_dir")


def run_identity(arch_config: ArchConfig, data: LoadedData, config: TrainConfig) -> dict[str, Any]:
    """What must be equal for a checkpoint to continue a run (JSON-compatible)."""
    train = {key: value for key, value in config.to_dict().items() if key not in RUN_INDEPENDENT}
    subset = {
        "dataset": data.name,
        "root": data.root,
        "classes": list(data.class_names),
        "train_size": int(data.train_labels.numel()),
        "val_size": int(data.val_labels.numel()),
        "resolution": data.resolution,
        "seed": data.seed,
    }
    return {"arch": arch_config.to_dict(), "data": subset, "train": train}


def identity_digest(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def default_checkpoint_dir(arch_config: ArchConfig, identity: dict[str, Any]) -> Path:
    """``<cache home>/checkpoints/<arch label>-<identity digest>`` (see :func:`e2gcsearch.paths.cache_home`)."""
    label = re.sub(r"[^A-Za-z0-9.]+", "-", arch_config.label()).strip("-")
    return cache_home() / "checkpoints" / f"{label}-{identity_digest(identity)}"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (a crash mid-write leaves the previous checkpoint intact)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as handle:
        tmp = Path(handle.name)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    keys = []
    for section in sorted(set(saved) | set(current)):
        left, right = saved.get(section, {}), current.get(section, {})
        for key in sorted(set(left) | set(right)):
            if left.get(key) != right.get(key):
                keys.append(f"{section}.{key} ({left.get(key)!r} -> {right.get(key)!r})")
    return keys


def load_checkpoint(path: Path, identity: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint at ``path`` if it belongs to the run ``identity``; :class:`ConfigError` otherwise."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file: the user must decide, say how
        raise ConfigError(
            f"cannot read the checkpoint {path} ({exc}); delete it to start over or pass another --checkpoint-dir"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(
            f"{path} is not an e2gcsearch checkpoint of format {CHECKPOINT_FORMAT}; pass another --checkpoint-dir"
        )
    saved = json.loads(state["identity"])
    identity = json.loads(json.dumps(identity, sort_keys=True))  # tuples → lists, as stored
    changed = _differences(saved, identity)
    if changed:
        raise ConfigError(
            f"the checkpoint {path} belongs to a different run ({'; '.join(changed[:4])}); "
            "resume with the settings it was started with, or pass another --checkpoint-dir"
        )
    return state
