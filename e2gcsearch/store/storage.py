"""Where studies live: the default storage and study name, opening a study by name, listing studies.

A storage is any Optuna RDB URL (``sqlite:///studies/e2gcsearch.db``, ``postgresql://…``) or the path
of a journal file ending in ``.log`` or ``.jsonl`` (Optuna's ``JournalStorage`` with a file backend,
safe for several processes on one machine without a database server). The storage a search writes to
(:func:`open_search_storage`) adds Optuna's heartbeat on an RDB, so the trials of a killed worker are
failed and their points queued once more (:mod:`.lost`).

Example:
    >>> from e2gcsearch.store.storage import DEFAULT_STORAGE, DEFAULT_STUDY, open_study
    >>> study = open_study(DEFAULT_STORAGE, DEFAULT_STUDY)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib.util
import os
import re
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import optuna
import pandas as pd
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from ..errors import ConfigError, DataError, DiskFullError, UnknownNameError, UserError
from ..paths import is_disk_full, probe_writable, write_problem
from . import record
from .journal import open_journal, require_journal
from .lost import heartbeat_seconds, queue_retry
from .spending import search_cost

DEFAULT_STORAGE = "sqlite:///studies/e2gcsearch.db"
DEFAULT_STUDY = "e2gcsearch"
JOURNAL_SUFFIXES = (".log", ".jsonl")
STORAGE_HELP = (
    "an Optuna RDB URL such as sqlite:///studies/e2gcsearch.db or postgresql://user@host/db, "
    "or a journal file path ending in .log or .jsonl"
)


def _password(url: str) -> str | None:
    """The password written in ``url`` (as typed), or ``None``.

    SQLAlchemy's URL object reads the URL; a password holding a bare ``@`` (it should be written
    ``%40``) makes it split at the first ``@``, so the credentials are taken up to the last ``@``
    before the path instead."""
    scheme, sep, rest = str(url).partition("://")
    if not sep or "@" not in rest:
        return None
    credentials = rest[: rest.rfind("@")]
    return credentials.split(":", 1)[1] if ":" in credentials else None


QUERY_SECRETS = ("password", "passwd", "pass", "sslpassword")  # libpq and driver keys that carry a secret


def _query_secrets(url: str) -> list[str]:
    """Secrets given as query parameters (``postgresql:///db?user=u&password=...``), as typed."""
    query = str(url).partition("?")[2]
    return [
        value
        for key, _, value in (part.partition("=") for part in query.split("&"))
        if key.lower() in QUERY_SECRETS and value
    ]


def _secrets(url: str) -> set[str]:
    """Every form of every secret in ``url`` that a driver may echo: the password as typed, decoded and
    encoded, and, where it holds a bare ``@``, each part (a driver that splits at the first ``@`` shows
    the rest as a host name)."""
    found = set(_query_secrets(url))
    password = _password(url)
    if password:
        found |= {password, *password.split("@")}
    forms = {form for secret in found for form in (secret, unquote(secret), quote(secret, safe=""))}
    return {form for form in forms if len(form) >= 3}


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to print in messages, logs and listings)."""
    url = str(url)
    for secret in _query_secrets(url):
        url = re.sub(
            rf"([?&](?:{'|'.join(QUERY_SECRETS)})=){re.escape(secret)}(?=&|$)", r"\1***", url, flags=re.IGNORECASE
        )
    password = _password(url)
    if password is None:
        return url
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy reads; mask by hand
        shown = ""
    if not shown or password in shown or "@" in (make_url(url).host or ""):
        scheme, _, rest = url.partition("://")
        user = rest[: rest.rfind("@")].split(":", 1)[0]
        shown = f"{scheme}://{user}:***@{rest[rest.rfind('@') + 1 :]}"
    return shown


def hide_secrets(text: str, url: str) -> str:
    """``text`` (an exception's message, a log line) with the URL and its password masked."""
    text = str(text).replace(str(url), redact(url))
    for form in sorted(_secrets(url), key=len, reverse=True):  # longest first: a part never unmasks a whole
        text = text.replace(form, "***")
    return text


def is_journal(url: str) -> bool:
    return str(url).lower().endswith(JOURNAL_SUFFIXES) and "://" not in str(url)


def storage_file(url: str) -> Path | None:
    """The local file behind a SQLite URL or a journal path, else ``None`` (a database server)."""
    url = str(url)
    if is_journal(url):
        return Path(url)
    match = re.match(r"sqlite:///(.+)$", url)
    if match and match.group(1) != ":memory:":
        return Path(match.group(1).split("?")[0])
    return None


def studies_dir(url: str) -> Path:
    """The folder next to the storage where per-study files (checkpoints) go; ``studies/`` for servers."""
    path = storage_file(url)
    return path.parent if path is not None else Path("studies")


def refuse_unkept(url: str) -> str:
    """``url``, unless it is a storage that keeps nothing once the command ends (``sqlite:///`` names no
    file, ``sqlite:///:memory:`` lives in memory: a search there would be lost) or a journal path that
    holds another program's file; checked before any work."""
    if is_journal(url):
        require_journal(url)
    if re.fullmatch(r"sqlite:///?(:memory:)?(\?.*)?", url.strip()):
        raise ConfigError(
            f"storage {url!r} keeps nothing after the command ends (no file is named); give a file, "
            "e.g. sqlite:///studies/e2gcsearch.db, or a journal path ending in .log"
        )
    return url


def get_storage(url: str | BaseStorage, create: bool = False) -> BaseStorage:
    """Open a storage.

    Args:
        url: an RDB URL or a ``.log``/``.jsonl`` journal path (a ready storage passes through).
        create: create a missing SQLite/journal file (and its folder). Readers pass ``False`` so that
            a mistyped path is reported instead of silently creating an empty database.

    Raises:
        DataError: the file does not exist (``create=False``) or cannot be created.
        ConfigError: the URL is not one Optuna can open (the message never shows a password).
    """
    if isinstance(url, BaseStorage):
        return url
    url = refuse_unkept(str(url))
    path = storage_file(url)
    if path is not None and not path.exists():
        if not create:
            raise DataError(
                f"no study storage at {path}; run 'e2gcsearch run' first to create it, "
                f"or pass --storage with {STORAGE_HELP}"
            )
        probe_writable(path.parent, "the study storage folder")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(write_problem(exc, path.parent, "the study storage folder")) from None
    if path is not None and create:
        probe_writable(path.parent, "the study storage folder", file=path)
    if is_journal(url):
        try:
            return open_journal(path)
        except OSError as exc:
            raise DataError(write_problem(exc, path, "the study storage")) from None
    if "://" not in url:
        hint = f"; did you mean sqlite:///{url}?" if url.endswith((".db", ".sqlite", ".sqlite3")) else ""
        raise ConfigError(f"storage {redact(url)!r} is neither a URL nor a journal file; give {STORAGE_HELP}{hint}")
    with _creation_lock(path):
        return _open_rdb(with_driver(url), path, shown=url)


def open_search_storage(url: str, heartbeat_s: int | None = None) -> BaseStorage:
    """The storage ``run`` writes to: created if missing; RDB storages get Optuna's heartbeat, which
    fails a trial whose process stopped beating and queues its point once more (:func:`.lost.queue_retry`).

    The heartbeat period is ``heartbeat_s``, else ``$E2GCSEARCH_HEARTBEAT_S``, else 30 s.
    """
    heartbeat_s = heartbeat_s or heartbeat_seconds()
    storage = get_storage(url, create=True)
    if isinstance(storage, RDBStorage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = RDBStorage(
                storage.url,
                heartbeat_interval=heartbeat_s,
                grace_period=2 * heartbeat_s,
                heartbeat_stale_trial_callback=queue_retry,
            )
    return storage


def check_storage_for_workers(url: str, workers: int) -> None:
    """Refuse several worker processes on SQLite, naming a journal file or PostgreSQL to use instead."""
    if workers > 1 and str(url).startswith("sqlite"):
        path = storage_file(url)
        suggestion = path.with_suffix(".log") if path else "studies/e2gcsearch.log"
        raise ConfigError(
            f"--workers {workers} needs a storage that several processes can share safely; SQLite locks up "
            f"under concurrent writers. Use a journal file (--storage {suggestion}) or a PostgreSQL URL"
        )


def storage_failure(exc: BaseException, url: str) -> BaseException:
    """``exc`` as the user should see it: a write to the storage ``url`` that failed for want of space
    (a journal's ``ENOSPC``, SQLite's "database or disk is full") as one :class:`DiskFullError` sentence
    that says what became of the running trial; any other exception as it is."""
    if isinstance(exc, DiskFullError):
        problem = str(exc)
    elif not isinstance(exc, UserError) and is_disk_full(exc):
        problem = write_problem(OSError(errno.ENOSPC, "full"), redact(url), "the study storage")
    else:
        return exc
    return DiskFullError(
        f"{problem}. The trials finished before are kept; a trial that was running stays RUNNING "
        "until the next 'e2gcsearch run', which fails it with the reason and queues its point again"
    )


def with_driver(url: str) -> str:
    """``url`` with the PostgreSQL driver that is installed: SQLAlchemy reads ``postgresql://`` as
    psycopg2, while ``pip install 'e2gcsearch[postgres]'`` brings psycopg (3); other URLs pass through.

    Raises:
        ConfigError: a PostgreSQL URL and no driver installed (says how to install one).
    """
    scheme, sep, rest = str(url).partition("://")
    if not sep or scheme.lower() not in ("postgresql", "postgres"):
        return url
    if importlib.util.find_spec("psycopg2") is not None:
        return f"postgresql://{rest}"
    if importlib.util.find_spec("psycopg") is not None:
        return f"postgresql+psycopg://{rest}"
    raise ConfigError(
        f"storage {redact(url)} needs a PostgreSQL driver; install it with pip install 'e2gcsearch[postgres]' (psycopg)"
    )


def _open_rdb(url: str, path: Path | None, attempts: int = 3, shown: str | None = None) -> BaseStorage:
    """``RDBStorage(url)``, retried when another process was creating the same new database's schema;
    errors name ``shown`` (the URL as the user wrote it), password masked."""
    shown = shown or url
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url)
        except Exception as exc:  # noqa: BLE001 - sqlalchemy/driver errors vary; report one line
            text = str(exc).lower()
            if path is not None and ("readonly" in text or "disk" in text and "full" in text):
                raise DataError(write_problem(OSError(str(exc)), path, "the study storage")) from None
            racing = path is not None and type(exc).__name__ in ("IntegrityError", "OperationalError")
            if racing and attempt + 1 < attempts:
                time.sleep(0.2 * (attempt + 1))
                continue
            raise ConfigError(
                f"cannot open storage {redact(shown)} ({type(exc).__name__}: "
                f"{hide_secrets(hide_secrets(_first_line(exc), url), shown)}); "
                f"check the URL, its database driver and server, or give {STORAGE_HELP}"
            ) from None
    raise AssertionError("unreachable")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


@contextlib.contextmanager
def _creation_lock(path: Path | None) -> Iterator[None]:
    """Hold an exclusive lock on the folder of a SQLite file while the storage is opened, so that two
    processes starting together on a new file do not both create its schema."""
    if path is None:
        yield
        return
    handle = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        os.close(handle)


def study_names(storage: str | BaseStorage) -> list[str]:
    """Names of every study in ``storage``, sorted."""
    return sorted(optuna.study.get_all_study_names(storage=get_storage(storage)))


def open_study(storage: str | BaseStorage, study_name: str) -> optuna.Study:
    """Load an existing study; an unknown name raises one line listing the studies that exist."""
    opened = get_storage(storage)
    names = sorted(optuna.study.get_all_study_names(storage=opened))
    if study_name not in names:
        where = redact(storage) if isinstance(storage, str) else "this storage"
        if not names:
            raise UnknownNameError(
                f"no study named {study_name!r}: {where} has no studies yet; "
                f"run 'e2gcsearch run --study {study_name}' first"
            )
        raise UnknownNameError(
            f"no study named {study_name!r} in {where}; existing studies: {', '.join(names)} "
            "(pass one with --study NAME, see 'e2gcsearch studies')"
        )
    return optuna.load_study(study_name=study_name, storage=opened)


def _objective_names(summary: Any, metric_names: list[str] | None) -> str:
    objectives = summary.user_attrs.get(record.OBJECTIVES)
    directions = [d.name.lower() for d in summary.directions]
    if objectives:
        names = [f"{o.get('name')} ({o.get('direction', d)[:3]})" for o, d in zip(objectives, directions)]
    else:
        metric_names = metric_names or [f"value{i}" for i in range(len(directions))]
        names = [f"{n} ({d[:3]})" for n, d in zip(metric_names, directions)]
    return ", ".join(names)


def studies_frame(storage: str | BaseStorage) -> pd.DataFrame:
    """One row per study: name, objectives, trial counts by state (``waiting``: queued, not yet
    started; ``running``: started and not finished), start time, and what its recorded work used
    (``search_energy_j``, ``None`` when nothing is on record; ``search_energy_source``: ``estimate``,
    ``rapl``, ``nvml``; ``search_time_s``; see :mod:`.spending`)."""
    opened = get_storage(storage)
    rows = []
    for summary in optuna.get_all_study_summaries(storage=opened, include_best_trial=False):
        study_id = opened.get_study_id_from_name(summary.study_name)
        trials = opened.get_all_trials(study_id, deepcopy=False)
        states = [t.state for t in trials]
        cost = search_cost(trials, opened.get_study_user_attrs(study_id))
        start = summary.datetime_start
        rows.append(
            {
                "study": summary.study_name,
                "objectives": _objective_names(
                    summary, opened.get_study_system_attrs(study_id).get(record.METRIC_NAMES)
                ),
                "trials": len(states),
                "complete": states.count(TrialState.COMPLETE),
                "running": states.count(TrialState.RUNNING),
                "waiting": states.count(TrialState.WAITING),  # queued points (baselines, warm start) not yet started
                "failed": states.count(TrialState.FAIL),
                "pruned": states.count(TrialState.PRUNED),
                "started": start.strftime("%Y-%m-%d %H:%M") if start else "",
                "search_energy_j": cost.energy_j if cost.recorded else None,
                "search_energy_source": cost.source if cost.recorded else None,
                "search_time_s": cost.time_s if cost.recorded else None,
            }
        )
    columns = ["study", "objectives", "trials", "complete", "running", "waiting", "failed", "pruned", "started"]
    columns += ["search_energy_j", "search_energy_source", "search_time_s"]
    return pd.DataFrame(rows, columns=columns).sort_values("study", ignore_index=True)


__all__ = [
    "DEFAULT_STORAGE",
    "DEFAULT_STUDY",
    "get_storage",
    "open_study",
    "hide_secrets",
    "redact",
    "storage_file",
    "studies_dir",
    "studies_frame",
    "study_names",
]
