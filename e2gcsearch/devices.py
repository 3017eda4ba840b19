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
