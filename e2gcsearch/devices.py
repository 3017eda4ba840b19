"""Device names: the one reading of ``--device`` shared by profiling and training.

``auto`` is CUDA when torch sees a GPU, else the CPU; ``cuda`` is the GPU of this process's local
rank (one GPU per ``torchrun`` process); ``cuda:N`` must exist.

Example:
    >>> parse_device("cuda:1"), parse_device("cpu")
    (('cuda', 1), ('cpu', 0))
    >>> resolve_device("cpu")
    'cpu'
"""

from __future__ import annotations

import torch

from .errors import ConfigError


def parse_device(device: str) -> tuple[str, int]:
    """``"cpu"`` → ``("cpu", 0)``, ``"cuda"``/``"cuda:1"`` → ``("cuda", index)``.

    Raises:
        ConfigError: anything else (``auto`` must be resolved first, see :func:`resolve_device`).
    """
    text = str(device).strip().lower()
    if text == "cpu":
        return "cpu", 0
    if text == "cuda":
        return "cuda", 0
    if text.startswith("cuda:") and text[5:].isdigit():
        return "cuda", int(text[5:])
    raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")


def cuda_uuid(index: int) -> str | None:
    """``GPU-…`` UUID of torch's ``cuda:index`` (the same board under any ``CUDA_VISIBLE_DEVICES``),
    when torch can tell."""
    try:
        if not torch.cuda.is_available():
            return None
        uuid = str(torch.cuda.get_device_properties(index).uuid)
    except Exception:  # noqa: BLE001 - any failure just means "no UUID"
        return None
    return uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"


def resolve_device(device: str, local_rank: int = 0) -> str:
    """``auto`` → ``cuda:<local rank>`` when torch sees a GPU, else ``cpu``; ``cuda`` → the local
    rank's GPU; checks that an asked-for GPU exists."""
    text = str(device).strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    kind, index = parse_device(text)
    if kind == "cpu":
        return "cpu"
    if not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked, but torch sees no CUDA GPU; use --device cpu or auto")
    count = torch.cuda.device_count()
    if text == "cuda":
        index = local_rank % count
    if index >= count:
        raise ConfigError(f"device {device!r} does not exist: torch sees {count} GPU(s)")
    return f"cuda:{index}"


def worker_devices(
    device: str, workers: int, devices: tuple[int, ...] | None = None, share: bool = False
) -> list[str] | None:
    """The device of each of ``workers`` search processes, so that no two measure on one GPU.

    Worker i runs on GPU ``devices[i]``; ``devices`` defaults to every GPU torch sees when ``device``
    is ``cuda`` (or ``auto`` with a GPU), and to the one asked for with ``cuda:N``. ``None`` means
    "as ``device`` says" (a CPU, where the measurement lock takes turns instead).

    Raises:
        ConfigError: ``devices`` on a CPU, a GPU that does not exist, or more workers than GPUs
            without ``share`` (then workers i and i + len(devices) share a GPU and take turns measuring).
    """
    text = str(device).strip().lower()
    on_gpu = text.startswith("cuda") or (text == "auto" and torch.cuda.is_available())
    if not on_gpu:
        if devices:
            raise ConfigError(
                f"--devices picks GPUs, but the device is {device!r}; use --device cuda or drop --devices"
            )
        return None
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise ConfigError(f"device {device!r} asked, but torch sees no CUDA GPU; use --device cpu or auto")
    if devices is None:
        devices = (parse_device(text)[1],) if ":" in text else tuple(range(count))
    missing = [index for index in devices if index >= count]
    if missing:
        raise ConfigError(
            f"--devices names GPU {','.join(map(str, missing))}, but torch sees {count} GPU(s) "
            f"(0 to {count - 1}); check CUDA_VISIBLE_DEVICES or pick from those"
        )
    if workers > len(devices) and not share:
        shown = ",".join(map(str, devices))
        raise ConfigError(
            f"--workers {workers} needs {workers} GPUs so that no two workers measure on one board, but the "
            f"search has {len(devices)} ({shown}); pass --workers {len(devices)}, more --devices, or "
            "--share-devices to let workers share GPUs and take turns measuring"
        )
    return [f"cuda:{devices[index % len(devices)]}" for index in range(workers)]
