"""Bad input of every kind ends in one line and exit 2: study specs, numbers, the --debug switch."""

from __future__ import annotations

import pytest

from e2gcsearch.cli import build_parser, main
from e2gcsearch.cli.options import complete, load_spec
from e2gcsearch.cli.run import RUN_DEFAULTS, RUN_GROUPS, search_config


def _config_from(tmp_path, text: str):
    spec = tmp_path / "spec.toml"
    spec.write_text(text + "\n")
    args = build_parser().parse_args(["run", "--config", str(spec)])
    return search_config(complete(args, RUN_GROUPS, RUN_DEFAULTS, load_spec(args.config, RUN_GROUPS)))


@pytest.mark.parametrize("text, baselines", [
    ("baselines = false", False), ("baselines = true", True),
    ("no_baselines = true", False), ("no-baselines = false", True),
    ("[search]\nbaselines = false", False),
])
def test_a_switch_reads_the_same_both_ways_round(tmp_path, text, baselines):
    assert _config_from(tmp_path, text).baselines is baselines


@pytest.mark.parametrize("text, fragment", [
    ('baselines = "false"', "baselines takes true or false (unquoted), got 'false'"),
    ('no_baselines = "false"', "no_baselines takes true or false (unquoted), got 'false'"),
    ("baselines = 0", "baselines takes true or false"),
    ("baselines = true\nno_baselines = true", "contradicts another key"),
])
def test_a_switch_that_is_not_a_boolean_is_refused(tmp_path, capsys, text, fragment):
    spec = tmp_path / "spec.toml"
    spec.write_text(text + "\n")
    assert main(["run", "--config", str(spec)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1, err


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
