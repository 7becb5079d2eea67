"""Training tests use only the cores other processes leave free (see rlreward.rl.threads)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module", autouse=True)
def _torch_threads_on_free_cores():
    """Module-scoped so that module-scoped training fixtures run under it too."""
    import torch

    from rlreward.rl.threads import set_cpu_threads

    before = torch.get_num_threads()
    set_cpu_threads()
    yield
    torch.set_num_threads(before)
