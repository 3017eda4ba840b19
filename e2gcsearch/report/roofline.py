"""The roofline as data and as a picture: the per-layer table of ``profile --per-layer --roofline``
and ``analyze --roofline``, the points of ``analyze --roofline --plot``, and the plot itself.

Data first (:func:`roofline_points`: one row per grouped conv of each network, with its counted
arithmetic intensity and its achieved FLOP/s over the whole step), drawing second
(:func:`save_roofline_plot`: the device's two measured ceilings, one panel per grouping rule,
points coloured by G or g). ``.png`` is drawn with matplotlib; ``.html`` is a self-contained page
with the same figure as inline SVG and the points' table.

Example:
    >>> points = roofline_points([(arch_config, report)], impl="nchw")     # doctest: +SKIP
    >>> save_roofline_plot(points, report.peaks, "roofline.png")           # doctest: +SKIP
"""

from __future__ import annotations

import html
import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ArchConfig
from ..errors import ConfigError, DataError
from ..profiling.layer_roofline import RooflineReport
from ..profiling.peaks import DevicePeaks
from .tables import fixed, render

SUFFIXES = (".png", ".html")
TABLE_COLUMNS = [
    "layer",
    "group_size",
    "groups",
    "impl",
    "timed",
    "fwd_ai_flop_per_byte",
    "fwd_achieved_gflops",
    "fwd_bound_gflops",
    "fwd_fraction",
    "bwd_ai_flop_per_byte",
    "bwd_achieved_gflops",
    "bwd_bound_gflops",
    "bwd_fraction",
    "fwd_limit",
    "ms",
    "roofline_ms",
    "time_over_roofline",
]
HEADERS = {
    "group_size": "G",
    "groups": "g",
    "fwd_ai_flop_per_byte": "fwd AI FLOP/B (counted)",
    "fwd_achieved_gflops": "fwd GFLOP/s (measured)",
    "fwd_bound_gflops": "fwd bound GFLOP/s",
    "fwd_fraction": "fwd % of bound",
    "bwd_ai_flop_per_byte": "bwd AI FLOP/B (counted)",
    "bwd_achieved_gflops": "bwd GFLOP/s (measured)",
    "bwd_bound_gflops": "bwd bound GFLOP/s",
    "bwd_fraction": "bwd % of bound",
    "fwd_limit": "fwd limit",
    "ms": "ms (measured)",
    "roofline_ms": "roofline ms",
    "time_over_roofline": "time / roofline",
}
PERCENT = lambda value: fixed(1)(None if value is None else 100 * value)  # noqa: E731
FORMATTERS = {
    "group_size": fixed(0),
    "fwd_ai_flop_per_byte": fixed(2),
    "fwd_achieved_gflops": fixed(2),
    "fwd_bound_gflops": fixed(2),
    "fwd_fraction": PERCENT,
    "bwd_ai_flop_per_byte": fixed(2),
    "bwd_achieved_gflops": fixed(2),
    "bwd_bound_gflops": fixed(2),
    "bwd_fraction": PERCENT,
    "ms": fixed(3),
    "roofline_ms": fixed(3),
    "time_over_roofline": fixed(1),
}


def roofline_frame(report: RooflineReport) -> pd.DataFrame:
    """Every row of ``report`` with all its figures (the CSV form)."""
    return pd.DataFrame([row.to_dict() for row in report.rows])


def roofline_text(report: RooflineReport, fmt: str, title: str = "") -> str:
    """The peaks, what is counted, and the per-layer table in ``fmt`` (human columns for table and
    markdown, every column for csv)."""
    frame = roofline_frame(report)
    if fmt == "csv":
        return render(frame, "csv")
    lines = [title] if title else []
    lines += report.peaks.lines()
    lines.append(
        f"roofline per layer at B={report.batch_size}, {report.mode} mode; time measured, FLOPs and bytes "
        f"{report.traffic}; bound = min(peak, AI x bandwidth), % of bound = achieved / bound"
    )
    lines.append(render(frame[TABLE_COLUMNS], fmt, FORMATTERS, HEADERS))
    return "\n".join(lines)


def roofline_points(networks: Iterable[tuple[ArchConfig, RooflineReport]], impl: str) -> pd.DataFrame:
    """One row per timed layer of each network under ``impl`` (``auto``: the faster per layer): the
    grouping rule and its value (G or g), the layer's step (forward + backward) as one roofline
    point: counted AI (FLOP/byte), achieved GFLOP/s (counted FLOPs / measured time), bound, fraction."""
    rows = []
    for arch_config, report in networks:
        for row in report.chosen(impl):
            point = row.point
            rows.append(
                {
                    "network": arch_config.label(),
                    "rule": arch_config.module_label,
                    "value": arch_config.grouping_value,
                    "symbol": "g" if arch_config.groups is not None else "G",
                    "layer": row.layer,
                    "impl": row.impl,
                    "ai_flop_per_byte": point.ai,
                    "achieved_gflops": point.achieved_flops_per_s / 1e9,
                    "bound_gflops": point.bound_flops_per_s / 1e9,
                    "fraction": point.fraction,
                    "ms": 1000 * point.seconds,
                }
            )
    return pd.DataFrame(rows)


def summary_lines(points: pd.DataFrame) -> list[str]:
    """Per network: the median fraction of the bound its grouped convs reach, and its range."""
    lines = []
    for network, rows in points.groupby("network", sort=False):
        fraction = rows["fraction"]
        lines.append(
            f"{network}: median {100 * fraction.median():.1f} % of the bound over {len(rows)} grouped convs "
            f"({100 * fraction.min():.1f}-{100 * fraction.max():.1f} %), {rows['ms'].sum():.2f} ms measured "
            f"against {rows['ms'].mul(rows['fraction']).sum():.2f} ms of roofline time"
        )
    return lines


def check_roofline_path(path: str | Path) -> Path:
    """A roofline plot file: ``.png`` or ``.html`` in an existing folder (else one-line errors)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"cannot draw the roofline to {path.name!r}: give a file ending in .png or .html")
    if not path.parent.exists():
        raise DataError(f"cannot write {path}: folder {path.parent} does not exist; create it or choose another path")
    return path


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("the roofline plot needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    return plt


def _ceiling_lines(ax, peaks: DevicePeaks, low: float, high: float) -> None:
    """The two measured ceilings over AI from ``low`` to ``high`` (FLOP/byte), each in the legend
    with its unit and the kernel that measured it."""
    ceiling = peaks.ceiling
    ridge = min(max(ceiling.ridge, low), high)
    slope = np.geomspace(low, ridge, 50)
    ax.plot(
        slope,
        slope * ceiling.bytes_per_s / 1e9,
        color="#333333",
        linestyle="--",
        linewidth=1.6,
        label=f"memory {ceiling.bytes_per_s / 1e9:.1f} GB/s (measured: copy)",
    )
    ax.plot(
        [ridge, high],
        [ceiling.flops_per_s / 1e9] * 2,
        color="#333333",
        linewidth=1.6,
        label=f"compute {ceiling.flops_per_s / 1e9:.1f} GFLOP/s (measured: {peaks.compute.kernel.split(',')[0]})",
    )


def roofline_figure(points: pd.DataFrame, peaks: DevicePeaks, title: str):
    """The Figure: one panel per grouping rule, sharing the y axis; points coloured by G or g."""
    plt = _pyplot()
    rules = list(dict.fromkeys(points["rule"]))
    fig, axes = plt.subplots(
        1, len(rules), figsize=(5.6 * len(rules), 4.6), dpi=100, sharey=True, squeeze=False, layout="constrained"
    )
    ridge = peaks.ceiling.ridge
    low = min(points["ai_flop_per_byte"].min(), ridge) / 3
    high = max(points["ai_flop_per_byte"].max(), ridge) * 3
    colours = plt.get_cmap("viridis")
    for ax, rule in zip(axes[0], rules):
        mine = points[points["rule"] == rule]
        values = sorted(dict.fromkeys(mine["value"]), key=lambda v: (isinstance(v, str), v))
        _ceiling_lines(ax, peaks, low, high)
        for index, value in enumerate(values):
            rows = mine[mine["value"] == value]
            ax.scatter(
                rows["ai_flop_per_byte"],
                rows["achieved_gflops"],
                s=28,
                color=colours(index / max(1, len(values) - 1) * 0.9),
                edgecolor="black",
                linewidth=0.4,
                label=f"{rows['symbol'].iloc[0]} = {value}",
                zorder=3,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{rule}: one point per grouped conv", fontsize=10)
        ax.set_xlabel("arithmetic intensity, FLOP/byte (counted: compulsory traffic)")
        ax.grid(True, which="major", color="#e5e5e5", linewidth=0.7)
        ax.set_axisbelow(True)
        ax.set_ylim(top=peaks.ceiling.flops_per_s / 1e9 * 12)  # room for the legend above the roof
        ax.legend(frameon=False, fontsize=8, loc="upper left")
    axes[0][0].set_ylabel("GFLOP/s (counted FLOPs / measured time)")
    fig.suptitle(title, fontsize=10)
    return fig


def _html_page(points: pd.DataFrame, peaks: DevicePeaks, svg: str, title: str) -> str:
    table = points.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)
    notes = "".join(f"<li>{html.escape(line)}</li>" for line in peaks.lines())
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right}"
        "tr:nth-child(even){background:#f4f4f4}</style></head><body>"
        f"<h2>{html.escape(title)}</h2>{svg}<ul>{notes}</ul>"
        "<p>Ceilings measured on this device; FLOPs (2 x MACs) and bytes (compulsory traffic) counted; "
        "times measured, forward + backward of each layer alone. fraction = achieved / bound.</p>"
        f"{table}</body></html>\n"
    )


def save_roofline_plot(points: pd.DataFrame, peaks: DevicePeaks, path: str | Path, title: str = "Roofline") -> Path:
    """Draw the roofline of ``points`` under ``peaks`` to ``path`` (.png or .html) and return the path."""
    path = check_roofline_path(path)
    if points.empty:
        raise DataError("no grouped conv was timed, so the roofline has no point to draw")
    fig = roofline_figure(points, peaks, title)
    plt = _pyplot()
    try:
        if path.suffix.lower() == ".html":
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg")
            svg = buffer.getvalue()
            path.write_text(_html_page(points, peaks, svg[svg.index("<svg") :], title))
        else:
            fig.savefig(path, dpi=200)
    except OSError as exc:
        raise DataError(f"cannot write {path} ({exc.strerror or exc}); choose a writable path") from None
    finally:
        plt.close(fig)
    return path
