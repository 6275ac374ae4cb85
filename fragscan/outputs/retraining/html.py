"""A small, self-contained HTML page for one retraining comparison (no scripts, no external files)."""

from __future__ import annotations

from html import escape

from ...report.retrain_model import Arm, Estimate, RetrainResult

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.range { display: inline-block; position: relative; width: 8rem; height: .7rem; background: #eee; }
.range { vertical-align: middle; }
.range span { position: absolute; top: 0; height: .7rem; background: #4a7bb7; min-width: 2px; }
.range.adv span { background: #c0504d; }
.verdict { font-size: 1.15rem; font-weight: 600; padding: .6rem .8rem; background: #f4f4f4; }
.verdict { border-left: 4px solid #4a7bb7; }
.ok { color: #2e7d32; } .bad { color: #c62828; }
.warning { background: #fef9e7; border-left: 4px solid #d4ac0d; padding: .4rem .8rem; margin: .4rem 0; }
small { color: #666; }
"""  # noqa: E501 (one CSS rule a line)

_ARM_LABELS = {
    "selective": "selective (the mask)",
    "random": "random mask, same count per parameter",
    "unmasked": "unmasked (everything trains)",
}


def _interval(value: Estimate, sign: str = "") -> str:
    low, high = value.interval
    return f"{value.estimate:{sign}.4f} <small>[{low:{sign}.4f}, {high:{sign}.4f}]</small>"


def _range(value: Estimate, adversarial: bool) -> str:
    """The 95% interval drawn on a 0-1 accuracy axis."""
    low, high = value.interval
    return (
        f"<span class='range{' adv' if adversarial else ''}'>"
        f"<span style='left:{low * 100:.2f}%;width:{(high - low) * 100:.2f}%'></span></span>"
    )


def _arm_row(label: str, arm: Arm, share: str | None = None) -> str:
    runs = ", ".join(f"{run.adversarial:.3f}" for run in arm.runs)
    return (
        f"<tr><td>{escape(label)}</td><td>{share or f'{arm.trainable_share:.1%}'}</td>"
        f"<td>{_interval(arm.clean)} {_range(arm.clean, False)}</td>"
        f"<td>{_interval(arm.adversarial)} {_range(arm.adversarial, True)}</td><td><small>{runs}</small></td></tr>"
    )


def _parameters(result: RetrainResult) -> str:
    """Per parameter and masked arm: trainable count, and frozen elements whose bits moved (must be 0)."""
    masked = [arm for arm in result.arms if arm != "unmasked"]
    header = "".join(f"<th>{escape(arm)}: trainable</th><th>frozen but changed</th>" for arm in masked)
    rows = []
    for index, parameter in enumerate(result.arms["selective"].runs[0].parameters):
        cells = ""
        for arm in masked:
            changes = [run.parameters[index] for run in result.arms[arm].runs]
            moved = sum(change.frozen_moved for change in changes)
            cells += f"<td>{changes[0].trainable}</td><td class='{'ok' if moved == 0 else 'bad'}'>{moved}</td>"
        rows.append(f"<tr><td>{escape(parameter.name)}</td><td>{parameter.elements}</td>{cells}</tr>")
    return f"<table><tr><th>parameter</th><th>elements</th>{header}</tr>{''.join(rows)}</table>"


def render_html(result: RetrainResult) -> str:
    settings = result.settings
    meta = result.mask_metadata
    arms = "".join(_arm_row(_ARM_LABELS[name], arm) for name, arm in result.arms.items())
    comparisons = "".join(
        f"<tr><td>{escape(name.replace('_', ' '))}</td><td>{_interval(difference.adversarial, '+')}</td>"
        f"<td>{_interval(difference.clean, '+')}</td></tr>"
        for name, difference in result.comparison.items()
    )
    seeds = ", ".join(str(run.seed) for run in result.arms["selective"].runs)
    holdout = f" · {escape(result.holdout)}" if result.holdout else ""
    identical = "yes" if result.frozen_bit_identical else "NO"
    training = "adversarial examples" if settings.adversarial else "clean data"
    warnings = "".join(f'<div class="warning">warning: {escape(warning)}</div>' for warning in result.warnings)
    # a threat profile: the per-sample worst case over its attacks at the headline budget
    judged_by = f"under {escape(settings.attack)} with ε = {result.eps_used:.4g}" if result.threat is None else (
        f"as the worst case of <code>--threat {escape(result.threat.spec)}</code> at its headline ε = "
        f"{result.eps_used:.4g} (per run, every budget's in retrain.json)"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fragscan retrain: {escape(settings.model)}</title>
<style>{_STYLE}</style></head><body>
<h1>Selective retraining: {escape(settings.model)} on {escape(settings.dataset)}</h1>
<p class="verdict">{escape(result.verdict)}</p>
{warnings}
<p>Every arm: {settings.epochs} epoch(s) on {escape(training)} ({result.fine_tuning_samples} samples of the
{escape(settings.train_split)} split), Adam lr {settings.lr}, batch {settings.batch_size}, weight decay
{settings.weight_decay}; {settings.repeats} repeat(s), data order seeded {seeds}.
Judged on {result.samples} samples of the {escape(settings.eval_split)} split; the mask was derived from a scan of
the {escape(result.mask_split or "unknown")} split. Adversarial accuracy {judged_by}, crafted against each network. Intervals: 95%, bootstrap over test samples and repeats
({settings.bootstrap} resamples).</p>
<table><tr><th>network</th><th>trainable</th><th>clean accuracy</th><th>adversarial accuracy</th>
<th>adversarial per repeat</th></tr>
{_arm_row("before", result.before, "–")}{arms}</table>
<h2>Paired differences</h2>
<table><tr><th>comparison</th><th>adversarial accuracy</th><th>clean accuracy</th></tr>{comparisons}</table>
<h2>Mask</h2>
<p>{result.arms["selective"].trainable_share:.1%} of the elements trainable. Policy {escape(meta.get("policy", "?"))},
score {escape(meta.get("score", "?"))}, filter {escape(meta.get("filter", "?"))},
others {escape(meta.get("others", "?"))}.
Frozen elements bit-identical after training, in every masked arm and repeat:
<b class="{"ok" if result.frozen_bit_identical else "bad"}">{identical}</b>.</p>
{_parameters(result)}
<p><small>fragscan {escape(result.fragscan_version)} · device {escape(result.device_used)} · {result.duration_s:.1f} s ·
mask from report {escape(meta.get("report_sha256", "?")[:16])}{holdout}</small></p>
</body></html>
"""  # noqa: E501 (the page's sentences, a line each)
