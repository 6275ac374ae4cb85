"""The one-screen summary of a report, rendered from the Report alone."""

from __future__ import annotations

from collections import Counter

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..report import Report
from ..report.numbers import signed
from .ui import print_table

CLASS_STYLE = {
    "fragile": "red", "robust": "green", "antifragile": "cyan", "inconclusive": "dim", "unperturbed": "yellow",
    "undefined": "magenta",
}


def _attacked(report: Report, budget) -> str:
    """``FGSM ε=0.1``, or a profile's ``the worst case of FGSM, PGD at ε=0.1`` (its headline budget)."""
    settings = report.settings
    if report.threat is None:
        return f"{settings.attack} {budget(settings.attack, settings.eps_used)}"
    attacks = ", ".join(a.attack for a in report.threat.attacks if a.eps == report.threat.headline)
    return f"the worst case of {attacks} at ε={report.threat.headline:.4g}"


def print_summary(report: Report, console: Console) -> None:
    from ..models.sanity import near_chance
    from ..sweep.attacks import (
        budget,  # torch and torchattacks are slow to import: only a summary after a scan needs them
    )

    settings = report.settings
    console.print(
        f"[bold]{report.model.name}[/bold] on [bold]{report.dataset.name}[/bold]/{report.dataset.split} "
        f"({report.baseline.samples} samples): clean {report.baseline.clean:.3f}, "
        f"adversarial {report.baseline.adversarial:.3f} under {_attacked(report, budget)} "
        f"({settings.attack_mode}), device {settings.device_used}"
        + (
            f", {settings.precision_used} ({settings.precision_disagreement:.2%} of samples changed against fp32)"
            if settings.precision_used != "fp32"
            else ""
        ),
        highlight=False,
        soft_wrap=True,
    )
    if report.threat is not None:
        worst = ", ".join(f"ε={w.eps:.4g} {w.adversarial:.3f}" for w in report.threat.worst)
        flips = sum(g.flip_eps is not None for g in report.groups)
        console.print(
            f"threat profile {report.threat.spec}: worst-case accuracy {worst}; the classes below are at the headline "
            f"ε={report.threat.headline:.4g}; {flips} of {len(report.groups)} groups change class with the budget",
            highlight=False,
            soft_wrap=True,
        )
    chance = near_chance(report.baseline.clean, report.model.num_classes)
    if chance:  # above the table, in red: every class below is noise
        console.print(
            Text.assemble(("near chance: ", "bold red"), chance, "; the classes below mean nothing"), soft_wrap=True
        )
    if report.checkpoints:
        labels = [checkpoint.label for checkpoint in report.checkpoints]
        console.print(
            f"{len(labels)} checkpoints scanned ({', '.join(labels)}); the scores below are the last one's",
            highlight=False,
            soft_wrap=True,
        )
    adaptive = settings.adaptive is not None
    rows = [
        (group.name, str(group.numel), group.filters, group.summary_class, group.half_width) for group in report.groups
    ]
    if report.global_:  # a global-scope scan's one result: every group filtered at once
        summary_curve = report.global_[settings.summary_filter]
        rows.append((
            "(global)", "all", report.global_, getattr(summary_curve.classes, settings.summary_score),
            None if summary_curve.half_widths is None else getattr(summary_curve.half_widths, settings.summary_score),
        ))
    if rows:
        table = Table(
            title=f"adversarial scores S_adv; class from {settings.summary_filter}/{settings.summary_score}",
            title_justify="left",
            box=box.SIMPLE,
        )
        table.add_column("group", no_wrap=True)
        table.add_column("numel", justify="right")
        for filter_id in settings.filters:
            table.add_column(filter_id, justify="right")
        if adaptive:  # each sweep stopped at its own count; the group's is its largest
            table.add_column("samples", justify="right")
        table.add_column("±", justify="right")  # the summary interval's half-width: the scan's resolution
        table.add_column("class")
        for name, numel, curves, summary_class, half_width in rows:
            style = CLASS_STYLE[summary_class]
            table.add_row(
                name,
                numel,
                *(signed(curves[f].scores.adversarial) for f in settings.filters),
                *([str(max(curves[f].samples for f in settings.filters))] if adaptive else []),
                "—" if half_width is None else f"{half_width:.4f}",
                f"[{style}]{summary_class}[/{style}]",
            )
        print_table(console, table)
        counts = Counter(row[3] for row in rows)
        console.print(
            ", ".join(f"{n} {c}" for c, n in sorted(counts.items()))
            + f" (--classify {settings.classify}, τ = {settings.tau})",
            highlight=False,
        )
        resolution = report.resolution_note()
        if resolution:
            console.print(resolution, highlight=False)
    if report.sampling_note():
        console.print(report.sampling_note(), highlight=False, soft_wrap=True)
    for skipped in report.skipped:
        console.print(f"[yellow]skipped[/yellow] {skipped.name}: {skipped.reason}", highlight=False)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
