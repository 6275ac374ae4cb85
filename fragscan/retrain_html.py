"""A small, self-contained HTML page for one retraining comparison (no scripts, no external files)."""

from __future__ import annotations

from html import escape

from .retrain import Accuracy, RetrainResult

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 56rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.bar { display: inline-block; height: .7rem; background: #4a7bb7; vertical-align: middle; }
.bar.adv { background: #c0504d; }
.ok { color: #2e7d32; } .bad { color: #c62828; }
small { color: #666; }
"""


def _row(label: str, accuracy: Accuracy | None) -> str:
    if accuracy is None:
        return f"<tr><td>{escape(label)}</td><td colspan='2'>not run (--no-control)</td></tr>"
    cells = "".join(
        f"<td>{value:.4f} <span class='bar{cls}' style='width:{value * 8:.2f}rem'></span></td>"
        for value, cls in ((accuracy.clean, ""), (accuracy.adversarial, " adv"))
    )
    return f"<tr><td>{escape(label)}</td>{cells}</tr>"


def render_html(result: RetrainResult) -> str:
    settings = result.settings
    meta = result.mask_metadata
    parameters = "".join(
        f"<tr><td>{escape(p.name)}</td><td>{p.elements}</td><td>{p.trainable}</td><td>{p.moved}</td>"
        f"<td class='{'ok' if p.frozen_moved == 0 else 'bad'}'>{p.frozen_moved}</td></tr>"
        for p in result.parameters
    )
    identical = "yes" if result.frozen_bit_identical else "NO"
    training = "adversarial examples" if settings.adversarial else "clean data"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fragscan retrain: {escape(settings.model)}</title>
<style>{_STYLE}</style></head><body>
<h1>Selective retraining: {escape(settings.model)} on {escape(settings.dataset)}</h1>
<p>Fine-tuned {settings.epochs} epoch(s) on {escape(training)} ({escape(settings.train_split)} split), Adam lr {settings.lr},
batch {settings.batch_size}, weight decay {settings.weight_decay}, seed {settings.seed}. Evaluated on {result.samples}
samples of the {escape(settings.eval_split)} split; adversarial accuracy under {escape(settings.attack)} with
ε = {result.eps_used:.4g}, crafted against each network.</p>
<table><tr><th>network</th><th>clean accuracy</th><th>adversarial accuracy</th></tr>
{_row("before", result.before)}{_row("selective (masked)", result.selective)}{_row("control (no mask)", result.control)}
</table>
<h2>Mask</h2>
<p>{result.trainable_share:.1%} of the elements trainable. Policy {escape(meta.get("policy", "?"))}, score
{escape(meta.get("score", "?"))}, filter {escape(meta.get("filter", "?"))}, others {escape(meta.get("others", "?"))}.
Frozen elements bit-identical after training: <b class="{'ok' if result.frozen_bit_identical else 'bad'}">{identical}</b>.</p>
<table><tr><th>parameter</th><th>elements</th><th>trainable</th><th>moved</th><th>frozen but changed</th></tr>
{parameters}</table>
<p><small>fragscan {escape(result.fragscan_version)} · device {escape(result.device_used)} · {result.duration_s:.1f} s ·
mask from report {escape(meta.get("report_sha256", "?")[:16])}</small></p>
</body></html>
"""
