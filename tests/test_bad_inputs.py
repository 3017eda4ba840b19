"""Bad input, as a careless or hostile user gives it: one line that says what is wrong, exit status 2,
and nothing written. One row per case, so the next defect of this kind is one more row."""

from __future__ import annotations

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
]


@pytest.mark.parametrize(("argv", "fragment"), CASES, ids=[" ".join(a)[:40] for a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--storage", f"sqlite:///{tmp_path / 'studies' / 's.db'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    written = [os.path.relpath(os.path.join(folder, name), tmp_path)
               for folder, _, names in os.walk(tmp_path) for name in names]
    assert written == [], written
