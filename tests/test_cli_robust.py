"""Bad input of every kind ends in one line and exit 2: study specs, numbers, the --debug switch."""

from __future__ import annotations

import os

import pytest

from e2gcsearch.cli import build_parser, main
from e2gcsearch.cli.options import complete
from e2gcsearch.cli.run import RUN_DEFAULTS, RUN_GROUPS, search_config
from e2gcsearch.cli.spec import load_spec


def _config_from(tmp_path, text: str):
    spec = tmp_path / "spec.toml"
    spec.write_text(text + "\n")
    args = build_parser().parse_args(["run", "--config", str(spec)])
    return search_config(complete(args, RUN_GROUPS, RUN_DEFAULTS, load_spec(args.config, RUN_GROUPS)))


@pytest.mark.parametrize(
    "text, baselines",
    [
        ("baselines = false", False),
        ("baselines = true", True),
        ("no_baselines = true", False),
        ("no-baselines = false", True),
        ("[search]\nbaselines = false", False),
    ],
)
def test_a_switch_reads_the_same_both_ways_round(tmp_path, text, baselines):
    assert _config_from(tmp_path, text).baselines is baselines


def test_a_folder_or_a_binary_file_as_spec_is_one_line(tmp_path, capsys):
    assert main(["run", "--config", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and err.count("\n") == 1, err
    binary = tmp_path / "model.pt"
    binary.write_bytes(bytes(range(256)) * 4)
    assert main(["run", "--config", str(binary)]) == 2
    err = capsys.readouterr().err
    assert "is not a text file" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("value", ["-5", "0", "inf", "soon"])
def test_a_timeout_must_be_positive(capsys, value):
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["run", "--timeout", value])
    assert caught.value.code == 2
    assert "expected a positive number" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signal_name", "debug", "status", "reason"),
    [
        ("SIGINT", False, 130, "interrupted by the user"),
        ("SIGINT", True, 130, "interrupted by the user"),
        ("SIGTERM", False, 143, "terminated (SIGTERM)"),
    ],
)
def test_ctrl_c_and_sigterm_fail_the_trial_and_queue_its_point_again(tmp_path, signal_name, debug, status, reason):
    import signal
    import subprocess
    import sys
    import time

    import optuna

    storage = f"sqlite:///{tmp_path}/s.db"
    argv = (["--debug"] if debug else []) + [
        "run",
        "--storage",
        storage,
        "--data",
        "digits",
        "--train-per-class",
        "12",
        "--val-per-class",
        "6",
        "--resolution",
        "32",
        "--epochs",
        "200",
        "--batch-sizes",
        "2",
        "--repeats",
        "1",
        "--backend",
        "estimate",
        "--widths",
        "0.25",
        "--threads",
        "1",
        "--trials",
        "2",
    ]
    # A shell starts background jobs with SIGINT ignored, and Python keeps an ignored SIGINT ignored:
    # give the child the default disposition, as a terminal would.
    process = subprocess.Popen(
        [sys.executable, "-m", "e2gcsearch", *argv],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "E2GCSEARCH_CACHE_DIR": str(tmp_path / "cache")},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines = []
    for line in process.stderr:  # the signal once the search runs, however long the start took
        lines.append(line)
        if "new point(s) to run" in line:
            break
    time.sleep(3)  # inside the first trial's 200-epoch training
    process.send_signal(getattr(signal, signal_name))
    rest = process.communicate(timeout=300)[1]
    stderr = "".join(lines) + rest
    assert process.returncode == status, stderr
    assert ("Traceback" in stderr) is debug
    assert "KeyboardInterrupt" not in stderr or debug
    how = "terminated (SIGTERM)" if signal_name == "SIGTERM" else "interrupted"
    assert (
        stderr.strip()
        .splitlines()[-1]
        .startswith(f"{how}: 1 running trial(s) marked failed and their point(s) queued again")
    ), stderr
    trials = optuna.load_study(study_name="e2gcsearch", storage=storage).get_trials(deepcopy=False)
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    waiting = [t for t in trials if t.state == optuna.trial.TrialState.WAITING]
    assert len(failed) == 1 and failed[0].user_attrs["fail_reason"] == reason
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    assert any(t.system_attrs.get("retry_of") == failed[0].number for t in waiting)


def test_debug_is_a_top_level_flag_described_in_help(capsys, monkeypatch):
    monkeypatch.delenv("E2GCSEARCH_DEBUG", raising=False)
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--debug" in capsys.readouterr().out
    args = build_parser().parse_args(["--debug", "studies"])
    assert args.debug is True


def test_an_unexpected_error_is_one_line_and_a_traceback_with_debug(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("E2GCSEARCH_DEBUG", raising=False)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database" * 100)
    assert main(["studies", "--storage", f"sqlite:///{bad}"]) in (1, 2)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
