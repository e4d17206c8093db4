"""Where the learned models run (CPU by default, CUDA when present and asked for) and seeding,
shared by training and inference."""

from __future__ import annotations

import random
from typing import Literal

import numpy as np
import torch

from engine.errors import BadInputError

DeviceChoice = Literal["cpu", "cuda", "auto"]


def choose_device(choice: str = "cpu") -> torch.device:
    """"cpu"; "cuda" (BadInputError when no CUDA device is visible); "auto" = CUDA if present.
    CPU is the default because inference is small and batched: a GPU's start-up costs more than
    a song's forward pass."""
    if choice == "cpu":
        return torch.device("cpu")
    if choice not in ("cuda", "auto"):
        raise BadInputError(f"device {choice!r}: choose cpu, cuda or auto")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if choice == "cuda":
        raise BadInputError("device cuda asked for, but torch sees no CUDA device")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seeds Python, numpy and torch (all devices); returns a CPU generator for the data order."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
