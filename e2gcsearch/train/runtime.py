"""The run's surroundings: ``torchrun`` process group, thread limit, seeding, and the
checks that an architecture fits the data."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ..config import ArchConfig
from ..data import LoadedData
from ..errors import ConfigError
from ..models import check_resolution, create_model


def derived_seed(*parts: Any) -> int:
    """A 63-bit seed from ``parts`` (stable across processes and Python versions)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclasses.dataclass(frozen=True)
class DistInfo:
    """This process's place in a ``torchrun`` job (world size 1 when not launched that way)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def process_rank() -> int:
    """The ``torchrun`` rank of this process (0 when not launched by torchrun)."""
    return int(os.environ.get("RANK", "0"))


@contextlib.contextmanager
def distributed(device_type: str) -> Iterator[DistInfo]:
    """Join the ``torchrun`` process group (gloo on CPU, nccl on CUDA) for the duration of a run."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        yield DistInfo()
        return
    import torch.distributed as dist

    created = not dist.is_initialized()
    if created:
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    finished = False
    try:
        yield DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
        finished = True
    finally:
        if created:
            if finished:  # no process tears gloo down while another still talks to it (an abort at exit)
                dist.barrier()
            dist.destroy_process_group()


@contextlib.contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """Use ``threads`` intra-op threads inside the block and restore the previous setting after it."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def check_inputs(arch_config: ArchConfig, data: LoadedData) -> None:
    """Raise :class:`ConfigError` (with the fix) when ``arch_config`` cannot be trained on ``data``."""
    if arch_config.num_classes != data.num_classes:
        raise ConfigError(
            f"{arch_config.label()} has num_classes={arch_config.num_classes} but the {data.name} data has {data.num_classes} "
            f"classes; build it with arch.replace(num_classes={data.num_classes}) (the CLI does this for you)"
        )
    check_resolution(arch_config.arch, data.resolution)
    if data.train_labels.numel() < 2 or data.val_labels.numel() < 1:
        raise ConfigError(
            f"the {data.name} subset has {data.train_labels.numel()} train and "
            f"{data.val_labels.numel()} validation images; ask for more images per class"
        )


def build_model(arch_config: ArchConfig, seed: int) -> nn.Module:
    """The network of ``arch_config`` initialised from ``seed`` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derived_seed(seed, "init"))
        return create_model(arch_config)
