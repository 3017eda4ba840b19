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


def device_fingerprint(device: str, dtype: str, channels_last: bool, meter: Meter) -> dict[str, Any]:
    """What makes two measurements comparable: hardware, software, precision, layout, meter."""
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
        "memory_format": "channels_last" if channels_last else "contiguous",
        "threads": torch.get_num_threads(),
        "meter": meter.label,
    }
