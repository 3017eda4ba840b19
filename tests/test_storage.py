"""Study storages: passwords never printed, safe creation by several processes at once, and one clear
line for a read-only database, an unwritable folder or a full disk."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time

import pytest

from e2gcsearch import DataError
from e2gcsearch.paths import probe_writable, write_problem
from e2gcsearch.store.storage import get_storage, hide_secrets, redact

PASSWORDS = ["se/cret", "p@ss@word", "50%25off", "a:b/c@d"]


@pytest.mark.parametrize("password", PASSWORDS)
def test_passwords_are_masked_in_urls_and_texts(password):
    url = f"postgresql://user:{password}@127.0.0.1:1/db"
    shown = redact(url)
    assert shown == "postgresql://user:***@127.0.0.1:1/db"
    text = f"connection to {url} failed: password {password} rejected"
    assert password not in hide_secrets(text, url)


@pytest.mark.parametrize("password", PASSWORDS)
def test_studies_listing_never_prints_the_password(password):
    url = f"postgresql://user:{password}@127.0.0.1:1/db"
    done = subprocess.run(
        [sys.executable, "-m", "e2gcsearch", "studies", "--storage", url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert password not in done.stderr and password[1:] not in done.stderr
    assert "user:***@127.0.0.1:1/db" in done.stderr


@pytest.mark.parametrize(
    "url",
    ["postgresql://user:abc@SECRET@127.0.0.1:1/db", "postgresql:///db?user=u&password=SECRET&host=127.0.0.1&port=1"],
)
def test_a_password_the_driver_echoes_in_part_or_from_the_query_stays_hidden(url, tmp_path):
    """The driver splits an unescaped '@' into the host ("failed to resolve host 'SECRET@127.0.0.1'"),
    and a password can be a query parameter: neither reaches the user."""
    assert "SECRET" not in redact(url)
    assert "SECRET" not in hide_secrets("failed to resolve host 'SECRET@127.0.0.1'", url)
    done = subprocess.run(
        [sys.executable, "-m", "e2gcsearch", "front", "--storage", url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "SECRET" not in done.stderr + done.stdout


RACER = """
import sys, time
import optuna
from e2gcsearch.store.storage import get_storage
url, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
storage = get_storage(url, create=True)
optuna.create_study(study_name="race", storage=storage, load_if_exists=True)
"""


@pytest.mark.slow
def test_several_processes_create_one_new_sqlite_file_safely(tmp_path):
    for attempt in range(3):
        url = f"sqlite:///{tmp_path}/race-{attempt}.db"
        start = time.time() + 6  # past every process's imports
        racers = [
            subprocess.Popen([sys.executable, "-c", RACER, url, str(start)], stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        for racer in racers:
            _, err = racer.communicate(timeout=120)
            assert racer.returncode == 0, err


def test_a_read_only_database_is_one_line(tmp_path):
    url = f"sqlite:///{tmp_path}/study.db"
    get_storage(url, create=True)
    os.chmod(tmp_path / "study.db", 0o444)
    with pytest.raises(DataError, match="the file .*study.db is read-only"):  # a file, not a "folder"
        get_storage(url, create=True)


def test_an_unwritable_journal_folder_is_one_line(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    os.chmod(folder, 0o555)
    try:
        with pytest.raises(DataError, match="locked is read-only"):
            get_storage(str(folder / "study.log"), create=True)
        assert list(folder.iterdir()) == []
    finally:
        os.chmod(folder, 0o755)


def test_a_storage_folder_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(DataError, match="is .inside. a file"):
        get_storage(f"sqlite:///{tmp_path}/plain/study.db", create=True)


def test_a_full_disk_is_named_as_such(tmp_path):
    # /dev/full is the kernel's disk that is always full: a real ENOSPC, not a made-up one.
    with pytest.raises(OSError) as caught:
        with open("/dev/full", "w") as stream:
            stream.write("x")
            stream.flush()
    assert caught.value.errno == errno.ENOSPC
    assert "is full" in write_problem(caught.value, tmp_path, "the study storage")
    assert "is full" in write_problem(OSError("database or disk is full"), tmp_path, "the study storage")
    probe_writable(tmp_path, "the cache dir")  # a writable folder passes and keeps nothing
    assert list(tmp_path.iterdir()) == []


def test_a_torn_journal_record_is_cut_out_kept_aside_and_the_study_stays_readable(tmp_path, capsys):
    """A full disk or a killed process leaves half a record; the next append merged it with a whole one,
    and every later read failed with JSONDecodeError. Opening the journal repairs it."""
    import optuna

    from e2gcsearch.cli import main
    from e2gcsearch.store.journal import repair_journal

    journal = tmp_path / "s.log"
    study = optuna.create_study(study_name="s", storage=get_storage(str(journal), create=True))
    study.add_trial(optuna.trial.create_trial(value=1.0))
    whole = journal.read_bytes()
    attr = b'{"op_code":2,"worker_id":"w","study_id":0,"user_attr":{"after":"the tear"}}\n'
    with journal.open("ab") as handle:  # the torn write, and the next record appended right after it
        handle.write(b'{"op_code":5,"worker_id":"w","trial_id":0,"us' + attr + attr.replace(b"the tear", b"more"))
    with pytest.raises(ValueError):  # what every later command met before
        optuna.load_study(
            study_name="s",
            storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal))),
        )
    assert main(["studies", "--storage", str(journal)]) == 0
    captured = capsys.readouterr()
    assert "removed 1 torn record(s)" in captured.err and "s " in captured.out
    reopened = optuna.load_study(study_name="s", storage=get_storage(str(journal)))
    assert len(reopened.trials) == 1 and reopened.user_attrs == {"after": "more"}  # both whole records kept
    aside = list(tmp_path.glob("s.log.torn-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b'{"op_code":5,"worker_id":"w","trial_id":0,"us\n'
    assert journal.read_bytes().startswith(whole) and repair_journal(journal) == []  # whole again


# --- a disk that fills mid-run ----------------------------------------------------------------------

TINY_RUN = [
    "run",
    "--data",
    "digits",
    "--train-per-class",
    "12",
    "--val-per-class",
    "6",
    "--resolution",
    "32",
    "--epochs",
    "1",
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
    "--warm-start",
    "none",
]
# The disk fills while the second trial (trial_id 1) runs, after it recorded its worker and point: half a record
# lands, then ENOSPC. The fake sits where the journal meets the disk (journal.write_all), in a process of
# its own that then ends.
FULL_DISK = """
import errno, os, sys
from e2gcsearch.store import journal
from e2gcsearch.cli import main
real, sampled = journal.write_all, []
def full_disk(fd, data):
    if b'"trial_id":1,' in data and sampled and b'"param_name"' not in data:
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")
    if b'"trial_id":1,' in data and b'"param_name"' in data:
        sampled.append(1)
    real(fd, data)
journal.write_all = full_disk
sys.exit(main(sys.argv[1:]))
"""


def _e2gcsearch(tmp_path, *argv, prelude: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", prelude, *argv] if prelude else [sys.executable, "-m", "e2gcsearch", *argv]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "E2GCSEARCH_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"},
    )


def _trials(journal):
    import optuna

    study = optuna.load_study(study_name="e2gcsearch", storage=get_storage(str(journal)))
    return study.get_trials(deepcopy=False)


def test_a_journal_append_that_fails_part_way_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    from e2gcsearch.errors import DiskFullError
    from e2gcsearch.store import journal

    path = tmp_path / "s.log"
    backend = journal.WholeRecordBackend(str(path))
    backend.append_logs([{"op_code": 0, "worker_id": "w", "study_name": "s", "directions": [1]}])
    whole = path.read_bytes()

    def full_disk(fd, data):
        os.write(fd, data[:7])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal, "write_all", full_disk)
    with pytest.raises(DiskFullError, match="s.log is full"):
        backend.append_logs([{"op_code": 4, "worker_id": "w", "study_id": 0}])
    assert path.read_bytes() == whole
    assert [log["op_code"] for log in backend.read_logs(0)] == [0]


@pytest.mark.slow
def test_a_disk_that_fills_mid_run_keeps_the_study_and_the_next_run_fails_the_torn_trial(tmp_path):
    journal = tmp_path / "s.log"
    first = _e2gcsearch(tmp_path, *TINY_RUN, "--trials", "3", "--storage", str(journal), prelude=FULL_DISK)
    assert first.returncode == 2, first.stderr
    last = first.stderr.strip().splitlines()[-1]
    assert "the disk holding the study storage" in last and "is full" in last and "stays RUNNING" in last, last
    assert "Traceback" not in first.stderr and "Should not reach" not in first.stderr
    assert journal.read_bytes().endswith(b"\n") and not list(tmp_path.glob("s.log.torn-*"))  # nothing torn
    front = _e2gcsearch(tmp_path, "front", "--storage", str(journal))
    assert front.returncode == 0 and "paper baseline" in front.stdout, front.stderr
    assert [t.state.name for t in _trials(journal)][:2] == ["COMPLETE", "RUNNING"]
    again = _e2gcsearch(tmp_path, *TINY_RUN, "--trials", "1", "--storage", str(journal))
    assert again.returncode == 0 and "trial 1 failed: worker lost" in again.stderr, again.stderr
    trials = _trials(journal)
    assert trials[1].state.name == "FAIL" and "worker lost" in trials[1].user_attrs["fail_reason"]
    assert any(t.system_attrs.get("retry_of") == 1 for t in trials)  # its point queued again


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs, for a real full disk; skipped where mounting is not allowed."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.decode().strip() or 'no permission'})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def _fill(folder, leave: int):
    stats = os.statvfs(folder)
    (folder / "filler").write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - leave))


@pytest.mark.slow
def test_a_real_full_disk_mid_run_keeps_every_store_readable(small_disk, tmp_path):
    journal = small_disk / "s.log"
    _fill(small_disk, 16 * 1024)  # the study and its first trial fit, the rest do not
    first = _e2gcsearch(tmp_path, *TINY_RUN, "--trials", "3", "--storage", str(journal))
    assert first.returncode == 2 and "is full" in first.stderr.strip().splitlines()[-1], first.stderr
    (small_disk / "filler").unlink()
    assert not list(small_disk.glob("s.log.torn-*"))
    front = _e2gcsearch(tmp_path, "front", "--storage", str(journal))
    assert front.returncode == 0, front.stderr
    again = _e2gcsearch(tmp_path, *TINY_RUN, "--trials", "1", "--storage", str(journal))
    assert again.returncode == 0 and "failed: worker lost" in again.stderr, again.stderr
    # SQLite keeps its own data whole; what it says when the disk is full is one line too
    for name in os.listdir(small_disk):
        os.unlink(small_disk / name)
    _fill(small_disk, 100 * 1024)
    sqlite = _e2gcsearch(tmp_path, *TINY_RUN, "--trials", "3", "--storage", f"sqlite:///{small_disk}/s.db")
    assert sqlite.returncode == 2 and "is full" in sqlite.stderr.strip().splitlines()[-1], sqlite.stderr
    assert "unexpected" not in sqlite.stderr
