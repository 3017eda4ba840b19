"""Render rows of results as a human table, CSV, JSON or Markdown.

Machine formats (csv, json) carry raw values (integer counts, SI units named in the column);
human formats (table, markdown) apply per-column formatters such as ``4.20 M``.

Example:
    >>> import pandas as pd
    >>> print(render(pd.DataFrame([{"params": 4231976}]), "table", {"params": human_count}))
    params
    4.23 M
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

FORMATS = ("table", "csv", "json", "markdown")
Formatter = Callable[[Any], str]


def human_count(value: Any) -> str:
    """4231976 → '4.23 M', 4228000000 → '4.23 G', 512 → '512'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    value = float(value)
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {suffix}"
    return f"{value:g}"


def fixed(digits: int) -> Formatter:
    """A formatter with a fixed number of decimals; NaN/None print as '-'."""

    def fmt(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return f"{float(value):.{digits}f}"

    return fmt


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def to_json(data: Any) -> str:
    """JSON with numpy scalars converted and NaN written as null."""

    def clean(obj: Any) -> Any:
        if isinstance(obj, float) and math.isnan(obj):
            return None
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [clean(v) for v in obj]
        if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
            return clean(obj.item())
        return obj

    return json.dumps(clean(data), indent=2, default=_json_default)


def _humanize(
    frame: pd.DataFrame, formatters: Mapping[str, Formatter] | None, headers: Mapping[str, str] | None
) -> pd.DataFrame:
    shown = frame.copy()
    for column, fmt in (formatters or {}).items():
        if column in shown:
            shown[column] = [fmt(v) for v in frame[column]]
    return shown.rename(columns=dict(headers or {}))


def markdown(frame: pd.DataFrame, numeric: list[bool] | None = None) -> str:
    """A GitHub-flavoured Markdown table (numeric columns right-aligned)."""
    columns = [str(c) for c in frame.columns]
    if numeric is None:
        numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def render(
    frame: pd.DataFrame,
    fmt: str,
    formatters: Mapping[str, Formatter] | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """Render ``frame`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "csv":
        return frame.to_csv(index=False).rstrip("\n")
    if fmt == "json":
        return to_json(frame.to_dict(orient="records"))
    shown = _humanize(frame, formatters, headers)
    if fmt == "markdown":
        return markdown(shown, [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns])
    if fmt == "table":
        return shown.to_string(index=False)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
