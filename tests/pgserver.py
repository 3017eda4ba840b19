"""A throwaway PostgreSQL server for the tests and the benchmarks: Debian's postgresql package, initdb
into a temporary folder, pg_ctl start on a free port of 127.0.0.1 (password authentication), stopped
and deleted afterwards. initdb refuses root, so as root the server runs as the 'postgres' user.

    with throwaway_postgres("e2gc", "secret") as url:   # postgresql://e2gc:secret@127.0.0.1:PORT/postgres
        ...
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


class Unavailable(RuntimeError):
    """No server can be started here; the message says what is missing and how to get it."""


def server_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres(user: str, password: str) -> Iterator[str]:
    """Start a server, yield its URL, stop and delete it. Raises :class:`Unavailable`."""
    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is None:
        raise Unavailable("needs a PostgreSQL driver: pip install -e '.[test]' (or '.[postgres]') installs psycopg")
    binaries = server_binaries()
    if binaries is None:
        raise Unavailable(
            "needs the PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql "
            "(.ci/run installs it when it can)"
        )
    as_server_user, owner = [], None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable(
                "running as root needs a 'postgres' user to run the server (initdb refuses root)"
            ) from None
        as_server_user = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="e2gcsearch-pg-"))
    (base / "password").write_text(password + "\n")
    if owner is not None:
        for path in (base, base / "password"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    data, port = base / "data", _free_port()
    pg_ctl = [*as_server_user, str(binaries / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run(
            [
                *as_server_user,
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                user,
                f"--pwfile={base / 'password'}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        subprocess.run(
            [
                *pg_ctl,
                "-l",
                str(base / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {port} -k {base} -c listen_addresses=127.0.0.1",
                "start",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"could not start a PostgreSQL server: {(exc.stderr or exc.stdout).strip()}") from None
    try:
        yield f"postgresql://{user}:{password}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
