"""The self-contained HTML report, rendered from a loaded Report alone (jinja2 + inline SVG).

The page fetches nothing: styles and the table-sorting script are inline, figures are inline SVG
whose text uses the reader's local sans-serif font.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from ..config import SCORES
from . import plots, threat_plots
from .model import Report
from .numbers import signed

_DARK_TEXT = "#1c2833"
# Up to this many groups the curve panels show open; more fold to their titles (ResNet-50's 54
# groups would otherwise make a page of some 12 000 px of figures), and a group's link opens its own.
OPEN_CURVES = 12


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("fragscan.report", "templates"), autoescape=True, undefined=StrictUndefined
    )
    environment.filters["score"] = signed
    environment.filters["interval"] = lambda i: "—" if i is None else f"[{signed(i[0])}, {signed(i[1])}]"
    environment.filters["text_on"] = text_on
    environment.filters["sortkey"] = lambda v: "" if v is None else repr(float(v))
    environment.globals["class_colours"] = plots.CLASS_COLOURS
    environment.globals["scores"] = SCORES
    environment.globals["score_symbols"] = plots.SCORE_SYMBOLS
    return environment


def text_on(background: str) -> str:
    """Dark or white text, whichever contrasts more with ``background`` (#rrggbb) by WCAG's
    relative luminance: white on a light badge (inconclusive's grey) cannot be read."""
    channels = [int(background[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # Contrast with white is 1.05 / (L + 0.05), with the dark text (L = 0.021) (L + 0.05) / 0.071.
    return "#fff" if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.071 else _DARK_TEXT


def next_steps(report: Report) -> list[tuple[str, str]]:
    """What would decide inconclusive groups, each as (option, what it does and costs); empty when
    every group is decided. Costs are read off this scan: its samples, split and duration."""
    if report.resolution_note() is None:
        return []
    settings, samples, size = report.settings, report.baseline.samples, report.dataset.size
    pace = f"this scan took {report.run.duration_s:.0f} s for {samples:,} samples"
    steps = []
    if samples < size:
        steps.append((
            f"--max-samples {size}",
            f"every sample of the {report.dataset.split} split: intervals narrow as 1/√n, to about "
            f"{(samples / size) ** 0.5:.2f} × today's width; the time grows in proportion to the samples "
            f"(about {report.run.duration_s * size / samples:.0f} s; {pace})",
        ))
    if settings.adaptive is None:
        steps.append((
            "--adaptive",
            "looks at growing sample counts up to --max-samples and stops each group's sweep once its class is "
            "decided, or out of reach: samples are spent only on the undecided, at most a full scan's cost",
        ))
    steps.append((
        f"--tau {2 * settings.tau:g}",
        f"a coarser claim: robust then means |S| ≤ {2 * settings.tau:g}, not {settings.tau:g}, which decides "
        f"groups whose interval lies within ±{2 * settings.tau:g}, while fragile and antifragile need it beyond "
        f"±{2 * settings.tau:g}; a new scan of the same size ({pace})",
    ))
    return steps


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
            next_steps=next_steps(report),
            heatmap=Markup(plots.score_heatmap(report)) if report.groups else None,
            class_map=Markup(plots.class_map(report)) if report.groups else None,
            curves=curves,
            open_curves=OPEN_CURVES,
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
        "surface_overview": Markup(threat_plots.surface_overview(report)) if judged else None,
        "threat_groups": [] if not judged else [
            (g, threat_plots.flip_text(report, g), Markup(threat_plots.budget_scores(report, g)))
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
