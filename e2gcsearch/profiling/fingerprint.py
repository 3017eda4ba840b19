"""The device fingerprint: what makes two measurements comparable (hardware, software, precision,
layout, threads, meter)."""

from __future__ import annotations

import platform
from typing import Any

import torch

from ..devices import parse_device
from ..energy import Meter


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as stream:
            for line in stream:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_fingerprint(device: str, dtype: str, impl: str, meter: Meter) -> dict[str, Any]:
    """What makes two measurements comparable: hardware, software, precision, implementation, meter.

    ``impl`` is an implementation of :mod:`e2gcsearch.profiling.implementations` or ``auto``; see
    :func:`with_implementation` for the keys it sets."""
    kind, index = parse_device(device)
    if kind == "cuda":
        model = getattr(meter, "gpu_name", None) or torch.cuda.get_device_name(index)
        driver = getattr(meter, "driver_version", None) or f"CUDA {torch.version.cuda}"
    else:
        model = cpu_model()
        driver = f"{platform.system()} {platform.release()}"
    return {
        "device": device,
        "device_model": model,
        "driver": driver,
        "torch": torch.__version__,
        "dtype": dtype,
        "threads": torch.get_num_threads(),
        "meter": meter.label,
    } | implementation_keys(impl)


def implementation_keys(impl: str) -> dict[str, str]:
    """The fingerprint keys of an implementation: ``memory_format`` always, ``implementation`` when the
    layout alone does not name it (``compile``, ``auto``) -- so an nchw or channels_last measurement
    has the same fingerprint whether it was asked by name or chosen by auto, and is measured once."""
    layout = {"channels_last": "channels_last", "auto": "chosen per batch size"}
    keys = {"memory_format": layout.get(impl, "contiguous")}
    if impl not in ("nchw", "channels_last"):
        keys["implementation"] = impl
    return keys


def with_implementation(fingerprint: dict[str, Any], impl: str) -> dict[str, Any]:
    """``fingerprint`` (of any implementation) rewritten for ``impl``: what keys a measurement by ``impl``."""
    base = {key: value for key, value in fingerprint.items() if key not in ("memory_format", "implementation")}
    return base | implementation_keys(impl)
