"""From parsed flags to the library's configs: the ArchConfig, DataConfig, TrainConfig layout and
ProfileConfig that a command's options (:mod:`.options`) describe.

Example:
    >>> from e2gcsearch.cli import build_parser
    >>> args = build_parser().parse_args(["cost", "mobilenet_v1", "-G", "4"])
    >>> arch_config_from(args).label()
    'mobilenet_v1 E2GC G=4 w=1.00'
"""

from __future__ import annotations

import argparse
from typing import Any

from ..config import FLGC, ArchConfig
from ..data import DataConfig
from ..errors import ConfigError
from ..models import get_entry
from ..paths import PROFILES, TENSORS, cache_folder
from ..profiling import ProfileConfig
from ..train import proxy_data_config


def class_count(classes: int | tuple[str, ...] | None) -> int | None:
    """``--classes`` where it sizes a network without loading data: a number, not class names."""
    if isinstance(classes, tuple):
        raise ConfigError(
            f"--classes takes a number here (the network's outputs), got names {','.join(classes)}; "
            "class names pick the classes of a dataset in train, run and validate"
        )
    return classes


def arch_config_from(args: argparse.Namespace) -> ArchConfig:
    """The ArchConfig the network flags describe (raises ConfigError with a fix)."""
    return ArchConfig(
        args.arch, width=args.width, num_classes=class_count(args.classes), **grouping_fields(args), **flgc_fields(args)
    )


def grouping_fields(args: argparse.Namespace) -> dict[str, int | None]:
    """``group_size`` and ``groups`` from ``--group-size`` / ``--groups``: exactly one of them, even for
    the stock network (which is one grouping like any other, e.g. ``-G 8`` for regnet_y_400mf)."""
    if (args.group_size is None) == (args.groups is None):
        given = "both --group-size and --groups" if args.group_size is not None else "no grouping"
        baseline = get_entry(args.arch).baseline
        stock = (
            f"; its stock network is --group-size {baseline.group_size}"
            if baseline.group_size is not None
            else f"; its stock network is --groups {baseline.groups}"
            if baseline.groups is not None
            else ""
        )
        raise ConfigError(
            f"{given} for {args.arch}: give one of --group-size G (E2GC, g = m/G per layer) or --groups g (FgGC){stock}"
        )
    return {"group_size": args.group_size, "groups": args.groups}


def flgc_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The ArchConfig fields ``--flgc`` / ``--flgc-uneven`` ask for (none without them)."""
    if not (args.flgc or args.flgc_uneven):
        return {}
    return {"module": FLGC, "uneven": bool(args.flgc_uneven)}


def cached_under(home: str | None, kind: str) -> str | None:
    """The folder of one kind of cache (``paths.TENSORS``, ``paths.PROFILES``) under ``--cache-dir``;
    ``None`` (the library's default) when the flag is unset."""
    return None if home is None else str(cache_folder(kind, home))


def data_config(args: argparse.Namespace, proxy: bool = False) -> DataConfig:
    """The DataConfig the data flags describe; with ``proxy``, unset subset flags take the dataset's proxy budget."""
    config = DataConfig(
        name=args.data,
        root=args.data_root,
        classes=args.classes,
        train_per_class=args.train_per_class,
        val_per_class=args.val_per_class,
        resolution=args.resolution or 64,
        seed=args.data_seed,
        cache_dir=cached_under(args.cache_dir, TENSORS),
        download=args.download,
    )
    return proxy_data_config(config, args.resolution) if proxy else config


def implementation(args: argparse.Namespace) -> str:
    """``--impl`` (unset: nchw), with the older ``--channels-last`` read as ``--impl channels_last``."""
    if not getattr(args, "channels_last", False):
        return args.impl or "nchw"
    chosen = args.impl if "impl" in getattr(args, "chosen", {"impl"}) else None  # run's default is auto
    if chosen not in (None, "channels_last"):
        raise ConfigError(
            f"--channels-last contradicts --impl {chosen}; drop --channels-last "
            "(it is the older spelling of --impl channels_last)"
        )
    return "channels_last"


def training_layout(args: argparse.Namespace) -> str:
    """The trainer's layout for ``--impl``: nchw, channels_last or auto (compile trains nchw)."""
    impl = implementation(args)
    return "nchw" if impl == "compile" else impl


def profile_config(
    args: argparse.Namespace,
    threads: int | None,
    resolution: int | None = None,
    batch_sizes: tuple[int, ...] | None = None,
) -> ProfileConfig:
    """The ProfileConfig the measurement flags describe; ``threads`` is ``--threads`` or ``--profile-threads``
    (the latter where the command also trains)."""
    return ProfileConfig(
        batch_sizes=tuple(batch_sizes or args.batch_sizes),
        resolution=resolution or args.resolution,
        device=args.device,
        backend=args.backend,
        dtype=args.dtype,
        impl=implementation(args),
        mode=getattr(args, "mode", "train"),
        repeats=args.repeats,
        min_window_s=args.min_window_s,
        warmup=args.warmup,
        cache_dir=cached_under(args.cache_dir, PROFILES),
        use_cache=not args.no_cache,
        power_w=args.cpu_power_w,
        threads=threads,
        device_lock=not args.no_device_lock,
    )
