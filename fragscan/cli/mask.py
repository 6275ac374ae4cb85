"""``fragscan mask``: re-derive a retrain mask from a report."""

from __future__ import annotations

from pathlib import Path

import typer

from ..base.files import check_outputs
from ..report import load_report
from ._app import app, fails_cleanly
from .ui import stderr_console


@app.command()
@fails_cleanly
def mask(
    report: Path = typer.Argument(..., help="report.json written by `fragscan scan`."),
    policy: str = typer.Option(
        "band", help="band: per element, from the pulse filter's bands; layer: the group's class."
    ),
    score: str | None = typer.Option(
        None, help="clean, adversarial or difference; default: the report's summary score."
    ),
    filters: str | None = typer.Option(
        None, help="Comma-separated filters whose classes decide (layer: trainable under all); band needs pulse."
    ),
    others: str = typer.Option("train", help="Parameters the scan did not analyse (biases, norms): train or freeze."),
    inconclusive: str = typer.Option(
        "freeze",
        help="Elements or groups the evidence leaves inconclusive: freeze (train only what it supports) or train.",
    ),
    eps: float | None = typer.Option(
        None,
        help="With a threat profile (--threat): derive the mask at this budget of the report's, not its headline.",
    ),
    weights: Path | None = typer.Option(None, help="The scanned weights file, if it moved (its sha256 must match)."),
    plugin: list[Path] = typer.Option(
        [],
        "--plugin",
        help="Load this plugin .py file first (repeatable); the plugin files the report names are never loaded "
        "unless named here.",
    ),
    out: Path = typer.Option(Path("mask.safetensors"), "-o", "--out", help="Mask file to write."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary."),
) -> None:
    """Write a retrain mask (uint8 per parameter, 1 = trainable) from a scan's report."""
    from ..outputs.masks import (  # not for --help
        describe,
        mask_from_report,
        reported_network,
        reported_plugins,
        save_mask,
    )

    check_outputs({"--out": out}, [report, weights])
    loaded = load_report(report)
    if eps is not None:
        from ..scoring.surface import at_budget

        loaded = at_budget(loaded, eps)
    chosen = tuple(f.strip() for f in filters.split(",") if f.strip()) if filters else None
    built = mask_from_report(
        loaded, reported_network(loaded, weights, plugin), policy=policy, score=score, filters=chosen,
        others=others, inconclusive=inconclusive,
    )
    save_mask(built, out)
    console = stderr_console(quiet)
    for ran in reported_plugins(loaded, plugin):  # loaded already (once per process): the code that ran, named
        if ran.route != "entry-point":
            console.print(f"plugin: {ran.describe()}", highlight=False, markup=False, soft_wrap=True)
    for name, trainable, total in describe(built):
        console.print(f"  {name:<28} {trainable:>8} / {total:<8} trainable", highlight=False)
    console.print(
        f"wrote {out} ({built.trainable_share():.1%} trainable, policy {policy}, rule {loaded.settings.classify}, "
        f"inconclusive {inconclusive})",
        highlight=False,
    )
