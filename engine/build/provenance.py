"""What every offline builder writes with: the checkout's commit for its provenance record, and
.npz files written atomically (readers see the old file or the new one, never half of one)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from engine.atomic_file import atomic_output


def git_commit() -> str:
    """The checkout's HEAD commit, or "unknown" outside git (provenance only)."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
            cwd=Path(__file__).resolve().parent, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def write_npz_atomically(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """np.savez into a temporary file beside `path`, then os.replace; on any failure the
    temporary file goes and the previous file stays as it was."""
    with atomic_output(path) as out:
        np.savez(out, **arrays)  # type: ignore[arg-type]
