"""Model registry: every architecture of the design space, built from an :class:`ArchConfig`.

Example:
    >>> from e2gcsearch import ArchConfig, create_model, list_models
    >>> list_models()
    ['mobilenet_v1', 'resnext50']
    >>> net = create_model(ArchConfig("mobilenet_v1", group_size=4, width=0.5, num_classes=10))
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from torch import nn

from ..config import ArchConfig
from ..checks import is_int
from ..errors import ConfigError, UnknownNameError
from . import mobilenet_v1, resnext


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A registered architecture: how to build it and what the paper's baseline of it is."""

    name: str
    build: Callable[[ArchConfig], nn.Module]
    plan: Callable[[ArchConfig], Any]
    total_stride: int
    baseline: ArchConfig
    description: str
    display_name: str = ""  # the name papers and plots use, e.g. "MobileNet-V1"; defaults to ``name``

    def __post_init__(self) -> None:
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry) -> ModelEntry:
    _REGISTRY[entry.name] = entry
    return entry


register_model(ModelEntry(
    name="mobilenet_v1",
    build=mobilenet_v1.build,
    plan=mobilenet_v1.plan,
    total_stride=32,
    baseline=ArchConfig("mobilenet_v1", group_size=1),
    description="MobileNet-V1: 13 modules of grouped 3x3 + 1x1 conv; G=1 is the stock depthwise network",
    display_name="MobileNet-V1",
))
register_model(ModelEntry(
    name="resnext50",
    build=resnext.build,
    plan=resnext.plan,
    total_stride=32,
    baseline=ArchConfig("resnext50", groups=32),
    description="ResNeXt-50 32x4d: 16 bottlenecks with a grouped 3x3 conv; g=32 is the stock network",
    display_name="ResNeXt-50",
))


def list_models() -> list[str]:
    """Names of every registered architecture, sorted."""
    return sorted(_REGISTRY)


def get_entry(arch: str) -> ModelEntry:
    try:
        return _REGISTRY[arch]
    except KeyError:
        raise UnknownNameError(
            f"unknown architecture {arch!r}; choose one of: {', '.join(list_models())}"
        ) from None


def check_resolution(arch: str, resolution: int) -> None:
    """Reject input sizes smaller than the network's total stride (the last stage would be empty)."""
    stride = get_entry(arch).total_stride
    if not is_int(resolution, minimum=stride):
        raise ConfigError(
            f"resolution {resolution} is too small for {arch}, whose total stride is {stride}; "
            f"use --resolution {stride} or larger (e.g. 64, 112 or 224)"
        )


def create_model(config: ArchConfig | str, **kwargs: Any) -> nn.Module:
    """Build the network for ``config`` (an :class:`ArchConfig`, or an arch name plus its fields).

    Raises :class:`ConfigError` when the grouping does not fit the channels, and
    :class:`UnknownNameError` for an unknown architecture.
    """
    if isinstance(config, str):
        config = ArchConfig(config, **kwargs)
    elif kwargs:
        config = config.replace(**kwargs)
    return get_entry(config.arch).build(config)


def validate_config(config: ArchConfig) -> None:
    """Raise the error :func:`create_model` would raise, without allocating any weights."""
    get_entry(config.arch).plan(config)


__all__ = [
    "ModelEntry",
    "check_resolution",
    "create_model",
    "get_entry",
    "list_models",
    "register_model",
    "validate_config",
]
