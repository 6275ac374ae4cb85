"""Figures of a threat profile (method §6b) as inline SVG: the class map by budget, and per group the
ε x threshold surface beside each filter's adversarial score against ε with its intervals."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from . import plots
from .model import GroupReport, Report

SURFACE_MAP = "viridis"  # accuracy in [0, 1]: sequential, readable in grey and by the colour-blind
FILTER_MARKERS = ("o", "s", "^", "D", "v")


def budget_labels(report: Report) -> list[str]:
    """``ε=0.05`` per budget, the headline starred."""
    return [f"ε={eps:.3g}{'*' if eps == report.threat.headline else ''}" for eps in report.threat.budgets]


def budget_class_map(report: Report) -> str:
    """Groups x budgets: each group's class per budget (threat.summary_level), with counts per class."""
    names = list(plots.CLASS_COLOURS)
    codes = np.array([[names.index(c) for c in g.budget_classes] for g in report.groups])
    with plots.matplotlib.rc_context(plots._STYLE):
        figure, ax = plots._grid_figure([g.name for g in report.groups], budget_labels(report), extra_width=1.4)
        ax.pcolormesh(
            codes, cmap=ListedColormap(list(plots.CLASS_COLOURS.values())), vmin=-0.5, vmax=len(names) - 0.5,
            edgecolors="white", linewidth=0.5,
        )
        counts = {name: int((codes == i).sum()) for i, name in enumerate(names)}
        ax.legend(
            handles=[Patch(color=plots.CLASS_COLOURS[n], label=f"{n}: {counts[n]} cells") for n in names if counts[n]],
            loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=7,
        )
        return plots.svg(figure)


def group_surface(report: Report, group: GroupReport) -> str:
    """Left: the summary filter's worst-case adversarial accuracy over budget x threshold position.
    Right: each filter's S_adv per budget with its interval (threat.filter_level), ±τ shaded."""
    settings, budgets = report.settings, report.threat.budgets
    curve = group.filters[settings.summary_filter]
    with plots.matplotlib.rc_context(plots._STYLE):
        # placed by hand, not by a layout engine: one layout pass keeps 54 groups' figures fast
        figure = Figure(figsize=(6.6, max(1.9, 0.9 + 0.22 * len(budgets))))
        figure.subplots_adjust(left=0.1, right=0.98, bottom=0.22, top=0.87, wspace=0.45)
        left, right = figure.subplots(1, 2, width_ratios=[1.3, 1])
        mesh = left.imshow(
            np.asarray(curve.surface.adversarial), aspect="auto", origin="lower", cmap=SURFACE_MAP, vmin=0, vmax=1,
            extent=(-0.5 / (len(curve.positions) - 1), 1 + 0.5 / (len(curve.positions) - 1), -0.5, len(budgets) - 0.5),
        )
        left.set_yticks(range(len(budgets)), budget_labels(report), fontsize=7)
        left.set_xlabel(f"{settings.summary_filter} threshold position t", fontsize=7, labelpad=1)
        left.set_title("worst-case adversarial accuracy", fontsize=8)
        figure.colorbar(mesh, ax=left, fraction=0.05, pad=0.02)
        right.axhspan(-settings.tau, settings.tau, color="#eeeeee", lw=0)
        right.axhline(0, color="black", lw=0.5)
        for marker, (filter_id, each) in zip(FILTER_MARKERS, group.filters.items()):
            scores = np.array([np.nan if s is None else s for s in each.surface.scores.adversarial], dtype=float)
            intervals = each.surface.intervals.adversarial if each.surface.intervals else [None] * len(budgets)
            low = [s - i[0] if i else 0 for s, i in zip(scores, intervals)]
            high = [i[1] - s if i else 0 for s, i in zip(scores, intervals)]
            right.errorbar(range(len(budgets)), scores, yerr=[low, high], marker=marker, ms=3, lw=1, capsize=2,
                           label=filter_id)
        right.set_xticks(range(len(budgets)), [f"{b:.3g}" for b in budgets], fontsize=7)
        right.set_xlabel("budget ε", fontsize=7, labelpad=1)
        right.set_title("S_adv per budget, interval, ±τ", fontsize=8, parse_math=False)
        right.legend(fontsize=6, frameon=False, loc="best")
        return plots.svg(figure, tight=False)


def flip_text(report: Report, group: GroupReport) -> str:
    """"robust up to 0.05, fragile from 0.1", or the class held at every decided budget, or "undecided"."""
    budgets, classes = report.threat.budgets, group.budget_classes
    decided = [(eps, c) for eps, c in zip(budgets, classes) if c in ("fragile", "robust", "antifragile")]
    if not decided:
        return "undecided at every budget"
    if group.flip_eps is None:
        return f"{decided[0][1]} wherever decided"
    before = [(eps, c) for eps, c in decided if eps < group.flip_eps][-1]
    return f"{before[1]} up to {before[0]:.3g}, {classes[budgets.index(group.flip_eps)]} from {group.flip_eps:.3g}"
