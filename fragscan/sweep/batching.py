"""``--batch-size auto``: the largest batch that fits, found by trying and backing off on OOM.

The batch size is part of a scan's definition (attack randomness is seeded per batch, and a
device may round differently at another batch size), so it is resolved once, before the scan, and
recorded as ``batch_size_used``; it never changes during a sweep.
"""

from __future__ import annotations

import torch
from torch import nn

# CPU: no out-of-memory signal worth waiting for, and larger batches stop paying off (measured on
# 2 cores: 32 -> 2,000 and 128 -> 1,400 ResNet-18 samples/s), so auto stays at the default.
CPU_AUTO_BATCH = 256
# A GPU is fed best by few large launches; variant batching multiplies the batch by K on top.
CUDA_MAX_BATCH = 16384
CUDA_MEMORY_SHARE = 0.5  # of the free device memory one forward+backward batch may use


def _largest_power_of_two(limit: int) -> int:
    return 1 << (max(1, limit).bit_length() - 1)


def auto_batch_size(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> int:
    """On CUDA the whole sample count (up to ``CUDA_MAX_BATCH``) if one forward+backward on it fits
    in half the free memory, else the largest power of two below that does, halving on out-of-memory;
    on CPU ``CPU_AUTO_BATCH`` (or the largest power of two within the sample count)."""
    samples = len(images)
    if images.device.type != "cuda":
        return min(CPU_AUTO_BATCH, _largest_power_of_two(samples))
    free, _ = torch.cuda.mem_get_info(images.device)
    size = min(samples, CUDA_MAX_BATCH)  # one batch: the fewest launches, and no ragged last batch
    while size > 1:
        try:
            if _peak_bytes(model, images[:size], labels[:size]) <= free * CUDA_MEMORY_SHARE:
                return size
        except torch.OutOfMemoryError:
            pass
        torch.cuda.empty_cache()
        size = _largest_power_of_two(size - 1)
    return 1


def _peak_bytes(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> int:
    """Peak memory of one attack-like step: forward with input gradients, loss, backward."""
    torch.cuda.synchronize(images.device)
    torch.cuda.reset_peak_memory_stats(images.device)
    before = torch.cuda.memory_allocated(images.device)
    inputs = images.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(inputs), labels)
    torch.autograd.grad(loss, inputs)
    torch.cuda.synchronize(images.device)
    return torch.cuda.max_memory_allocated(images.device) - before
