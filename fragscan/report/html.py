"""The self-contained HTML report, rendered from a loaded Report alone (jinja2 + inline SVG).

The page fetches nothing: styles and the table-sorting script are inline, figures are inline SVG
whose text uses the reader's local sans-serif font.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from . import plots, threat_plots
from .model import Report


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("fragscan.report", "templates"), autoescape=True, undefined=StrictUndefined
    )
    environment.filters["score"] = lambda v: "—" if v is None else f"{v:+.4f}"
    environment.filters["interval"] = lambda i: "—" if i is None else f"[{i[0]:+.4f}, {i[1]:+.4f}]"
    environment.filters["sortkey"] = lambda v: "" if v is None else repr(float(v))
    environment.globals["class_colours"] = plots.CLASS_COLOURS
    environment.globals["scores"] = plots.SCORES
    environment.globals["score_symbols"] = plots.SCORE_SYMBOLS
    return environment


def render_html(report: Report) -> str:
    settings = report.settings
    curves = [
        (
            group,
            Markup(
                plots.response_curves(group.filters, group.numel, report.baseline.clean, report.baseline.adversarial)
            ),
        )
        for group in report.groups
    ]
    global_curves = (
        Markup(plots.response_curves(report.global_, None, report.baseline.clean, report.baseline.adversarial))
        if report.global_
        else None
    )
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            checkpoint_heatmap=Markup(checkpoint_heatmap(report)) if report.checkpoints else None,
            report=report,
            settings=settings,
            settings_rows=sorted((k, v) for k, v in settings.model_dump(mode="json").items() if k not in ("versions",)),
            summary_counts=Counter(g.summary_class for g in report.groups),
            resolution=report.resolution_note(),
            heatmap=Markup(plots.score_heatmap(report)) if report.groups else None,
            class_map=Markup(plots.class_map(report)) if report.groups else None,
            curves=curves,
            global_curves=global_curves,
            **threat_section(report),
        )
    )


def threat_section(report: Report) -> dict:
    """What templates/threat.html.j2 shows of a threat profile: nothing for a report without one."""
    threat = report.threat
    judged = threat is not None and bool(report.groups) and all(g.budget_classes for g in report.groups)
    return {
        "threat": threat,
        "budget_counts": [] if not judged else [
            Counter(g.budget_classes[i] for g in report.groups) for i in range(len(threat.budgets))
        ],
        "budget_class_map": Markup(threat_plots.budget_class_map(report)) if judged else None,
        "threat_groups": [] if not judged else [
            (g, threat_plots.flip_text(report, g), Markup(threat_plots.group_surface(report, g)))
            for g in report.groups
        ],
    }


def checkpoint_heatmap(report: Report) -> str:
    """Groups × checkpoints: the summary filter's summary score at each checkpoint."""
    settings = report.settings
    names = [g.name for g in report.groups]
    matrix = np.full((len(names), len(report.checkpoints)), np.nan)
    for column, checkpoint in enumerate(report.checkpoints):
        for group in checkpoint.groups:
            value = getattr(group.filters[settings.summary_filter].scores, settings.summary_score)
            if group.name in names and value is not None:
                matrix[names.index(group.name), column] = value
    return plots.diverging_heatmap(
        matrix,
        names,
        [c.label for c in report.checkpoints],
        f"{plots.SCORE_SYMBOLS[settings.summary_score]} ({settings.summary_filter})",
    )
