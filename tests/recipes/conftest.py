"""Recipe tests run offline (nothing may reach the Hugging Face Hub), on the free cores."""

from __future__ import annotations

import os

from tests.rl.conftest import _free_cores_only  # noqa: F401  (autouse fixture, shared)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
