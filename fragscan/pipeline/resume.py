"""The resume store of a scan in progress: one file per finished sweep target, and for an adaptive
target still in flight one per finished look, so a scan can resume (not to be confused with
weights checkpoints, the training epochs :mod:`fragscan.pipeline.checkpoints` scans).

Layout under the resume directory (the CLI uses ``--out/.fragscan-checkpoints``, the name it had
before, so that interrupted scans still resume)::

    manifest.json                  the fingerprint of everything that decides the numbers
    targets/<sha256(name)[:16]>.safetensors
                                   one finished target (a group, or "global"): per filter the
                                   clean/adversarial bool tensors [thresholds, samples] as
                                   tensors, everything else (thresholds, positions, removed,
                                   changed, numel, batch size used) as JSON in the metadata
    rounds/<sha256(name)[:16]>.safetensors
                                   an adaptive target in flight after its latest finished look
                                   (:class:`fragscan.scoring.adaptive.LookState`): per filter its curve on
                                   the samples evaluated so far, as above, and as JSON the look's
                                   index, the filters that stopped, the engine's account per look;
                                   removed once the target's finished file is written

Every file is written atomically, so a killed scan leaves whole files or none; a target in
flight goes on from its latest saved look (adaptive) or is swept again. The store never holds
anything that gets unpickled: safetensors and JSON only.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..base.errors import ConfigError, InputError
from ..base.files import write_atomic
from ..scoring.adaptive import LookState
from ..sweep.engine import Curve, EngineInfo

# Persisted names from before the store had its name: resumable stores on disk carry them.
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


@dataclass(frozen=True)
class SavedLook:
    """An adaptive target in flight: its state after its latest finished look."""

    state: LookState
    device: str  # device type(s) its looks ran on ("cpu", or "cuda+cpu" when resumed elsewhere)


def discard_if_empty(directory: Path) -> None:
    """Remove the store at ``directory`` when it holds no finished target and no saved look: a scan
    refused after opening it (Ray unreachable, say) left only a manifest, nothing to resume."""
    if not directory.is_dir():
        return
    if any(any((directory / folder).glob("*.safetensors")) for folder in ("targets", "rounds")):
        return
    shutil.rmtree(directory)


class ResumeStore:
    """Finished targets (and adaptive targets' finished looks) of one scan, keyed by target name,
    bound to one fingerprint."""

    def __init__(self, directory: str | Path, fingerprint: dict[str, Any], *, resume: bool = True):
        self._bind(directory, fingerprint)
        manifest = self.directory / "manifest.json"
        try:
            if not resume and self.directory.exists():
                shutil.rmtree(self.directory)
            for folder in (self._targets, self._looks):
                folder.mkdir(parents=True, exist_ok=True)
                for leftover in folder.glob(".*.tmp"):  # a write cut short by kill -9
                    leftover.unlink()
        except OSError as error:
            raise InputError(
                f"cannot use resume directory {str(self.directory)!r}: {error.strerror or error}"
            ) from None
        if manifest.exists():
            self._check_manifest(manifest)
        else:
            write_atomic(manifest, json.dumps({"format": FORMAT, "fingerprint": fingerprint}, indent=1).encode())

    @classmethod
    def reach(cls, directory: str | Path, fingerprint: dict[str, Any]) -> ResumeStore | None:
        """The store a scan opened at ``directory``, as another process sees it (a Ray worker):
        only where that path holds the store's folders and a manifest with this very fingerprint
        (the same machine, or a filesystem shared at the same path); None elsewhere. Creates and
        removes nothing."""
        directory = Path(directory)
        try:
            same = _stored_fingerprint(directory / "manifest.json") == json.loads(json.dumps(fingerprint))
        except (OSError, ValueError, UnicodeDecodeError, TypeError, RecursionError):
            return None
        if not same or not (directory / "targets").is_dir() or not (directory / "rounds").is_dir():
            return None
        store = cls.__new__(cls)  # the store as found: __init__ would create and clean its folders
        store._bind(directory, fingerprint)
        return store

    def _bind(self, directory: str | Path, fingerprint: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.fingerprint = fingerprint
        self._targets, self._looks = self.directory / "targets", self.directory / "rounds"

    def _check_manifest(self, manifest: Path) -> None:
        try:
            theirs = _stored_fingerprint(manifest)
        except (ValueError, UnicodeDecodeError, RecursionError) as error:  # RecursionError: nested past the stack
            raise InputError(
                f"resume manifest {str(manifest)!r} is unreadable ({error}); use a new --out or --no-resume"
            ) from None
        # A setting only one side holds did not decide that side's curves (a fixed scan's fingerprint leaves out
        # the scoring settings an adaptive one holds): named only when no setting both hold differs.
        shared = set(theirs) & set(self.fingerprint)
        differing = sorted(k for k in shared if theirs[k] != self.fingerprint[k]) or sorted(
            set(theirs) ^ set(self.fingerprint)
        )
        if differing:
            raise ConfigError(
                f"{str(self.directory)!r} holds finished groups of a scan with other settings (differs in: "
                f"{', '.join(differing)}); use a new --out, or --no-resume to discard them"
            )

    def _path(self, target: str) -> Path:
        return self._targets / _file_name(target)

    def _look_path(self, target: str) -> Path:
        return self._looks / _file_name(target)

    def __contains__(self, target: str) -> bool:
        return self._path(target).is_file()

    def save(self, target: str, finished: FinishedTarget) -> None:
        """Keep a finished target; its saved looks, if any, are then dropped."""
        from safetensors.torch import save

        tensors, described = _curves_out(finished.curves)
        metadata = {
            "format": FORMAT,
            "target": target,
            "batch_size": str(finished.batch_size),
            "device": finished.device,
            "curves": json.dumps(described),
            "engine": json.dumps(asdict(finished.info)),
        }
        write_atomic(self._path(target), save(tensors, metadata=metadata))
        self._look_path(target).unlink(missing_ok=True)

    def save_look(self, target: str, saved: SavedLook) -> None:
        """Keep an adaptive target's state after a finished look, replacing the previous one."""
        from safetensors.torch import save

        state = saved.state
        tensors, described = _curves_out(state.curves)
        metadata = {
            "format": FORMAT,
            "target": target,
            "look": str(state.look),
            "stopped": json.dumps(sorted(state.stopped)),
            "device": saved.device,
            "curves": json.dumps(described),
            "engines": json.dumps([asdict(info) for info in state.infos]),
        }
        write_atomic(self._look_path(target), save(tensors, metadata=metadata))

    def load_look(self, target: str, filters: tuple[str, ...], schedule: list[int]) -> SavedLook | None:
        """The saved state of ``target`` in flight, checked to fit a plan of ``schedule`` looks over
        ``filters``; None when there is none."""
        path = self._look_path(target)
        if not path.is_file():
            return None
        with _damaged(path):
            metadata, tensors = _read(path, target)
            look, stopped = int(metadata["look"]), frozenset(json.loads(metadata["stopped"]))
            curves = _curves_in(json.loads(metadata["curves"]), tensors)
            infos = tuple(EngineInfo(**info) for info in json.loads(metadata["engines"]))
            if not 0 <= look < len(schedule) - 1 or len(infos) != look + 1:
                raise ValueError(f"look {look} does not fit a plan of {len(schedule)} looks")
            if set(curves) != set(filters) or not stopped < set(filters):
                raise ValueError("its filters are not this scan's")
            for filter_id, curve in curves.items():
                samples = curve.clean.shape[1]
                fits = samples == schedule[look] if filter_id not in stopped else samples in schedule[: look + 1]
                shape = (len(curve.thresholds), samples)
                bits = (curve.clean, curve.adversarial)
                # a threat profile's adversarial bits have a trailing budget dimension (the fingerprint fixes its size)
                if not fits or any(b.shape[:2] != shape or b.dtype != torch.bool for b in bits):
                    raise ValueError(f"the curve of {filter_id} does not fit look {look}")
            return SavedLook(LookState(look, curves, stopped, infos), str(metadata["device"]))

    def load(self, target: str) -> FinishedTarget:
        path = self._path(target)
        with _damaged(path):
            metadata, tensors = _read(path, target)
            curves = _curves_in(json.loads(metadata["curves"]), tensors)
            info = EngineInfo(**json.loads(metadata["engine"]))
            return FinishedTarget(curves, int(metadata["batch_size"]), str(metadata["device"]), info)


def _stored_fingerprint(manifest: Path) -> dict[str, Any]:
    """The fingerprint a resume manifest holds; ValueError when the file is not one."""
    stored = json.loads(manifest.read_bytes())
    fingerprint = stored.get("fingerprint") if isinstance(stored, dict) else None
    if not isinstance(stored, dict) or stored.get("format") != FORMAT or not isinstance(fingerprint, dict):
        raise ValueError("not a fragscan resume manifest")
    return fingerprint


def _file_name(target: str) -> str:
    return f"{hashlib.sha256(target.encode()).hexdigest()[:16]}.safetensors"


def _curves_out(curves: dict[str, Curve]) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
    """Curves as safetensors tensors (the bits) and JSON (everything else)."""
    tensors, described = {}, {}
    for filter_id, curve in curves.items():
        tensors[f"{filter_id}/clean"] = curve.clean.to(torch.bool).contiguous()
        tensors[f"{filter_id}/adversarial"] = curve.adversarial.to(torch.bool).contiguous()
        described[filter_id] = {
            "thresholds": curve.thresholds,
            "positions": curve.positions,
            "removed": curve.removed,
            "changed": curve.changed,
            "numel": curve.numel,
        }
    return tensors, described


def _curves_in(described: dict[str, dict], tensors: dict[str, torch.Tensor]) -> dict[str, Curve]:
    return {
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


def _read(path: Path, target: str) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as handle:
        metadata = handle.metadata() or {}
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    if metadata.get("format") != FORMAT or metadata.get("target") != target:
        raise ValueError("not a resume file of this target")
    return metadata, tensors


@contextmanager
def _damaged(path: Path) -> Iterator[None]:
    """Any parser's complaint inside: the file is not what this scan wrote, one line to say so."""
    try:
        yield
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise InputError(f"resume file {str(path)!r} is damaged ({reason}); use a new --out or --no-resume") from None
