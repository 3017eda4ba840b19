"""Every command-line option of e2gcsearch, declared once: its flags, how its text is read (also from a
study spec), its default and its help. :mod:`.options` groups them under the headings of ``--help`` and
adds them to the parsers. The options of ``run``'s search and its space are declared in
:mod:`.search_options` and merged in here."""

from __future__ import annotations

from ..data.augment import AUGMENTATIONS
from ..energy import BACKENDS
from ..models import list_models
from ..profiling.implementations import AUTO_CANDIDATES, IMPL_CHOICES, MODES
from ..profiling.settings import DTYPES
from ..report.tables import FORMATS
from ..store.storage import DEFAULT_STORAGE, DEFAULT_STUDY
from ..train import SCHEDULES, TrainConfig
from ._common import (
    class_list,
    folder,
    int_list,
    positive_int,
    resolution,
    seed,
    threads,
    watts,
)
from .option_base import Option, option
from .search_options import SEARCH_OPTIONS

OPTIONS: dict[str, Option] = {
    # network
    "arch": option(
        "arch",
        metavar="ARCH",
        help=f"architecture: {', '.join(list_models())}, or your own network as module:function "
        "(a factory num_classes -> nn.Module, e.g. mypkg.models:build_net; see 'e2gcsearch table')",
    ),
    "group_size": option(
        "--group-size",
        "-G",
        type=positive_int,
        metavar="G",
        help="E2GC: channels per group of every grouped 3x3 conv (1 = depthwise)",
    ),
    "groups": option(
        "--groups", "-g", type=positive_int, metavar="g", help="FgGC: number of groups of every grouped 3x3 conv"
    ),
    "flgc": option(
        "--flgc",
        action="store_true",
        help="FLGC: learn in training which channels and filters form each of the g groups (-g g, or "
        "-G G for g = m/G per layer); balanced groups, deployed as the standard grouped conv, e.g. "
        "--flgc -g 8",
    ),
    "flgc_uneven": option(
        "--flgc-uneven",
        action="store_true",
        help="FLGC with free group sizes (the paper's assignment): deployed as one conv per group, "
        "with MACs set by what it learned; implies --flgc",
    ),
    "width": option(
        "--width",
        type=float,
        default=1.0,
        help="width multiplier; channels are rounded so every grouped conv stays divisible",
    ),
    "resolution": option(
        "--resolution",
        type=resolution,
        metavar="R",
        help="image height and width in pixels; unset in run: the dataset's proxy budget "
        "(48 on the digits, 64 otherwise), in validate: each trial's",
    ),
    "classes": option(
        "--classes",
        type=class_list,
        metavar="K|NAMES",
        help="number of classes; where a dataset is loaded, its first K classes or a comma list of "
        "class names (unset: all)",
    ),
    # data
    "data": option(
        "--data",
        metavar="NAME",
        help="food101, imagefolder or digits (= embedded); unset: Food-101 if found at the data root "
        "($E2GCSEARCH_DATA), else the digits",
    ),
    "data_root": option("--data-root", metavar="DIR", help="dataset folder (Food-101: the folder holding food-101/)"),
    "train_per_class": option(
        "--train-per-class",
        type=positive_int,
        metavar="N",
        help="training images per class; unset: all (run: the proxy budget)",
    ),
    "val_per_class": option(
        "--val-per-class",
        type=positive_int,
        metavar="M",
        help="validation images per class; unset: Food-101's test split, 20 %% elsewhere (run: the proxy budget)",
    ),
    "data_seed": option("--data-seed", type=seed, default=0, help="seed of the subset draw and the validation split"),
    "download": option("--download", action="store_true", help="allow downloading Food-101 (5 GB) when missing"),
    "cache_dir": option(
        "--cache-dir",
        type=folder,
        metavar="DIR",
        help="cache home: decoded images in DIR/tensors, EPF measurements in DIR/profiles; "
        "unset: $E2GCSEARCH_CACHE_DIR, else ~/.cache/e2gcsearch",
    ),
    # training
    "epochs": option(
        "--epochs",
        type=positive_int,
        help="training epochs; unset in train: 5 (12 with --full, the full recipe), in validate: 12 (the full "
        "recipe), in run: the dataset's proxy budget "
        "(4 on the digits and on photos)",
    ),
    "batch_size": option(
        "--batch-size", type=positive_int, default=32, help="training images per step (per process under torchrun)"
    ),
    "lr": option("--lr", type=float, default=TrainConfig.lr, help="peak learning rate (SGD, Nesterov momentum 0.9)"),
    "train_seed": option(
        "--train-seed",
        type=seed,
        default=0,
        help="seed of the weight initialisation, the batch order and the augmentation",
    ),
    "proxy_seeds": option(
        "--proxy-seeds",
        type=positive_int,
        default=1,
        metavar="K",
        help="proxy trainings per trial, seeds --train-seed .. +K-1; top-1 is their mean and its "
        "interval includes the seed noise they show",
    ),
    "device": option("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N"),
    "threads": option(
        "--threads",
        type=threads,
        metavar="N|auto",
        help="torch intra-op threads of the command's work: training, or measuring where nothing is "
        "trained; auto times a few steps with 1 thread and with every core at the start, keeps "
        "the faster and says so (a shared CPU can make all cores 10x slower than one); "
        "0 = torch's default (all cores)",
    ),
    "impl": option(
        "--impl",
        choices=IMPL_CHOICES,
        help="how the network runs while measuring and training: nchw (PyTorch's default layout; the "
        "default), "
        "channels_last (NHWC kernels), compile (torch.compile; compile time reported apart, "
        "training runs nchw), auto (time " + " and ".join(AUTO_CANDIDATES) + " for a few steps per "
        "network and batch size, keep the faster; recorded with every figure). "
        "E.g. --impl auto",
    ),
    "channels_last": option("--channels-last", action="store_true", help="older spelling of --impl channels_last"),
    "schedule": option(
        "--schedule", choices=SCHEDULES, help="learning-rate schedule; unset: cosine (proxy), step (--full)"
    ),
    "warmup_epochs": option(
        "--warmup-epochs", type=float, default=TrainConfig.warmup_epochs, help="linear warm-up length in epochs"
    ),
    "label_smoothing": option("--label-smoothing", type=float, default=0.0, help="label smoothing of the loss"),
    "augment": option(
        "--augment",
        choices=("auto", *AUGMENTATIONS),
        default="auto",
        help="rrc = random-resized crop + flip; auto = none on digits, rrc on photos",
    ),
    "no_amp": option("--no-amp", action="store_true", help="disable mixed precision (CUDA only)"),
    "full": option(
        "--full", action="store_true", help="full training: the full recipe (cosine schedule), checkpoint every epoch"
    ),
    "checkpoint_dir": option(
        "--checkpoint-dir",
        type=folder,
        metavar="DIR",
        help="checkpoint folder; unset with --full: ~/.cache/e2gcsearch/checkpoints/<arch>-<digest>",
    ),
    "resume": option("--resume", action="store_true", help="continue from the checkpoint in the folder"),
    "no_progress": option("--no-progress", action="store_true", help="no progress bar or epoch lines"),
    # energy measurement
    "batch_sizes": option(
        "--batch-sizes", type=int_list, default=(1, 4, 16), metavar="B,B,...", help="batch sizes whose EPF is measured"
    ),
    "backend": option(
        "--backend",
        choices=("auto", *BACKENDS),
        default="auto",
        help="energy meter; auto tries nvml, rapl, estimate and says why it skipped any",
    ),
    "repeats": option("--repeats", type=positive_int, default=5, help="measured windows per batch size"),
    "min_window_s": option(
        "--min-window-s",
        type=float,
        metavar="S",
        help="minimum window length in seconds; unset: 5 on a GPU, 0.25 on a CPU",
    ),
    "warmup": option("--warmup", type=int, default=3, help="warm-up steps per batch size"),
    "dtype": option(
        "--dtype", choices=tuple(DTYPES), default="float32", help="precision of weights and input while measuring"
    ),
    "mode": option(
        "--mode",
        choices=MODES,
        default="train",
        help="train: EPF of forward + backward in train mode (the paper's); infer: forward only in "
        "eval mode under torch.inference_mode() (what a deployed model costs), e.g. --mode infer",
    ),
    "per_layer": option(
        "--per-layer",
        action="store_true",
        help="also per layer: cost lists every conv and linear layer; profile times every layer's "
        "forward and backward, apportions the measured energy to them by time share and "
        "flags cliffs (time per MAC >= 3x the median) and what removes them",
    ),
    "roofline": option(
        "--roofline",
        action="store_true",
        help="the device's roofline (peak FLOP/s and memory bandwidth, measured once per device, dtype "
        "and threads, and cached): profile --per-layer: each layer's achieved FLOP/s, forward and "
        "backward, against min(peak, AI x bandwidth); analyze: the grouped convs timed, --plot draws it",
    ),
    "profile_threads": option(
        "--profile-threads",
        type=threads,
        default=1,
        metavar="N",
        help="torch intra-op threads while measuring, in commands that also train (--threads "
        "is the training's); 1 measures one busy core, steady on a shared CPU; "
        "0 = torch's default (all cores)",
    ),
    "cpu_power_w": option(
        "--cpu-power-w",
        type=watts,
        metavar="W",
        help="estimate backend: assumed power in watts; unset: $E2GCSEARCH_CPU_POWER_W if set, else 7.5 W per thread",
    ),
    "no_cache": option(
        "--no-cache", action="store_true", help="measure afresh; neither read nor write the measurement cache"
    ),
    # study
    "study": option("--study", default=DEFAULT_STUDY, help="study name (shared by run/front/export/validate)"),
    "storage": option(
        "--storage",
        default=DEFAULT_STORAGE,
        help="Optuna RDB URL (sqlite:///…, postgresql://…) or journal file (.log/.jsonl)",
    ),
    **SEARCH_OPTIONS,  # run's own: the search and its space (.search_options)
    # output
    "format": option(
        "--format",
        choices=FORMATS,
        default="table",
        help="output format: human table, CSV/JSON with raw values, or Markdown",
    ),
}
