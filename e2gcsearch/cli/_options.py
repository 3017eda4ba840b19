"""Option groups shared by the commands that train or profile: data, proxy training, profiling."""

from __future__ import annotations

import argparse

from ..data import DataConfig
from ..data.core import resolve_dataset
from ..profiling import ProfileConfig
from ..train import TrainConfig
from ._common import int_list, positive_int

# Proxy budget of `run` per dataset. The embedded digits are 8x8 pictures, so pixels beyond that add
# cost, not information; 48 px is the smallest common size at which the last stage of both networks
# still sees a 2x2 map, so batch size 1 can be profiled in train mode (BN needs more than one value
# per channel). 80/40 images per class and 4 epochs put a MobileNet-V1 clearly above chance (90 %+)
# within the default run's ten minutes on two cores. Food-101 needs more pixels and epochs.
PROXY_DEFAULTS = {
    "digits": {"resolution": 48, "epochs": 4, "train_per_class": 80, "val_per_class": 40},
    "food101": {"resolution": 64, "epochs": 8, "train_per_class": None, "val_per_class": None},
    "imagefolder": {"resolution": 64, "epochs": 8, "train_per_class": None, "val_per_class": None},
}


def add_data_args(parser: argparse.ArgumentParser, resolution: int | None = 64) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", metavar="NAME",
                       help="food101, imagefolder or digits (embedded); default: Food-101 if found at the "
                            "data root ($E2GCSEARCH_DATA), else the embedded digits")
    group.add_argument("--data-root", metavar="DIR", help="dataset folder (Food-101: the one holding food-101/)")
    group.add_argument("--classes", metavar="K|NAMES",
                       help="keep the first K classes, or a comma list of class names")
    group.add_argument("--train-per-class", type=positive_int, metavar="N", help="training images per class")
    group.add_argument("--val-per-class", type=positive_int, metavar="M", help="validation images per class")
    group.add_argument("--resolution", type=positive_int, default=resolution,
                       help="image side in pixels (default: 48 for digits, 64 otherwise)" if resolution is None
                       else "image side in pixels")
    group.add_argument("--data-seed", type=int, default=0, help="seed of the subset draw and validation split")
    group.add_argument("--download", action="store_true", help="allow downloading Food-101 (5 GB) if missing")


def _classes(text: str | None) -> int | tuple[str, ...] | None:
    if text is None:
        return None
    text = str(text).strip()
    return int(text) if text.isdigit() else tuple(name.strip() for name in text.split(",") if name.strip())


def data_config(args: argparse.Namespace, proxy_defaults: bool = True) -> DataConfig:
    """The DataConfig the flags describe; unset subset flags take the dataset's proxy defaults."""
    config = DataConfig(name=args.data, root=args.data_root, classes=_classes(args.classes),
                        train_per_class=args.train_per_class, val_per_class=args.val_per_class,
                        resolution=args.resolution or 64, seed=args.data_seed, download=args.download)
    name = resolve_dataset(config)[0]
    defaults = PROXY_DEFAULTS.get(name, {}) if proxy_defaults else {}
    return DataConfig(
        name=config.name, root=config.root, classes=config.classes,
        train_per_class=args.train_per_class or defaults.get("train_per_class"),
        val_per_class=args.val_per_class or defaults.get("val_per_class"),
        resolution=args.resolution or defaults.get("resolution", 64), seed=args.data_seed, download=args.download)


def add_train_args(parser: argparse.ArgumentParser, epochs: int | None = 5) -> None:
    group = parser.add_argument_group("proxy training")
    group.add_argument("--epochs", type=positive_int, default=epochs,
                       help="training epochs (default: 4 on digits, 8 otherwise)" if epochs is None else "training epochs")
    group.add_argument("--batch-size", type=positive_int, default=32, help="training batch size")
    group.add_argument("--lr", type=float, help="peak learning rate (default: the trainer's)")
    group.add_argument("--train-seed", type=int, default=0, help="seed of weight init and batch order")
    group.add_argument("--threads", type=positive_int, help="torch threads for training (default: torch's, all cores)")


def train_config(args: argparse.Namespace, data: DataConfig) -> TrainConfig:
    name = resolve_dataset(data)[0]
    epochs = args.epochs or PROXY_DEFAULTS.get(name, {}).get("epochs", 5)
    extra = {"lr": args.lr} if args.lr is not None else {}
    return TrainConfig(epochs=epochs, batch_size=args.batch_size, seed=args.train_seed, progress=False,
                       device=getattr(args, "device", "auto"), threads=args.threads, **extra)


def add_profile_args(parser: argparse.ArgumentParser, repeats: int = 5) -> None:
    group = parser.add_argument_group("energy profiling")
    group.add_argument("--batch-sizes", type=int_list, default="1,4,16", metavar="B,…",
                       help="batch sizes whose EPF is measured")
    group.add_argument("--backend", default="auto", help="energy meter: auto, nvml, rapl or estimate")
    group.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    group.add_argument("--repeats", type=positive_int, default=repeats, help="measured windows per batch size")
    group.add_argument("--no-cache", dest="use_cache", action="store_false",
                       help="measure again even when a cached measurement exists")


def profile_config(args: argparse.Namespace, resolution: int) -> ProfileConfig:
    return ProfileConfig(batch_sizes=tuple(args.batch_sizes), resolution=resolution, device=args.device,
                         backend=args.backend, repeats=args.repeats, use_cache=args.use_cache)
