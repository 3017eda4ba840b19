"""Draw the results of :mod:`e2gcsearch.report`: the accuracy-vs-energy front and the hypervolume history.

This module only draws. Everything it shows comes from the :class:`~e2gcsearch.report.front.FrontInfo`
or :class:`~e2gcsearch.report.front.HypervolumeHistory` it is given (rows, objectives, backend and
counts); it never opens a study.

``.png``, ``.pdf`` and ``.svg`` are drawn here with matplotlib; ``.html`` with plotly by
:mod:`e2gcsearch.report.plots_html` (interactive, hover shows each trial's configuration; needs
``pip install plotly``). What both share (colours, markers, labels): :mod:`e2gcsearch.report.plot_style`.

Example:
    >>> from e2gcsearch.store.results import front_info
    >>> save_front_plot(front_info(study, include_dominated=True), "front.png")   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..metrics import Metric
from .front import FrontInfo, HypervolumeHistory, plot_axes
from .plot_style import (
    INFEASIBLE_COLOR,
    STYLE,
    axis_label,
    backend_note,
    check_plot_path,
    error_bars,
    front_groups,
    status_test_note,
)
from .plots_html import save_front_html, save_hypervolume_html


def _save(figure, path: Path) -> Path:
    try:
        figure.savefig(path, dpi=200, bbox_inches="tight")
    except OSError as exc:
        raise DataError(f"cannot write {path} ({exc.strerror or exc}); choose a writable path") from None
    return path


def _point_label(row: pd.Series) -> str:
    return f"{row['grouping']}, w={row['width']:g}"


def _step_kind(x: Metric) -> str:
    # Attainment line: between two front points the best reachable y is that of the point with the
    # better x, so the step holds its value to the right when x is minimised, to the left otherwise.
    return "steps-post" if x.direction == "minimize" else "steps-pre"


def save_front_plot(info: FrontInfo, path: str | Path) -> Path:
    """Scatter every trial of ``info`` (accuracy vs energy), with the front as a step line."""
    path = check_plot_path(path)
    frame = info.frame
    if frame.empty:
        raise DataError("nothing to plot: the study has no completed trials yet; run 'e2gcsearch run' first")
    if path.suffix.lower() == ".html":
        return save_front_html(info, path)
    from matplotlib.figure import Figure

    x, y = plot_axes(info)
    backend = info.backend
    front, tied, dominated, infeasible = front_groups(frame)
    figure = Figure(figsize=(8.4, 4.6), layout="constrained")
    ax = figure.add_subplot()
    for module, style in STYLE.items():
        if not (frame["module"] == module).any():
            continue  # no legend entry for a rule the study never tried
        mine = [rows[rows["module"] == module] for rows in (front, tied, dominated)]
        for rows, alpha in zip(mine, (0.9, 0.7, 0.25)):  # 95 % intervals: error bars
            if len(rows):
                ax.errorbar(
                    rows[x.name],
                    rows[y.name],
                    xerr=error_bars(rows, x),
                    yerr=error_bars(rows, y),
                    fmt="none",
                    ecolor=style["color"],
                    elinewidth=0.8,
                    alpha=alpha,
                    zorder=1,
                )
        ax.scatter(
            mine[2][x.name],
            mine[2][y.name],
            s=26,
            color=style["color"],
            marker=style["marker"],
            alpha=0.35,
            linewidths=0,
        )
        ax.scatter(
            mine[1][x.name],
            mine[1][y.name],
            s=46,
            facecolors="white",
            marker=style["marker"],
            edgecolors=style["color"],
            linewidths=1.4,
            zorder=3,
        )
        ax.scatter(
            mine[0][x.name],
            mine[0][y.name],
            s=46,
            color=style["color"],
            marker=style["marker"],
            edgecolors="black",
            linewidths=0.8,
            label=style["label"],
            zorder=3,
        )
    if len(tied):
        ax.scatter(
            [],
            [],
            s=46,
            facecolors="white",
            edgecolors="#555555",
            linewidths=1.4,
            label="tied with the front (within the noise)",
        )
    if len(dominated):
        ax.scatter([], [], s=26, color="#9a9a9a", alpha=0.45, linewidths=0, label="dominated (faded colour)")
    ax.plot([], [], color="#555555", linewidth=0.8, label="95 % interval")
    if len(infeasible):
        ax.scatter(
            infeasible[x.name],
            infeasible[y.name],
            s=24,
            color=INFEASIBLE_COLOR,
            marker="x",
            linewidths=0.9,
            alpha=0.7,
            label="infeasible (violates a constraint)",
        )
    ordered = front.sort_values(x.name)
    if len(info.objectives) == 2 and len(ordered):
        ax.plot(
            ordered[x.name],
            ordered[y.name],
            drawstyle=_step_kind(x),
            color="black",
            linewidth=1.1,
            zorder=2,
            label=f"Pareto front ({len(ordered)} trials)",
        )
    # Labels go on the side no trial reaches (the direction that would dominate the point).
    horizontal = "right" if x.direction == "minimize" else "left"
    vertical = "bottom" if y.direction == "maximize" else "top"
    offset = (-4 if horizontal == "right" else 4, 4 if vertical == "bottom" else -4)
    for _, row in ordered.iterrows():
        ax.annotate(
            _point_label(row),
            (row[x.name], row[y.name]),
            xytext=offset,
            textcoords="offset points",
            ha=horizontal,
            va=vertical,
            fontsize=6.5,
            color="#333333",
        )
    _mark_baselines(ax, frame, x, y, offset, horizontal, vertical)
    _style_axes(ax, frame, x, y, backend)
    ax.margins(x=0.12, y=0.08)  # room for the labels of the outermost points
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=7.5,
        frameon=False,
        borderaxespad=0.0,
        title="\n".join(
            filter(None, [f"{info.completed} completed trials, {info.feasible} feasible", status_test_note(frame)])
        ),
        title_fontsize=7.5,
    )
    figure.suptitle(f"Study '{info.study}': {axis_label(y)} vs {axis_label(x)}", fontsize=10.5)
    ax.set_title(backend_note(backend), fontsize=8, color="#444444")
    return _save(figure, path)


def _style_axes(ax, frame: pd.DataFrame, x: Metric, y: Metric, backend: str | None) -> None:
    values = frame[x.name].to_numpy(dtype=float)
    if x.is_energy and values.min() > 0 and values.max() / values.min() > 20:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(x.header(backend) + (", log scale" if ax.get_xscale() == "log" else ""), fontsize=9)
    ax.set_ylabel(axis_label(y), fontsize=9)
    ax.grid(True, which="major", alpha=0.3, linewidth=0.6)
    ax.tick_params(labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _mark_baselines(
    ax, frame: pd.DataFrame, x: Metric, y: Metric, offset: tuple[int, int], horizontal: str, vertical: str
) -> None:
    """Stars on the trials that reproduce a paper baseline (one legend entry per baseline network)."""
    baselines = frame[frame["baseline"].notna()]
    for name, rows in baselines.groupby("baseline", sort=True):
        ax.scatter(
            rows[x.name],
            rows[y.name],
            s=120,
            marker="*",
            color="#E69F00",
            edgecolors="black",
            linewidths=0.6,
            zorder=4,
            label=f"paper baseline: {name}",
        )
        for _, row in rows.iterrows():
            if row["dominated"] or not row["feasible"]:  # front members are labelled already
                ax.annotate(
                    f"w={row['width']:g}",
                    (row[x.name], row[y.name]),
                    xytext=offset,
                    textcoords="offset points",
                    ha=horizontal,
                    va=vertical,
                    fontsize=6.5,
                    color="#7a5200",
                )


def save_hypervolume_plot(result: HypervolumeHistory, path: str | Path) -> Path:
    """Hypervolume vs trial number (a step line; dots where a trial improved the front)."""
    path = check_plot_path(path)
    history = result.frame
    if history.empty:
        raise DataError("nothing to plot: the study has no completed trials yet; run 'e2gcsearch run' first")
    reference, units = result.reference, result.units
    note = (
        "reference point: " + ", ".join(f"{k} = {v:.3g} {units.get(k, '')}".rstrip() for k, v in reference.items())
        if reference
        else "no feasible trial yet"
    )
    if path.suffix.lower() == ".html":
        return save_hypervolume_html(result, path, note)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = figure.add_subplot()
    ax.plot(history["trial"], history["hypervolume"], drawstyle="steps-post", color="#0072B2", linewidth=1.4)
    improved = history[history["improved"].astype(bool)]
    ax.scatter(
        improved["trial"], improved["hypervolume"], s=18, color="#0072B2", zorder=3, label="trial that moved the front"
    )
    ax.set_xlabel("trial number", fontsize=9)
    ax.set_ylabel("hypervolume (fraction of reference box)", fontsize=9)
    ax.set_ylim(0, max(1e-9, float(history["hypervolume"].max())) * 1.08)
    ax.grid(True, alpha=0.3, linewidth=0.6)
    ax.tick_params(labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="lower right", fontsize=7.5)
    figure.suptitle(f"Study '{result.study}': hypervolume of the feasible front", fontsize=10.5)
    ax.set_title(f"objectives normalised to [best, worst + 10 % of range]; {note}", fontsize=7.5, color="#444444")
    return _save(figure, path)


__all__ = ["save_front_plot", "save_hypervolume_plot"]
