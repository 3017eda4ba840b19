"""Study specs (``run --config FILE.toml``): versioned files whose keys are the flags of ``run``, checked
and converted by the same option table as the command line (:mod:`.option_table`)."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from .option_table import OPTIONS, Option
from .options import Group, entries


def load_spec(path: Path, groups: tuple[Group, ...]) -> dict[str, Any]:
    """The values of a study spec, by ``dest``: its keys are the flags of ``groups`` with dashes as
    underscores; TOML tables only group keys (``[search] trials = 12`` is ``trials = 12``)."""
    try:
        spec = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"no study spec at {path}; see studies/ for examples") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder; --config takes a study spec file (.toml), see studies/") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text file; --config takes a study spec (TOML), see studies/") from None
    except OSError as exc:
        raise DataError(f"cannot read the study spec {path} ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix the file or drop --config") from None
    options = {OPTIONS[name].dest: OPTIONS[name] for _, name, _ in entries(groups, {})}
    # A switch --no-X may also be written positively: 'baselines = false' is 'no_baselines = true'.
    positive = {
        dest[3:]: dest for dest, option in options.items() if dest.startswith("no_") and option.action == "store_true"
    }
    values = {}
    for key, value in _flatten(spec).items():
        dest = key.replace("-", "_")
        if dest in positive and dest not in options:
            if not isinstance(value, bool):
                raise ConfigError(f"{path}: {key} takes true or false (unquoted), got {value!r}")
            dest, value = positive[dest], not value
        if dest not in options:
            valid = sorted([*options, *positive])
            raise ConfigError(f"{path}: unknown key {key!r}; valid keys: {', '.join(valid)}")
        read = _as_flag(options[dest], value, f"{path}: {key}")
        if dest in values and values[dest] != read:
            raise ConfigError(f"{path}: {key} contradicts another key of the spec for the same flag; keep one")
        values[dest] = read
    return values


def _as_flag(option: Option, value: Any, where: str) -> Any:
    """A study-spec (TOML) value read as if it had been given as ``option``'s flag."""
    if option.action == "store_true":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} takes true or false (unquoted), got {value!r}")
        return value
    if option.action == "append":
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if option.choices and text not in option.choices:
        raise ConfigError(f"{where} must be one of {', '.join(option.choices)}, got {value!r}")
    try:
        return option.type(text) if option.type else text
    except (argparse.ArgumentTypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _flatten(spec: dict[str, Any]) -> dict[str, Any]:
    flat = {}
    for key, value in spec.items():
        flat.update(_flatten(value) if isinstance(value, dict) else {key: value})
    return flat
