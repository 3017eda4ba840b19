"""The option vocabulary of every command: one table of options, grouped (the configs they describe are
built in :mod:`.configs`).

Each option is declared once in :data:`.option_table.OPTIONS` (flags, type, default, help); a command registers the
groups it needs with :func:`add_options`, so a flag means the same thing, has the same ``dest`` and
the same help in every command that takes it. A command may change a default (``--repeats`` is 5
for ``profile`` and 3 per search trial), never the meaning. ``dest`` is the first flag with dashes
as underscores, which is also the key of a study spec (``run --config FILE.toml``): the spec's keys
are checked and converted from this same table (:func:`.spec.load_spec`, :func:`complete`).

The vocabulary in short:

  network      ARCH, --group-size/-G, --groups/-g, --width, --resolution, --classes
  data         --data, --data-root, --classes, --train-per-class, --val-per-class, --resolution,
               --data-seed (subset draw and split), --download, --cache-dir (the cache home)
  training     --epochs, --batch-size, --lr, --train-seed (weights, batch order, augmentation),
               --device, --threads, --impl (the layout; + the trainer's own flags in 'train')
  measurement  --batch-sizes, --backend, --device, --impl, --repeats, --min-window-s, --warmup, --dtype,
               --threads (--profile-threads where the command also trains), --cpu-power-w, --no-cache,
               --cache-dir; --mode where nothing is trained ('run' takes the mode from its objectives)
  (--channels-last, the older spelling of --impl channels_last, is still read)
  study        --study, --storage;  search / search space: the flags of 'run'
  output       --format
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from .option_table import OPTIONS, Option

__all__ = ["OPTIONS", "Option", "Group", "entries", "add_option", "add_options", "complete"]


class Group(NamedTuple):
    """Options shown under one heading of ``--help``, with the defaults this group gives them."""

    title: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any] = {}


NETWORK = Group("network", ("arch", "group_size", "groups", "flgc", "flgc_uneven", "width"))
MODEL = Group("network", (*NETWORK.names, "resolution", "classes"), {"resolution": 224, "classes": 1000})
DATA = Group(
    "data",
    (
        "data",
        "data_root",
        "classes",
        "train_per_class",
        "val_per_class",
        "resolution",
        "data_seed",
        "download",
        "cache_dir",
    ),
)
TRAINING = Group(
    "training",
    ("epochs", "batch_size", "lr", "train_seed", "device", "threads", "impl", "channels_last"),
    {"threads": "auto"},
)
TRAINER = Group(
    "training",
    (
        "schedule",
        "warmup_epochs",
        "label_smoothing",
        "augment",
        "no_amp",
        "full",
        "checkpoint_dir",
        "resume",
        "no_progress",
    ),
)
_MEASURING = (
    "batch_sizes",
    "backend",
    "device",
    "impl",
    "repeats",
    "min_window_s",
    "warmup",
    "dtype",
    "channels_last",
    "no_device_lock",
)
MEASUREMENT = Group(
    "energy measurement", (*_MEASURING, "mode", "threads", "cpu_power_w", "no_cache", "cache_dir"), {"threads": 1}
)
MEASUREMENT_WHILE_TRAINING = Group(
    "energy measurement", (*_MEASURING, "profile_threads", "cpu_power_w", "no_cache", "cache_dir")
)
STUDY = Group("study", ("study", "storage"))
SEARCH = Group(
    "search",
    (
        "objective",
        "constraint",
        "trials",
        "timeout",
        "sampler",
        "seed",
        "study",
        "storage",
        "workers",
        "devices",
        "share_devices",
        "no_baselines",
        "reference_batch",
        "warm_start",
        "warm_start_profile",
        "proxy_seeds",
        "early_stop",
        "no_early_stop",
        "rung0_score",
        "confirm",
        "no_noise_probes",
        "no_break_even",
    ),
)
SPACE = Group("search space", ("space", "search_arch", "modules", "group_sizes", "search_groups", "widths"))
OUTPUT = Group("output", ("format",))


def entries(groups: tuple[Group, ...], defaults: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(group title, option name, default) of every option of ``groups``, each once, under the first group
    naming it; the default is ``defaults``' (the command's), else the group's, else the option's."""
    seen: set[str] = set()
    for group in groups:
        for name in group.names:
            if name not in seen:
                seen.add(name)
                yield group.title, name, defaults.get(name, group.defaults.get(name, OPTIONS[name].default))


def _shown(value: Any) -> Any:
    """A default as the user would type it: (1, 4, 16) -> '1,4,16'."""
    return ",".join(str(v) for v in value) if isinstance(value, tuple) else value


def add_option(container: Any, name: str, default: Any = ..., given_only: bool = False) -> None:
    """Add option ``name`` to a parser or an argument group, with ``default`` (unset: the option's).

    ``given_only``: the namespace holds the option only when it was given (:func:`complete` fills
    in the rest), and the help states the default itself.
    """
    option = OPTIONS[name]
    default = option.default if default is ... else default
    if not option.flags[0].startswith("-"):  # a positional
        container.add_argument(option.dest, metavar=option.metavar, help=option.help)
        return
    settings: dict[str, Any] = {"dest": option.dest, "help": option.help}
    if option.action:
        settings["action"] = option.action
    else:
        settings.update(type=option.type, choices=option.choices, metavar=option.metavar)
    if given_only:
        settings["default"] = argparse.SUPPRESS
        if default is not None and default is not False and default != []:
            settings["help"] += f" (default: {_shown(default)})"
    elif option.action != "store_true":  # argparse reads a string default through ``type``
        settings["default"] = _shown(default) if option.type and isinstance(default, tuple) else default
    container.add_argument(*option.flags, **settings)


def add_options(
    parser: argparse.ArgumentParser, *groups: Group, defaults: Mapping[str, Any] | None = None, given_only: bool = False
) -> dict[str, Any]:
    """Add the options of ``groups`` under their headings (an option named by two groups is added once);
    ``defaults`` overrides a default by option name. Returns the argument groups by title, so that a
    command can add its own flags under the same heading."""
    containers: dict[str, Any] = {}
    for title, name, default in entries(groups, defaults or {}):
        if title not in containers:
            containers[title] = parser.add_argument_group(title)
        add_option(containers[title], name, default, given_only)
    return containers


def complete(
    args: argparse.Namespace,
    groups: tuple[Group, ...],
    defaults: Mapping[str, Any] | None = None,
    spec: Mapping[str, Any] | None = None,
) -> argparse.Namespace:
    """``args`` parsed with ``given_only``, completed: a flag given wins over the spec, the spec over the default.
    ``chosen`` names the options the flags or the spec set (the rest hold defaults)."""
    given, spec = vars(args), spec or {}
    values = {}
    for _, name, default in entries(groups, defaults or {}):
        dest = OPTIONS[name].dest
        if dest not in given:
            values[dest] = spec.get(dest, list(default) if isinstance(default, list) else default)
    return argparse.Namespace(**values, **given, chosen=frozenset(given) | frozenset(spec))
