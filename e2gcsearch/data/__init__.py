"""Datasets for proxy and full training: Food-101, any ``class/image`` folder, and an embedded default.

Every dataset becomes a :class:`LoadedData`: uint8 image tensors ``(N, 3, R, R)`` plus int64 labels
for a train and a validation split, already decoded and resized, so that training never touches a
JPEG. Photos are decoded once into a tensor cache keyed by (dataset, subset, resolution); later runs
load the cache in milliseconds.

Datasets (``DataConfig.name``):
    * ``food101`` -- torchvision's Food-101 layout ``ROOT/food-101/{images/<class>/<id>.jpg,
      meta/train.json, meta/test.json}``; official train/test split (test = validation).
      ``download=True`` fetches the 5 GB archive with torchvision; never done implicitly.
    * ``imagefolder`` -- any ``ROOT/<class>/<image>`` tree; a seeded, stratified validation split.
    * ``digits`` (alias ``embedded``) -- scikit-learn's bundled copy of the UCI handwritten digits
      (1,797 real 8x8 grey scans, 10 classes), upsampled to the resolution and repeated to 3
      channels. It ships inside the scikit-learn wheel, so it works offline on a fresh machine.
    * ``None`` (auto) -- Food-101 when it is found at the data root, otherwise ``digits``, with one
      line on stderr saying which and how to switch.

Data root (Food-101): ``DataConfig.root``, else ``$E2GCSEARCH_DATA``, else
``~/.cache/e2gcsearch/data`` (the folder that contains ``food-101/``).
Tensor cache: ``DataConfig.cache_dir``, else ``$E2GCSEARCH_CACHE_DIR/tensors``, else
``~/.cache/e2gcsearch/tensors``.

Example:
    >>> data = load_data(DataConfig(name="digits", classes=3, train_per_class=20, val_per_class=10,
    ...                             resolution=32), progress=False)
    >>> tuple(data.train_images.shape), data.class_names
    ((60, 3, 32, 32), ['0', '1', '2'])
"""

from __future__ import annotations

from .augment import augment_batch, channel_stats, normalize_batch
from .core import load_data, resolve_dataset
from .types import DATASETS, DataConfig, LoadedData, default_cache_dir, default_data_root

__all__ = [
    "DATASETS",
    "DataConfig",
    "LoadedData",
    "augment_batch",
    "channel_stats",
    "default_cache_dir",
    "default_data_root",
    "load_data",
    "normalize_batch",
    "resolve_dataset",
]
