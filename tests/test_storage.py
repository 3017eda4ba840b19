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
from e2gcsearch.search.storage import get_storage, hide_secrets, redact

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
    done = subprocess.run([sys.executable, "-m", "e2gcsearch", "studies", "--storage", url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert password not in done.stderr and password[1:] not in done.stderr
    assert "user:***@127.0.0.1:1/db" in done.stderr


@pytest.mark.parametrize("url", ["postgresql://user:abc@SECRET@127.0.0.1:1/db",
                                 "postgresql:///db?user=u&password=SECRET&host=127.0.0.1&port=1"])
def test_a_password_the_driver_echoes_in_part_or_from_the_query_stays_hidden(url, tmp_path):
    """The driver splits an unescaped '@' into the host ("failed to resolve host 'SECRET@127.0.0.1'"),
    and a password can be a query parameter: neither reaches the user."""
    assert "SECRET" not in redact(url)
    assert "SECRET" not in hide_secrets("failed to resolve host 'SECRET@127.0.0.1'", url)
    done = subprocess.run([sys.executable, "-m", "e2gcsearch", "front", "--storage", url],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "SECRET" not in done.stderr + done.stdout


RACER = """
import sys, time
import optuna
from e2gcsearch.search.storage import get_storage
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
        racers = [subprocess.Popen([sys.executable, "-c", RACER, url, str(start)], stderr=subprocess.PIPE, text=True)
                  for _ in range(3)]
        for racer in racers:
            _, err = racer.communicate(timeout=120)
            assert racer.returncode == 0, err


def test_a_read_only_database_is_one_line(tmp_path):
    url = f"sqlite:///{tmp_path}/study.db"
    get_storage(url, create=True)
    os.chmod(tmp_path / "study.db", 0o444)
    with pytest.raises(DataError, match="study.db is read-only"):
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
    from e2gcsearch.search.journal import repair_journal

    journal = tmp_path / "s.log"
    study = optuna.create_study(study_name="s", storage=get_storage(str(journal), create=True))
    study.add_trial(optuna.trial.create_trial(value=1.0))
    whole = journal.read_bytes()
    attr = b'{"op_code":2,"worker_id":"w","study_id":0,"user_attr":{"after":"the tear"}}\n'
    with journal.open("ab") as handle:  # the torn write, and the next record appended right after it
        handle.write(b'{"op_code":5,"worker_id":"w","trial_id":0,"us' + attr + attr.replace(b"the tear", b"more"))
    with pytest.raises(ValueError):  # what every later command met before
        optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(journal))))
    assert main(["studies", "--storage", str(journal)]) == 0
    captured = capsys.readouterr()
    assert "removed 1 torn record(s)" in captured.err and "s " in captured.out
    reopened = optuna.load_study(study_name="s", storage=get_storage(str(journal)))
    assert len(reopened.trials) == 1 and reopened.user_attrs == {"after": "more"}  # both whole records kept
    aside = list(tmp_path.glob("s.log.torn-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b'{"op_code":5,"worker_id":"w","trial_id":0,"us\n'
    assert journal.read_bytes().startswith(whole) and repair_journal(journal) == []  # whole again
