"""A constructor call that runs here and prints as the same Python expression: :class:`Call` is
``"module:qualname"`` with keyword arguments (literals, :class:`Ref` to a named object, or a nested
call), so that ``e2gcsearch export`` writes into a standalone builder exactly what e2gcsearch called.

A build on the ``meta`` device (shapes only, for the cost model) skips ``torch.nn.init``'s initialisers;
a user's factory that fails is a :class:`~e2gcsearch.errors.ConfigError` naming the call, or a
:class:`MetaBuildError` when only the ``meta`` build failed (a CPU build can stand in).

Example:
    >>> call = Call("torchvision.models:mobilenet_v2", (("width_mult", 0.5), ("round_nearest", 16)))
    >>> call.source()
    'torchvision.models.mobilenet_v2(num_classes=num_classes, width_mult=0.5, round_nearest=16)'
    >>> call.run(10).classifier[-1].out_features
    10
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Ref:
    """An object named by ``"module:qualname"`` (e.g. a block class passed to a constructor)."""

    target: str

    def resolve(self) -> Any:
        module, _, qualname = self.target.partition(":")
        value: Any = importlib.import_module(module)
        for part in qualname.split("."):
            value = getattr(value, part)
        return value

    def source(self) -> str:
        module, _, qualname = self.target.partition(":")
        return f"{module}.{qualname}"

    def modules(self) -> set[str]:
        return {self.target.partition(":")[0]}


class MetaBuildError(ConfigError):
    """A user's factory that cannot build on the ``meta`` device (it computes with tensor values);
    where a CPU build can stand in, it does."""


@dataclasses.dataclass(frozen=True)
class Call:
    """``function(**kwargs)``, runnable here and printable as the same Python expression.

    Args:
        function: ``"module:qualname"``, e.g. ``"torchvision.models:mobilenet_v2"``.
        kwargs: keyword arguments as pairs; values are literals (numbers, strings, tuples), :class:`Ref`
            or nested :class:`Call`.
        classes: how the number of classes is passed: ``"keyword"`` (``num_classes=...``),
            ``"positional"`` (first argument, a user's factory) or ``"none"`` (a nested call).
    """

    function: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    classes: str = "keyword"

    def run(self, num_classes: int) -> Any:
        args = (num_classes,) if self.classes == "positional" else ()
        kwargs = {key: _run(value) for key, value in self.kwargs}
        if self.classes == "keyword":
            kwargs["num_classes"] = num_classes
        function = Ref(self.function).resolve()
        meta = torch.empty(0).is_meta  # a shape-only build (cost model): no values to initialise
        try:
            with _without_init() if meta else contextlib.nullcontext():
                return function(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a user's factory may fail in any way
            if self.classes != "positional" or isinstance(exc, (ConfigError, MemoryError, torch.OutOfMemoryError)):
                raise
            reason = (str(exc).strip().splitlines() or [""])[0][:300]
            on_meta = meta and isinstance(exc, (NotImplementedError, RuntimeError))
            error = MetaBuildError if on_meta else ConfigError
            where = " on the meta device (shape-only builds compute nothing)" if on_meta else ""
            raise error(
                f"{self.source(str(num_classes))} failed{where} ({type(exc).__name__}: {reason}); the "
                "factory must build the network from num_classes (and width, if it takes one)"
            ) from None

    def source(self, num_classes: str = "num_classes") -> str:
        parts = [num_classes] if self.classes == "positional" else []
        parts += [f"num_classes={num_classes}"] if self.classes == "keyword" else []
        parts += [f"{key}={_source(value)}" for key, value in self.kwargs]
        return f"{Ref(self.function).source()}({', '.join(parts)})"

    def modules(self) -> set[str]:
        found = Ref(self.function).modules()
        for _, value in self.kwargs:
            if isinstance(value, (Call, Ref)):
                found |= value.modules()
        return found


@contextlib.contextmanager
def _without_init() -> Iterator[None]:
    """``torch.nn.init``'s in-place initialisers as no-ops for a ``with`` block: a network built on the
    meta device has no values to set, and each initialiser costs milliseconds there (torch runs its
    decomposition), which made a RegNet's shape-only build take over a second."""
    names = [name for name in dir(nn.init) if name.endswith("_") and not name.startswith("_")]
    saved = {name: getattr(nn.init, name) for name in names}
    try:
        for name in names:
            setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for name, function in saved.items():
            setattr(nn.init, name, function)


def _run(value: Any) -> Any:
    if isinstance(value, Call):
        with torch.device("cpu"):  # an argument's own computation (e.g. RegNet's block widths) needs values
            return value.run(0)
    if isinstance(value, Ref):
        return value.resolve()
    return list(value) if isinstance(value, tuple) else value


def _source(value: Any) -> str:
    if isinstance(value, (Call, Ref)):
        return value.source()
    return repr(list(value)) if isinstance(value, tuple) else repr(value)
