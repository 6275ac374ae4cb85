"""``fragscan audit``: check a report against a policy; exit 1 when a threshold is violated."""

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from ..base.errors import PolicyViolation
from ..base.files import ensure_writable_dir
from ..config import build_config
from ..outputs.auditing import AuditPolicy, AuditResult, load_policy, load_previous_report, write_audit_outputs
from ..outputs.auditing import audit as run_audit
from ..report import Report, load_report
from ._app import app, fails_cleanly
from ._options import option
from .ui import print_table, stderr_console, stdout_console

_FINDINGS_SHOWN = 3  # per rule: the summary must fit one screen


@app.command()
@fails_cleanly
def audit(
    report: Path = typer.Argument(..., help="The report.json a scan wrote."),
    policy: Path | None = typer.Option(
        None, help="YAML or JSON file of thresholds; the options below override its values."
    ),
    min_clean_accuracy: float | None = option(AuditPolicy, "min_clean_accuracy"),
    min_adversarial_accuracy: float | None = option(AuditPolicy, "min_adversarial_accuracy"),
    max_fragile_share: float | None = option(AuditPolicy, "max_fragile_share"),
    max_inconclusive_share: float | None = option(AuditPolicy, "max_inconclusive_share"),
    must_not_be_fragile: list[str] = option(AuditPolicy, "must_not_be_fragile"),
    max_regression: float | None = option(AuditPolicy, "max_regression"),
    baseline: Path | None = option(AuditPolicy, "baseline_report", "--baseline"),
    eps: float | None = option(AuditPolicy, "eps"),
    allow_near_chance: bool = option(AuditPolicy, "allow_near_chance", "--allow-near-chance"),
    out: Path | None = typer.Option(
        None, help="Directory for audit.json, audit.junit.xml and audit.sarif (default: the report's directory)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary on stdout."),
) -> None:
    """Check a report against thresholds: exit 0 pass, 1 violated, 2 bad input, 3 failure."""
    overrides = {
        "min_clean_accuracy": min_clean_accuracy,
        "min_adversarial_accuracy": min_adversarial_accuracy,
        "max_fragile_share": max_fragile_share,
        "max_inconclusive_share": max_inconclusive_share,
        "must_not_be_fragile": must_not_be_fragile or None,
        "max_regression": max_regression,
        "baseline_report": baseline,
        "eps": eps,
        "allow_near_chance": allow_near_chance or None,
    }
    from_file = load_policy(policy) if policy else AuditPolicy()
    merged = build_config(
        AuditPolicy,
        **{**from_file.model_dump(exclude_defaults=True), **{k: v for k, v in overrides.items() if v is not None}},
    )
    audited = load_report(report)
    out = ensure_writable_dir(report.parent if out is None else out)
    audit_and_write(audited, str(report), merged, load_previous_report(merged), out, quiet)


def audit_and_write(
    report: Report, report_path: str, policy: AuditPolicy, previous_report: Report | None, out: Path, quiet: bool
) -> AuditResult:
    """Audit, write the three files, show the summary; raise PolicyViolation (exit 1) when a rule failed."""
    result = run_audit(report, policy, report_path=report_path, baseline=previous_report)
    written = write_audit_outputs(result, out)
    print_audit_summary(result, stdout_console(), quiet=quiet)
    messages = stderr_console(quiet)
    for path in written:
        messages.print(f"wrote {path}", highlight=False)
    if not result.passed:
        failed = ", ".join(rule.id for rule in result.failed)
        raise PolicyViolation(
            f"policy violated: {len(result.failed)} of {len(result.rules)} rules failed ({failed}); details in "
            f"{written[0]}"
        )
    return result


def print_audit_summary(result: AuditResult, console: Console, *, quiet: bool = False) -> None:
    if quiet:
        return

    def say(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True)

    subject = result.report
    against = f"; baseline {result.baseline_report.path}" if result.baseline_report else ""
    say(
        f"[bold]audit[/bold] of {subject.path}: {subject.model} on {subject.dataset}/{subject.split} "
        f"({subject.samples} samples){against}"
    )
    if not result.rules:
        say("no thresholds set: nothing to check (pass --policy or a --min-/--max- option)")
    else:
        table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
        for column in ("rule", "threshold", "measured", "result"):
            table.add_column(column, no_wrap=True)
        for rule in result.rules:
            threshold = ", ".join(rule.threshold) if isinstance(rule.threshold, list) else f"{rule.threshold:g}"
            measured = "—" if rule.measured is None else f"{rule.measured:.4g}"
            verdict = "[green]pass[/green]" if rule.passed else "[red]FAIL[/red]"
            if rule.passed and rule.undecided:  # a pass over undecided groups assures nothing about them
                verdict = f"[yellow]pass, {len(rule.undecided)} undecided[/yellow]"
            table.add_row(rule.id, threshold, measured, verdict)
        print_table(console, table)

    def listed(findings: list, unlike: str = "") -> None:
        for finding in findings[:_FINDINGS_SHOWN]:
            if finding.message != unlike:
                say(f"    {finding.message}")
        if len(findings) > _FINDINGS_SHOWN:
            say(f"    … and {len(findings) - _FINDINGS_SHOWN} more in audit.json")

    for rule in result.rules:
        if rule.passed and rule.undecided:
            say(f"[yellow]? {rule.id}[/yellow]: passes, but could not judge {len(rule.undecided)} of its groups")
            listed(rule.undecided)
    for rule in result.failed:
        say(f"[red]✗ {rule.id}[/red]: {rule.message}")
        listed(rule.findings, unlike=rule.message)
    for warning in result.warnings:
        say(f"[yellow]warning:[/yellow] {warning}")
    verdict = "[green]PASSED[/green]" if result.passed else "[red]FAILED[/red]"
    unjudged = sum(bool(rule.undecided) for rule in result.rules if rule.passed)
    say(
        f"{verdict}: {len(result.rules) - len(result.failed)} of {len(result.rules)} rules pass"
        + (f" ({unjudged} without judging every group: see ? above)" if unjudged else "")
    )
