"""The resume store of a scan in progress: one file per finished sweep target, so a scan can resume
(not to be confused with weights checkpoints, the training epochs :mod:`fragscan.checkpoints` scans).

Layout under the resume directory (the CLI uses ``--out/.fragscan-checkpoints``, the name it had
before, so that interrupted scans still resume)::

    manifest.json                  the fingerprint of everything that decides the numbers
    targets/<sha256(name)[:16]>.safetensors
                                   one finished target (a group, or "global"): per filter the
                                   clean/adversarial bool tensors [thresholds, samples] as
                                   tensors, everything else (thresholds, positions, removed,
                                   changed, numel, batch size used) as JSON in the metadata

Every file is written atomically, so a killed scan leaves whole files or none; a target in
flight is simply absent and is swept again. The store never holds anything that gets
unpickled: safetensors and JSON only.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .engine import Curve, EngineInfo
from .errors import ConfigError, InputError
from .files import write_atomic

FORMAT = "fragscan-checkpoint/1"
DIRECTORY_NAME = ".fragscan-checkpoints"


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes, in name order: identity of weights or data."""
    hasher = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        hasher.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        hasher.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()


@dataclass(frozen=True)
class FinishedTarget:
    curves: dict[str, Curve]
    batch_size: int  # the evaluation batch size the sweep ran at (smaller after an out-of-memory back-off)
    device: str  # device type the sweep ran on ("cpu", "cuda")
    info: EngineInfo  # how the engine computed it (prefix reuse, fused attack...)


class ResumeStore:
    """Finished targets of one scan, keyed by target name, bound to one fingerprint."""

    def __init__(self, directory: str | Path, fingerprint: dict[str, Any], *, resume: bool = True):
        self.directory = Path(directory)
        self.fingerprint = fingerprint
        self._targets = self.directory / "targets"
        manifest = self.directory / "manifest.json"
        try:
            if not resume and self.directory.exists():
                shutil.rmtree(self.directory)
            self._targets.mkdir(parents=True, exist_ok=True)
            for leftover in self._targets.glob(".*.tmp"):  # a write cut short by kill -9
                leftover.unlink()
        except OSError as error:
            raise InputError(
                f"cannot use resume directory {str(self.directory)!r}: {error.strerror or error}"
            ) from None
        if manifest.exists():
            self._check_manifest(manifest)
        else:
            write_atomic(manifest, json.dumps({"format": FORMAT, "fingerprint": fingerprint}, indent=1).encode())

    def _check_manifest(self, manifest: Path) -> None:
        try:
            stored = json.loads(manifest.read_bytes())
            fingerprint = stored.get("fingerprint") if isinstance(stored, dict) else None
            if not isinstance(stored, dict) or stored.get("format") != FORMAT or not isinstance(fingerprint, dict):
                raise ValueError("not a fragscan resume manifest")
        except (ValueError, UnicodeDecodeError) as error:
            raise InputError(
                f"resume manifest {str(manifest)!r} is unreadable ({error}); use a new --out or --no-resume"
            ) from None
        theirs = stored["fingerprint"]
        differing = sorted(k for k in set(theirs) | set(self.fingerprint) if theirs.get(k) != self.fingerprint.get(k))
        if differing:
            raise ConfigError(
                f"{str(self.directory)!r} holds finished groups of a scan with other settings (differs in: "
                f"{', '.join(differing)}); use a new --out, or --no-resume to discard them"
            )

    def _path(self, target: str) -> Path:
        return self._targets / f"{hashlib.sha256(target.encode()).hexdigest()[:16]}.safetensors"

    def __contains__(self, target: str) -> bool:
        return self._path(target).is_file()

    def finished(self) -> int:
        return sum(1 for _ in self._targets.glob("*.safetensors"))

    def save(self, target: str, finished: FinishedTarget) -> None:
        from safetensors.torch import save

        tensors, described = {}, {}
        for filter_id, curve in finished.curves.items():
            tensors[f"{filter_id}/clean"] = curve.clean.to(torch.bool).contiguous()
            tensors[f"{filter_id}/adversarial"] = curve.adversarial.to(torch.bool).contiguous()
            described[filter_id] = {
                "thresholds": curve.thresholds,
                "positions": curve.positions,
                "removed": curve.removed,
                "changed": curve.changed,
                "numel": curve.numel,
            }
        metadata = {
            "format": FORMAT,
            "target": target,
            "batch_size": str(finished.batch_size),
            "device": finished.device,
            "curves": json.dumps(described),
            "engine": json.dumps(asdict(finished.info)),
        }
        write_atomic(self._path(target), save(tensors, metadata=metadata))

    def load(self, target: str) -> FinishedTarget:
        from safetensors import safe_open

        path = self._path(target)
        try:
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                metadata = handle.metadata() or {}
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
            if metadata.get("format") != FORMAT or metadata.get("target") != target:
                raise ValueError("not a resume file of this target")
            described = json.loads(metadata["curves"])
            curves = {
                filter_id: Curve(
                    thresholds=[float(x) for x in cell["thresholds"]],
                    positions=[float(x) for x in cell["positions"]],
                    removed=[int(x) for x in cell["removed"]],
                    changed=[int(x) for x in cell["changed"]],
                    numel=int(cell["numel"]),
                    clean=tensors[f"{filter_id}/clean"],
                    adversarial=tensors[f"{filter_id}/adversarial"],
                )
                for filter_id, cell in described.items()
            }
            info = EngineInfo(**json.loads(metadata["engine"]))
            return FinishedTarget(curves, int(metadata["batch_size"]), str(metadata["device"]), info)
        except Exception as error:  # any parser's complaint: the file is not what this scan wrote
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise InputError(
                f"resume file {str(path)!r} is damaged ({reason}); use a new --out or --no-resume"
            ) from None
