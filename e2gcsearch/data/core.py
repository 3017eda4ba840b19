"""What a dataset request looks like (:class:`DataConfig`), what it yields (:class:`LoadedData`), and
:func:`load_data`, which picks the dataset, selects the subset and goes through the tensor cache."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, DataError, UnknownNameError
from . import cache, sources

DATASETS = ("food101", "imagefolder", "digits")
ALIASES = {"embedded": "digits", "food-101": "food101", "image_folder": "imagefolder", "folder": "imagefolder"}
DATA_ENV = "E2GCSEARCH_DATA"
CACHE_ENV = "E2GCSEARCH_CACHE_DIR"


def _user_cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "e2gcsearch"


def cache_home() -> Path:
    """Base folder of everything e2gcsearch caches: ``$E2GCSEARCH_CACHE_DIR``, else ``~/.cache/e2gcsearch``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else _user_cache_home()


def default_data_root() -> Path:
    """Where Food-101 is looked for: ``$E2GCSEARCH_DATA``, else ``~/.cache/e2gcsearch/data``."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else _user_cache_home() / "data"


def default_cache_dir() -> Path:
    """Where decoded tensors go: ``$E2GCSEARCH_CACHE_DIR/tensors``, else ``~/.cache/e2gcsearch/tensors``."""
    return cache_home() / "tensors"


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
    seed: int = 0
    cache_dir: str | None = None
    download: bool = False
    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        if isinstance(self.classes, list):
            object.__setattr__(self, "classes", tuple(self.classes))
        if isinstance(self.classes, bool) or (isinstance(self.classes, int) and self.classes < 1):
            raise ConfigError(f"classes must be a positive number or a list of class names, got {self.classes!r}")
        if isinstance(self.classes, tuple) and not self.classes:
            raise ConfigError("classes is an empty list; name at least one class or pass a number like --classes 10")
        for field in ("train_per_class", "val_per_class"):
            value = getattr(self, field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{field} must be a positive integer, got {value!r}")
        if isinstance(self.resolution, bool) or not isinstance(self.resolution, int) or self.resolution < 8:
            raise ConfigError(f"resolution must be an integer >= 8 pixels (e.g. 64), got {self.resolution!r}")
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
        return (f"data: {self.name}{where}: {self.num_classes} classes, {self.train_labels.numel()} train / "
                f"{self.val_labels.numel()} val images, {self.resolution}x{self.resolution} px "
                f"({cache_text}, {self.load_s:.2f} s){skipped}")


def resolve_dataset(config: DataConfig) -> tuple[str, str | None, str]:
    """(dataset name, root, note) for ``config``; the note explains an automatic choice."""
    name = config.name.strip().lower() if config.name else None
    name = ALIASES.get(name, name) if name else None
    if name is not None and name not in DATASETS:
        raise UnknownNameError(
            f"unknown dataset {config.name!r}; choose one of: {', '.join(DATASETS)} (embedded = digits)")
    if name == "digits":
        return name, None, ""
    if name == "imagefolder":
        if not config.root:
            raise DataError("--data imagefolder needs --data-root DIR pointing at a <class>/<image> tree")
        return name, str(Path(config.root).expanduser().resolve()), ""
    root = Path(config.root).expanduser().resolve() if config.root else default_data_root()
    if name == "food101" or sources.find_food101(root) is not None:
        return "food101", str(root), ("" if name else f"data: using Food-101 found at {root} (pass --data digits "
                                                    "for the embedded set)")
    if config.root:  # an explicit root that holds no Food-101 must not silently fall back
        raise DataError(
            f"no Food-101 found at {root} (expected {root}/food-101/meta/train.json); point --data-root at the "
            "folder that contains food-101/, or pass --data imagefolder for a <class>/<image> tree")
    note = (f"data: no Food-101 at {root}; using the embedded 'digits' set (1,797 real 8x8 handwritten digits "
            f"bundled with scikit-learn). To train on Food-101, put it there (food-101/images, food-101/meta), "
            f"set ${DATA_ENV}, or pass --data food101 --data-root DIR [--download]")
    return "digits", None, note


def load_data(config: DataConfig, progress: bool = True) -> LoadedData:
    """Load the subset ``config`` asks for, through the decoded-tensor cache.

    Raises :class:`DataError` (missing root, too few images), :class:`UnknownNameError` (unknown
    dataset or class name) or :class:`ConfigError` (bad numbers), each naming the fix.
    """
    start = time.perf_counter()
    name, root, note = resolve_dataset(config)
    if note and progress:
        sys.stderr.write(note + "\n")
    if name == "digits":
        data = sources.load_digits_split(config)
    else:
        split = sources.food101_split(Path(root), config) if name == "food101" \
            else sources.imagefolder_split(Path(root), config)
        cache_root = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
        data = cache.load_or_build(split, cache_root, config.resolution, progress=progress)
    data.seed = config.seed
    data.note = note
    data.load_s = time.perf_counter() - start
    return data
