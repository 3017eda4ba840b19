"""``e2gcsearch train``: one training run (proxy or full) of one network; prints top-1 with the split sizes."""

from __future__ import annotations

import argparse
import warnings

import pandas as pd

from ..config import ArchConfig
from ..data import DataConfig, LoadedData, load_data
from ..data.augment import AUGMENTATIONS
from ..report.tables import fixed, render, to_json
from ..train import SCHEDULES, TrainConfig, TrainResult, process_rank, train_model
from ._common import HelpFormatter, add_format_arg, emit, note, positive_int

EXAMPLES = """\
examples:
  e2gcsearch train mobilenet_v1 --group-size 8 --width 0.5 --epochs 10
      # Food-101 if it is at the data root, else the embedded digits (a line on stderr says which)
  e2gcsearch train mobilenet_v1 -G 8 --width 0.5 --data food101 --data-root ../shared/data/food101-mini \\
      --resolution 64 --epochs 10
  e2gcsearch train resnext50 --groups 32 --width 0.25 --data imagefolder --data-root ~/photos \\
      --classes 5 --train-per-class 40 --val-per-class 10
  e2gcsearch train mobilenet_v1 -G 4 --data food101 --classes 10 --full --epochs 30 --checkpoint-dir runs/g4
  e2gcsearch train mobilenet_v1 -G 4 --data food101 --classes 10 --full --epochs 30 --checkpoint-dir runs/g4 --resume
  torchrun --nproc-per-node 2 -m e2gcsearch train mobilenet_v1 -G 4 --data food101 --full
      # DistributedDataParallel: gloo on CPU, nccl on GPU; --batch-size is per process

datasets: food101 (official train/test split; test = validation), imagefolder (<class>/<image> tree,
seeded validation split), digits (alias embedded: scikit-learn's 1,797 real 8x8 handwritten digits,
upsampled; works offline). Data root: --data-root, else $E2GCSEARCH_DATA, else ~/.cache/e2gcsearch/data
(the folder holding food-101/). Decoded tensors are cached in --cache-dir, else $E2GCSEARCH_CACHE_DIR/tensors,
else ~/.cache/e2gcsearch/tensors. Proxy runs use warm-up + cosine; --full uses the step schedule
(x0.1 at 1/3 and 2/3 of the epochs) and checkpoints every epoch.
"""

COLUMNS = ["arch", "dataset", "classes", "train_images", "val_images", "resolution", "epochs", "top1_pct",
           "top5_pct", "final_loss", "wall_s", "images_per_s", "status"]
FORMATTERS = {"top1_pct": fixed(1), "top5_pct": fixed(1), "final_loss": fixed(4), "wall_s": fixed(1),
              "images_per_s": fixed(0)}
HEADERS = {"train_images": "train", "val_images": "val", "top1_pct": "top-1 %", "top5_pct": "top-5 %",
           "final_loss": "loss", "wall_s": "wall s", "images_per_s": "img/s"}


def class_list(text: str) -> int | tuple[str, ...]:
    """'10' → 10 (the first ten classes); 'apple_pie,baklava' → those classes."""
    text = text.strip()
    if text.isdigit():
        return positive_int(text)
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected a number or a comma-separated list of class names, got {text!r}")
    return names


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """--data, --data-root, subset flags, --resolution, --seed, --cache-dir, --download."""
    group = parser.add_argument_group("data")
    group.add_argument("--data", metavar="NAME", help="food101, imagefolder or digits (= embedded); unset: "
                       "Food-101 if found at the data root, else digits")
    group.add_argument("--data-root", metavar="DIR", help="dataset folder (Food-101: the folder holding food-101/)")
    group.add_argument("--classes", type=class_list, metavar="K|NAMES",
                       help="the first K classes, or a comma-separated list of class names; unset: all")
    group.add_argument("--train-per-class", type=positive_int, metavar="N", help="training images per class; unset: all")
    group.add_argument("--val-per-class", type=positive_int, metavar="M", help="validation images per class; unset: Food-101's test split, 20 %% elsewhere")
    group.add_argument("--resolution", type=positive_int, default=64, help="image side in pixels")
    group.add_argument("--seed", type=int, default=0, help="seeds the subset draw, the split and the training")
    group.add_argument("--cache-dir", metavar="DIR", help="decoded-tensor cache folder")
    group.add_argument("--download", action="store_true", help="allow downloading Food-101 (5 GB) when missing")


def data_config(args: argparse.Namespace) -> DataConfig:
    return DataConfig(name=args.data, root=args.data_root, classes=args.classes,
                      train_per_class=args.train_per_class, val_per_class=args.val_per_class,
                      resolution=args.resolution, seed=args.seed, cache_dir=args.cache_dir, download=args.download)


def add_training_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=positive_int, help="epochs; unset: 5, or 30 with --full")
    group.add_argument("--batch-size", type=positive_int, default=32, help="images per step (per process)")
    group.add_argument("--lr", type=float, default=TrainConfig.lr, help="peak learning rate (SGD, Nesterov 0.9)")
    group.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule; unset: cosine (proxy), step (--full)")
    group.add_argument("--warmup-epochs", type=float, default=TrainConfig.warmup_epochs, help="linear warm-up length")
    group.add_argument("--label-smoothing", type=float, default=0.0, help="label smoothing of the loss")
    group.add_argument("--augment", choices=("auto", *AUGMENTATIONS), default="auto",
                       help="rrc = random-resized crop + flip; auto = none on digits, rrc on photos")
    group.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    group.add_argument("--no-amp", dest="amp", action="store_false", help="disable mixed precision (CUDA only)")
    group.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    group.add_argument("--threads", type=positive_int, help="torch intra-op threads; unset: torch's choice")
    group.add_argument("--full", action="store_true", help="full training: step schedule, checkpoint every epoch")
    group.add_argument("--checkpoint-dir", metavar="DIR", help="checkpoint folder; unset with --full: "
                       "~/.cache/e2gcsearch/checkpoints/<arch>-<digest>")
    group.add_argument("--resume", action="store_true", help="continue from the checkpoint in the folder")
    group.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar or epoch lines")


def train_config(args: argparse.Namespace) -> TrainConfig:
    settings = dict(batch_size=args.batch_size, lr=args.lr, warmup_epochs=args.warmup_epochs,
                    label_smoothing=args.label_smoothing, augment=args.augment, channels_last=args.channels_last,
                    amp=args.amp, seed=args.seed, device=args.device, threads=args.threads,
                    checkpoint_dir=args.checkpoint_dir, resume=args.resume, progress=args.progress)
    if args.schedule:
        settings["schedule"] = args.schedule
    if args.full:
        return TrainConfig.full_training(**({"epochs": args.epochs} if args.epochs else {}), **settings)
    return TrainConfig(epochs=args.epochs or TrainConfig.epochs, **settings)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train one network (proxy or --full) and print its validation top-1",
        description=__doc__, epilog=EXAMPLES, formatter_class=HelpFormatter)
    parser.add_argument("arch", metavar="ARCH", help="architecture: mobilenet_v1 or resnext50")
    parser.add_argument("--group-size", "-G", type=positive_int, metavar="G",
                        help="E2GC: channels per group of every grouped 3x3 conv (1 = depthwise)")
    parser.add_argument("--groups", "-g", type=positive_int, metavar="g",
                        help="FgGC: number of groups of every grouped 3x3 conv")
    parser.add_argument("--width", type=float, default=1.0, help="width multiplier")
    add_data_args(parser)
    add_training_args(parser)
    add_format_arg(parser)
    parser.set_defaults(func=run)


def result_row(arch: ArchConfig, data: LoadedData, result: TrainResult) -> dict:
    return {"arch": arch.label(), "dataset": data.name, "classes": data.num_classes,
            "train_images": result.train_size, "val_images": result.val_size, "resolution": data.resolution,
            "epochs": result.epochs_run, "top1_pct": result.top1, "top5_pct": result.top5,
            "final_loss": result.loss_curve[-1] if result.loss_curve else None, "wall_s": result.wall_s,
            "images_per_s": result.images_per_s, "status": result.status}


def _load(config: DataConfig, show: bool, progress: bool) -> LoadedData:
    """Load the data; on the talking process, print skipped files, the dataset choice and a summary."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_data(config, progress=show and progress)
    if show:
        for warning in caught:
            note(f"warning: {warning.message}")
        if data.note and not progress:  # load_data already printed it when progress was on
            note(data.note)
        note(data.summary_line())
    return data


def run(args: argparse.Namespace) -> int:
    show = process_rank() == 0  # under torchrun only rank 0 talks
    arch = ArchConfig(args.arch, group_size=args.group_size, groups=args.groups, width=args.width)  # checks flags early
    config = train_config(args)
    data = _load(data_config(args), show, args.progress)
    arch = arch.replace(num_classes=data.num_classes)
    result = train_model(arch, data, config)
    if not show:
        return 0 if result.ok else 1
    frame = pd.DataFrame([result_row(arch, data, result)], columns=COLUMNS)
    if args.format == "json":
        emit(to_json({"result": result.to_dict(), "arch": arch.to_dict(), "data": data.description(),
                      "train": config.to_dict()}))
    else:
        emit(render(frame, args.format, FORMATTERS, HEADERS))
    if result.checkpoint:
        note(f"checkpoint: {result.checkpoint}")
    if not result.ok:
        note(f"training did not finish: {result.status} after {result.epochs_run} epoch(s); "
             "try a lower --lr or more --warmup-epochs")
        return 1
    return 0
