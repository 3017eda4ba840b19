"""Bad input, as a careless or hostile user gives it: one line that says what is wrong, exit status 2,
and nothing written. One row per case, so the next defect of this kind is one more row."""

from __future__ import annotations

import contextlib
import os

import pytest

from e2gcsearch.cli import main

LONG = "x" * 5000
CASES = [  # (argv, fragment of the one-line message)
    (["run", "--study", "../../escape", "--trials", "1"], "study name '../../escape' may hold only"),
    (["run", "--study", "/abs/path", "--trials", "1"], "study name '/abs/path' may hold only"),
    (["run", "--study", LONG, "--trials", "1"], "study name of 5000 characters is too long"),
    (["run", "--study", "", "--trials", "1"], "the study name is empty"),
    (["run", "--study", ".hidden", "--trials", "1"], "must not start with '.'"),
    (["validate", "--study", "../up"], "study name '../up' may hold only"),
    (["run", "--objective", "epf,speed", "--trials", "1"], "speed"),
    (["run", "--seed", "-1", "--trials", "1"], "expected a seed from 0 to 4294967295, got '-1'"),
    (["run", "--train-seed", "2**40", "--trials", "1"], "expected a seed from 0 to 4294967295"),
    (["run", "--trials", "1", "--storage", "sqlite:///"], "keeps nothing after the command ends"),
    (["run", "--trials", "1", "--storage", "sqlite:///:memory:"], "keeps nothing after the command ends"),
    (["run", "--trials", "1", "--storage", "sqlite://"], "keeps nothing after the command ends"),
    (["export", "--trial", "0", "--out", "keep.py"], "keep.py exists; pass --force to overwrite it"),
    (["run", "--cpu-power-w", "1e308", "--trials", "1"], "must be a power in watts above 0 and at most 100,000"),
    (["profile", "mobilenet_v1", "-G", "1", "--cpu-power-w", "-3"], "must be a power in watts above 0"),
    (["train", "mobilenet_v1", "-G", "1", "--data", "digits", "--full", "--checkpoint-dir", "keep.py"],
     "'keep.py' is a file, not a folder"),
    (["profile", "mobilenet_v1", "-G", "1", "--cache-dir", "keep.py"], "'keep.py' is a file, not a folder"),
    (["front", "--storage", "app.log"], "app.log is not an Optuna journal (its first line is no journal record)"),
    (["run", "--storage", "app.log", "--trials", "1"], "app.log is not an Optuna journal"),
]
# Files a case finds in its folder; they must stay as they were.
EXISTING = {"keep.py": "# the user's own file\n", "app.log": "12:00 another program's log line\n"}


@pytest.mark.parametrize(("argv", "fragment"), CASES, ids=[" ".join(a)[:40] for a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name, text in EXISTING.items():
        (tmp_path / name).write_text(text)
    storage = [] if "--storage" in argv or argv[0] in ("train", "profile") else [
        "--storage", f"sqlite:///{tmp_path / 'studies' / 's.db'}"]
    parsing = any(word in " ".join(argv) for word in ("seed", "power", "-dir"))  # refused by argparse itself
    with pytest.raises(SystemExit) if parsing else contextlib.nullcontext() as stop:
        assert main([*argv, *storage]) == 2
    assert stop is None or stop.value.code == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("usage:")
           and not line.startswith(" ")]
    assert len(err) == 1 and fragment in err[0], err
    written = [os.path.relpath(os.path.join(folder, name), tmp_path)
               for folder, _, names in os.walk(tmp_path) for name in names]
    assert sorted(written) == sorted(EXISTING), written
    assert all((tmp_path / name).read_text() == text for name, text in EXISTING.items())
