"""Comparing reports (method §8): which groups keep their class across epochs, datasets or
architectures, and how their scores move.

Reports of one architecture are matched by group name. Reports of different architectures are
matched by role: the first conv, the shortcut (downsample) convs, the last linear layer, and
relative-depth bins (group i of n falls in bin floor(i·bins/n)). A role holding several groups has a
class only when they all agree ("mixed" otherwise) and the mean of their scores. For the summary filter
and score a group's class is its summary class (simultaneous over its report's groups). Invariance is a
claim: it needs the same decided class (fragile, robust or antifragile) in every report, so an
``inconclusive`` anywhere leaves the item not invariant.
"""

from __future__ import annotations

import re
from pathlib import Path
from statistics import fmean
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..base.errors import InputError
from ..base.limits import LIMITS_DOC, MAX_DEPTH_BINS
from ..config import Score
from ..report import GroupReport, NetworkGroup, Report
from ..report.model import DECIDED, Class
from ..scoring.evidence import group_class

SHORTCUT = re.compile(r"downsample|shortcut|skip")  # torchvision/timm ResNets name them downsample
RoleClass = Class | Literal["mixed", "absent"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComparedReport(_Model):
    path: str
    model: str
    dataset: str
    weights: str | None
    groups: int
    split: str
    samples: int = Field(description="samples evaluated")
    thresholds: int
    classify: str = Field(description="the class rule (--classify)")
    tau: float


class ComparedItem(_Model):
    key: str = Field(description="group name, or role")
    members: list[list[str]] = Field(description="per report, the groups matched to this key")
    classes: list[RoleClass] = Field(description="per report")
    scores: list[float | None] = Field(description="per report, the (mean) score")
    deltas: list[float | None] = Field(description="per report, score minus the first report's score")
    invariant: bool = Field(description="the same decided (fragile/robust/antifragile) class in every report")


class Comparison(_Model):
    by: Literal["name", "role"]
    filter: str
    score: Score
    depth_bins: int
    reports: list[ComparedReport]
    items: list[ComparedItem]
    warnings: list[str] = Field(
        default_factory=list, description="reports scanned with settings that change what a score means"
    )

    @property
    def invariant(self) -> list[ComparedItem]:
        return [item for item in self.items if item.invariant]


def roles(groups: list[GroupReport | NetworkGroup], bins: int) -> dict[str, list[str]]:
    """Role name -> the groups that play it, in network order."""
    convs = [g.name for g in groups if g.module_type.startswith("Conv")]
    linears = [g.name for g in groups if g.module_type == "Linear"]
    found: dict[str, list[str]] = {}
    if convs:
        found["first conv"] = convs[:1]
    shortcuts = [name for name in convs if SHORTCUT.search(name)]
    if shortcuts:
        found["shortcut convs"] = shortcuts
    if linears:
        found["last linear"] = linears[-1:]
    for index, group in enumerate(groups):
        low = index * bins // len(groups)
        found.setdefault(f"depth {low / bins:.2f}–{(low + 1) / bins:.2f}", []).append(group.name)
    return found


def report_roles(report: Report, bins: int, path: str | Path) -> dict[str, list[str]]:
    """:func:`roles` of the report's whole network, each keeping only the groups the report scanned:
    with ``--select 'layer4.*'`` the first conv is still ``conv1``, absent from that report."""
    if report.network is None:
        if report.settings.select:
            raise InputError(
                f"report {str(path)!r} was scanned with --select {','.join(report.settings.select)} and does not "
                "record the whole network (schema before 2.2), so its roles would be the selection's: rescan it "
                "with this fragscan, or compare --by name"
            )
        return roles(report.groups, bins)
    scanned = {g.name for g in report.groups}
    return {role: [name for name in names if name in scanned] for role, names in roles(report.network, bins).items()}


def _cell(report: Report, names: list[str], filter_id: str, score: str) -> tuple[RoleClass, float | None]:
    if not names:
        return "absent", None
    by_name = {g.name: g for g in report.groups}
    classes = {group_class(report, by_name[n], filter_id, score) for n in names}
    values = [getattr(by_name[n].filters[filter_id].scores, score) for n in names]
    defined = [v for v in values if v is not None]
    return (classes.pop() if len(classes) == 1 else "mixed"), (fmean(defined) if defined else None)


def compare(
    reports: list[Report],
    paths: list[str | Path],
    *,
    by: Literal["auto", "name", "role"] = "auto",
    filter_id: str | None = None,
    score: Score | None = None,
    depth_bins: int = 5,
) -> Comparison:
    if len(reports) < 2:
        raise InputError("compare needs at least two reports")
    if not 1 <= depth_bins <= MAX_DEPTH_BINS:
        raise InputError(f"--depth-bins must lie in [1, {MAX_DEPTH_BINS}], got {depth_bins}; see {LIMITS_DOC}")
    for path, report in zip(paths, reports):
        if not report.groups:
            raise InputError(
                f"report {str(path)!r} has no local-scope groups to compare (was it a --scope global scan?)"
            )
    first = reports[0].settings
    filter_id = filter_id or first.summary_filter
    score = score or first.summary_score
    for path, report in zip(paths, reports):
        if filter_id not in report.settings.filters:
            raise InputError(
                f"report {str(path)!r} has no {filter_id!r} sweep; choose --filter among "
                f"{', '.join(report.settings.filters)}"
            )
    same_model = len({r.model.name for r in reports}) == 1
    if by == "auto":
        by = "name" if same_model else "role"
    if by == "name":
        keys: list[str] = []
        for report in reports:
            keys += [g.name for g in report.groups if g.name not in keys]
        matched = [{key: [key] if key in {g.name for g in r.groups} else [] for key in keys} for r in reports]
    else:
        matched = [report_roles(r, depth_bins, p) for r, p in zip(reports, paths)]
        keys = []
        for table in matched:  # a role no report scanned (outside every --select) is no item
            keys += [key for key in table if key not in keys and any(t.get(key) for t in matched)]
    items = []
    for key in keys:
        members = [table.get(key, []) for table in matched]
        cells = [_cell(r, m, filter_id, score) for r, m in zip(reports, members)]
        classes = [c for c, _ in cells]
        scores = [s for _, s in cells]
        deltas = [None if s is None or scores[0] is None else s - scores[0] for s in scores]
        invariant = len(set(classes)) == 1 and classes[0] in DECIDED
        items.append(
            ComparedItem(key=key, members=members, classes=classes, scores=scores, deltas=deltas, invariant=invariant)
        )
    return Comparison(
        by=by,
        filter=filter_id,
        score=score,
        depth_bins=depth_bins,
        reports=[
            ComparedReport(
                path=str(p), model=r.model.name, dataset=r.dataset.name, weights=r.model.weights, groups=len(r.groups),
                split=r.dataset.split, samples=r.baseline.samples, thresholds=r.settings.thresholds,
                classify=r.settings.classify, tau=r.settings.tau,
            )
            for p, r in zip(paths, reports)
        ],
        items=items,
        warnings=[
            f"R{index} was scanned with other settings than R1, so its Δ may come from them, not from the network: "
            + "; ".join(changed)
            for index, report in enumerate(reports[1:], start=2)
            if (changed := report.setting_differences(reports[0]))
        ],
    )


def render_comparison_html(comparison: Comparison) -> str:
    # numpy, jinja2 and matplotlib load only when a page is rendered
    import numpy as np
    from markupsafe import Markup

    from ..report import plots
    from ..report.html import _environment

    matrix = np.array([[np.nan if s is None else s for s in item.scores] for item in comparison.items], dtype=float)
    heatmap = plots.diverging_heatmap(
        matrix.reshape(len(comparison.items), len(comparison.reports)),
        [item.key for item in comparison.items],
        [f"R{i + 1}" for i in range(len(comparison.reports))],
        f"{plots.SCORE_SYMBOLS[comparison.score]} ({comparison.filter})",
    )
    environment = _environment()
    environment.globals["class_colours"] = {**plots.CLASS_COLOURS, "mixed": "#a6acaf", "absent": "#bdc3c7"}
    return environment.get_template("compare.html.j2").render(comparison=comparison, heatmap=Markup(heatmap))
