from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    # The CI machine has 2 shared cores; one thread keeps tiny-model tests fast and free of OpenMP contention.
    import torch

    torch.set_num_threads(1)
