"""The options of ``run``'s search and its space, declared as :mod:`.option_table` declares the rest
(which merges them into the one table every command reads)."""

from __future__ import annotations

from ..config import E2GC, FGGC
from ..models import DEFAULT_ARCH
from ..search.objectives import DEFAULT_BATCH_SIZE
from ..search.search_config import DEFAULT_TRIALS, WARM_STARTS
from ..search.space import DEFAULT_WIDTHS, SearchSpace
from ..search.study import SAMPLERS
from ..search.trial import DEFAULT_EARLY_STOP, DEFAULT_RUNG0_SCORE, EARLY_STOPS
from ..train.scores import SCORES
from ._common import float_list, index_list, int_list, name_list, positive_float, positive_int, seed
from .option_base import Option, option

SEARCH_OPTIONS: dict[str, Option] = {
    # search (run)
    "objective": option("--objective", default="epf,top1", help="comma list of objectives (see below)"),
    "constraint": option(
        "--constraint",
        action="append",
        default=[],
        metavar="EXPR",
        help="e.g. 'params<=5e6' or 'top1>=40' (repeatable)",
    ),
    "trials": option(
        "--trials",
        type=positive_int,
        default=DEFAULT_TRIALS,
        help="new points to measure in this invocation (repeats of measured points are not counted)",
    ),
    "timeout": option("--timeout", type=positive_float, metavar="S", help="stop starting new trials after S seconds"),
    "sampler": option("--sampler", choices=SAMPLERS, default="tpe", help="Optuna sampler"),
    "seed": option("--seed", type=seed, default=0, help="sampler seed"),
    "workers": option(
        "--workers",
        type=positive_int,
        default=1,
        help="processes optimizing the study at once; on a CPU each gets its share of the cores "
        "(--threads auto = cores / N), on GPUs each its own GPU (see --devices)",
    ),
    "devices": option(
        "--devices",
        type=index_list,
        metavar="I,I,…",
        help="GPUs of the workers: worker i runs on GPU I_i (e.g. --devices 0,1 --workers 2); unset "
        "with --device cuda: every GPU torch sees",
    ),
    "share_devices": option(
        "--share-devices",
        action="store_true",
        help="allow more workers than GPUs; workers on one GPU take turns measuring",
    ),
    "no_device_lock": option(
        "--no-device-lock",
        action="store_true",
        help="measure without waiting for other e2gcsearch processes of the host to pause their "
        "training on the device (their work then counts in the measured energy)",
    ),
    "no_baselines": option(
        "--no-baselines",
        action="store_true",
        help="do not queue each network's paper baseline (e.g. MobileNet-V1 G=1) first",
    ),
    "reference_batch": option(
        "--reference-batch",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help="batch size of plain 'epf' and 'latency'",
    ),
    "warm_start": option(
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
    "warm_start_profile": option(
        "--warm-start-profile",
        metavar="FILE.json",
        help="device profile from 'e2gcsearch model fit' for the warm start (auto or model), "
        "instead of this device's cached calibration",
    ),
    "early_stop": option(
        "--early-stop",
        choices=EARLY_STOPS,
        default=DEFAULT_EARLY_STOP,
        help="stop proxy trainings early (PRUNED, with the reason): 'asha' at epochs E/2, E/4, ... keeps the "
        "better half, by Pareto rank on the other objectives and top-1 so far, of the trials that reached "
        "it; 'rule' stops a trial that even its top-1 + the largest gain seen + noise leaves below a "
        "completed trial of lower or equal EPF; 'off' (or --no-early-stop) trains every trial fully",
    ),
    "no_early_stop": option("--no-early-stop", action="store_true", help="the older spelling of --early-stop off"),
    "rung0_score": option(
        "--rung0-score",
        choices=(*SCORES, "none"),
        default=DEFAULT_RUNG0_SCORE or "none",
        help="with --early-stop asha, a rung 0 before any training: each trial's training-free score at "
        "initialisation (a few seconds on one minibatch) ranks it, by Pareto rank with the other objectives, "
        "among the trials scored so far, and a trial outside the better half is PRUNED without training "
        "(grad_norm is the score the food101-10 measurement favours); none: no rung 0",
    ),
    "confirm": option(
        "--confirm",
        type=positive_float,
        metavar="S",
        help="after the trials, spend up to S seconds measuring contested front points further "
        "(as 'e2gcsearch confirm --budget-s S')",
    ),
    "no_noise_probes": option(
        "--no-noise-probes",
        action="store_true",
        help="after the trials, do not train a few completed points again with another seed and measure a "
        "few points' EPF again in a sitting of their own (the study's seed noise and EPF scatter between "
        "sittings, which the front's intervals then include; at most 15 %% of the search's time)",
    ),
    "no_break_even": option(
        "--no-break-even",
        action="store_true",
        help="after the trials, do not measure the inference EPF (batch 1, forward only) of the front and its "
        "paper baselines that the front's break-even column needs when no epf_infer objective measured it",
    ),
    # search space (run); --arch and --groups take lists here
    "space": option(
        "--space",
        choices=("network", "stagewise"),
        default="network",
        help="one G or g per network, or one E2GC group size per network stage",
    ),
    "search_arch": option("--arch", type=name_list, default=(DEFAULT_ARCH,), help="comma list of architectures"),
    "modules": option(
        "--modules",
        type=name_list,
        help=f"some of E2GC, FgGC, FLGC (unset: {E2GC},{FGGC}; FLGC learns its groups in the proxy "
        "training and takes the --groups values, e.g. --modules FgGC,FLGC --groups 4,8)",
    ),
    "group_sizes": option(
        "--group-sizes", type=int_list, default=SearchSpace.group_sizes, metavar="G,…", help="E2GC group sizes"
    ),
    "search_groups": option(
        "--groups", type=int_list, default=SearchSpace.groups, metavar="g,…", help="FgGC (and FLGC) numbers of groups"
    ),
    "widths": option("--widths", type=float_list, default=DEFAULT_WIDTHS, metavar="W,…", help="width multipliers"),
}

__all__ = ["SEARCH_OPTIONS"]
