"""One option vocabulary: a flag means the same in every command, and a study spec reads like the flags."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from e2gcsearch.cli import build_parser, main
from e2gcsearch.cli.configs import data_config, profile_config
from e2gcsearch.cli.options import complete
from e2gcsearch.cli.run import RUN_DEFAULTS, RUN_GROUPS, search_config
from e2gcsearch.cli.spec import load_spec
from e2gcsearch.cli.validate import settings as validate_settings

REPO = Path(__file__).resolve().parents[1]
# Flags that two commands use for different ideas, on purpose: run's --arch/--groups take the lists of
# its search space; validate --trials names trials; predict --batch-size picks a fitted B.
DIFFERENT_IDEAS = {"--arch", "--groups", "--trials", "--batch-size", "--out", "--plot", "--profile"}


def commands(parser: argparse.ArgumentParser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + name, sub
                yield from commands(sub, f"{prefix}{name} ")


def test_a_flag_has_one_dest_and_one_help_in_every_command():
    seen: dict[str, set[tuple[str, str]]] = {}
    for _, parser in commands(build_parser()):
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag not in DIFFERENT_IDEAS | {"--help"}:
                    help_text = (action.help or "").split(" (default: ")[0]  # run states its defaults in the help
                    seen.setdefault(flag, set()).add((action.dest, help_text))
    assert {flag: meanings for flag, meanings in seen.items() if len(meanings) > 1} == {}
    assert "--seed" in seen and "--data-seed" in seen and "--train-seed" in seen


@pytest.mark.parametrize("command", ["train", "run", "validate"])
def test_every_command_that_trains_seeds_data_and_training_apart(command):
    argv = [command] + (["mobilenet_v1", "-G", "8"] if command == "train" else [])
    args = build_parser().parse_args(argv + ["--data-seed", "3", "--train-seed", "5"])
    assert (args.data_seed, args.train_seed) == (3, 5)


def test_cache_dir_is_the_cache_home_everywhere(tmp_path):
    parser = build_parser()
    train = parser.parse_args(["train", "mobilenet_v1", "-G", "8", "--cache-dir", str(tmp_path)])
    assert data_config(train).cache_dir == str(tmp_path / "tensors")
    profile = parser.parse_args(["profile", "mobilenet_v1", "-G", "8", "--cache-dir", str(tmp_path)])
    assert profile.threads == "auto"  # resolved by timing the measured step before profile_config
    assert profile_config(profile, threads=1).cache_dir == str(tmp_path / "profiles")
    run = parser.parse_args(["run", "--cache-dir", str(tmp_path), "--data", "digits"])
    config = search_config(complete(run, RUN_GROUPS, RUN_DEFAULTS))
    assert (config.data.cache_dir, config.settings.profile.cache_dir) == (
        str(tmp_path / "tensors"),
        str(tmp_path / "profiles"),
    )


def test_run_and_validate_take_the_measurement_flags():
    flags = [
        "--dtype",
        "bfloat16",
        "--cpu-power-w",
        "12",
        "--min-window-s",
        "0.1",
        "--warmup",
        "1",
        "--channels-last",
        "--profile-threads",
        "2",
        "--threads",
        "3",
        "--no-cache",
    ]
    run = search_config(
        complete(build_parser().parse_args(["run", "--data", "digits", *flags]), RUN_GROUPS, RUN_DEFAULTS)
    )
    validate = validate_settings(build_parser().parse_args(["validate", *flags]))
    for profile in (run.settings.profile, validate.profile):
        assert (
            profile.dtype,
            profile.power_w,
            profile.min_window_s,
            profile.warmup,
            profile.impl,
            profile.threads,
            profile.use_cache,
        ) == ("bfloat16", 12.0, 0.1, 1, "channels_last", 2, False)
    assert (run.settings.train.threads, run.settings.train.layout) == (3, "channels_last")  # the older spelling
    assert validate.train["threads"] == 3 and validate.train["layout"] == "channels_last"


def test_run_defaults_keep_profiling_on_one_thread_and_take_the_proxy_budget():
    config = search_config(complete(build_parser().parse_args(["run", "--data", "digits"]), RUN_GROUPS, RUN_DEFAULTS))
    assert config.settings.profile.threads == 1 and config.settings.train.threads == "auto"
    assert (config.data.resolution, config.data.train_cap, config.settings.train.epochs) == (48, 80, 4)
    assert config.settings.profile.repeats == 3 and config.trials == 16 and config.baselines
    photos = search_config(complete(build_parser().parse_args(["run", "--data", "food101"]), RUN_GROUPS, RUN_DEFAULTS))
    # the proxy measured best per second on food101-10: 4 epochs, at most 100 images per class, 64 px
    assert (
        photos.data.resolution,
        photos.data.train_cap,
        photos.data.train_per_class,
        photos.settings.train.epochs,
    ) == (64, 100, None, 4)


def test_a_flag_beats_the_spec_and_the_spec_beats_the_default(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[search]\ntrials = 40\nsampler = "random"\nno_baselines = true\n'
        '[data]\ndata = "digits"\nresolution = 32\n[profiling]\nbatch_sizes = [2, 4]\n'
    )
    args = build_parser().parse_args(["run", "--config", str(spec), "--trials", "16"])
    config = search_config(complete(args, RUN_GROUPS, RUN_DEFAULTS, load_spec(args.config, RUN_GROUPS)))
    assert config.trials == 16  # given on the command line, though it equals the default
    assert (config.sampler, config.baselines, config.data.resolution) == ("random", False, 32)
    assert config.settings.profile.batch_sizes == (2, 4) and config.seed == 0


def test_the_versioned_spec_loads():
    values = load_spec(REPO / "studies" / "food101.toml", RUN_GROUPS)
    assert values["widths"] == (0.25, 0.5, 0.75, 1.0) and values["classes"] == 10 and values["data_seed"] == 0


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("bogus = 1", "unknown key 'bogus'; valid keys: arch, backend,"),
        ("trials = 'many'", "trials: expected a positive integer"),
        ("sampler = 'annealing'", "sampler must be one of tpe,"),
        ("no_cache = 'yes'", "no_cache takes true or false"),
        ("trials = [", "is not valid TOML"),
        ('baselines = "false"', "baselines takes true or false (unquoted), got 'false'"),
        ('no_baselines = "false"', "no_baselines takes true or false (unquoted), got 'false'"),
        ("baselines = 0", "baselines takes true or false"),
        ("baselines = true\nno_baselines = true", "contradicts another key"),
    ],
)
def test_a_bad_spec_is_one_line_and_exit_2(tmp_path, capsys, text, fragment):
    spec = tmp_path / "spec.toml"
    spec.write_text(text + "\n")
    assert main(["run", "--config", str(spec)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1, err


def test_class_names_where_no_data_is_loaded_are_refused(capsys):
    assert main(["cost", "mobilenet_v1", "-G", "8", "--classes", "apple_pie,baklava"]) == 2
    assert "--classes takes a number here" in capsys.readouterr().err


def test_run_end_to_end_with_a_spec_prints_the_front(tmp_path, capsys):
    spec = tmp_path / "tiny.toml"
    spec.write_text(
        '[search]\nsampler = "random"\nno_baselines = true\n[space]\nmodules = ["E2GC"]\n'
        'group_sizes = [8]\nwidths = [0.25]\n[data]\ndata = "digits"\nclasses = 3\n'
        "train_per_class = 8\nval_per_class = 4\nresolution = 32\n[training]\nepochs = 1\n"
        "[profiling]\nbatch_sizes = [2]\nrepeats = 1\nmin_window_s = 0.01\nwarmup = 1\n"
        'backend = "estimate"\n'
    )
    argv = [
        "run",
        "--config",
        str(spec),
        "--trials",
        "1",
        "--storage",
        f"sqlite:///{tmp_path}/s.db",
        "--threads",
        "1",
        "--format",
        "csv",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("trial,") and "mobilenet_v1" in out


def test_help_never_shows_an_unset_default_as_none():
    """'validate --help' showed '(default: 30)' beside a text that said otherwise, and unset options
    showed '(default: None)'; an unset option's help says what happens instead."""
    import subprocess
    import sys

    for command in ("validate", "run", "train"):
        done = subprocess.run(
            [sys.executable, "-m", "e2gcsearch", command, "--help"], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0
        assert "(default: None)" not in done.stdout and "(default: False)" not in done.stdout, command
    assert "in validate: 12 (the full recipe)" in " ".join(
        subprocess.run(
            [sys.executable, "-m", "e2gcsearch", "validate", "--help"], capture_output=True, text=True, timeout=120
        ).stdout.split()
    )
