"""Loading weights safely: safetensors first, torch files only with ``weights_only=True``."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError

_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net")


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"weights file {str(path)!r} not found; pass an existing .safetensors or .pt/.pth file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # torch's advice (load it unsafely) is not ours to give
        raise InputError(
            f"cannot read weights {str(path)!r}: not a state dict of tensors ({_refusal(error)}); "
            "save the network's state_dict(), preferably with safetensors, not the model object"
        ) from error
    except Exception as error:  # the file's own parser says what is wrong
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"cannot read weights {str(path)!r}: {first_line}") from error
    for key in _WRAPPER_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"weights {str(path)!r} hold no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """``safetensors.torch.save`` with its JSON header in sorted order. safetensors writes the
    metadata in hash-map order, which changes from call to call, so equal tensors and metadata gave
    different bytes, and so different sha256 digests, which reports and training.json record."""
    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    length = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + length]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the format pads the header so the data starts 8-byte aligned
    return len(header).to_bytes(8, "little") + header + data[8 + length :]


def _refusal(error: pickle.UnpicklingError) -> str:
    """The reason inside torch's weights-only refusal, without its advice to load unsafely."""
    text = str(error)
    _, marker, reason = text.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in (reason if marker else text).splitlines() if line.strip()]
    return lines[0].split(". Please use")[0].rstrip(".") if lines else type(error).__name__


def apply_state_dict(net: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load ``state`` strictly, naming the first mismatch in one line."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {missing[0]!r}" + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""))
        if unexpected:
            parts.append(f"unexpected {unexpected[0]!r}" + (f" (+{len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
        raise InputError(f"weights {source!r} do not fit the model: {', '.join(parts)}")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise InputError(
                f"weights {source!r} do not fit the model: {key!r} has shape {tuple(tensor.shape)}, "
                f"the model expects {tuple(expected[key].shape)}"
            )
        if expected[key].is_floating_point() and not tensor.is_floating_point():  # e.g. a mask, which has a net's names and shapes
            raise InputError(
                f"weights {source!r} do not fit the model: {key!r} has dtype {str(tensor.dtype).removeprefix('torch.')}, "
                f"the model's is {str(expected[key].dtype).removeprefix('torch.')} (a mask is not weights)"
            )
    net.load_state_dict(state, strict=True)


def adapt_pretrained(net: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> list[str]:
    """Load published weights into ``net`` built for other classes or channels.

    An input conv whose channel count differs is adapted with timm's ``adapt_input_conv`` (summed
    for one channel, repeated and rescaled for more); any other tensor whose shape differs (the
    classifier) keeps ``net``'s fresh initialisation. Returns the names of those fresh tensors.
    """
    from timm.models import adapt_input_conv

    own = net.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise InputError(f"weights {source!r} do not fit the model: missing {missing[0]!r}" + (
            f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""))
    adapted, fresh = {}, []
    for key, mine in own.items():
        theirs = state[key]
        if theirs.shape == mine.shape:
            adapted[key] = theirs
        elif theirs.ndim == 4 and theirs.shape[0] == mine.shape[0] and theirs.shape[2:] == mine.shape[2:]:
            adapted[key] = adapt_input_conv(mine.shape[1], theirs)
        else:
            adapted[key] = mine
            fresh.append(key)
    net.load_state_dict(adapted, strict=True)
    return fresh
