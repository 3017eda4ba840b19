"""Energy meters behind one window interface, and the factory that picks one.

Backends, in the order ``auto`` tries them:

=========  ==================================================================  ====================
name       what it reads                                                       device
=========  ==================================================================  ====================
nvml       NVIDIA energy counter (Volta+) or sampled instantaneous power        ``cuda``
rapl       Linux powercap ``energy_uj`` of the CPU packages + DRAM              ``cpu``
estimate   wall time x a documented power model — labelled "estimate"           any
=========  ==================================================================  ====================

``auto`` takes the first that works and keeps, in ``meter.unavailable``, why the others did not.
Asking for a backend by name fails loudly (:class:`MeterUnavailableError`, a
:class:`~e2gcsearch.errors.UserError`) with the reason instead of falling back.

Example:
    >>> from e2gcsearch.energy import create_meter
    >>> meter = create_meter("estimate", device="cpu", power_w=15.0)
    >>> meter.name, meter.is_estimate, meter.label
    ('estimate', True, 'estimate (time x 15 W, set by the caller)')
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ..devices import parse_device
from ..errors import ConfigError, UnknownNameError
from .base import Measurement, Meter, MeterError, MeterUnavailableError, WindowError
from .estimate import EstimateMeter
from .nvml import NvmlMeter, load_nvml
from .rapl import RaplMeter
from .spend import Ledger, MeterSpec, Spent

BACKENDS: tuple[str, ...] = ("nvml", "rapl", "estimate")  # the order auto tries
_CLASSES: dict[str, type[Meter]] = {"nvml": NvmlMeter, "rapl": RaplMeter, "estimate": EstimateMeter}


def _synchronizer(kind: str, index: int) -> Callable[[], Any] | None:
    if kind != "cuda":
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    return functools.partial(torch.cuda.synchronize, index)


def _build(name: str, kind: str, index: int, options: dict[str, Any]) -> Meter:
    """Construct one backend for the device, or raise MeterUnavailableError with the reason."""
    cls = _CLASSES[name]
    kwargs = {key: value for key, value in options.items() if key in cls.OPTIONS}
    kwargs.setdefault("synchronize", _synchronizer(kind, index))
    if name == "nvml" and kind != "cuda":
        # Report a missing driver first: it is the more fundamental reason on a machine without NVIDIA.
        load_nvml(options.get("nvml_module")).nvmlShutdown()
        raise MeterUnavailableError(
            "nvml", "it measures NVIDIA GPUs, but the model runs on the CPU", "use --device cuda, or --backend auto"
        )
    if name == "rapl" and kind != "cpu":
        raise MeterUnavailableError(
            "rapl", f"it measures the CPU package, but the model runs on {kind}:{index}", "use --backend nvml or auto"
        )
    if name == "nvml":
        return cls(device_index=index, **kwargs)
    if name == "estimate":
        return cls(device=kind, **kwargs)
    return cls(**kwargs)


def _check_options(options: dict[str, Any]) -> None:
    known = set().union(*(cls.OPTIONS for cls in _CLASSES.values()))  # type: ignore[attr-defined]
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown meter option(s) {unknown}; the backends accept {sorted(known)}")


def create_meter(backend: str = "auto", device: str = "cpu", **options: Any) -> Meter:
    """The meter for ``backend`` on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``).

    Args:
        backend: ``auto``, ``nvml``, ``rapl`` or ``estimate``.
        device: where the measured work runs.
        **options: backend options, each passed to the backends that take it — ``power_w``
            and ``threads`` (estimate), ``sysfs_root`` (rapl), ``nvml_module``/``poll_interval_s`` (nvml),
            ``idle_window_s``, ``environ``, ``synchronize``.

    Raises:
        UnknownNameError: ``backend`` is not one of the names above.
        MeterUnavailableError: the named backend cannot measure here (the message says why).
    """
    name = str(backend).strip().lower()
    if name != "auto" and name not in BACKENDS:
        raise UnknownNameError(f"unknown energy backend {backend!r}; choose one of auto, {', '.join(BACKENDS)}")
    kind, index = parse_device(device)
    _check_options(options)
    if name != "auto":
        return _build(name, kind, index, options)
    unavailable: list[tuple[str, str]] = []
    for candidate in BACKENDS:
        try:
            meter = _build(candidate, kind, index, options)
        except MeterUnavailableError as exc:
            unavailable.append((candidate, exc.reason))
            continue
        meter.unavailable = unavailable
        return meter
    raise AssertionError("the estimate backend is always available")  # pragma: no cover


def available_backends(device: str = "cpu", **options: Any) -> list[tuple[str, bool, str]]:
    """``(name, available, reason)`` for every backend on ``device``, in the order ``auto`` tries them.

    ``reason`` is why a backend is unavailable, or the label of the meter it would use.
    """
    kind, index = parse_device(device)
    _check_options(options)
    rows = []
    for name in BACKENDS:
        try:
            meter = _build(name, kind, index, options)
        except MeterUnavailableError as exc:
            rows.append((name, False, exc.reason))
            continue
        rows.append((name, True, meter.label))
        meter.close()
    return rows


__all__ = [
    "BACKENDS",
    "EstimateMeter",
    "Ledger",
    "Measurement",
    "Meter",
    "MeterError",
    "MeterSpec",
    "MeterUnavailableError",
    "NvmlMeter",
    "RaplMeter",
    "Spent",
    "WindowError",
    "available_backends",
    "create_meter",
    "parse_device",
]
