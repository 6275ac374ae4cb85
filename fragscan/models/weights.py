"""Loading weights safely: safetensors first, torch files only with ``weights_only=True``."""

from __future__ import annotations

import json
import pickle
import re
import warnings
from pathlib import Path

import torch
from torch import nn

from ..base.errors import InputError, first_line

# Where checkpoints keep the state dict, most common first; timm's EMA-only checkpoints hold
# just "state_dict_ema" or "model_ema" (the live weights win when both are there, as in timm).
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net", "state_dict_ema", "model_ema")


def require_weights_file(path: str | Path) -> Path:
    """``path`` if it is a file, else an InputError saying what it is instead."""
    path = Path(path)
    if path.is_dir():
        raise InputError(
            f"weights {str(path)!r} is a directory; pass the .safetensors or .pt/.pth file in it "
            "(to scan every file in it: --checkpoints DIR)"
        )
    if not path.is_file():
        raise InputError(f"weights file {str(path)!r} not found; pass an existing .safetensors or .pt/.pth file")
    return path


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = require_weights_file(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            # torch warns of what its unpickler meets (a TorchScript archive, a pickle protocol, sparse tensors)
            # in its own terms, before the refusal or the checks below say what it means here: on one line.
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # torch's text suggests weights_only=False: never here
        raise InputError(_refused_pickle(path, error)) from None
    except Exception as error:  # the file's own parser says what is wrong
        if "TorchScript" in str(error):  # torch's text suggests weights_only=False: never here
            raise InputError(
                f"weights {str(path)!r} are a TorchScript archive (torch.jit.save), not a state dict, and fragscan "
                "never runs code from a file; where you trust it, re-save its weights: "
                "safetensors.torch.save_file(torch.jit.load(FILE).state_dict(), 'weights.safetensors')"
            ) from None
        raise InputError(f"cannot read weights {str(path)!r}: {first_line(error)}") from error
    for key in _WRAPPER_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        held = f"keys {', '.join(map(repr, list(state)[:6]))}" if isinstance(state, dict) else type(state).__name__
        raise InputError(
            f"weights {str(path)!r} hold no state dict of tensors (found {held}); expected name -> tensor, "
            f"directly or under one of {', '.join(map(repr, _WRAPPER_KEYS))}"
        )
    sparse = next((k for k, v in state.items() if v.layout != torch.strided), None)
    if sparse is not None:  # every later step (the finite check, filters, masks) reads dense tensors
        raise InputError(
            f"weights {str(path)!r} hold {sparse!r} as a {state[sparse].layout} tensor; fragscan reads dense "
            "tensors: save the state dict with each tensor .to_dense()"
        )
    # Weights and biases only: a buffer may hold -inf on purpose (an attention mask).
    broken = next(
        (k for k, v in state.items() if k.rsplit(".", 1)[-1] in ("weight", "bias") and v.is_floating_point()
         and not bool(torch.isfinite(v).all())),
        None,
    )
    if broken is not None:  # every threshold of a sweep would be NaN: refuse here, where the cause is known
        raise InputError(
            f"weights {str(path)!r} hold NaN or infinite values in {broken!r}; the file is damaged or from a "
            "diverged training run: pass an earlier checkpoint"
        )
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


def _refused_pickle(path: Path, error: pickle.UnpicklingError) -> str:
    """One line for a file ``weights_only`` loading refused: a pickled object (a whole nn.Module) or no torch file."""
    refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
    if refused:
        return (
            f"weights {str(path)!r} hold a pickled object ({refused.group(1)}), not a state dict, and fragscan never "
            "unpickles code from a file; where you trust it, re-save its weights: "
            "safetensors.torch.save_file(model.state_dict(), 'weights.safetensors')"
        )
    return (
        f"weights {str(path)!r} are neither a safetensors file nor a torch state dict; "
        "save the network's state_dict() (name -> tensor), preferably with safetensors"
    )


def _needed(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> list[str]:
    """Keys of ``expected`` that ``state`` lacks, less BatchNorm's step counters: torch fills those in
    (checkpoints saved before PyTorch 0.4.1, or converted from other frameworks, have none)."""
    return [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]


def apply_state_dict(net: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load ``state`` strictly, naming the first mismatch in one line."""
    expected = net.state_dict()
    missing = _needed(expected, state)
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {missing[0]!r}" + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""))
        if unexpected:
            parts.append(
                f"unexpected {unexpected[0]!r}" + (f" (+{len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
            )
        raise InputError(f"weights {source!r} do not fit the model: {', '.join(parts)}")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise InputError(
                f"weights {source!r} do not fit the model: {key!r} has shape {tuple(tensor.shape)}, "
                f"the model expects {tuple(expected[key].shape)}"
            )
        if (
            expected[key].is_floating_point() and not tensor.is_floating_point()
        ):  # e.g. a mask, which has a net's names and shapes
            raise InputError(
                f"weights {source!r} do not fit the model: {key!r} has dtype "
                f"{str(tensor.dtype).removeprefix('torch.')}, "
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
    missing = _needed(own, state)
    if missing:
        raise InputError(
            f"weights {source!r} do not fit the model: missing {missing[0]!r}"
            + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    adapted, fresh = {}, []
    for key, mine in own.items():
        theirs = state.get(key, mine)  # only a step counter can be absent here
        if theirs.shape == mine.shape:
            adapted[key] = theirs
        elif theirs.ndim == 4 and theirs.shape[0] == mine.shape[0] and theirs.shape[2:] == mine.shape[2:]:
            adapted[key] = adapt_input_conv(mine.shape[1], theirs)
        else:
            adapted[key] = mine
            fresh.append(key)
    net.load_state_dict(adapted, strict=True)
    return fresh
