"""Where the research corpora live and which songs are held out for evaluation.

The corpora (POP909, its structure labels, Nottingham) are read, never copied into the repo.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

DATA_ENV = "ACCOBRIDGE_SHARED_DATA"
HELD_OUT_MODULUS = 10  # one song in ten is held out of every library and training set


def shared_data_dir() -> Path | None:
    """The corpora folder: $ACCOBRIDGE_SHARED_DATA, else ../shared/data beside the checkout."""
    env = os.environ.get(DATA_ENV)
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2].parent / "shared" / "data")
    for path in candidates:
        if (path / "pop909").is_dir() or (path / "nottingham").is_dir():
            return path
    return None


def is_held_out(dataset: str, song_id: str) -> bool:
    """Fixed, seedless split: a stable hash of `dataset:song_id` picks 10% for evaluation."""
    digest = hashlib.sha1(f"{dataset}:{song_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % HELD_OUT_MODULUS == 0
