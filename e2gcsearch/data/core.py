""":func:`load_data`: picks the dataset, selects the subset and goes through the tensor cache."""

from __future__ import annotations

import time
from pathlib import Path

from ..console import note as print_note
from ..errors import DataError, UnknownNameError
from . import cache, sources
from .types import ALIASES, DATA_ENV, DATASETS, DataConfig, LoadedData, default_cache_dir, default_data_root


def resolve_dataset(config: DataConfig) -> tuple[str, str | None, str]:
    """(dataset name, root, note) for ``config``; the note explains an automatic choice."""
    name = config.name.strip().lower() if config.name else None
    name = ALIASES.get(name, name) if name else None
    if name is not None and name not in DATASETS:
        raise UnknownNameError(
            f"unknown dataset {config.name!r}; choose one of: {', '.join(DATASETS)} (embedded = digits)"
        )
    if name == "digits":
        return name, None, ""
    if name == "imagefolder":
        if not config.root:
            raise DataError("--data imagefolder needs --data-root DIR pointing at a <class>/<image> tree")
        return name, str(Path(config.root).expanduser().resolve()), ""
    root = Path(config.root).expanduser().resolve() if config.root else default_data_root()
    if name == "food101" or sources.find_food101(root) is not None:
        return (
            "food101",
            str(root),
            ("" if name else f"data: using Food-101 found at {root} (pass --data digits for the embedded set)"),
        )
    if config.root:  # an explicit root that holds no Food-101 must not silently fall back
        raise DataError(
            f"no Food-101 found at {root} (expected {root}/food-101/meta/train.json); point --data-root at the "
            "folder that contains food-101/, or pass --data imagefolder for a <class>/<image> tree"
        )
    note = (
        f"data: no Food-101 at {root}; using the embedded 'digits' set (1,797 real 8x8 handwritten digits "
        f"bundled with scikit-learn). To train on Food-101, put it there (food-101/images, food-101/meta), "
        f"set ${DATA_ENV}, or pass --data food101 --data-root DIR [--download]"
    )
    return "digits", None, note


def load_data(config: DataConfig, progress: bool = True) -> LoadedData:
    """Load the subset ``config`` asks for, through the decoded-tensor cache.

    Raises :class:`DataError` (missing root, too few images), :class:`UnknownNameError` (unknown
    dataset or class name) or :class:`ConfigError` (bad numbers), each naming the fix.
    """
    start = time.perf_counter()
    name, root, note = resolve_dataset(config)
    if note and progress:
        print_note(note)
    if name == "digits":
        data = sources.load_digits_split(config)
    else:
        split = (
            sources.food101_split(Path(root), config)
            if name == "food101"
            else sources.imagefolder_split(Path(root), config)
        )
        cache_root = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
        data = cache.load_or_build(split, cache_root, config.resolution, progress=progress)
    data.seed = config.seed
    data.note = note
    data.load_s = time.perf_counter() - start
    return data
