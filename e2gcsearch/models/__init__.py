"""Model registry: every architecture of the design space, built from an :class:`ArchConfig`.

Each network file registers its own :class:`ModelEntry` (see :mod:`.registry`); importing this
package imports them all.

Example:
    >>> from e2gcsearch import ArchConfig, create_model, list_models
    >>> list_models()[:4]
    ['efficientnet_b0', 'mobilenet_v1', 'mobilenet_v2', 'mobilenet_v3_large']
    >>> net = create_model(ArchConfig("mobilenet_v1", group_size=4, width=0.5, num_classes=10))
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .. import checks
from ..checks import is_int
from ..config import ArchConfig
from ..errors import ConfigError
from . import custom, mobilenet_v1, resnext, torchvision_nets  # noqa: F401 - each registers its entry (custom: module:function names)
from .flgc import deploy, learned_structure, load_structure
from .registry import (
    ExportRows,
    ModelEntry,
    StagePlan,
    default_arch,
    get_entry,
    list_models,
    paper_archs,
    register_model,
    registered,
    unregister_model,
)

DEFAULT_ARCH: str = default_arch()  # the architecture library defaults use


def check_resolution(arch: str, resolution: int, train_batch: int | None = None) -> None:
    """Reject input sizes smaller than the network's total stride (the last stage would be empty) or larger
    than :data:`~e2gcsearch.checks.MAX_RESOLUTION`; with ``train_batch`` (the smallest batch of a training
    step), also a last stage of one pixel at batch 1, where batch norm has one value per channel."""
    stride = get_entry(arch).total_stride
    if is_int(resolution):
        checks.resolution(resolution, minimum=1)  # the least is the network's stride, below
    if not is_int(resolution, minimum=stride):
        raise ConfigError(
            f"resolution {resolution} is too small for {arch}, whose total stride is {stride}; "
            f"use --resolution {stride} or larger (e.g. 64, 112 or 224)"
        )
    if train_batch == 1 and resolution <= stride:
        raise ConfigError(
            f"at {resolution} px the last stage of {arch} is one pixel, so a training step at batch size 1 gives "
            f"batch norm one value per channel; use a --resolution above {stride} (e.g. 64), batch sizes of 2 or more, "
            "or --mode infer"
        )


def create_model(arch_config: ArchConfig | str, **kwargs: Any) -> nn.Module:
    """Build the network for ``arch_config`` (an :class:`ArchConfig`, or an arch name plus its fields).

    Raises :class:`ConfigError` when the grouping does not fit the channels, and
    :class:`UnknownNameError` for an unknown architecture.
    """
    if isinstance(arch_config, str):
        arch_config = ArchConfig(arch_config, **kwargs)
    elif kwargs:
        arch_config = arch_config.replace(**kwargs)
    return get_entry(arch_config.arch).build(arch_config)


def validate_config(arch_config: ArchConfig) -> None:
    """Raise the error :func:`create_model` would raise, without allocating any weights."""
    get_entry(arch_config.arch).plan(arch_config)


def layer_notes(arch_config: ArchConfig) -> dict[str, str]:
    """Layer name → what the grouping did to it (rewritten, kept), for networks that say so; ``{}``
    otherwise (e2gcsearch's own networks, whose grouped layers are listed in their docstrings)."""
    notes = get_entry(arch_config.arch).layer_notes
    return notes(arch_config) if notes is not None else {}


__all__ = [
    "DEFAULT_ARCH",
    "ExportRows",
    "ModelEntry",
    "StagePlan",
    "check_resolution",
    "create_model",
    "default_arch",
    "deploy",
    "get_entry",
    "layer_notes",
    "learned_structure",
    "list_models",
    "load_structure",
    "paper_archs",
    "register_model",
    "registered",
    "unregister_model",
    "validate_config",
]
