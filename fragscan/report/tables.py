"""The tidy long CSV: one row per group × filter × threshold, rendered from a Report alone."""

from __future__ import annotations

import csv
import io

from .model import FilterCurve, Report

CURVE_COLUMNS = (
    "group", "filter", "threshold_index", "threshold", "position", "removed", "numel", "samples", "clean", "adversarial"
)
GLOBAL_GROUP = "(global)"


def _rows(group: str, numel: int | str, filters: dict[str, FilterCurve]):
    for filter_id, curve in filters.items():
        for index, threshold in enumerate(curve.thresholds):
            yield (
                group, filter_id, index, threshold, curve.positions[index], curve.removed[index], numel,
                curve.samples, curve.clean[index], curve.adversarial[index],
            )


def curves_csv(report: Report) -> str:
    """``removed`` counts zeroed entries of ``numel``; accuracies are shares of the ``samples`` the
    sweep evaluated (all drawn, or fewer for an adaptive sweep that stopped early).
    Global-scope curves (all groups filtered at once) appear as group ``(global)``, with ``numel``
    empty: the report does not record the pooled size."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CURVE_COLUMNS)
    for group in report.groups:
        writer.writerows(_rows(group.name, group.numel, group.filters))
    if report.global_:
        writer.writerows(_rows(GLOBAL_GROUP, "", report.global_))
    return buffer.getvalue()
