import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Tiny models gain nothing from a second thread, and spinning threads cost a lot on a busy machine.
torch.set_num_threads(1)


@pytest.fixture
def small_config():
    """A quick scan of the embedded default: enough samples and thresholds to exercise everything."""
    from fragscan import ScanConfig

    def make(**overrides):
        values = dict(max_samples=60, thresholds=5, eps=0.1, batch_size=32)
        values.update(overrides)
        return ScanConfig(**values)

    return make
