import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def small_config():
    """A quick scan of the embedded default: enough samples and thresholds to exercise everything."""
    from fragscan import ScanConfig

    def make(**overrides):
        values = dict(max_samples=60, thresholds=5, eps=0.1, batch_size=32)
        values.update(overrides)
        return ScanConfig(**values)

    return make
