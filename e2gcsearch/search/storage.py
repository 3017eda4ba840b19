"""Where studies live: the default storage and study name, opening a study by name, listing studies.

A storage is any Optuna RDB URL (``sqlite:///studies/e2gcsearch.db``, ``postgresql://…``) or the path
of a journal file ending in ``.log`` or ``.jsonl`` (Optuna's ``JournalStorage`` with a file backend,
safe for several processes on one machine without a database server).

Example:
    >>> from e2gcsearch.search.storage import DEFAULT_STORAGE, DEFAULT_STUDY, open_study
    >>> study = open_study(DEFAULT_STORAGE, DEFAULT_STUDY)  # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from ..errors import ConfigError, DataError, UnknownNameError
from . import record

DEFAULT_STORAGE = "sqlite:///studies/e2gcsearch.db"
DEFAULT_STUDY = "e2gcsearch"
JOURNAL_SUFFIXES = (".log", ".jsonl")
STORAGE_HELP = ("an Optuna RDB URL such as sqlite:///studies/e2gcsearch.db or postgresql://user@host/db, "
                "or a journal file path ending in .log or .jsonl")


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to print)."""
    return re.sub(r"(://[^/:@]*:)[^@/]*@", r"\1***@", str(url))


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
    url = str(url)
    path = storage_file(url)
    if path is not None and not path.exists():
        if not create:
            raise DataError(
                f"no study storage at {path}; run 'e2gcsearch run' first to create it, "
                f"or pass --storage with {STORAGE_HELP}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"cannot create the folder of {path} ({exc.strerror}); "
                            "pass a writable --storage path") from None
    if is_journal(url):
        from optuna.storages.journal import JournalFileBackend, JournalStorage
        return JournalStorage(JournalFileBackend(url))
    if "://" not in url:
        hint = f"; did you mean sqlite:///{url}?" if url.endswith((".db", ".sqlite", ".sqlite3")) else ""
        raise ConfigError(f"storage {redact(url)!r} is neither a URL nor a journal file; give {STORAGE_HELP}{hint}")
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy/driver errors vary; report one line
        raise ConfigError(
            f"cannot open storage {redact(url)} ({type(exc).__name__}); check the URL, its database "
            f"driver and server, or give {STORAGE_HELP}") from None


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
                f"run 'e2gcsearch run --study {study_name}' first")
        raise UnknownNameError(
            f"no study named {study_name!r} in {where}; existing studies: {', '.join(names)} "
            "(pass one with --study NAME, see 'e2gcsearch studies')")
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
    """One row per study: name, objectives, trial counts by state, start time."""
    opened = get_storage(storage)
    rows = []
    for summary in optuna.get_all_study_summaries(storage=opened, include_best_trial=False):
        study_id = opened.get_study_id_from_name(summary.study_name)
        states = [t.state for t in opened.get_all_trials(study_id, deepcopy=False)]
        start = summary.datetime_start
        rows.append({
            "study": summary.study_name,
            "objectives": _objective_names(summary, opened.get_study_system_attrs(study_id).get(record.METRIC_NAMES)),
            "trials": len(states),
            "complete": states.count(TrialState.COMPLETE),
            "running": states.count(TrialState.RUNNING) + states.count(TrialState.WAITING),
            "failed": states.count(TrialState.FAIL),
            "pruned": states.count(TrialState.PRUNED),
            "started": start.strftime("%Y-%m-%d %H:%M") if start else "",
        })
    columns = ["study", "objectives", "trials", "complete", "running", "failed", "pruned", "started"]
    return pd.DataFrame(rows, columns=columns).sort_values("study", ignore_index=True)


__all__ = [
    "DEFAULT_STORAGE",
    "DEFAULT_STUDY",
    "get_storage",
    "open_study",
    "redact",
    "storage_file",
    "studies_dir",
    "studies_frame",
    "study_names",
]
