"""``e2gcsearch train``: one training run (proxy or full) of one network; prints top-1 with the split sizes."""

from __future__ import annotations

import argparse
import warnings

import pandas as pd

from ..config import ArchConfig
from ..cost import learned_cost_line
from ..data import DataConfig, LoadedData, load_data
from ..report.tables import fixed, render, to_json
from ..train import TrainConfig, TrainResult, process_rank, train_model
from ._common import HelpFormatter, emit, note
from .configs import data_config, flgc_fields, grouping_fields, training_layout
from .options import DATA, NETWORK, OUTPUT, TRAINER, TRAINING, add_options

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
  e2gcsearch train mobilenet_v1 --flgc -g 8 --width 0.5 --data food101 --data-root ../shared/data/food101-mini
      # FLGC: learns its 8 groups; prints what the deployed grouped network costs (--flgc-uneven: free sizes)
  torchrun --nproc-per-node 2 -m e2gcsearch train mobilenet_v1 -G 4 --data food101 --full
      # DistributedDataParallel: gloo on CPU, nccl on GPU; --batch-size is per process

datasets: food101 (official train/test split; test = validation), imagefolder (<class>/<image> tree,
seeded validation split), digits (alias embedded: scikit-learn's 1,797 real 8x8 handwritten digits,
upsampled; works offline). Data root: --data-root, else $E2GCSEARCH_DATA, else ~/.cache/e2gcsearch/data
(the folder holding food-101/). Decoded tensors are cached in <cache home>/tensors: --cache-dir, else
$E2GCSEARCH_CACHE_DIR, else ~/.cache/e2gcsearch. --data-seed draws the subset and the split,
--train-seed the initial weights, the batch order and the augmentation. Proxy runs use warm-up +
cosine; --full trains the full recipe (24 cosine epochs unless --epochs) and checkpoints every epoch.
"""

COLUMNS = [
    "arch",
    "dataset",
    "classes",
    "train_images",
    "val_images",
    "resolution",
    "epochs",
    "top1_pct",
    "top5_pct",
    "final_loss",
    "wall_s",
    "images_per_s",
    "status",
]
FORMATTERS = {
    "top1_pct": fixed(1),
    "top5_pct": fixed(1),
    "final_loss": fixed(4),
    "wall_s": fixed(1),
    "images_per_s": fixed(0),
}
HEADERS = {
    "train_images": "train",
    "val_images": "val",
    "top1_pct": "top-1 %",
    "top5_pct": "top-5 %",
    "final_loss": "loss",
    "wall_s": "wall s",
    "images_per_s": "img/s",
}


def train_config(args: argparse.Namespace) -> TrainConfig:
    settings = dict(
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_epochs=args.warmup_epochs,
        label_smoothing=args.label_smoothing,
        augment=args.augment,
        layout=training_layout(args),
        amp=not args.no_amp,
        seed=args.train_seed,
        device=args.device,
        threads=args.threads,
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        progress=not args.no_progress,
    )
    if args.schedule:
        settings["schedule"] = args.schedule
    if args.full:
        return TrainConfig.full_training(**({"epochs": args.epochs} if args.epochs else {}), **settings)
    return TrainConfig(epochs=args.epochs or TrainConfig.epochs, **settings)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one network (proxy or --full) and print its validation top-1",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    add_options(parser, NETWORK, DATA, TRAINING, TRAINER, OUTPUT, defaults={"resolution": 64})
    parser.set_defaults(func=run)


def result_row(arch: ArchConfig, data: LoadedData, result: TrainResult) -> dict:
    return {
        "arch": arch.label(),
        "dataset": data.name,
        "classes": data.num_classes,
        "train_images": result.train_size,
        "val_images": result.val_size,
        "resolution": data.resolution,
        "epochs": result.epochs_run,
        "top1_pct": result.top1,
        "top5_pct": result.top5,
        "final_loss": result.loss_curve[-1] if result.loss_curve else None,
        "wall_s": result.wall_s,
        "images_per_s": result.images_per_s,
        "status": result.status,
    }


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
    # checks flags early, before loading data
    arch_config = ArchConfig(args.arch, width=args.width, **grouping_fields(args), **flgc_fields(args))
    config = train_config(args)
    data = _load(data_config(args), show, not args.no_progress)
    arch_config = arch_config.replace(num_classes=data.num_classes)
    result = train_model(arch_config, data, config)
    if not show:
        return 0 if result.ok else 1
    frame = pd.DataFrame([result_row(arch_config, data, result)], columns=COLUMNS)
    if args.format == "json":
        emit(
            to_json(
                {
                    "result": result.to_dict(),
                    "arch": arch_config.to_dict(),
                    "data": data.description(),
                    "train": config.to_dict(),
                }
            )
        )
    else:
        emit(render(frame, args.format, FORMATTERS, HEADERS))
    if result.checkpoint:
        note(f"checkpoint: {result.checkpoint}")
    if result.structure is not None:
        note(learned_cost_line(arch_config, result.structure, data.resolution))
    if not result.ok:
        note(
            f"training did not finish: {result.status} after {result.epochs_run} epoch(s); "
            "try a lower --lr or more --warmup-epochs"
        )
        return 1
    return 0
