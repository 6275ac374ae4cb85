"""Matplotlib figures of a Report as inline SVG text (method §9).

Figures are built with ``matplotlib.figure.Figure`` and the Agg-family SVG writer: no GUI backend,
no pyplot state. Text stays text (``svg.fonttype='none'``) so the page is small and needs no
embedded fonts; IDs are salted with a constant and the date is dropped so output is reproducible.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap, TwoSlopeNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ..config import SCORES  # noqa: E402
from .model import FilterCurve, Report  # noqa: E402
from .numbers import signed  # noqa: E402

CLASS_COLOURS = {
    "fragile": "#c0392b",
    "robust": "#27ae60",
    "antifragile": "#2471a3",
    "inconclusive": "#d7ccc8",  # neutral: the samples cannot tell
    "unperturbed": "#d4ac0d",
    "undefined": "#8e44ad",
}
CLEAN_COLOUR, ADVERSARIAL_COLOUR, REMOVED_COLOUR = "#1f4e79", "#c0392b", "#d5d8dc"
SCORE_SYMBOLS = {"clean": "S_clean", "adversarial": "S_adv", "difference": "S_diff"}
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)  # RDF boilerplate, not needed inline
_LARGEST_LIMIT = float(np.finfo(float).max) / 1e3
STYLE = {"svg.fonttype": "none", "svg.hashsalt": "fragscan", "font.size": 8, "font.family": "sans-serif"}


def svg(figure: Figure, *, tight: bool = True) -> str:
    """The figure as an ``<svg>`` element ready to inline in HTML (``tight`` costs a second layout pass)."""
    buffer = io.StringIO()
    with matplotlib.rc_context(STYLE):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight" if tight else None)
    text = buffer.getvalue()
    return _METADATA.sub("", text[text.index("<svg") :], count=1)


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(STYLE):
        return Figure(figsize=(width, height), layout="constrained")


def response_curves(curves: dict[str, FilterCurve], numel: int | None, clean0: float, adversarial0: float) -> str:
    """One panel per filter: clean and adversarial accuracy vs sweep position, bars for the share
    removed. Both are shares in [0, 1], so they share one axis (one layout pass keeps 54 groups fast)."""
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(2.5 * len(curves) + 0.3, 1.9))
        figure.subplots_adjust(left=0.5 / (2.5 * len(curves) + 0.3), right=0.99, bottom=0.2, top=0.87, wspace=0.12)
        axes = figure.subplots(1, len(curves), squeeze=False, sharey=True)[0]
        for ax, (filter_id, curve) in zip(axes, curves.items()):
            positions = np.asarray(curve.positions)
            total = numel or max(max(curve.removed), 1)
            width = 0.8 / max(len(positions) - 1, 1)
            ax.bar(
                positions, np.asarray(curve.removed) / total, width=width, color=REMOVED_COLOUR, label="share removed"
            )
            ax.axhline(clean0, color=CLEAN_COLOUR, lw=0.6, ls=":")
            ax.axhline(adversarial0, color=ADVERSARIAL_COLOUR, lw=0.6, ls=":")
            ax.plot(positions, curve.clean, color=CLEAN_COLOUR, lw=1.3, marker=".", ms=3, label="clean")
            ax.plot(
                positions, curve.adversarial, color=ADVERSARIAL_COLOUR, lw=1.3, marker=".", ms=3, label="adversarial"
            )
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlim(-0.04, 1.04)
            ax.set_xticks([0, 0.5, 1])
            ax.set_yticks([0, 0.5, 1])
            score = curve.scores.adversarial
            ax.set_title(
                f"{filter_id}: S_adv {signed(score, 3)}", fontsize=8, parse_math=False
            )
            ax.set_xlabel("threshold position t", fontsize=7, labelpad=1)
        axes[0].set_ylabel("share", fontsize=7, labelpad=1)
        return svg(figure, tight=False)


def _score_matrix(report: Report) -> tuple[np.ndarray, list[str]]:
    columns = [(f, s) for f in report.settings.filters for s in SCORES]
    matrix = np.array(
        [[np.nan if (v := getattr(g.filters[f].scores, s)) is None else v for f, s in columns] for g in report.groups],
        dtype=float,
    ).reshape(len(report.groups), len(columns))
    return matrix, [f"{f}\n{SCORE_SYMBOLS[s]}" for f, s in columns]


def _grid_figure(rows: list[str], columns: list[str], extra_width: float = 0.0) -> tuple[Figure, object]:
    figure = _figure(1.6 + 0.75 * len(columns) + extra_width + 0.06 * max(map(len, rows)), 1.2 + 0.2 * len(rows))
    ax = figure.subplots()
    # Labels are names (groups, checkpoint files, filters): "$" in one is a character, not TeX.
    ax.set_xticks(np.arange(len(columns)) + 0.5, columns, fontsize=7, parse_math=False)
    ax.set_yticks(np.arange(len(rows)) + 0.5, rows, fontsize=7, parse_math=False)
    ax.invert_yaxis()
    ax.xaxis.tick_top()
    return figure, ax


def diverging_heatmap(matrix: np.ndarray, rows: list[str], columns: list[str], label: str) -> str:
    """Cells coloured on a diverging scale centred on 0 (symmetric limits); undefined cells grey."""
    with matplotlib.rc_context(STYLE):
        figure, ax = _grid_figure(rows, columns, extra_width=1.0)
        finite = matrix[np.isfinite(matrix)]
        limit = float(np.abs(finite).max()) if finite.size else 1.0
        # The colour bar spans 2 x limit and its ticker multiplies that by up to 10: near the largest
        # float it overflows and matplotlib refuses the bar. No scan's score comes near; a damaged
        # report's still renders, its cells saturated.
        limit = min(limit, _LARGEST_LIMIT) if limit > 0 else 1.0
        mesh = ax.pcolormesh(
            np.ma.masked_invalid(matrix),
            cmap="RdBu",
            norm=TwoSlopeNorm(0.0, -limit, limit),
            edgecolors="white",
            linewidth=0.5,
        )
        ax.set_facecolor(CLASS_COLOURS["undefined"])  # as the class map shows undefined; its grey is inconclusive
        colorbar = figure.colorbar(mesh, ax=ax, shrink=min(1.0, 6 / max(len(rows), 1)) if len(rows) > 6 else 1.0)
        colorbar.set_label(label, parse_math=False)
        return svg(figure)


def score_heatmap(report: Report) -> str:
    matrix, columns = _score_matrix(report)
    return diverging_heatmap(
        matrix, [g.name for g in report.groups], columns, "score (0 = like the unfiltered network)"
    )


def class_map(report: Report) -> str:
    """Every (group, filter, score) class and the group's summary class, with a legend and counts."""
    names = list(CLASS_COLOURS)
    columns = [(f, s) for f in report.settings.filters for s in SCORES]
    codes = np.array(
        [
            [names.index(getattr(g.filters[f].classes, s)) for f, s in columns] + [names.index(g.summary_class)]
            for g in report.groups
        ]
    ).reshape(len(report.groups), len(columns) + 1)
    labels = [f"{f}\n{SCORE_SYMBOLS[s]}" for f, s in columns] + ["summary\nclass"]
    summary_counts = {name: int((codes[:, -1] == i).sum()) for i, name in enumerate(names)}
    return class_grid(
        codes, [g.name for g in report.groups], labels,
        lambda name, cells: f"{name}: {cells} cells, {summary_counts[name]} groups", divider=len(columns),
    )


def class_grid(
    codes: np.ndarray, rows: list[str], columns: list[str], legend: Callable[[str, int], str],
    divider: int | None = None,
) -> str:
    """A grid of classes (``codes``: indices into CLASS_COLOURS), a legend entry ``legend(class, cells)``
    per class present, and a black line before column ``divider`` where one is given."""
    names = list(CLASS_COLOURS)
    with matplotlib.rc_context(STYLE):
        figure, ax = _grid_figure(rows, columns, extra_width=1.4)
        ax.pcolormesh(
            codes,
            cmap=ListedColormap(list(CLASS_COLOURS.values())),
            vmin=-0.5,
            vmax=len(names) - 0.5,
            edgecolors="white",
            linewidth=0.5,
        )
        if divider is not None:
            ax.axvline(divider, color="black", lw=1.5)
        counts = {name: int((codes == i).sum()) for i, name in enumerate(names)}
        ax.legend(
            handles=[Patch(color=CLASS_COLOURS[n], label=legend(n, counts[n])) for n in names if counts[n]],
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            frameon=False,
            fontsize=7,
        )
        return svg(figure)
