"""Recipe tests run offline: nothing may reach the Hugging Face Hub."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _free_cores_only():
    """Train with the cores other processes leave free (see rlreward.rl.threads); restore after."""
    import torch

    from rlreward.rl.threads import set_cpu_threads

    before = torch.get_num_threads()
    set_cpu_threads()
    yield
    torch.set_num_threads(before)
