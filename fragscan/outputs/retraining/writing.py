"""Selective retraining written to a directory: :func:`retrain_to` is :func:`retrain` and its files, as
``scan_to`` is a scan and its files. It sits apart from ``experiment``, which writes nothing."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ...base.files import ensure_writable_dir, write_atomic
from ...config import RetrainConfig
from ...models.weights import safetensors_bytes
from .experiment import RetrainResult, retrain
from .html import render_html


class RetrainOutputs(BaseModel):
    """What :func:`retrain_to` wrote."""

    model_config = ConfigDict(frozen=True)

    result: RetrainResult
    written: list[Path] = Field(
        description="weights.safetensors, unmasked.safetensors (when that control ran), retrain.json, retrain.html"
    )


def retrain_to(config: RetrainConfig, out: str | Path) -> RetrainOutputs:
    """:func:`retrain`, then write into the directory ``out`` (created if missing, before the long work),
    each file atomically: the selective arm's weights after the first repeat, the unmasked control's,
    the result as JSON and as a page."""
    directory = ensure_writable_dir(Path(out))
    done = retrain(config)
    result = done.result
    written = [directory / "weights.safetensors"]
    metadata = {"model": config.model, "mask": str(config.mask)}
    write_atomic(written[0], safetensors_bytes(done.weights["selective"], metadata))
    unmasked = directory / "unmasked.safetensors"
    if "unmasked" in done.weights:
        written.append(unmasked)
        write_atomic(
            unmasked, safetensors_bytes(done.weights["unmasked"], {**metadata, "mask": "none (unmasked control)"})
        )
    else:  # an earlier run's control would pass for this result's
        unmasked.unlink(missing_ok=True)
    written.append(directory / "retrain.json")
    write_atomic(written[-1], result.model_dump_json(indent=1).encode())
    written.append(directory / "retrain.html")
    write_atomic(written[-1], render_html(result).encode())
    return RetrainOutputs(result=result, written=written)
