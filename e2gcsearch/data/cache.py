"""The decoded-tensor cache: decode and resize every image of a :class:`~.sources.Split` once, store
the uint8 tensors in one file keyed by (dataset, subset, resolution), and load that file afterwards.

Resizing: the short side goes to R and the centre R x R square is kept (JPEGs are first decoded at a
reduced DCT scale with Pillow's ``draft``, which is what makes the first pass cheap). Training-time
augmentation then works on these tensors (:mod:`.augment`).

An image that cannot be decoded is skipped with a :class:`SkippedImageWarning` naming the file; the
list is stored in the cache and reported by :meth:`LoadedData.description`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..console import note
from .sources import Split, require_memory
from .types import LoadedData

CACHE_FORMAT = 1  # bump when the decoding or the file layout changes; old files are then ignored


class SkippedImageWarning(UserWarning):
    """An image that could not be decoded was left out of the data set."""


def interactive(progress: bool) -> bool:
    """Whether a progress bar should be drawn: asked for, and stderr is a terminal."""
    try:
        return bool(progress) and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def cache_key(split: Split, resolution: int) -> str:
    """A digest of everything that decides the cached tensors."""
    identity = {
        "format": CACHE_FORMAT,
        "dataset": split.dataset,
        "base": str(Path(split.base).resolve()),
        "classes": split.class_names,
        "train": split.train,
        "val": split.val,
        "resolution": resolution,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def cache_file(split: Split, cache_root: Path, resolution: int) -> Path:
    """``<cache_root>/<dataset>-<K>c-<train>t-<val>v-<R>px-<digest>.pt``."""
    digest = cache_key(split, resolution)[:16]
    name = f"{split.dataset}-{len(split.class_names)}c-{len(split.train)}t-{len(split.val)}v-{resolution}px-{digest}.pt"
    return cache_root / name


def decode_image(path: str | Path, resolution: int) -> np.ndarray:
    """One image file → uint8 ``(R, R, 3)``: short side to R (bilinear, antialiased), centre crop."""
    from PIL import Image

    with Image.open(path) as image:
        image.draft("RGB", (resolution, resolution))  # JPEG: decode at 1/2, 1/4 or 1/8 scale when possible
        image = image.convert("RGB")
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.resize(
            (resolution, resolution), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side)
        )
        return np.array(image, dtype=np.uint8)  # a writable copy (torch.from_numpy needs one)


def _decode_or_reason(path: str, resolution: int) -> np.ndarray | str:
    try:
        return decode_image(path, resolution)
    except Exception as exc:  # any broken file is skipped, never fatal; the reason is reported
        return f"{type(exc).__name__}: {exc}"


def decode_files(
    paths: Sequence[str], resolution: int, progress: bool = True, desc: str = "decoding"
) -> tuple[torch.Tensor, list[int], list[tuple[str, str]]]:
    """Decode ``paths`` in a thread pool (Pillow releases the GIL while decoding).

    Returns:
        uint8 images ``(n_ok, 3, R, R)``, the indices of ``paths`` that decoded, and ``(path, reason)``
        of those that did not.
    """
    require_memory(len(paths), resolution)
    images = torch.empty((len(paths), 3, resolution, resolution), dtype=torch.uint8)
    kept: list[int] = []
    skipped: list[tuple[str, str]] = []
    from tqdm import tqdm

    workers = min(8, os.cpu_count() or 1)
    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(
            total=len(paths), desc=desc, unit="img", file=sys.stderr, disable=not interactive(progress), leave=False
        ) as bar,
    ):
        for index, result in enumerate(pool.map(_decode_or_reason, paths, [resolution] * len(paths))):
            if isinstance(result, str):
                skipped.append((paths[index], result))
                warnings.warn(f"skipped unreadable image {paths[index]} ({result})", SkippedImageWarning, stacklevel=2)
            else:
                images[len(kept)] = torch.from_numpy(result).permute(2, 0, 1)  # (R, R, 3) → (3, R, R)
                kept.append(index)
            bar.update(1)
    return images[: len(kept)].clone() if len(kept) < len(paths) else images, kept, skipped


def _build(split: Split, resolution: int, progress: bool) -> dict:
    base = Path(split.base)
    state: dict = {
        "format": CACHE_FORMAT,
        "key": cache_key(split, resolution),
        "dataset": split.dataset,
        "root": split.root,
        "class_names": list(split.class_names),
        "skipped": [],
    }
    for name, entries in (("train", split.train), ("val", split.val)):
        paths = [str(base / rel) for rel, _ in entries]
        images, kept, skipped = decode_files(paths, resolution, progress, desc=f"decoding {split.dataset} {name}")
        state[f"{name}_images"] = images
        state[f"{name}_labels"] = torch.tensor([entries[i][1] for i in kept], dtype=torch.int64)
        state["skipped"] += [[path, reason] for path, reason in skipped]
    return state


def _read(path: Path, key: str) -> dict | None:
    if not path.is_file():
        return None
    try:
        state = torch.load(path, weights_only=True, mmap=True)
    except Exception as exc:  # a truncated or foreign file: rebuild rather than fail
        warnings.warn(f"ignoring unreadable tensor cache {path} ({exc}); rebuilding it", RuntimeWarning, stacklevel=3)
        return None
    if not isinstance(state, dict) or state.get("format") != CACHE_FORMAT or state.get("key") != key:
        return None
    return state


def _write(path: Path, state: dict) -> bool:
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as handle:
            tmp = Path(handle.name)
        torch.save(state, tmp)
        os.replace(tmp, path)  # atomic: concurrent readers see the old file or the new one, never half
        return True
    except OSError as exc:
        warnings.warn(
            f"could not write the tensor cache {path} ({exc}); continuing without it -- "
            "pass a writable --cache-dir to decode only once",
            RuntimeWarning,
            stacklevel=3,
        )
        if tmp is not None and tmp.exists():
            tmp.unlink()
        return False


def load_or_build(split: Split, cache_root: Path, resolution: int, progress: bool = True) -> LoadedData:
    """The decoded tensors of ``split``: from the cache when present, decoded (and cached) otherwise."""

    path = cache_file(split, cache_root, resolution)
    state = _read(path, cache_key(split, resolution))
    hit = state is not None
    if state is None:
        if progress and not interactive(progress):
            note(f"data: decoding {len(split.train) + len(split.val)} images once into {path}")
        state = _build(split, resolution, progress)
        written = _write(path, state)
    return LoadedData(
        train_images=state["train_images"],
        train_labels=state["train_labels"],
        val_images=state["val_images"],
        val_labels=state["val_labels"],
        class_names=list(state["class_names"]),
        name=split.dataset,
        root=split.root,
        resolution=resolution,
        skipped=[(str(p), str(r)) for p, r in state["skipped"]],
        cache_path=str(path) if hit or written else None,
        cache_hit=hit,
    )
