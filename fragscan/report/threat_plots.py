"""Figures of a threat profile (method §6b) as inline SVG: the class map by budget, every group's
ε x threshold surface in one figure, and per group each filter's adversarial score against ε with
its intervals."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

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
    return plots.class_grid(
        codes, [g.name for g in report.groups], budget_labels(report), lambda name, cells: f"{name}: {cells} cells"
    )


def surface_overview(report: Report) -> str:
    """Every group's surface in one figure: a row per group, the summary filter's worst-case adversarial
    accuracy over B blocks (one per budget) of its threshold positions, on one colour scale. One image
    and one layout pass however many groups, where a figure per group cost ~0.1 s each (54 groups: 5 s)."""
    settings, budgets = report.settings, report.threat.budgets
    surfaces = [np.asarray(g.filters[settings.summary_filter].surface.adversarial, dtype=float) for g in report.groups]
    thresholds = max(s.shape[1] for s in surfaces)
    # a row: budget 0's thresholds, then budget 1's...; a shorter sweep's missing cells are blank
    rows = np.full((len(surfaces), len(budgets), thresholds), np.nan)
    for row, each in zip(rows, surfaces):
        row[:, : each.shape[1]] = each
    names = [g.name for g in report.groups]
    with plots.matplotlib.rc_context(plots.STYLE):
        label_width = 0.06 * max(map(len, names)) + 0.3
        figure = Figure(figsize=(label_width + 7.2, 0.9 + 0.16 * len(names)))
        figure.subplots_adjust(
            left=label_width / (label_width + 7.2), right=0.9, bottom=0.35 / (0.9 + 0.16 * len(names)),
            top=1 - 0.55 / (0.9 + 0.16 * len(names)),
        )
        ax = figure.subplots()
        mesh = ax.imshow(
            rows.reshape(len(names), -1), aspect="auto", cmap=SURFACE_MAP, vmin=0, vmax=1, interpolation="nearest"
        )
        for k in range(1, len(budgets)):
            ax.axvline(k * thresholds - 0.5, color="white", lw=2)
        ax.set_xticks([k * thresholds + (thresholds - 1) / 2 for k in range(len(budgets))], budget_labels(report),
                      fontsize=7)
        ax.xaxis.tick_top()
        ax.set_xlabel(f"threshold position t of the {settings.summary_filter} filter (0 → 1) within each budget",
                      fontsize=7, labelpad=2)
        ax.set_yticks(range(len(names)), names, fontsize=6 if len(names) > 24 else 7, parse_math=False)
        colorbar = figure.colorbar(mesh, ax=ax, fraction=0.03, pad=0.01)
        colorbar.set_label("worst-case adversarial accuracy", fontsize=7)
        return plots.svg(figure, tight=False)


def budget_scores(report: Report, group: GroupReport) -> str:
    """Each filter's S_adv per budget with its interval (threat.filter_level), ±τ shaded: one small
    axes, placed by hand (no layout engine), so 54 groups' figures stay cheap."""
    settings, budgets = report.settings, report.threat.budgets
    with plots.matplotlib.rc_context(plots.STYLE):
        figure = Figure(figsize=(4.2, 1.8))
        figure.subplots_adjust(left=0.14, right=0.72, bottom=0.24, top=0.96)
        ax = figure.subplots()
        ax.axhspan(-settings.tau, settings.tau, color="#eeeeee", lw=0)
        ax.axhline(0, color="black", lw=0.5)
        for marker, (filter_id, each) in zip(FILTER_MARKERS, group.filters.items()):
            scores = np.array([np.nan if s is None else s for s in each.surface.scores.adversarial], dtype=float)
            intervals = each.surface.intervals.adversarial if each.surface.intervals else [None] * len(budgets)
            low = [s - i[0] if i else 0 for s, i in zip(scores, intervals)]
            high = [i[1] - s if i else 0 for s, i in zip(scores, intervals)]
            ax.errorbar(range(len(budgets)), scores, yerr=[low, high], marker=marker, ms=3, lw=1, capsize=2,
                        label=filter_id)
        ax.set_xticks(range(len(budgets)), [f"{b:.3g}" for b in budgets], fontsize=7)
        ax.set_xlabel("budget ε", fontsize=7, labelpad=1)
        ax.set_ylabel("S_adv", fontsize=7, labelpad=1)
        ax.legend(fontsize=6, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
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
