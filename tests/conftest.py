import os

import pytest
import torch
from hypothesis import settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The suite replays the same fuzzed examples every run, so a red CI is a real regression, not a draw;
# `HYPOTHESIS_PROFILE=explore pytest tests/test_untrusted.py` hunts for new ones (docs/limits.md).
settings.register_profile("suite", max_examples=25, derandomize=True, deadline=None)
settings.register_profile("explore", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))
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


@pytest.fixture
def memory_cap():
    """A context manager capping this process's address space at its current size plus ``extra``
    bytes (2 GiB by default): a runaway allocation then fails the test instead of the machine."""
    import re
    import resource
    from contextlib import contextmanager
    from pathlib import Path

    @contextmanager
    def cap(extra: int = 2 << 30):
        size = int(re.search(r"VmSize:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (size + extra, hard))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))

    return cap
