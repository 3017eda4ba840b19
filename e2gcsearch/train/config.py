"""Training settings (:class:`TrainConfig`), what a run reports (:class:`TrainResult`), the
learning-rate schedules, and the proxy budget a search trains each trial with (:func:`proxy_budget`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..checks import positive_int
from ..data import DataConfig
from ..data.augment import AUGMENTATIONS
from ..data.core import resolve_dataset
from ..errors import ConfigError
from .layout import AUTO as AUTO_LAYOUT
from .layout import LAYOUTS

SCHEDULES = ("cosine", "step")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train: optimiser, schedule, budget, device and checkpointing.

    ``batch_size`` is per process (the global batch under ``torchrun`` is ``batch_size * world``).
    ``schedule="cosine"``: linear warm-up over ``warmup_epochs`` then cosine decay to 0 (the proxy);
    ``schedule="step"``: warm-up then x ``step_gamma`` at each of ``step_milestones`` (fractions of
    ``epochs``). Full training follows :data:`FULL_RECIPE` (cosine). ``amp`` only takes effect on CUDA.
    ``full`` checkpoints every epoch (to ``checkpoint_dir``, default under the cache home);
    ``resume`` continues from that checkpoint. ``layout`` is the memory layout of weights and
    batches: ``nchw``, ``channels_last`` or ``auto`` (a few real steps in each at the start, the faster
    kept, as the profiler's ``--impl auto`` chooses; see :mod:`e2gcsearch.train.layout`). ``threads`` sets torch's intra-op threads for the run
    and restores the previous value afterwards. ``augment`` is ``rrc`` (random-resized crop + flip),
    ``crop_flip``, ``none``, or ``auto``: ``none`` for the embedded digits (a mirrored digit is another
    symbol, and an 8x8 scan has no detail to crop) and ``rrc`` for photos. ``bn_images``: before each
    validation the BatchNorm statistics are recomputed from this many (un-augmented) training images
    with the weights held fixed ("precise BN"; 0 keeps the running averages). Running averages lag
    behind weights that move fast: in the first epochs of a short, high-rate proxy they make a network
    that has learned look like chance (top-1 10 % after epoch 2 of 4 on the digits, 62-81 % with
    recomputed statistics), so per-epoch top-1 — which early stopping reads — would not say what the
    weights can do.
    """

    epochs: int = 5
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 4e-5
    schedule: str = "cosine"
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.0
    layout: str = "nchw"
    amp: bool = True
    seed: int = 0
    device: str = "auto"
    full: bool = False
    checkpoint_dir: str | None = None
    resume: bool = False
    progress: bool = True
    threads: int | str | None = None  # "auto": measured at the start (see e2gcsearch.train.threads)
    augment: str = "auto"
    step_milestones: tuple[float, ...] = (1 / 3, 2 / 3)
    step_gamma: float = 0.1
    bn_images: int = 256

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            positive_int(name, getattr(self, name))
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive number (e.g. 0.05), got {self.lr!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.augment != "auto" and self.augment not in AUGMENTATIONS:
            raise ConfigError(f"unknown augmentation {self.augment!r}; choose one of {', '.join(AUGMENTATIONS)}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must lie in [0, 1) (e.g. 0.1), got {self.label_smoothing!r}")
        if not isinstance(self.bn_images, int) or isinstance(self.bn_images, bool) or self.bn_images < 0:
            raise ConfigError(
                f"bn_images must be a whole number >= 0 (0 keeps running averages), got {self.bn_images!r}"
            )
        if self.warmup_epochs < 0 or self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ConfigError("warmup_epochs and weight_decay must be >= 0 and momentum in [0, 1)")
        if self.layout not in (*LAYOUTS, AUTO_LAYOUT):
            raise ConfigError(f"unknown layout {self.layout!r}; choose one of {', '.join((*LAYOUTS, AUTO_LAYOUT))}")
        if self.threads != "auto":
            positive_int("threads", self.threads, optional=True)
        if self.device != "auto" and not self.device.startswith(("cpu", "cuda")):
            raise ConfigError(f"device must be auto, cpu or cuda[:N], got {self.device!r}")
        object.__setattr__(self, "step_milestones", tuple(float(m) for m in self.step_milestones))

    @classmethod
    def full_training(cls, epochs: int | None = None, **changes: Any) -> TrainConfig:
        """The full-training preset (:data:`FULL_RECIPE`: cosine schedule, checkpoint every epoch)."""
        changes.setdefault("schedule", FULL_RECIPE.schedule)
        changes.setdefault("full", True)
        return cls(epochs=epochs or FULL_RECIPE.epochs, **changes)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["step_milestones"] = list(self.step_milestones)
        return data


@dataclasses.dataclass(frozen=True)
class FullRecipe:
    """The reference full training that proxies are judged against and ``validate`` runs by default.

    Chosen on food101-10 (``benchmarks/proxy_fidelity.py``; docs/accuracy.md has the figures): every
    training image, ``epochs`` epochs of the ``schedule`` (linear warm-up then cosine decay to 0),
    random-resized crop + flip on photos, at ``resolution`` px. 24 epochs rather than 12: on food101-10
    the seed-to-seed std of top-1 falls from 2.4 to 1.3 points and two seeds rank the networks more
    alike. The step schedule it replaces left MobileNet-V1 near chance at 15 epochs on food101-mini.
    """

    epochs: int = 24
    schedule: str = "cosine"
    resolution: int = 64

    def train_config(self, **changes: Any) -> TrainConfig:
        """The recipe as a TrainConfig (full: checkpointed every epoch), with ``changes`` on top."""
        return TrainConfig.full_training(**{"epochs": self.epochs, "schedule": self.schedule, **changes})

    def describe(self) -> str:
        return (
            f"{self.epochs} epochs, {self.schedule} schedule, every training image, {self.resolution} px, "
            "random-resized crop + flip"
        )


FULL_RECIPE = FullRecipe()


@dataclasses.dataclass
class TrainResult:
    """What one training run produced. ``top1``/``top5`` are validation accuracies in percent
    (``top5`` is ``None`` with fewer than 5 classes); ``images_per_s`` counts training images over the
    time spent in training steps (all processes together)."""

    status: str
    top1: float
    top5: float | None
    loss_curve: list[float]
    val_curve: list[float]
    wall_s: float
    images_per_s: float
    epochs_run: int
    train_size: int
    val_size: int
    device: str = "cpu"
    world_size: int = 1
    rank: int = 0
    start_epoch: int = 0
    checkpoint: str | None = None
    structure: dict[str, Any] | None = None  # FLGC: the learned groups per layer (models.learned_structure)
    correct: str | None = None  # which validation images the final model got right (e2gcsearch.paired.pack)
    val_order: str | None = None  # the digest of those images' order (LoadedData.val_order)

    @property
    def ok(self) -> bool:
        """True when the run finished every epoch with a finite loss."""
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def augmentation_for(config: TrainConfig, dataset: str) -> str:
    """The augmentation ``config`` asks for on ``dataset`` (resolves ``auto``)."""
    if config.augment != "auto":
        return config.augment
    return "none" if dataset == "digits" else "rrc"


def learning_rate(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate of optimiser step ``step`` (0-based, counted over the whole run)."""
    total = config.epochs * steps_per_epoch
    warmup = min(round(config.warmup_epochs * steps_per_epoch), total - 1)
    if step < warmup:  # linear warm-up to the base rate
        return config.lr * (step + 1) / warmup
    if config.schedule == "cosine":
        progress = (step - warmup) / max(1, total - warmup)
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    epoch = step // steps_per_epoch
    passed = sum(epoch >= max(1, round(m * config.epochs)) for m in config.step_milestones)
    return config.lr * config.step_gamma**passed


@dataclasses.dataclass(frozen=True)
class ProxyBudget:
    """The proxy training of a search on one dataset: image side, epochs, at most ``train_per_class``
    training images per class (``None`` = all; a class with fewer keeps all) and ``val_per_class``
    validation images (``None`` = the dataset's own validation split)."""

    resolution: int = 64
    epochs: int = 5
    train_per_class: int | None = None
    val_per_class: int | None = None


# The embedded digits are 8x8 pictures, so pixels beyond that add cost, not information; 48 px is the
# smallest common size at which the last stage of both networks still sees a 2x2 map, so batch size 1
# can be profiled in train mode (BN needs more than one value per channel). 80/40 images per class
# and 4 epochs put a MobileNet-V1 clearly above chance (90 %+) within the default run's ten minutes
# on two cores (but every grouping scores within noise of the others: see docs/searching.md). Photos (Food-101,
# imagefolder): 4 epochs on at most 100 images per class at 64 px, the proxy with the best tau per
# second among those whose interval excludes 0 on food101-10 (benchmarks/proxy_fidelity.py; the
# figures are e2gcsearch.fidelity_notes.MEASURED and docs/accuracy.md); the 8 epochs on every image it
# replaces cost 0.65 of full training.
PHOTO_BUDGET = ProxyBudget(resolution=64, epochs=4, train_per_class=100)
PROXY_BUDGETS = {
    "digits": ProxyBudget(resolution=48, epochs=4, train_per_class=80, val_per_class=40),
    "food101": PHOTO_BUDGET,
    "imagefolder": PHOTO_BUDGET,
}


def proxy_budget(data: DataConfig | str) -> ProxyBudget:
    """The proxy budget of a dataset (a name, or the DataConfig whose dataset it resolves to)."""
    name = data if isinstance(data, str) else resolve_dataset(data)[0]
    return PROXY_BUDGETS.get(name, ProxyBudget())


def proxy_data_config(config: DataConfig, resolution: int | None = None) -> DataConfig:
    """``config`` with the proxy budget of its dataset where it leaves a choice open: with no images per
    class given, at most the budget's training images per class (``train_cap``) and its validation
    images; the resolution when ``resolution`` is ``None``."""
    budget = proxy_budget(config)
    cap = config.train_cap or (budget.train_per_class if config.train_per_class is None else None)
    return dataclasses.replace(
        config,
        train_cap=cap,
        val_per_class=config.val_per_class or budget.val_per_class,
        resolution=resolution or budget.resolution,
    )
