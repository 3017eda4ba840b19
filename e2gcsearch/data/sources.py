"""Where the images come from: the Food-101 layout, a ``class/image`` folder, and the embedded digits.

Each photo dataset is turned into a :class:`Split` -- the chosen classes and the (file, label) lists of
the train and validation subsets -- which :mod:`.cache` decodes once. Subsets are stratified (the same
number of images from every chosen class) and deterministic: draws use ``random.Random`` seeded with
a string of (seed, split, class), which does not depend on ``PYTHONHASHSEED`` or on the class order.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import random
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import DataError, UnknownNameError
from .types import DataConfig, LoadedData

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclasses.dataclass(frozen=True)
class Split:
    """The files of one train/validation subset; paths are relative to ``base``."""

    dataset: str
    root: str
    base: str
    class_names: tuple[str, ...]
    train: tuple[tuple[str, int], ...]
    val: tuple[tuple[str, int], ...]


def find_food101(root: Path) -> Path | None:
    """The ``food-101`` folder under ``root`` (or ``root`` itself), or ``None`` when absent."""
    for candidate in (root / "food-101", root):
        if (candidate / "meta" / "train.json").is_file() and (candidate / "images").is_dir():
            return candidate
    return None


def select_classes(available: Sequence[str], wanted: int | tuple[str, ...] | None, where: str) -> list[str]:
    """The classes to keep, in the dataset's order (so labels do not depend on how they were listed)."""
    if isinstance(wanted, int) and wanted > len(available):
        raise DataError(f"{where} has only {len(available)} classes; use --classes {len(available)} or fewer")
    for name in wanted if isinstance(wanted, tuple) else ():
        if name not in available:
            close = difflib.get_close_matches(name, available, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"the first classes are {', '.join(available[:5])}"
            raise UnknownNameError(f"no class {name!r} in {where}; {hint} (list them with ls)")
    if wanted is None:
        chosen = list(available)
    elif isinstance(wanted, int):
        chosen = list(available[:wanted])
    else:
        chosen = [name for name in available if name in set(wanted)]
    if len(chosen) < 2:  # one class: every prediction is right, and top-1 says 100 % about nothing
        raise DataError(
            f"{where} gives one class ({', '.join(chosen) or 'none'}); a classifier needs two or more: "
            "name more with --classes, or add class folders"
        )
    return chosen


def available_memory() -> int | None:
    """Bytes of memory free for new allocations (Linux and macOS), or None where unknown."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def require_memory(count: int, resolution: int) -> None:
    """Refuse, before allocating, a decoded set larger than the memory free now."""
    needed, free = count * 3 * resolution * resolution, available_memory()
    if free is not None and needed > free:
        raise DataError(
            f"{count:,} images at {resolution}x{resolution} px need {needed / 2**30:,.1f} GiB decoded, "
            f"more than the {free / 2**30:,.1f} GiB free; use a smaller --resolution (e.g. 64) or "
            "fewer images (--train-per-class)"
        )


def _rng(seed: int, split: str, class_name: str) -> random.Random:
    return random.Random(f"e2gcsearch/{seed}/{split}/{class_name}")


def draw(items: Sequence, count: int | None, seed: int, split: str, class_name: str) -> list:
    """``count`` items drawn with the seed, kept in their original order (all when ``count`` is None)."""
    if count is None or count >= len(items):
        return list(items)
    chosen = sorted(_rng(seed, split, class_name).sample(range(len(items)), count))
    return [items[i] for i in chosen]


def _too_few(kind: str, counts: dict[str, int], wanted: int, flag: str, where: str) -> DataError:
    name, have = min(counts.items(), key=lambda item: item[1])
    return DataError(
        f"class {name!r} has only {have} {kind} images in {where}, fewer than {flag} {wanted}; "
        f"use {flag} {have} or fewer"
    )


def food101_split(root: Path, config: DataConfig) -> Split:
    """The Food-101 subset of ``config`` from the official train/test lists (test = validation)."""
    base = find_food101(root)
    if base is None and config.download:
        base = _download_food101(root)
    if base is None:
        raise DataError(
            f"no Food-101 found at {root} (expected {root}/food-101/images and meta/train.json); "
            "point --data-root at the folder that contains food-101/, or add --download to fetch it (5 GB)"
        )
    lists = {}
    for split in ("train", "test"):
        try:
            lists[split] = json.loads((base / "meta" / f"{split}.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(
                f"cannot read {base / 'meta' / f'{split}.json'} ({exc}); restore it from the "
                "Food-101 archive or re-download with --download"
            ) from None
    classes_txt = base / "meta" / "classes.txt"
    available = classes_txt.read_text().split() if classes_txt.is_file() else sorted(lists["train"])
    where = f"Food-101 at {root}"
    class_names = select_classes(available, config.classes, where)
    picked = {}
    for split, wanted, flag in (
        ("train", config.train_per_class, "--train-per-class"),
        ("test", config.val_per_class, "--val-per-class"),
    ):
        counts = {name: len(lists[split].get(name, [])) for name in class_names}
        if wanted is not None and min(counts.values()) < wanted:
            raise _too_few("train" if split == "train" else "test (validation)", counts, wanted, flag, where)
        cap = config.train_cap if split == "train" and wanted is None else None
        picked[split] = tuple(
            (f"{entry}.jpg", label)
            for label, name in enumerate(class_names)
            for entry in draw(
                lists[split].get(name, []), min(cap, counts[name]) if cap else wanted, config.seed, split, name
            )
        )
    return Split("food101", str(root), str(base / "images"), tuple(class_names), picked["train"], picked["test"])


def _download_food101(root: Path) -> Path | None:
    from torchvision.datasets import Food101  # imported only when a download was asked for

    try:
        Food101(str(root), split="train", download=True)
    except Exception as exc:  # network or disk failure: say what happened and what to do
        raise DataError(
            f"downloading Food-101 into {root} failed ({exc}); check the network and free space "
            "(5 GB), or download food-101.tar.gz by hand and unpack it there"
        ) from None
    return find_food101(root)


def split_pool(items: Sequence, config: DataConfig, class_name: str, where: str) -> tuple[list, list]:
    """Seeded (train, val) split of one class's items for datasets without an official split."""
    order = list(range(len(items)))
    _rng(config.seed, "split", class_name).shuffle(order)
    if len(items) < 2:
        raise DataError(
            f"class {class_name!r} in {where} has {len(items)} image(s); every class needs at least 2 "
            "(one to train, one to validate) -- add images or leave the class out with --classes"
        )
    n_val = config.val_per_class or max(1, round(config.val_fraction * len(items)))
    n_train = config.train_per_class if config.train_per_class is not None else len(items) - n_val
    if config.train_per_class is None and config.train_cap:
        n_train = min(n_train, config.train_cap)
    if n_val + n_train > len(items) or n_train < 1:
        raise DataError(
            f"class {class_name!r} in {where} has {len(items)} images, fewer than the {n_train} train + "
            f"{n_val} validation asked for; lower --train-per-class/--val-per-class "
            f"(at most {len(items)} together)"
        )
    val = sorted(order[:n_val])
    train = sorted(order[n_val : n_val + n_train])
    return [items[i] for i in train], [items[i] for i in val]


def imagefolder_split(root: Path, config: DataConfig) -> Split:
    """The subset of a ``root/<class>/<image>`` tree, with a seeded stratified validation split."""
    if not root.is_dir():
        raise DataError(f"data root {root} does not exist; pass --data-root DIR with one sub-folder per class")
    files = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            files[folder.name] = images
    if not files:
        raise DataError(
            f"no images found in {root}/<class>/ (looked for {', '.join(IMAGE_SUFFIXES)}); "
            "pass --data-root DIR with one sub-folder of images per class"
        )
    where = f"image folder {root}"
    class_names = select_classes(list(files), config.classes, where)
    train, val = [], []
    for label, name in enumerate(class_names):
        train_files, val_files = split_pool(files[name], config, name, where)
        train += [(f"{name}/{f}", label) for f in train_files]
        val += [(f"{name}/{f}", label) for f in val_files]
    return Split("imagefolder", str(root), str(root), tuple(class_names), tuple(train), tuple(val))


def _digits_tensor(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """(N, 8, 8) floats in [0, 16] → uint8 (N, 3, R, R), bilinear upsampling, grey repeated 3 times."""
    x = (images.float() / 16.0).unsqueeze(1)  # (N, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return (x * 255.0).round().clamp_(0, 255).to(torch.uint8).repeat(1, 3, 1, 1).contiguous()


def load_digits_split(config: DataConfig) -> LoadedData:
    """The embedded set: scikit-learn's bundled UCI digits, split like an image folder."""
    from sklearn.datasets import load_digits  # the data ships inside the scikit-learn wheel

    bunch = load_digits()
    images, targets = torch.from_numpy(bunch.images), torch.from_numpy(bunch.target).long()
    available = [str(d) for d in range(10)]
    where = "the embedded digits set"
    class_names = select_classes(available, config.classes, where)
    train_idx, val_idx, train_lab, val_lab = [], [], [], []
    for label, name in enumerate(class_names):
        pool = torch.nonzero(targets == int(name)).flatten().tolist()
        train, val = split_pool(pool, config, name, where)
        train_idx += train
        val_idx += val
        train_lab += [label] * len(train)
        val_lab += [label] * len(val)
    require_memory(len(train_idx) + len(val_idx), config.resolution)
    return LoadedData(
        train_images=_digits_tensor(images[train_idx], config.resolution),
        train_labels=torch.tensor(train_lab, dtype=torch.int64),
        val_images=_digits_tensor(images[val_idx], config.resolution),
        val_labels=torch.tensor(val_lab, dtype=torch.int64),
        class_names=class_names,
        name="digits",
        root=None,
        resolution=config.resolution,
    )
