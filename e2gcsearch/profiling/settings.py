"""What a measurement is made of: :class:`ProfileConfig` (how to profile), and the network and synthetic
batch every measuring module (:mod:`.protocol`, :mod:`.measure`, :mod:`.probe`, :mod:`.attribution`) puts
on the device.

Example:
    >>> config = ProfileConfig(batch_sizes=(16, 4), resolution=64, device="cpu")
    >>> config.batch_sizes, config.window_s("cpu"), config.window_s("cuda:0")
    ((4, 16), 0.25, 5.0)
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from ..checks import is_int, positive_int
from ..config import ArchConfig
from ..errors import ConfigError
from ..models import create_model, deploy
from .implementations import IMPL_CHOICES, MODES

CPU_MIN_WINDOW_S = 0.25  # window lengths: see e2gcsearch.profiling.protocol
GPU_MIN_WINDOW_S = 5.0
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclasses.dataclass(frozen=True)
class ProfileConfig:
    """How to profile (see :mod:`e2gcsearch.profiling.protocol` for the protocol).

    Args:
        batch_sizes: batch sizes B to profile (the paper's 1, 4, 16).
        resolution: input height and width in pixels.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        backend: energy backend, ``auto``, ``nvml``, ``rapl`` or ``estimate``.
        dtype: ``float32``, ``float16`` or ``bfloat16`` (weights and input).
        impl: ``nchw``, ``channels_last``, ``compile`` or ``auto`` (see
            :mod:`e2gcsearch.profiling.implementations`).
        mode: ``train`` (forward + backward, the paper's EPF) or ``infer`` (forward only, eval mode).
        repeats: measured windows per batch size.
        min_window_s: minimum window length; ``None`` = 5 s on a GPU, 0.25 s on a CPU.
        warmup: warm-up steps per batch size (timed, to calibrate the iteration count).
        cache_dir: cache directory; ``None`` = ``$E2GCSEARCH_CACHE_DIR/profiles`` or
            ``~/.cache/e2gcsearch/profiles``.
        use_cache: reuse and store measurements (``False`` measures afresh and stores nothing).
        refresh: with the cache, measure afresh (the implementation choice too) and replace the
            cached entries, so later reuse gets this session's figures (``confirm --remeasure-epf``).
        power_w: the estimate backend's power in watts (overrides its TDP model).
        threads: torch intra-op threads while profiling; ``None`` leaves torch's setting. The
            default, 1, makes CPU figures those of one busy core: they do not depend on OpenMP
            scaling, and on a CPU shared with other jobs no thread waits at a barrier for a
            preempted sibling (with 2 threads on this project's loaded 2-core machine a step took
            10-50x longer and the CV rose above 30 %). GPU work barely uses these threads.
        device_lock: measure with the device to ourselves: wait until other e2gcsearch processes of
            the host stand aside between two training steps (:mod:`e2gcsearch.profiling.lock`).
    """

    batch_sizes: tuple[int, ...] = (1, 4, 16)
    resolution: int = 224
    device: str = "auto"
    backend: str = "auto"
    dtype: str = "float32"
    impl: str = "nchw"
    mode: str = "train"
    repeats: int = 5
    min_window_s: float | None = None
    warmup: int = 3
    cache_dir: str | None = None
    use_cache: bool = True
    refresh: bool = False
    power_w: float | None = None
    threads: int | None = 1
    device_lock: bool = True

    def __post_init__(self) -> None:
        sizes = tuple(self.batch_sizes)
        if not sizes or not all(is_int(b) for b in sizes):
            raise ConfigError(f"batch sizes must be positive integers like (1, 4, 16), got {self.batch_sizes!r}")
        object.__setattr__(self, "batch_sizes", tuple(sorted(set(sizes))))
        if self.dtype not in DTYPES:
            raise ConfigError(f"unknown dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}")
        if self.impl not in IMPL_CHOICES:
            raise ConfigError(f"unknown implementation {self.impl!r}; choose one of {', '.join(IMPL_CHOICES)}")
        if self.mode not in MODES:
            raise ConfigError(f"unknown mode {self.mode!r}; choose train (forward + backward) or infer (forward only)")
        positive_int("repeats", self.repeats, example="5")
        if not is_int(self.warmup, minimum=0):
            raise ConfigError(f"warmup must be a non-negative number of steps (e.g. 3), got {self.warmup!r}")
        positive_int("threads", self.threads, example="1", optional=True)
        if self.min_window_s is not None and not (self.min_window_s > 0 and math.isfinite(self.min_window_s)):
            raise ConfigError(f"min_window_s must be a duration in seconds > 0 (e.g. 0.25), got {self.min_window_s!r}")

    def window_s(self, device: str) -> float:
        """The minimum window length on ``device`` (the default depends on CPU/GPU)."""
        if self.min_window_s is not None:
            return float(self.min_window_s)
        return GPU_MIN_WINDOW_S if device.startswith("cuda") else CPU_MIN_WINDOW_S


def build_model(arch_config: ArchConfig, device: str, config: ProfileConfig) -> nn.Module:
    """The network as it runs after training, on the device in the dtype asked (NCHW, train mode;
    :func:`.implementations.prepare` sets it up): FLGC deployed (a grouped conv), never its masked dense form."""
    arch_config.deployed()  # uneven FLGC: its groups come from training; a one-line error says what to do
    return deploy(create_model(arch_config), inplace=True).to(device=device, dtype=DTYPES[config.dtype]).train()


def synthetic_batch(arch_config: ArchConfig, batch_size: int, device: str, config: ProfileConfig):
    """Input ``(B, 3, R, R)`` in NCHW (the step lays it out for its implementation) and labels ``(B,)``."""
    generator = torch.Generator().manual_seed(batch_size)
    inputs = torch.randn(batch_size, 3, config.resolution, config.resolution, generator=generator)
    inputs = inputs.to(device=device, dtype=DTYPES[config.dtype])
    targets = torch.randint(0, arch_config.num_classes, (batch_size,), generator=generator).to(device)
    return inputs, targets


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
