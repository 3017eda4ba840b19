"""The model registry: one :class:`ModelEntry` per network, registered by the network's own file.

A network file (``mobilenet_v1.py``, ``resnext.py``) ends with ``register_model(ModelEntry(...))``;
everything the rest of the package needs to know about a network — how to build and plan it, its
stages, its name in papers and plots, its standalone-builder template, its paper baseline, whether
the paper's Tables III/IV list it — is asked of its entry, so nothing outside ``models/`` names a
network. This module imports nothing from the network files, so they can import it without a cycle.

Example:
    >>> get_entry("resnext50").display_name, get_entry("resnext50").stages.channels
    ('ResNeXt-50', (128, 256, 512, 1024))
    >>> default_arch(), paper_archs()
    ('mobilenet_v1', ('mobilenet_v1', 'resnext50'))
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from torch import nn

from ..config import ArchConfig
from ..errors import UnknownNameError


@dataclasses.dataclass(frozen=True)
class StagePlan:
    """The network's stages for stage-wise E2GC (one group size G per stage).

    Attributes:
        channels: stock input channels m of the grouped 3x3 convs of each stage, before any width
            multiplier, e.g. ``(128, 256, 512, 1024)``; their count is the number of stages.
        layer_stage: layer name as in the model (``"layer3.2.conv2"``) → stage index, or ``None``
            for layers outside the stages (stem, classifier).
    """

    channels: tuple[int, ...]
    layer_stage: Callable[[str], int | None]


@dataclasses.dataclass(frozen=True)
class ExportRows:
    """What ``e2gcsearch export --out FILE.py`` needs to write a standalone builder of the network.

    Attributes:
        body: the network's classes as :class:`string.Template` text, placed between the header and
            footer of :mod:`e2gcsearch.export.template`; it may use ``$table`` (the rows below) and
            ``$grouping`` (e.g. ``E2GC, G=4``), and must set ``NETWORK`` to the model class, whose
            ``__init__`` takes ``num_classes``. The header defines ``STEM_CHANNELS`` and
            ``NUM_CLASSES``; the footer defines ``conv`` and ``init_weights``.
        table: the network's plan (whose ``stem_channels`` fills ``STEM_CHANNELS``) → the text of
            its rows, one per module or block, as the body's table expects them.
        imports: the network's plan → modules the builder imports besides torch (e.g.
            ``("torchvision.models",)`` for a network built by torchvision); ``None``: torch alone.
    """

    body: str
    table: Callable[[Any], str]
    imports: Callable[[Any], tuple[str, ...]] | None = None


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A registered architecture: how to build it and what the rest of the package asks of it.

    Attributes:
        name: the name configs and the command line use, e.g. ``"mobilenet_v1"``.
        build: config → the network (``nn.Module``).
        plan: config → the network's channel/groups plan, without weights; raises
            :class:`~e2gcsearch.errors.ConfigError` when the grouping does not divide the channels.
        total_stride: input size / size of the last feature map; the smallest resolution accepted.
        baseline: the paper's stock network (e.g. MobileNet-V1 G=1), queued first by a search.
        description: one sentence for listings.
        display_name: the name papers and plots use, e.g. ``"MobileNet-V1"``; defaults to ``name``.
        stages: the stage plan for stage-wise E2GC, or a function returning it (computed when first
            asked, for networks whose stages come from building them); ``None`` when the network has none.
        export: template and rows of the standalone builder; ``None`` when it has none.
        in_paper_tables: listed in the E2GC paper's Tables III/IV (``e2gcsearch table``).
        default: the architecture library defaults use (exactly one entry sets it).
        regrouped: built as an unchanged stock module whose grouped convs are rewritten
            (:mod:`.rewrite`): its width rule is its constructor's own, and a G or g that does not divide
            a grouped conv is refused rather than rounded away.
        layer_notes: config → layer name → what the grouping did to it (``cost --per-layer``); ``None``
            when the network has nothing to say per layer.
    """

    name: str
    build: Callable[[ArchConfig], nn.Module]
    plan: Callable[[ArchConfig], Any]
    total_stride: int
    baseline: ArchConfig
    description: str
    display_name: str = ""
    stages: StagePlan | Callable[[], StagePlan] | None = None
    export: ExportRows | None = None
    in_paper_tables: bool = False
    default: bool = False
    regrouped: bool = False
    layer_notes: Callable[[ArchConfig], dict[str, str]] | None = None

    def __post_init__(self) -> None:
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name)


_REGISTRY: dict[str, ModelEntry] = {}
# Functions that turn a name no entry has (e.g. "mypkg.models:build_net") into an entry, or return None.
_RESOLVERS: list[Callable[[str], ModelEntry | None]] = []


def register_resolver(resolver: Callable[[str], ModelEntry | None]) -> None:
    """Let ``resolver`` make an entry for a name that is not registered (it returns ``None`` for names
    it does not handle); :func:`get_entry` registers what it returns."""
    _RESOLVERS.append(resolver)


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` to the registry (replacing one of the same name); returns it."""
    _REGISTRY[entry.name] = entry
    return entry


def unregister_model(name: str) -> ModelEntry:
    """Remove the entry called ``name`` from the registry; returns it."""
    entry = get_entry(name)
    del _REGISTRY[name]
    return entry


@contextlib.contextmanager
def registered(entry: ModelEntry) -> Iterator[ModelEntry]:
    """Register ``entry`` for the duration of a ``with`` block (e.g. a test's own network), then
    restore the registry as it was."""
    previous = _REGISTRY.get(entry.name)
    register_model(entry)
    try:
        yield entry
    finally:
        if previous is None:
            _REGISTRY.pop(entry.name, None)
        else:
            register_model(previous)


def list_models() -> list[str]:
    """Names of every registered architecture, sorted."""
    return sorted(_REGISTRY)


def get_entry(arch: str) -> ModelEntry:
    """The entry of ``arch`` (made by a resolver on first use when one handles the name);
    :class:`UnknownNameError` listing the known names otherwise."""
    if arch in _REGISTRY:
        return _REGISTRY[arch]
    for resolver in _RESOLVERS:
        entry = resolver(arch)
        if entry is not None:
            return register_model(entry)
    raise UnknownNameError(
        f"unknown architecture {arch!r}; choose one of: {', '.join(list_models())}, "
        "or your own network as module:function (a factory num_classes -> nn.Module)"
    )


def default_arch() -> str:
    """The architecture library defaults use: the entry registered with ``default=True``."""
    defaults = [name for name in list_models() if _REGISTRY[name].default]
    if len(defaults) != 1:
        raise RuntimeError(f"exactly one registered model must set default=True; found {defaults or 'none'}")
    return defaults[0]


def paper_archs() -> tuple[str, ...]:
    """The architectures of the E2GC paper's Tables III/IV, sorted by name."""
    return tuple(name for name in list_models() if _REGISTRY[name].in_paper_tables)
