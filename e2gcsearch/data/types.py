"""What a dataset request looks like (:class:`DataConfig`) and what it yields (:class:`LoadedData`),
with the default places data and decoded tensors live."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from ..checks import is_int, positive_int
from ..checks import resolution as check_resolution
from ..errors import ConfigError
from ..paths import TENSORS, cache_folder, user_cache_home

DATASETS = ("food101", "imagefolder", "digits")
ALIASES = {"embedded": "digits", "food-101": "food101", "image_folder": "imagefolder", "folder": "imagefolder"}
DATA_ENV = "E2GCSEARCH_DATA"


def default_data_root() -> Path:
    """Where Food-101 is looked for: ``$E2GCSEARCH_DATA``, else ``~/.cache/e2gcsearch/data``."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else user_cache_home() / "data"


def default_cache_dir() -> Path:
    """Where decoded tensors go: ``$E2GCSEARCH_CACHE_DIR/tensors``, else ``~/.cache/e2gcsearch/tensors``."""
    return cache_folder(TENSORS)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """A dataset and the subset of it to train on.

    Args:
        name: ``food101``, ``imagefolder``, ``digits`` (alias ``embedded``), or ``None`` for auto
            (Food-101 if found at the data root, else ``digits``).
        root: dataset folder (Food-101: the folder containing ``food-101/``); default
            :func:`default_data_root` for Food-101. Required for ``imagefolder``.
        classes: ``K`` keeps the first K classes in the dataset's order (so ``--classes 10`` on the
            full Food-101 gives the classes of ``food101-mini``); a tuple of names keeps those.
            ``None`` keeps all.
        train_per_class: training images per class, drawn with ``seed`` (``None`` = all).
        train_cap: with ``train_per_class`` unset, at most this many training images per class (a class
            with fewer keeps all of them): how a proxy budget subsamples large datasets only.
        val_per_class: validation images per class, drawn with ``seed`` (``None`` = all of the
            official test split for Food-101, ``val_fraction`` of each class otherwise).
        resolution: side of the square images in pixels (short side resized, centre crop).
        seed: seeds the subset draw and the validation split.
        cache_dir: tensor cache folder (default :func:`default_cache_dir`).
        download: allow torchvision to download Food-101 (5 GB) when it is missing.
        val_fraction: validation share of each class when a dataset has no official split.
    """

    name: str | None = None
    root: str | None = None
    classes: int | tuple[str, ...] | None = None
    train_per_class: int | None = None
    val_per_class: int | None = None
    resolution: int = 64
    train_cap: int | None = None
    seed: int = 0
    cache_dir: str | None = None
    download: bool = False
    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        if isinstance(self.classes, list):
            object.__setattr__(self, "classes", tuple(self.classes))
        if isinstance(self.classes, int) and not is_int(self.classes):
            raise ConfigError(f"classes must be a positive number or a list of class names, got {self.classes!r}")
        if isinstance(self.classes, tuple) and not self.classes:
            raise ConfigError("classes is an empty list; name at least one class or pass a number like --classes 10")
        for field in ("train_per_class", "val_per_class", "train_cap"):
            positive_int(field, getattr(self, field), optional=True)
        check_resolution(self.resolution)
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must lie strictly between 0 and 1 (e.g. 0.2), got {self.val_fraction!r}")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["classes"] = list(self.classes) if isinstance(self.classes, tuple) else self.classes
        return data


@dataclasses.dataclass
class LoadedData:
    """Decoded, resized images of one train/validation split, ready to move to a device.

    ``train_images``/``val_images`` are uint8 ``(N, 3, R, R)``; labels are int64 ``(N,)`` indexing
    ``class_names``. ``skipped`` lists ``(path, reason)`` of images that could not be decoded.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    class_names: list[str]
    name: str
    root: str | None = None
    resolution: int = 64
    seed: int = 0
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    cache_path: str | None = None
    cache_hit: bool = False
    load_s: float = 0.0
    note: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def per_class_counts(self, split: str = "train") -> dict[str, int]:
        labels = self.train_labels if split == "train" else self.val_labels
        counts = torch.bincount(labels, minlength=self.num_classes).tolist()
        return dict(zip(self.class_names, counts))

    @functools.cached_property
    def val_order(self) -> str:
        """A digest of the validation images and labels in the order they are judged: two per-image
        results (:mod:`e2gcsearch.paired`) compare only when it is the same."""
        digest = hashlib.sha256()
        for tensor in (self.val_labels, self.val_images):
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def description(self) -> dict[str, Any]:
        """Everything a report needs to say which data a number came from."""
        return {
            "dataset": self.name,
            "root": self.root,
            "classes": list(self.class_names),
            "num_classes": self.num_classes,
            "train_per_class": self.per_class_counts("train"),
            "val_per_class": self.per_class_counts("val"),
            "resolution": self.resolution,
            "seed": self.seed,
            "train_size": int(self.train_labels.numel()),
            "val_size": int(self.val_labels.numel()),
            "skipped": len(self.skipped),
            "skipped_files": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "cache": self.cache_path,
            "cache_hit": self.cache_hit,
            "load_s": round(self.load_s, 3),
        }

    def summary_line(self) -> str:
        """One human line: dataset, classes, split sizes, resolution, cache."""
        where = f" at {self.root}" if self.root else ""
        cache_text = "cache hit" if self.cache_hit else ("cache built" if self.cache_path else "no cache")
        skipped = f", {len(self.skipped)} unreadable image(s) skipped" if self.skipped else ""
        return (
            f"data: {self.name}{where}: {self.num_classes} classes, {self.train_labels.numel()} train / "
            f"{self.val_labels.numel()} val images, {self.resolution}x{self.resolution} px "
            f"({cache_text}, {self.load_s:.2f} s){skipped}"
        )
