"""Interactive ``.html`` plots of a study, drawn with plotly: the front (hovering a point shows the
trial's configuration) and the hypervolume history.

:mod:`e2gcsearch.report.plots` hands a plot here when the file ends in ``.html``; plotly is imported
only then, and its absence is a one-line error saying how to install it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..models import get_entry
from .front import FrontInfo, HypervolumeHistory, plot_axes
from .plot_style import INFEASIBLE_COLOR, STYLE, axis_label, backend_note, error_bars, front_groups, status_test_note


def _plotly():
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise ConfigError("interactive .html plots need plotly: pip install plotly (or plot to a .png)") from None
    return go


def save_front_html(info: FrontInfo, path: Path) -> Path:
    """Every trial of ``info`` as an interactive page; hovering a point shows its configuration."""
    go = _plotly()
    frame = info.frame
    x, y = plot_axes(info)
    backend = info.backend
    front, tied, dominated, infeasible = front_groups(frame)
    figure = go.Figure()
    hover = (
        "trial %{customdata[0]}<br>%{customdata[1]} %{customdata[2]} w=%{customdata[3]}<br>"
        "params %{customdata[4]:,}<br>MACs %{customdata[5]:,}<extra></extra>"
    )

    def add(rows: pd.DataFrame, name: str, marker: dict, show: bool = True) -> None:
        data = (
            np.stack(
                [
                    rows["trial"],
                    [get_entry(a).display_name for a in rows["arch"]],
                    rows["grouping"],
                    rows["width"],
                    rows["params"],
                    rows["macs"],
                ],
                axis=1,
            )
            if len(rows)
            else None
        )
        bars = {axis: error_bars(rows, metric) for axis, metric in (("x", x), ("y", y))}
        errors = {
            f"error_{axis}": {"type": "data", "symmetric": False, "array": bar[1], "arrayminus": bar[0], "thickness": 1}
            for axis, bar in bars.items()
            if bar is not None
        }
        figure.add_trace(
            go.Scatter(
                x=rows[x.name],
                y=rows[y.name],
                mode="markers",
                name=name,
                marker=marker,
                customdata=data,
                hovertemplate=hover,
                showlegend=show,
                **errors,
            )
        )

    for module, style in STYLE.items():
        symbol = "circle" if style["marker"] == "o" else "square"
        add(
            front[front["module"] == module],
            style["label"],
            {"color": style["color"], "symbol": symbol, "size": 9, "line": {"color": "black", "width": 1}},
        )
        add(
            tied[tied["module"] == module],
            f"{module}, tied with the front",
            {"color": "white", "symbol": symbol, "size": 9, "line": {"color": style["color"], "width": 2}},
        )
        add(
            dominated[dominated["module"] == module],
            f"{module}, dominated",
            {"color": style["color"], "symbol": symbol, "size": 7, "opacity": 0.35},
        )
    add(infeasible, "infeasible", {"color": INFEASIBLE_COLOR, "symbol": "x", "size": 7})
    ordered = front.sort_values(x.name)
    shape = "hv" if x.direction == "minimize" else "vh"
    figure.add_trace(
        go.Scatter(
            x=ordered[x.name],
            y=ordered[y.name],
            mode="lines",
            name="Pareto front",
            line={"shape": shape, "color": "black"},
            hoverinfo="skip",
        )
    )
    for _, row in frame[frame["baseline"].notna()].iterrows():
        figure.add_annotation(
            x=row[x.name],
            y=row[y.name],
            showarrow=True,
            arrowhead=2,
            ax=-60,
            ay=-30,
            text=f"{row['baseline']} (w={row['width']:g}), paper baseline",
            font={"size": 10},
        )
    figure.update_layout(
        title=f"Study '{info.study}': {axis_label(y)} vs {axis_label(x)}<br><sup>{'; '.join(filter(None, [backend_note(backend), status_test_note(frame)]))}</sup>",
        xaxis_title=x.header(backend),
        yaxis_title=axis_label(y),
        template="simple_white",
    )
    figure.write_html(path, include_plotlyjs=True)
    return path


def save_hypervolume_html(result: HypervolumeHistory, path: Path, note: str) -> Path:
    """Hypervolume vs trial number as an interactive page, ``note`` under its title."""
    go = _plotly()
    history = result.frame
    figure = go.Figure(
        go.Scatter(
            x=history["trial"], y=history["hypervolume"], mode="lines+markers", line={"shape": "hv"}, name="hypervolume"
        )
    )
    figure.update_layout(
        title=f"Study '{result.study}': hypervolume<br><sup>{note}</sup>",
        xaxis_title="trial number",
        yaxis_title="hypervolume (fraction of reference box)",
        template="simple_white",
    )
    figure.write_html(path, include_plotlyjs=True)
    return path
