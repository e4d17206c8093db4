"""Atomic file output for everything the engine writes (songs, libraries, caches, weights):
a temporary file beside the target, renamed over it, so readers and a crash see the old file
or the new one, never half of one; on any failure the temporary file goes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def process_umask() -> int:
    """The process's umask (Linux: read from /proc, without touching it; elsewhere set and put
    back at once)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path: Path, *, make_parents: bool = True, fsync: bool = True,
                  mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary stream that becomes `path` when the block ends without an error. `mode`
    (default: 0o666 less the umask, as `open` would give): mkstemp makes files owner-only, but
    what we write is ordinary data other programs read, under the user's own umask."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if make_parents:
        folder.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            os.fchmod(out.fileno(), 0o666 & ~process_umask() if mode is None else mode)
            yield out
            out.flush()
            if fsync:
                os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
