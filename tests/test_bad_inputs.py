"""Bad input, as a careless or hostile user gives it: one line that says what is wrong, exit status 2,
and nothing written. One row per case, so the next defect of this kind is one more row."""

from __future__ import annotations

import os
from pathlib import Path

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
    (
        ["train", "mobilenet_v1", "-G", "1", "--data", "digits", "--full", "--checkpoint-dir", "keep.py"],
        "'keep.py' is a file, not a folder",
    ),
    (["profile", "mobilenet_v1", "-G", "1", "--cache-dir", "keep.py"], "'keep.py' is a file, not a folder"),
    (["front", "--storage", "app.log"], "app.log is not an Optuna journal (its first line is no journal record)"),
    (["run", "--storage", "app.log", "--trials", "1"], "app.log is not an Optuna journal"),
    (["run", "--resolution", "100000", "--trials", "1"], "resolution must be a whole number of pixels from 8 to 2048"),
    (["profile", "mobilenet_v1", "-G", "1", "--resolution", "99999"], "pixels from 8 to 2048"),
    (
        ["profile", "mobilenet_v1", "-G", "4", "--resolution", "32", "--batch-sizes", "1"],
        "a training step at batch size 1 gives batch norm one value per channel",
    ),
    (["run", "--warm-start-profile", "bad.json", "--trials", "1"], "cannot read the device profile bad.json"),
    (
        ["model", "predict", "mobilenet_v1", "--profile", "binary.json"],
        "binary.json is not a device profile (not a text file)",
    ),
    (
        ["run", "--data", "digits", "--modules", "E2GC", "--group-sizes", "3", "--widths", "1.0", "--trials", "1"],
        "no point of the search space can be built: group size G=3 does not divide",
    ),
    (
        ["run", "--data", "digits", "--space", "stagewise", "--group-sizes", "3", "--widths", "1.0", "--trials", "1"],
        "no point of the search space can be built",
    ),
    (
        ["run", "--data", "digits", "--classes", "1", "--trials", "1"],
        "gives one class (0); a classifier needs two or more",
    ),
    (["run", "--channels-last", "--impl", "nchw", "--trials", "1"], "--channels-last contradicts --impl nchw"),
    (["profile", "mobilenet_v1", "-G", "1", "--channels-last", "--impl", "auto"], "contradicts --impl auto"),
    (
        ["run", "--space", "stagewise", "--modules", "FgGC", "--trials", "1"],
        "--space stagewise searches one E2GC group size per stage",
    ),
]
FOREIGN = ["--storage", "sqlite:///foreign.db", "--study", "foreign"]  # a study another program made
CASES += [
    (["front", *FOREIGN, "--plot", ""], "records no architecture, so the study was not made by 'e2gcsearch run'"),
    (["export", *FOREIGN, "--trial", "0", "--out", "m.py"], "the study was not made by 'e2gcsearch run'"),
    (["confirm", *FOREIGN], "the study was not made by 'e2gcsearch run'"),
    (["validate", *FOREIGN], "the study was not made by 'e2gcsearch run'"),
]


def _foreign_study() -> bytes:
    """The bytes of a SQLite storage holding one study made with Optuna alone (one completed trial)."""
    import tempfile

    import optuna

    with tempfile.TemporaryDirectory() as folder:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name="foreign", storage=f"sqlite:///{folder}/f.db")
        study.add_trial(optuna.trial.create_trial(value=1.0))
        del study
        return Path(folder, "f.db").read_bytes()


# Files a case finds in its folder; they must stay as they were.
EXISTING = {
    "keep.py": b"# the user's own file\n",
    "app.log": b"12:00 another program's log line\n",
    "bad.json": b"{not json",
    "binary.json": b"\x7fELF\xff\xfe\x00\x01",
    "foreign.db": _foreign_study(),
}


@pytest.mark.parametrize(("argv", "fragment"), CASES, ids=[" ".join(a)[:40] for a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name, text in EXISTING.items():
        (tmp_path / name).write_bytes(text)
    storage = (
        []
        if "--storage" in argv or argv[0] in ("train", "profile", "model")
        else ["--storage", f"sqlite:///{tmp_path / 'studies' / 's.db'}"]
    )
    monkeypatch.setenv("E2GCSEARCH_CACHE_DIR", str(tmp_path / "cache"))  # a case may decode the digits: not "written"
    try:
        status = main([*argv, *storage])
    except SystemExit as stop:  # refused by argparse itself
        status = stop.code
    assert status == 2
    err = [
        line
        for line in capsys.readouterr().err.strip().splitlines()
        if not line.startswith("usage:") and not line.startswith(" ")
    ]
    assert len(err) == 1 and fragment in err[0], err
    written = [
        os.path.relpath(os.path.join(folder, name), tmp_path)
        for folder, _, names in os.walk(tmp_path)
        for name in names
        if "cache" not in folder
    ]
    assert sorted(written) == sorted(EXISTING), written
    assert all((tmp_path / name).read_bytes() == text for name, text in EXISTING.items())


def test_confirm_on_a_study_without_a_completed_trial_says_so(tmp_path, capsys):
    import optuna

    from e2gcsearch.store.storage import get_storage

    url = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(study_name="empty", storage=get_storage(url, create=True)).enqueue_trial({"x": 1})
    assert main(["confirm", "--study", "empty", "--storage", url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "e2gcsearch confirm: error: study 'empty' has no completed trial yet, so nothing to confirm; run "
        "'e2gcsearch run --study empty' first"
    ], err
