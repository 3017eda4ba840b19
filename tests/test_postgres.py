"""PostgreSQL for real: a throwaway server (Debian's postgresql package: initdb into a temp folder,
pg_ctl start on a free port, stopped and deleted afterwards), three workers on one study, one of them
killed with SIGKILL mid-trial, then front, export and validate on that storage; the password is
never printed. Skips with the reason where the server binaries or the driver are missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from pgserver import Unavailable, throwaway_postgres
from test_search_run import REQUIRED_ATTRS

from e2gcsearch import ConfigError
from e2gcsearch.cli import main
from e2gcsearch.store import record
from e2gcsearch.store.storage import get_storage

PASSWORD = "Pg-s3cret-77"
USER = "e2gc"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def postgres_url():
    try:
        with throwaway_postgres(USER, PASSWORD) as url:
            yield url
    except Unavailable as exc:
        pytest.skip(str(exc))


TINY_RUN = [
    "--objective",
    "epf@4,top1",
    "--arch",
    "mobilenet_v1",
    "--group-sizes",
    "1,2,4,8,16",
    "--groups",
    "2,4,8,16",
    "--widths",
    "0.25,0.5",
    "--sampler",
    "random",
    "--seed",
    "3",
    "--data",
    "digits",
    "--train-per-class",
    "20",
    "--val-per-class",
    "4",
    "--resolution",
    "32",
    "--epochs",
    "1",
    "--batch-size",
    "16",
    "--batch-sizes",
    "2,4",
    "--repeats",
    "2",
    "--min-window-s",
    "0.02",
    "--backend",
    "estimate",
    "--device",
    "cpu",
    "--threads",
    "1",
]


def _worker_mid_trial(url: str, study_name: str, parent: int) -> tuple[int, int] | None:
    """(pid, trial number) of a worker that is training a trial (its EPF is measured, and it is still
    running half a second later), once two trials are complete; else ``None``."""
    try:
        study = optuna.load_study(study_name=study_name, storage=get_storage(url))
    except KeyError:  # not created yet
        return None
    trials = study.get_trials(deepcopy=False)
    if sum(t.state == TrialState.COMPLETE for t in trials) < 2:
        return None
    for trial in trials:
        pid = (trial.user_attrs.get(record.WORKER) or {}).get("pid")
        if _measuring(trial) and pid not in (None, parent):
            time.sleep(0.5)  # a repeat copies its twin's record and ends within milliseconds: not a victim
            if _measuring(study.get_trials(deepcopy=False)[trial.number]):
                return pid, trial.number
    return None


def _measuring(trial: optuna.trial.FrozenTrial) -> bool:
    """Running, with its EPF measured, and no repeat of another trial."""
    attrs = trial.user_attrs
    return trial.state == TrialState.RUNNING and record.EPF in attrs and record.DUPLICATE_OF not in attrs


@pytest.mark.slow
def test_three_workers_one_killed_lose_and_duplicate_nothing(postgres_url, tmp_path, monkeypatch, capsys):
    environ = dict(os.environ, E2GCSEARCH_HEARTBEAT_S="1", PYTHONPATH=str(REPO))
    command = [
        sys.executable,
        "-m",
        "e2gcsearch",
        "run",
        "--storage",
        postgres_url,
        "--study",
        "killed",
        "--workers",
        "3",
        "--trials",
        "12",
        *TINY_RUN,
    ]
    search = subprocess.Popen(
        command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    victim = None
    try:
        deadline = time.monotonic() + 300
        while victim is None and search.poll() is None and time.monotonic() < deadline:
            victim = _worker_mid_trial(postgres_url, "killed", search.pid)
            time.sleep(0.05)
        assert victim is not None, "no worker was seen mid-trial"
        os.kill(victim[0], signal.SIGKILL)
        out, err = search.communicate(timeout=300)
    finally:
        if search.poll() is None:
            search.kill()
    assert search.returncode == 0, err
    assert PASSWORD not in out + err and f"{USER}:***@127.0.0.1" in err
    assert f"process {victim[0]} was killed (signal 9)" in err

    study = optuna.load_study(study_name="killed", storage=get_storage(postgres_url))
    trials = study.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # no number twice, none skipped
    by_state = {state: [t for t in trials if t.state == state] for state in TrialState}
    # the requested number of new points, the killed one's share included; successive halving's rung 0
    # may stop some before they train (PRUNED with their EPF measured)
    measured = by_state[TrialState.COMPLETE] + by_state[TrialState.PRUNED]
    new = [t for t in measured if record.DUPLICATE_OF not in t.user_attrs]
    assert len(new) == 12
    assert [t.number for t in by_state[TrialState.FAIL]] == [victim[1]]
    assert not by_state[TrialState.RUNNING] and not by_state[TrialState.WAITING]
    assert study.trials[victim[1]].user_attrs[record.FAIL_REASON].startswith(f"worker lost: process {victim[0]}")
    retries = [t for t in trials if t.system_attrs.get(record.RETRY_OF) == victim[1]]
    assert len(retries) == 1 and retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)  # retried once
    assert retries[0].params == study.trials[victim[1]].params
    for trial in by_state[TrialState.COMPLETE]:
        assert REQUIRED_ATTRS <= set(trial.user_attrs), trial.number
        assert set(trial.user_attrs[record.EPF]) == {"2", "4"} and trial.values[0] > 0
        assert (trial.user_attrs[record.WORKER] or {}).get("pid") != victim[0] or trial.number < victim[1]

    # front, export and validate read the same server
    monkeypatch.chdir(tmp_path)  # validate's checkpoints go to ./studies for a database server
    assert main(["front", "--storage", postgres_url, "--study", "killed", "--format", "csv"]) == 0
    front = capsys.readouterr()
    assert front.out.count("\n") >= 2 and PASSWORD not in front.out + front.err
    completed = [t for t in new if t.state == TrialState.COMPLETE]
    chosen = retries[0].number if retries[0].state == TrialState.COMPLETE else completed[0].number
    assert (
        main(
            [
                "export",
                "--storage",
                postgres_url,
                "--study",
                "killed",
                "--trial",
                str(chosen),
                "--out",
                str(tmp_path / "net.py"),
            ]
        )
        == 0
    )
    assert "def build" in (tmp_path / "net.py").read_text()
    assert (
        main(
            [
                "validate",
                "--storage",
                postgres_url,
                "--study",
                "killed",
                "--trials",
                str(chosen),
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--device",
                "cpu",
                "--threads",
                "1",
                "--no-profile",
            ]
        )
        == 0
    )
    validated = capsys.readouterr()
    assert "full top-1 (%)" in validated.out and PASSWORD not in validated.out + validated.err


def test_passwords_stay_hidden_in_listings_and_errors(postgres_url, capsys):
    assert main(["studies", "--storage", postgres_url]) == 0
    shown = capsys.readouterr()
    assert PASSWORD not in shown.out + shown.err
    wrong = postgres_url.replace(PASSWORD, "Wrong-pass-42")
    with pytest.raises(ConfigError) as caught:
        get_storage(wrong)
    message = str(caught.value)
    assert "Wrong-pass-42" not in message and f"postgresql://{USER}:***@127.0.0.1" in message
    assert "password authentication failed" in message  # the server's reason, kept
    assert main(["front", "--storage", wrong]) == 2
    err = capsys.readouterr().err
    assert "Wrong-pass-42" not in err and len(err.strip().splitlines()) == 1
