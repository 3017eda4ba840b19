"""Every command-line option of e2gcsearch, declared once: its flags, how its text is read (also from a
study spec), its default and its help. :mod:`.options` groups them under the headings of ``--help`` and
adds them to the parsers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..config import E2GC, FGGC
from ..data.augment import AUGMENTATIONS
from ..energy import BACKENDS
from ..models import DEFAULT_ARCH, list_models
from ..profiling.implementations import AUTO_CANDIDATES, IMPL_CHOICES, MODES
from ..profiling.settings import DTYPES
from ..report.tables import FORMATS
from ..search.objectives import DEFAULT_BATCH_SIZE
from ..search.search_config import DEFAULT_TRIALS, WARM_STARTS
from ..search.space import DEFAULT_WIDTHS, SearchSpace
from ..search.study import SAMPLERS
from ..search.trial import DEFAULT_EARLY_STOP, EARLY_STOPS
from ..store.storage import DEFAULT_STORAGE, DEFAULT_STUDY
from ..train import SCHEDULES, TrainConfig
from ._common import (
    class_list,
    float_list,
    folder,
    index_list,
    int_list,
    name_list,
    positive_float,
    positive_int,
    resolution,
    seed,
    threads,
    watts,
)


@dataclasses.dataclass(frozen=True)
class Option:
    """One command-line option: its flags, how its text is read, its default and its help."""

    flags: tuple[str, ...]
    help: str
    type: Callable[[str], Any] | None = None
    default: Any = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    action: str | None = None  # "store_true" or "append"

    @property
    def dest(self) -> str:
        return self.flags[0].lstrip("-").replace("-", "_")


def _option(*flags: str, help: str, **settings: Any) -> Option:
    if settings.get("action") == "store_true":
        settings.setdefault("default", False)
    return Option(flags=flags, help=help, **settings)


OPTIONS: dict[str, Option] = {
    # network
    "arch": _option(
        "arch",
        metavar="ARCH",
        help=f"architecture: {', '.join(list_models())}, or your own network as module:function "
        "(a factory num_classes -> nn.Module, e.g. mypkg.models:build_net; see 'e2gcsearch table')",
    ),
    "group_size": _option(
        "--group-size",
        "-G",
        type=positive_int,
        metavar="G",
        help="E2GC: channels per group of every grouped 3x3 conv (1 = depthwise)",
    ),
    "groups": _option(
        "--groups", "-g", type=positive_int, metavar="g", help="FgGC: number of groups of every grouped 3x3 conv"
    ),
    "flgc": _option(
        "--flgc",
        action="store_true",
        help="FLGC: learn in training which channels and filters form each of the g groups (-g g, or "
        "-G G for g = m/G per layer); balanced groups, deployed as the standard grouped conv, e.g. "
        "--flgc -g 8",
    ),
    "flgc_uneven": _option(
        "--flgc-uneven",
        action="store_true",
        help="FLGC with free group sizes (the paper's assignment): deployed as one conv per group, "
        "with MACs set by what it learned; implies --flgc",
    ),
    "width": _option(
        "--width",
        type=float,
        default=1.0,
        help="width multiplier; channels are rounded so every grouped conv stays divisible",
    ),
    "resolution": _option(
        "--resolution",
        type=resolution,
        metavar="R",
        help="image height and width in pixels; unset in run: the dataset's proxy budget "
        "(48 on the digits, 64 otherwise), in validate: each trial's",
    ),
    "classes": _option(
        "--classes",
        type=class_list,
        metavar="K|NAMES",
        help="number of classes; where a dataset is loaded, its first K classes or a comma list of "
        "class names (unset: all)",
    ),
    # data
    "data": _option(
        "--data",
        metavar="NAME",
        help="food101, imagefolder or digits (= embedded); unset: Food-101 if found at the data root "
        "($E2GCSEARCH_DATA), else the digits",
    ),
    "data_root": _option("--data-root", metavar="DIR", help="dataset folder (Food-101: the folder holding food-101/)"),
    "train_per_class": _option(
        "--train-per-class",
        type=positive_int,
        metavar="N",
        help="training images per class; unset: all (run: the proxy budget)",
    ),
    "val_per_class": _option(
        "--val-per-class",
        type=positive_int,
        metavar="M",
        help="validation images per class; unset: Food-101's test split, 20 %% elsewhere (run: the proxy budget)",
    ),
    "data_seed": _option("--data-seed", type=seed, default=0, help="seed of the subset draw and the validation split"),
    "download": _option("--download", action="store_true", help="allow downloading Food-101 (5 GB) when missing"),
    "cache_dir": _option(
        "--cache-dir",
        type=folder,
        metavar="DIR",
        help="cache home: decoded images in DIR/tensors, EPF measurements in DIR/profiles; "
        "unset: $E2GCSEARCH_CACHE_DIR, else ~/.cache/e2gcsearch",
    ),
    # training
    "epochs": _option(
        "--epochs",
        type=positive_int,
        help="training epochs; unset in train: 5 (12 with --full, the full recipe), in validate: 12 (the full "
        "recipe), in run: the dataset's proxy budget "
        "(4 on the digits and on photos)",
    ),
    "batch_size": _option(
        "--batch-size", type=positive_int, default=32, help="training images per step (per process under torchrun)"
    ),
    "lr": _option("--lr", type=float, default=TrainConfig.lr, help="peak learning rate (SGD, Nesterov momentum 0.9)"),
    "train_seed": _option(
        "--train-seed",
        type=seed,
        default=0,
        help="seed of the weight initialisation, the batch order and the augmentation",
    ),
    "proxy_seeds": _option(
        "--proxy-seeds",
        type=positive_int,
        default=1,
        metavar="K",
        help="proxy trainings per trial, seeds --train-seed .. +K-1; top-1 is their mean and its "
        "interval includes the seed noise they show",
    ),
    "device": _option("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N"),
    "threads": _option(
        "--threads",
        type=threads,
        metavar="N|auto",
        help="torch intra-op threads of the command's work: training, or measuring where nothing is "
        "trained; auto times a few steps with 1 thread and with every core at the start, keeps "
        "the faster and says so (a shared CPU can make all cores 10x slower than one); "
        "0 = torch's default (all cores)",
    ),
    "impl": _option(
        "--impl",
        choices=IMPL_CHOICES,
        help="how the network runs while measuring and training: nchw (PyTorch's default layout; the "
        "default), "
        "channels_last (NHWC kernels), compile (torch.compile; compile time reported apart, "
        "training runs nchw), auto (time " + " and ".join(AUTO_CANDIDATES) + " for a few steps per "
        "network and batch size, keep the faster; recorded with every figure). "
        "E.g. --impl auto",
    ),
    "channels_last": _option("--channels-last", action="store_true", help="older spelling of --impl channels_last"),
    "schedule": _option(
        "--schedule", choices=SCHEDULES, help="learning-rate schedule; unset: cosine (proxy), step (--full)"
    ),
    "warmup_epochs": _option(
        "--warmup-epochs", type=float, default=TrainConfig.warmup_epochs, help="linear warm-up length in epochs"
    ),
    "label_smoothing": _option("--label-smoothing", type=float, default=0.0, help="label smoothing of the loss"),
    "augment": _option(
        "--augment",
        choices=("auto", *AUGMENTATIONS),
        default="auto",
        help="rrc = random-resized crop + flip; auto = none on digits, rrc on photos",
    ),
    "no_amp": _option("--no-amp", action="store_true", help="disable mixed precision (CUDA only)"),
    "full": _option(
        "--full", action="store_true", help="full training: the full recipe (cosine schedule), checkpoint every epoch"
    ),
    "checkpoint_dir": _option(
        "--checkpoint-dir",
        type=folder,
        metavar="DIR",
        help="checkpoint folder; unset with --full: ~/.cache/e2gcsearch/checkpoints/<arch>-<digest>",
    ),
    "resume": _option("--resume", action="store_true", help="continue from the checkpoint in the folder"),
    "no_progress": _option("--no-progress", action="store_true", help="no progress bar or epoch lines"),
    # energy measurement
    "batch_sizes": _option(
        "--batch-sizes", type=int_list, default=(1, 4, 16), metavar="B,B,...", help="batch sizes whose EPF is measured"
    ),
    "backend": _option(
        "--backend",
        choices=("auto", *BACKENDS),
        default="auto",
        help="energy meter; auto tries nvml, rapl, estimate and says why it skipped any",
    ),
    "repeats": _option("--repeats", type=positive_int, default=5, help="measured windows per batch size"),
    "min_window_s": _option(
        "--min-window-s",
        type=float,
        metavar="S",
        help="minimum window length in seconds; unset: 5 on a GPU, 0.25 on a CPU",
    ),
    "warmup": _option("--warmup", type=int, default=3, help="warm-up steps per batch size"),
    "dtype": _option(
        "--dtype", choices=tuple(DTYPES), default="float32", help="precision of weights and input while measuring"
    ),
    "mode": _option(
        "--mode",
        choices=MODES,
        default="train",
        help="train: EPF of forward + backward in train mode (the paper's); infer: forward only in "
        "eval mode under torch.inference_mode() (what a deployed model costs), e.g. --mode infer",
    ),
    "per_layer": _option(
        "--per-layer",
        action="store_true",
        help="also per layer: cost lists every conv and linear layer; profile times every layer's "
        "forward and backward, apportions the measured energy to them by time share and "
        "flags cliffs (time per MAC >= 3x the median) and what removes them",
    ),
    "roofline": _option(
        "--roofline",
        action="store_true",
        help="the device's roofline (peak FLOP/s and memory bandwidth, measured once per device, dtype "
        "and threads, and cached): profile --per-layer: each layer's achieved FLOP/s, forward and "
        "backward, against min(peak, AI x bandwidth); analyze: the grouped convs timed, --plot draws it",
    ),
    "profile_threads": _option(
        "--profile-threads",
        type=threads,
        default=1,
        metavar="N",
        help="torch intra-op threads while measuring, in commands that also train (--threads "
        "is the training's); 1 measures one busy core, steady on a shared CPU; "
        "0 = torch's default (all cores)",
    ),
    "cpu_power_w": _option(
        "--cpu-power-w",
        type=watts,
        metavar="W",
        help="estimate backend: assumed power in watts; unset: $E2GCSEARCH_CPU_POWER_W if set, else 7.5 W per thread",
    ),
    "no_cache": _option(
        "--no-cache", action="store_true", help="measure afresh; neither read nor write the measurement cache"
    ),
    # study
    "study": _option("--study", default=DEFAULT_STUDY, help="study name (shared by run/front/export/validate)"),
    "storage": _option(
        "--storage",
        default=DEFAULT_STORAGE,
        help="Optuna RDB URL (sqlite:///…, postgresql://…) or journal file (.log/.jsonl)",
    ),
    # search (run)
    "objective": _option("--objective", default="epf,top1", help="comma list of objectives (see below)"),
    "constraint": _option(
        "--constraint",
        action="append",
        default=[],
        metavar="EXPR",
        help="e.g. 'params<=5e6' or 'top1>=40' (repeatable)",
    ),
    "trials": _option(
        "--trials",
        type=positive_int,
        default=DEFAULT_TRIALS,
        help="new points to measure in this invocation (repeats of measured points are not counted)",
    ),
    "timeout": _option("--timeout", type=positive_float, metavar="S", help="stop starting new trials after S seconds"),
    "sampler": _option("--sampler", choices=SAMPLERS, default="tpe", help="Optuna sampler"),
    "seed": _option("--seed", type=seed, default=0, help="sampler seed"),
    "workers": _option(
        "--workers",
        type=positive_int,
        default=1,
        help="processes optimizing the study at once; on a CPU each gets its share of the cores "
        "(--threads auto = cores / N), on GPUs each its own GPU (see --devices)",
    ),
    "devices": _option(
        "--devices",
        type=index_list,
        metavar="I,I,…",
        help="GPUs of the workers: worker i runs on GPU I_i (e.g. --devices 0,1 --workers 2); unset "
        "with --device cuda: every GPU torch sees",
    ),
    "share_devices": _option(
        "--share-devices",
        action="store_true",
        help="allow more workers than GPUs; workers on one GPU take turns measuring",
    ),
    "no_device_lock": _option(
        "--no-device-lock",
        action="store_true",
        help="measure without waiting for other e2gcsearch processes of the host to pause their "
        "training on the device (their work then counts in the measured energy)",
    ),
    "no_baselines": _option(
        "--no-baselines",
        action="store_true",
        help="do not queue each network's paper baseline (e.g. MobileNet-V1 G=1) first",
    ),
    "reference_batch": _option(
        "--reference-batch",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help="batch size of plain 'epf' and 'latency'",
    ),
    "warm_start": _option(
        "--warm-start",
        choices=WARM_STARTS,
        default="auto",
        help="model: queue the optimum-group-size model's predicted best points first (the model "
        "is calibrated once per device by profiling 9 networks, no training, and cached; "
        "--warm-start-profile gives one); auto: model, or none with a note when the model "
        "cannot be calibrated for this space; none: the sampler alone. In the replay "
        "benchmark the warm start lifts the front found within a quarter of the grid from "
        "0.89 to 0.98 of the exhaustive hypervolume",
    ),
    "warm_start_profile": _option(
        "--warm-start-profile",
        metavar="FILE.json",
        help="device profile from 'e2gcsearch model fit' for the warm start (auto or model), "
        "instead of this device's cached calibration",
    ),
    "early_stop": _option(
        "--early-stop",
        choices=EARLY_STOPS,
        default=DEFAULT_EARLY_STOP,
        help="stop proxy trainings early (PRUNED, with the reason): 'asha' at epochs E/2, E/4, ... keeps the "
        "better half, by Pareto rank on the other objectives and top-1 so far, of the trials that reached "
        "it; 'rule' stops a trial that even its top-1 + the largest gain seen + noise leaves below a "
        "completed trial of lower or equal EPF; 'off' (or --no-early-stop) trains every trial fully",
    ),
    "no_early_stop": _option("--no-early-stop", action="store_true", help="the older spelling of --early-stop off"),
    "confirm": _option(
        "--confirm",
        type=positive_float,
        metavar="S",
        help="after the trials, spend up to S seconds measuring contested front points further "
        "(as 'e2gcsearch confirm --budget-s S')",
    ),
    # search space (run); --arch and --groups take lists here
    "space": _option(
        "--space",
        choices=("network", "stagewise"),
        default="network",
        help="one G or g per network, or one E2GC group size per network stage",
    ),
    "search_arch": _option("--arch", type=name_list, default=(DEFAULT_ARCH,), help="comma list of architectures"),
    "modules": _option(
        "--modules",
        type=name_list,
        help=f"some of E2GC, FgGC, FLGC (unset: {E2GC},{FGGC}; FLGC learns its groups in the proxy "
        "training and takes the --groups values, e.g. --modules FgGC,FLGC --groups 4,8)",
    ),
    "group_sizes": _option(
        "--group-sizes", type=int_list, default=SearchSpace.group_sizes, metavar="G,…", help="E2GC group sizes"
    ),
    "search_groups": _option(
        "--groups", type=int_list, default=SearchSpace.groups, metavar="g,…", help="FgGC (and FLGC) numbers of groups"
    ),
    "widths": _option("--widths", type=float_list, default=DEFAULT_WIDTHS, metavar="W,…", help="width multipliers"),
    # output
    "format": _option(
        "--format",
        choices=FORMATS,
        default="table",
        help="output format: human table, CSV/JSON with raw values, or Markdown",
    ),
}
