"""One training loop, two budgets: a short proxy training that the search runs per trial, and full
training (longer, checkpointed every epoch, resumable, DistributedDataParallel under ``torchrun``).

The optimiser follows the E2GC paper: SGD with Nesterov momentum 0.9 and weight decay 4e-5. The
proxy uses a short linear warm-up then cosine decay; full training follows :data:`FULL_RECIPE` (24
cosine epochs on every image, chosen on food101-10 by ``benchmarks/proxy_fidelity.py``). Images stay
on the device as uint8 tensors; each batch is gathered, normalised and augmented there
(:mod:`e2gcsearch.data.augment`), so there are no loader workers.

Every run is seeded: the model initialisation, the epoch order and the augmentation draw from
generators derived from ``(seed, epoch, rank)``, never from the global RNG (which is left untouched),
so a resumed run repeats exactly the steps of an uninterrupted one.

Example:
    >>> from e2gcsearch import ArchConfig
    >>> from e2gcsearch.data import DataConfig, load_data
    >>> data = load_data(DataConfig(name="digits", classes=3, train_per_class=60, val_per_class=20,
    ...                             resolution=32), progress=False)
    >>> arch_config = ArchConfig("mobilenet_v1", group_size=8, width=0.25, num_classes=data.num_classes)
    >>> result = train_model(arch_config, data, TrainConfig(epochs=4, batch_size=16, threads=1, progress=False))
    >>> result.ok, result.top1 > 50, (result.train_size, result.val_size)
    (True, True, (180, 60))
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import torch

from ..config import ArchConfig
from ..console import note
from ..data import LoadedData
from ..devices import resolve_device
from ..errors import ConfigError
from ..models import learned_structure, load_structure
from ..paths import probe_writable
from . import checkpoint
from .config import (
    FULL_RECIPE,
    PROXY_BUDGETS,
    SCHEDULES,
    FullRecipe,
    ProxyBudget,
    TrainConfig,
    TrainResult,
    learning_rate,
    proxy_budget,
    proxy_data_config,
)
from .loop import Trainer
from .runtime import build_model, check_inputs, distributed, process_rank, thread_limit
from .threads import AUTO, ThreadChoice, choose_threads, resolve_layout, resolve_threads

EpochCallback = Callable[[int, dict], Any]
Metering = Callable[..., contextlib.AbstractContextManager[Any]]  # (device, threads) -> a context held over the run


def train_model(
    arch_config: ArchConfig,
    data: LoadedData,
    config: TrainConfig | None = None,
    on_epoch_end: EpochCallback | None = None,
    structure: dict[str, Any] | None = None,
    between_steps: Callable[[], None] | None = None,
    metering: Metering | None = None,
) -> TrainResult:
    """Train ``arch_config`` on ``data`` and report validation accuracy, loss curve and throughput.

    Args:
        arch_config: the network; ``arch_config.num_classes`` must equal ``data.num_classes``.
        data: from :func:`e2gcsearch.data.load_data`.
        config: budget and optimiser settings (default :class:`TrainConfig`).
        on_epoch_end: called as ``on_epoch_end(epochs_done, {"loss", "top1", "top5", "lr", "right"})``
            after every epoch (``right``: which validation images the model gets right, booleans in
            their order); a true return value stops the run with status ``"stopped"`` (e.g. pruning).
        between_steps: called after every optimiser step (a search worker stands aside there while
            another process measures energy on the device, see :mod:`e2gcsearch.profiling.lock`).
        structure: FLGC: start from these learned groups (a ``TrainResult.structure`` of an earlier run)
            instead of a random assignment; part of the checkpoint's identity.
        metering: called as ``metering(device, threads)`` once the device and the thread count are
            settled; the context it returns is held over the rest of the run (layout choice, model,
            epochs), e.g. :meth:`e2gcsearch.energy.Ledger.metering` to record the energy it used.

    Returns:
        A :class:`TrainResult`; ``status`` is ``"non-finite loss"`` when the loss became NaN or inf;
        for FLGC, ``structure`` holds the groups it learned.
    """
    started = time.perf_counter()
    config = config or TrainConfig()
    check_inputs(arch_config, data)
    config = resolve_threads(config, arch_config, data, note if process_rank() == 0 else None)
    device_type = (
        "cuda" if config.device.startswith("cuda") or (config.device == "auto" and torch.cuda.is_available()) else "cpu"
    )
    with thread_limit(config.threads), distributed(device_type) as dist:
        device = torch.device(resolve_device(config.device, dist.local_rank))
        threads = config.threads if isinstance(config.threads, int) else None
        with (metering or _unmetered)(str(device), threads):
            result = _run(arch_config, data, config, device, dist, on_epoch_end, structure, between_steps)
    result.wall_s = time.perf_counter() - started  # model build and data transfer included
    return result


def _unmetered(device: str, threads: int | None) -> contextlib.AbstractContextManager[Any]:
    return contextlib.nullcontext()


def _run(
    arch_config: ArchConfig,
    data: LoadedData,
    config: TrainConfig,
    device: torch.device,
    dist: Any,
    on_epoch_end: EpochCallback | None,
    structure: dict[str, Any] | None,
    between_steps: Callable[[], None] | None,
) -> TrainResult:
    """The run once threads and device are set: layout, checkpoint folder, model, epochs."""
    identity = checkpoint.run_identity(arch_config, data, config)  # the layout as asked ("auto" too)
    if structure is not None:
        identity["structure"] = structure
    if dist.active and config.layout == AUTO:
        config = config.replace(layout="nchw")  # every process must run the same layout; no timing race
    config = resolve_layout(config, arch_config, data, note if process_rank() == 0 else None)
    folder = config.checkpoint_dir or (
        str(checkpoint.default_checkpoint_dir(arch_config, identity)) if config.full else None
    )
    if config.resume and folder is None:
        raise ConfigError("resume needs a checkpoint folder: pass --full or --checkpoint-dir DIR")
    if folder is not None:  # a file there, a read-only disk: one line now, not an error after an epoch
        probe_writable(folder, "the checkpoint folder")
    model = build_model(arch_config, config.seed)
    if structure is not None:
        load_structure(model, structure)
    trainer = Trainer(model, data, config, device, dist, label=arch_config.label())
    trainer.between_steps = between_steps or trainer.between_steps
    result = trainer.run(identity, folder, on_epoch_end)
    result.structure = learned_structure(trainer.model)
    return result


__all__ = [
    "AUTO",
    "FULL_RECIPE",
    "FullRecipe",
    "PROXY_BUDGETS",
    "ProxyBudget",
    "SCHEDULES",
    "TrainConfig",
    "ThreadChoice",
    "TrainResult",
    "build_model",
    "choose_threads",
    "learning_rate",
    "process_rank",
    "proxy_budget",
    "proxy_data_config",
    "resolve_layout",
    "resolve_threads",
    "train_model",
]
