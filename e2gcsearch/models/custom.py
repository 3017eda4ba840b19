"""A user's own network, named ``module:function`` wherever an architecture is named.

``e2gcsearch run --arch mypkg.models:build_net`` imports ``mypkg.models`` (from the Python path, or the
current folder), calls ``build_net(num_classes)`` for an ``nn.Module`` and searches its grouped convs
exactly as torchvision's networks are searched (:mod:`.rewrite`: every conv with ``groups > 1`` gets G
or g; dense convs and linear layers stay). The baseline is the network as the factory builds it. A
factory that also takes ``width`` gets the config's width multiplier; one that does not is built at
width 1.0 only (search it with ``--widths 1.0``).

Example:
    >>> entry = get_entry("mypkg.models:build_net")     # doctest: +SKIP
    >>> entry.baseline.grouping, entry.regrouped        # doctest: +SKIP
    ('G=1', True)
"""

from __future__ import annotations

import collections
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

from ..config import ArchConfig
from ..errors import ConfigError
from .call import Call, Ref
from .registry import ModelEntry, register_resolver
from .rewrite import StockNetwork, _survey, regrouped_entry


def _import_factory(spec: str) -> Callable[..., Any]:
    module_name, _, qualname = spec.partition(":")
    if not module_name or not qualname:
        raise ConfigError(f"--arch {spec!r}: name your own network as module:function, e.g. mypkg.models:build_net")
    try:
        return Ref(spec).resolve()
    except ModuleNotFoundError as exc:
        if os.getcwd() not in sys.path and exc.name == module_name.split(".")[0]:
            sys.path.insert(0, os.getcwd())  # as `python -m` would: the current folder's packages
            return _import_factory(spec)
        reason = f"{type(exc).__name__}: {exc}"
    except AttributeError as exc:
        reason = f"AttributeError: {exc}"
    except Exception as exc:  # noqa: BLE001 - the user's module may fail to import in any way
        reason = f"{type(exc).__name__} while importing: {exc}"
    raise ConfigError(
        f"cannot import the network factory {spec!r} ({reason}); make the package importable "
        "(pip install -e . or PYTHONPATH) and name a function num_classes -> nn.Module"
    )


def _stock_grouping(layers: tuple[tuple[str, int, int, int], ...]) -> dict[str, int]:
    """The factory network's own grouping: its most common group size (E2GC) — G=1 for a depthwise
    network — unless a fixed number of groups is more common (FgGC)."""
    sizes = collections.Counter(channels // groups for _, channels, _, groups in layers)
    counts = collections.Counter(groups for _, _, _, groups in layers)
    (size, size_n), (count, count_n) = sizes.most_common(1)[0], counts.most_common(1)[0]
    return {"groups": count} if count_n > size_n else {"group_size": size}


def factory_entry(spec: str) -> ModelEntry:
    """The registry entry of the user's factory ``spec`` (``module:function``); a one-line
    :class:`ConfigError` when it cannot be imported, does not build a module, or has no grouped conv."""
    factory = _import_factory(spec)
    if not callable(factory):
        raise ConfigError(
            f"{spec} is a {type(factory).__name__}, not a function; name a factory num_classes -> nn.Module"
        )
    takes_width = "width" in inspect.signature(factory).parameters

    def constructor(width: float, divisor: int) -> Call:
        if takes_width:
            return Call(spec, (("width", width),), classes="positional")
        if width != 1.0:
            raise ConfigError(
                f"{spec} takes no width, so it is built at width 1.0 only (got {width:g}); "
                "search it with --widths 1.0, or give the factory a width parameter"
            )
        return Call(spec, classes="positional")

    network = StockNetwork(spec, constructor)
    layers, _ = _survey(network.stock_call(), 10)  # a failing factory: ConfigError from Call.run
    if not layers:
        raise ConfigError(
            f"{spec} builds a network without grouped convs (no nn.Conv2d with groups > 1), so there "
            "is no G or g to search; give it grouped or depthwise convs"
        )
    return regrouped_entry(
        network,
        ArchConfig(spec, **_stock_grouping(layers)),
        f"your own network {spec}, with its grouped convs regrouped",
        display_name=spec.rpartition(":")[2],
    )


def _resolve(name: str) -> ModelEntry | None:
    return factory_entry(name) if ":" in name else None


register_resolver(_resolve)
