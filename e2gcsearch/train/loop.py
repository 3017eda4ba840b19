"""The training loop: epochs of augmented batches gathered from device-resident tensors, validation,
non-finite-loss detection, per-epoch checkpoints, and progress on stderr."""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..console import note
from ..data import LoadedData
from ..data.augment import augment_batch, channel_stats, normalize_batch
from ..data.cache import interactive
from ..errors import ConfigError
from ..paired import pack
from . import checkpoint
from .config import TrainConfig, TrainResult, augmentation_for, learning_rate
from .layout import apply_layout, to_layout
from .runtime import DistInfo, derived_seed

NON_FINITE = "non-finite loss"
CHECK_EVERY = 10  # optimiser steps between finiteness checks (each one synchronises a GPU)
EVAL_BATCH = 256


class Trainer:
    """One training run of a built model on loaded data; :meth:`run` does the epochs."""

    def __init__(
        self,
        model: nn.Module,
        data: LoadedData,
        config: TrainConfig,
        device: torch.device,
        dist: DistInfo,
        label: str = "",
    ) -> None:
        self.config, self.device, self.dist, self.label = config, device, dist, label
        model = model.to(device)
        self.layout = config.layout  # resolved: nchw or channels_last (train_model resolves auto)
        self.model = apply_layout(model, self.layout)
        self.net = self._wrap(self.model)
        self.amp = config.amp and device.type == "cuda"
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0,
            weight_decay=config.weight_decay,
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.mean, self.std = channel_stats(data.train_images)  # (3,) each, 0-255 units
        self.train_x, self.train_y = data.train_images.to(device), data.train_labels.to(device)
        self.val_x, self.val_y = data.val_images.to(device), data.val_labels.to(device)
        self.num_classes = data.num_classes
        self.augment = augmentation_for(config, data.name)
        local = self.train_y.numel() // dist.world_size
        if local < 2:
            raise ConfigError(
                f"{self.train_y.numel()} training images cannot be shared by {dist.world_size} "
                "processes with at least 2 each; ask for more images per class"
            )
        self.batch = min(config.batch_size, local)
        self.steps_per_epoch = local // self.batch  # the last partial batch is dropped (BN needs > 1 image)
        self.history: dict[str, list] = {"loss": [], "top1": [], "top5": []}
        self.right: torch.Tensor | None = None  # which validation images the last evaluation got right
        self.val_order = data.val_order
        self.train_s, self.train_images, self.start_epoch = 0.0, 0, 0
        self.between_steps: Callable[[], None] = lambda: None  # e.g. stand aside for a measurement

    def _wrap(self, model: nn.Module) -> nn.Module:
        if not self.dist.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    # ---- one epoch ------------------------------------------------------------------------------
    def _epoch_order(self, epoch: int) -> torch.Tensor:
        """This process's share of a seeded permutation; every rank draws the same permutation."""
        generator = torch.Generator().manual_seed(derived_seed(self.config.seed, "order", epoch))
        order = torch.randperm(self.train_y.numel(), generator=generator)
        if self.dist.active:
            order = order[self.dist.rank :: self.dist.world_size][: self.train_y.numel() // self.dist.world_size]
        return order.to(self.device)

    def _step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.amp):
            loss = self.criterion(self.net(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach().float()

    def train_epoch(self, epoch: int, bar: Any) -> float | None:
        """Mean training loss of ``epoch`` (over all processes), or ``None`` when it became non-finite."""
        config, batch, steps = self.config, self.batch, self.steps_per_epoch
        order = self._epoch_order(epoch)
        generator = torch.Generator().manual_seed(derived_seed(config.seed, "augment", epoch, self.dist.rank))
        running = torch.zeros((), device=self.device)
        self.net.train()
        started = time.perf_counter()
        with self._seeded_global_rng(epoch):
            for i in range(steps):
                index = order[i * batch : (i + 1) * batch]
                x = augment_batch(self.train_x[index], self.mean, self.std, generator, self.augment)  # (B, 3, R, R)
                x = to_layout(x, self.layout)
                running += self._step(x, self.train_y[index], learning_rate(config, epoch * steps + i, steps))
                if ((i + 1) % CHECK_EVERY == 0 or i + 1 == steps) and not self._all_finite(running):
                    return None
                bar.update(batch * self.dist.world_size)
                self.between_steps()
        self.train_s += time.perf_counter() - started
        self.train_images += steps * batch * self.dist.world_size
        return self._mean_over_ranks(running.item() / steps)

    @contextlib.contextmanager
    def _seeded_global_rng(self, epoch: int) -> Iterator[None]:
        """Torch's global RNG (dropout, stochastic depth) seeded per epoch and rank, and restored after, so
        an epoch draws the same whatever ran before it in the process (a calibration, a cache miss)."""
        device = torch.device(self.device)
        cuda = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):  # restores exactly the generators seeded here
            seed = derived_seed(self.config.seed, "global", epoch, self.dist.rank)
            torch.default_generator.manual_seed(seed)
            for index in cuda:
                with torch.cuda.device(index):
                    torch.cuda.manual_seed(seed)
            yield

    def _all_finite(self, value: torch.Tensor) -> bool:
        flag = torch.isfinite(value).to(torch.float32).reshape(1)
        if self.dist.active:
            import torch.distributed as dist

            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def _mean_over_ranks(self, value: float) -> float:
        if not self.dist.active:
            return value
        import torch.distributed as dist

        total = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return total.item() / self.dist.world_size

    @torch.no_grad()
    def recompute_bn_stats(self) -> None:
        """Recompute every BatchNorm's statistics from ``config.bn_images`` training images (a seeded
        draw, un-augmented, in training batches) with the weights fixed; see ``TrainConfig.bn_images``.
        Under torchrun each process uses its own share and the statistics are averaged over processes.
        The global random stream is left as it was, so training (dropout) goes on exactly as without."""
        count = min(self.config.bn_images, self.train_y.numel())
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if count < 2 or not norms:
            return
        generator = torch.Generator().manual_seed(derived_seed(self.config.seed, "bn", len(self.history["top1"])))
        order = torch.randperm(self.train_y.numel(), generator=generator)[:count]
        order = order[self.dist.rank :: self.dist.world_size].to(self.device)
        batches = [
            to_layout(normalize_batch(self.train_x[index], self.mean, self.std), self.layout)
            for index in order.split(max(2, self.batch))
            if index.numel() > 1
        ]
        if not batches:  # this process's share is under 2 images: keep the running averages
            return
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.optim.swa_utils.update_bn(batches, self.model)
        if self.dist.active:
            import torch.distributed as dist

            for norm in norms:
                for buffer in (norm.running_mean, norm.running_var):
                    dist.all_reduce(buffer)
                    buffer /= self.dist.world_size

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float | None]:
        """Validation top-1 and top-5 in percent (top-5 is ``None`` with fewer than 5 classes)."""
        self.between_steps()  # a measurement waiting for the device goes first
        self.recompute_bn_stats()
        self.between_steps()
        self.model.eval()
        counts = torch.zeros(3, dtype=torch.float64, device=self.device)  # correct@1, correct@5, images
        right = torch.zeros(self.val_y.numel(), dtype=torch.uint8, device=self.device)  # top-1 per image
        local = torch.arange(self.dist.rank, self.val_y.numel(), self.dist.world_size, device=self.device)
        k = min(5, self.num_classes)
        for index in local.split(EVAL_BATCH):
            x = normalize_batch(self.val_x[index], self.mean, self.std)
            x = to_layout(x, self.layout)
            with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.amp):
                top = self.model(x).topk(k, dim=1).indices  # (b, k)
            y = self.val_y[index]
            right[index] = (top[:, 0] == y).to(torch.uint8)
            counts += torch.stack(
                [
                    (top[:, 0] == y).sum(),
                    (top == y[:, None]).any(dim=1).sum(),
                    torch.tensor(y.numel(), device=self.device),
                ]
            ).to(torch.float64)
        if self.dist.active:
            import torch.distributed as dist

            dist.all_reduce(counts)
            dist.all_reduce(right)  # each image was judged by one process
        self.model.train()
        self.right = right.bool().cpu()
        correct1, correct5, total = counts.tolist()
        if total == 0:
            return math.nan, None
        return 100.0 * correct1 / total, (100.0 * correct5 / total if self.num_classes >= 5 else None)

    # ---- checkpoints ----------------------------------------------------------------------------
    def _restore(self, path: Path | None, identity: dict[str, Any]) -> None:
        if path is None:
            return
        if not path.exists():
            if self.config.resume:
                warnings.warn(f"no checkpoint at {path} yet; starting from epoch 0", RuntimeWarning, stacklevel=3)
            return
        if not self.config.resume:
            raise ConfigError(
                f"{path} already holds a checkpoint; pass --resume to continue that run, "
                "or another --checkpoint-dir to start a new one"
            )
        state = checkpoint.load_checkpoint(path, identity)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"] and self.amp:
            self.scaler.load_state_dict(state["scaler"])
        self.history = {
            "loss": list(state["loss_curve"]),
            "top1": list(state["val_curve"]),
            "top5": list(state["top5_curve"]),
        }
        self.start_epoch, self.train_s, self.train_images = state["epoch"], state["train_s"], state["train_images"]

    def _save(self, path: Path, identity: dict[str, Any], epochs_done: int) -> None:
        checkpoint.save_checkpoint(
            path,
            {
                "format": checkpoint.CHECKPOINT_FORMAT,
                "identity": json.dumps(identity, sort_keys=True),
                "epoch": epochs_done,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "loss_curve": self.history["loss"],
                "val_curve": self.history["top1"],
                "top5_curve": self.history["top5"],
                "train_s": self.train_s,
                "train_images": self.train_images,
            },
        )

    # ---- the run --------------------------------------------------------------------------------
    def _progress(self):
        from tqdm import tqdm

        total = (self.config.epochs - self.start_epoch) * self.steps_per_epoch * self.batch * self.dist.world_size
        show = interactive(self.config.progress) and self.dist.rank == 0
        return tqdm(
            total=total,
            desc=self.label or "training",
            unit="img",
            file=sys.stderr,
            disable=not show,
            leave=False,
            dynamic_ncols=True,
        )

    def _report_epoch(self, epoch: int, bar: Any) -> None:
        loss, top1, top5 = self.history["loss"][-1], self.history["top1"][-1], self.history["top5"][-1]
        top5_text = f", top-5 {top5:.1f} %" if top5 is not None else ""
        text = f"epoch {epoch + 1}/{self.config.epochs}: loss {loss:.4f}, top-1 {top1:.1f} %{top5_text}"
        bar.set_postfix_str(f"loss {loss:.3f} top-1 {top1:.1f} %", refresh=False)
        if self.config.progress and self.dist.rank == 0 and bar.disable:
            note(text)

    def run(
        self, identity: dict[str, Any], folder: str | None, on_epoch_end: Callable[[int, dict], Any] | None = None
    ) -> TrainResult:
        """Train the remaining epochs (all of them unless resuming) and report."""
        wall_start = time.perf_counter()
        path = Path(folder).expanduser() / checkpoint.CHECKPOINT_NAME if folder else None
        self._restore(path, identity)
        status, first = "ok", self.start_epoch
        with self._progress() as bar:
            for epoch in range(first, self.config.epochs):
                loss = self.train_epoch(epoch, bar)
                if loss is None:
                    status = NON_FINITE
                    self.history["loss"].append(math.nan)
                    break
                top1, top5 = self.evaluate()
                for key, value in (("loss", loss), ("top1", top1), ("top5", top5)):
                    self.history[key].append(value)
                if path is not None and self.dist.rank == 0:
                    self._save(path, identity, epoch + 1)
                self._report_epoch(epoch, bar)
                metrics = {
                    "loss": loss,
                    "top1": top1,
                    "top5": top5,
                    "lr": learning_rate(self.config, (epoch + 1) * self.steps_per_epoch - 1, self.steps_per_epoch),
                    "right": self.right.numpy(),  # which validation images the model gets right now
                }
                if on_epoch_end is not None and on_epoch_end(epoch + 1, metrics) and epoch + 1 < self.config.epochs:
                    status = "stopped"
                    break
        if status == "ok" and self.right is None and self.history["top1"]:
            # A run resumed after its last epoch: judge the restored model again, with the BatchNorm draw of
            # that last evaluation (its seed counts the evaluations before it), so the answers per image are
            # the ones its top-1 counted.
            last = self.history["top1"].pop()
            self.evaluate()
            self.history["top1"].append(last)
        return self._result(status, time.perf_counter() - wall_start, path, first)

    def _result(self, status: str, wall_s: float, path: Path | None, first: int) -> TrainResult:
        finished = status != NON_FINITE and bool(self.history["top1"])
        return TrainResult(
            status=status,
            top1=self.history["top1"][-1] if finished else math.nan,
            top5=self.history["top5"][-1] if finished else None,
            loss_curve=[float(v) for v in self.history["loss"]],
            val_curve=[float(v) for v in self.history["top1"]],
            correct=pack(self.right.numpy()) if finished and self.right is not None else None,
            val_order=self.val_order,
            wall_s=wall_s,
            images_per_s=self.train_images / self.train_s if self.train_s > 0 else 0.0,
            epochs_run=len(self.history["loss"]),
            train_size=int(self.train_y.numel()),
            val_size=int(self.val_y.numel()),
            device=str(self.device),
            world_size=self.dist.world_size,
            rank=self.dist.rank,
            start_epoch=first,
            checkpoint=str(path) if path is not None else None,
        )
