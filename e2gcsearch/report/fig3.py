"""Draw the E2GC paper's Fig. 3: MACs, arithmetic intensity and 1/AI of one grouped conv against its
group size G, each normalized to the depthwise case (G = 1).

This module only draws; the numbers come from :func:`e2gcsearch.energy_model.fig3_frame`. ``.png``,
``.pdf`` and ``.svg`` are drawn with matplotlib; ``.html`` is a self-contained page with the same
figure as inline SVG and the data table (no extra dependency).

Example:
    >>> from e2gcsearch.energy_model import fig3_frame
    >>> save_fig3(fig3_frame(), "fig3.png")          # doctest: +SKIP
"""

from __future__ import annotations

import html
import io
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from .plot_style import check_plot_path

# Okabe-Ito colours (colour-blind safe), one marker and line style per series so it reads in grey too.
SERIES = (
    ("macs_norm", r"MACs $M_c$", "#0072B2", "o", "-"),
    ("ai_norm", "arithmetic intensity AI", "#D55E00", "s", "-"),
    ("inv_ai_norm", "1 / AI", "#009E73", "^", "--"),
)
MODEL_SERIES = ("energy_norm", "modelled layer energy", "#CC79A7", "D", ":")
PAPER_RANGE = (1, 32)  # the group sizes of the paper's Tables III/IV


def _ratio_label(value: float, _position: object = None) -> str:
    """2 → '2', 0.25 → '1/4' (log-2 axes read better with fractions than 0.015625)."""
    if value >= 1:
        return f"{value:g}"
    return f"1/{1 / value:g}"


def fig3_figure(frame: pd.DataFrame, model_note: str | None = None):
    """The matplotlib Figure of Fig. 3 for ``frame`` (from ``fig3_frame``, optionally with an
    ``energy_norm`` column: the fitted model's energy of the layer, labelled with ``model_note``)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    shape = {key: int(frame[key].iloc[0]) for key in ("m", "n", "kernel", "h", "w")}  # one layer: every row has it
    series = list(SERIES) + ([MODEL_SERIES] if "energy_norm" in frame else [])
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=100, layout="constrained")
    for column, label, colour, marker, style in series:
        if column == "energy_norm" and model_note:
            label = f"{label} ({model_note})"
        ax.plot(
            frame["group_size"],
            frame[column],
            marker=marker,
            linestyle=style,
            color=colour,
            label=label,
            linewidth=1.8,
            markersize=5.5,
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    sizes = frame["group_size"].tolist()
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_major_formatter(FuncFormatter(_ratio_label))
    ax.axhline(1.0, color="#999999", linewidth=0.8, zorder=0)
    low, high = PAPER_RANGE
    if high <= max(sizes):
        ax.axvspan(low, high, color="#f0f0f0", zorder=-1, linewidth=0)
        ax.text(
            (low * high) ** 0.5,
            0.02,
            "G of the paper's Tables III/IV",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=8,
            color="#666666",
        )
    ax.set_xlabel("group size G (input channels per group)")
    ax.set_ylabel("value relative to depthwise (G = 1)")
    channels = float(shape.get("m", 1))

    def flip(x: np.ndarray) -> np.ndarray:  # G <-> g = m / G (its own inverse)
        return channels / np.maximum(np.asarray(x, dtype=float), 1e-9)

    top = ax.secondary_xaxis("top", functions=(flip, flip))
    top.xaxis.set_major_locator(FixedLocator([shape.get("m", 1) / size for size in sizes]))
    top.xaxis.set_minor_locator(NullLocator())
    top.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    top.set_xlabel("number of groups g = m / G")
    ax.grid(True, which="major", color="#e5e5e5", linewidth=0.7)
    ax.set_axisbelow(True)
    for side in ("right",):
        ax.spines[side].set_visible(False)
    k = shape.get("kernel", 3)
    fig.suptitle(
        f"E2GC Fig. 3 — {k}×{k} grouped conv, m = n = {shape.get('m')}, {shape.get('h')}×{shape.get('w')} output",
        fontsize=11,
    )
    ax.legend(frameon=False, loc="upper left", fontsize=9)
    return fig


def _html_page(frame: pd.DataFrame, svg: str, title: str) -> str:
    columns = ["group_size", "groups", "macs", "params", "activations", "ai", "macs_norm", "ai_norm", "inv_ai_norm"]
    columns += ["energy_norm"] if "energy_norm" in frame else []
    table = frame[columns].to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        "<style>body{font-family:sans-serif;max-width:760px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right}"
        "tr:nth-child(even){background:#f4f4f4}</style></head><body>"
        f"<h2>{html.escape(title)}</h2>{svg}<p>Normalized to the depthwise case (G = 1). "
        "MACs and weights counted as in e2gcsearch.cost; activations = input + output elements.</p>"
        f"{table}</body></html>\n"
    )


def save_fig3(frame: pd.DataFrame, path: str | Path, model_note: str | None = None) -> Path:
    """Draw Fig. 3 to ``path`` (.png, .pdf, .svg or .html) and return the path."""
    from matplotlib import pyplot as plt

    path = check_plot_path(path)
    fig = fig3_figure(frame, model_note)
    try:
        if path.suffix.lower() == ".html":
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg")
            svg = buffer.getvalue()
            svg = svg[svg.index("<svg") :]
            path.write_text(_html_page(frame, svg, "E2GC Fig. 3: MACs and arithmetic intensity against group size"))
        else:
            fig.savefig(path, dpi=200)
    except OSError as exc:
        raise DataError(f"cannot write {path} ({exc.strerror or exc}); choose a writable path") from None
    finally:
        plt.close(fig)
    return path
