"""The learned donor transition score (algorithms.md §2.2): cosine between the contrastive
texture embedding of one donor phrase's last 2 bars and the next donor's first 2 bars.

Every donor's two edge windows are embedded once per library and weights version, in one
batched pass (GPU when present), and kept in memory and on disk beside the donor library
(`pop909_donors.texture_<weights>.npz` in the user data dir), so later processes read ~7 MB
instead of importing torch. Arranging is then a matrix product per phrase pair.

Run `python3 -m engine.models.transition` after importing the donor library to fill the disk
cache ahead of the first arrangement (it takes ~10–20 s on a 2-core CPU, once).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic_file import atomic_output
from engine.errors import LibraryError
from engine.userdata import user_data_dir

log = logging.getLogger(__name__)

WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "models" / "texture_contrastive.pt"
CACHE_FORMAT = 1
EMBED_BATCH_CPU = 256
SINGLE_THREAD_MACS = 65536 * 4  # OpenBLAS threads a GEMM from m·n·k ≥ this (GEMM threshold)
_VERSIONS: dict[tuple[str, int, int], str] = {}
_SCORERS: dict[tuple[int, str], tuple[Any, LearnedTransition]] = {}


class LearnedTransition:
    """Scores in [0, 1]: cosine of tail(before) and head(after) embeddings, negative → 0 (as
    the rule-based onset-profile cosine, whose vectors are never negative)."""

    def __init__(self, head: np.ndarray, tail: np.ndarray) -> None:
        self.head = _unit(np.asarray(head, dtype=np.float32))
        self.tail = _unit(np.asarray(tail, dtype=np.float32))

    def __call__(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        query = self.tail[np.asarray(before)]
        keys = self.head[np.asarray(after)].T
        scores = np.empty((len(query), keys.shape[1]), dtype=np.float32)
        # Row blocks small enough that OpenBLAS stays on one thread: on a loaded 2-core
        # machine a threaded 256×256×128 product waits ~6 ms for its helper, a block loop
        # takes < 1 ms.
        rows = max(1, SINGLE_THREAD_MACS // max(1, keys.shape[0] * keys.shape[1]))
        for start in range(0, len(query), rows):
            np.matmul(query[start : start + rows], keys, out=scores[start : start + rows])
        return np.clip(scores, 0.0, 1.0).astype(np.float64)


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def weights_version(path: Path) -> str:
    """First 16 hex digits of the weights file's SHA-256 (names the disk cache); hashed once
    per file state (path, size, mtime) and process."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _VERSIONS:
        _VERSIONS[key] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return _VERSIONS[key]


def library_fingerprint(donors: Any) -> str:
    """A cheap identity of a donor library's content: provenance, sizes, note offsets and a
    sample of the notes (a re-import writes new provenance, so this changes with it)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(dict(donors.provenance), sort_keys=True, default=str).encode())
    notes = np.ascontiguousarray(donors.notes)
    digest.update(str((notes.shape, len(donors.bars))).encode())
    digest.update(np.ascontiguousarray(donors.note_offsets, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(donors.bars, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(notes[::97], dtype=np.int64).tobytes())
    return digest.hexdigest()[:32]


def edge_embeddings(donors: Any, weights: Path) -> tuple[np.ndarray, np.ndarray]:
    """(head, tail) transition vectors of every donor: torch, one batched pass per edge."""
    import torch

    from engine.models.contrastive import (
        NoteTable,
        edge_windows,
        embed,
        load_encoder,
        pick_device,
        transition_vectors,
    )

    device = pick_device("auto")
    model, meta = load_encoder(weights, device)
    variant = str(meta.get("variant", "next"))
    head_notes, head_off, tail_notes, tail_off = edge_windows(
        donors.notes, donors.note_offsets, donors.bars
    )
    # small CPU batches keep the resident process's peak memory low (torch itself is ~300 MB)
    batch = EMBED_BATCH_CPU if device.type == "cpu" else 4096
    edges = []
    with torch.inference_mode():
        for notes, offsets in ((head_notes, head_off), (tail_notes, tail_off)):
            table = NoteTable(notes, offsets, device)
            windows = np.arange(table.windows)
            h = embed(model, table, windows, batch=batch, projected=False)
            edges.append(transition_vectors(model, variant, table, windows, h))
    return edges[0][1], edges[1][0]  # head: the "after" vectors, tail: the "before" ones


def cache_path(version: str) -> Path:
    return user_data_dir() / f"pop909_donors.texture_{version}.npz"


def _read_cache(path: Path, fingerprint: str, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as cached:
            if (int(cached["format"]) != CACHE_FORMAT or str(cached["library"]) != fingerprint
                    or cached["head"].shape[0] != n):
                return None
            return cached["head"].astype(np.float32), cached["tail"].astype(np.float32)
    except (OSError, ValueError, KeyError, EOFError) as err:  # absent or stale: recompute
        log.debug("texture embedding cache %s not used: %s", path, err)
        return None


def _write_cache(path: Path, fingerprint: str, head: np.ndarray, tail: np.ndarray) -> None:
    """Atomic (temporary file + rename); a failure only costs the next process a recompute."""
    try:
        with atomic_output(path) as out:
            np.savez(out, format=np.array(CACHE_FORMAT), library=np.array(fingerprint),
                     head=head.astype(np.float16), tail=tail.astype(np.float16))
    except OSError as err:
        log.warning("could not cache texture embeddings in %s: %s", path, err)


def learned_transition(donors: Any, weights: Path | None = None) -> LearnedTransition:
    """The transition scorer for `donors` (a DonorLibrary), built once per library and
    weights file: from memory, else the disk cache, else embedded now and cached."""
    path = WEIGHTS if weights is None else Path(weights)
    if not path.exists():
        raise LibraryError(
            f"the texture embedding weights {path} are missing; reinstall AccoBridge or use "
            "the rule-based transition"
        )
    version = weights_version(path)
    key = (id(donors), version)
    held = _SCORERS.get(key)
    if held is not None and held[0] is donors:
        return held[1]
    fingerprint = library_fingerprint(donors)
    target = cache_path(version)
    edges = _read_cache(target, fingerprint, len(donors.bars))
    if edges is None:
        edges = edge_embeddings(donors, path)
        _write_cache(target, fingerprint, *edges)
    scorer = LearnedTransition(*edges)
    _SCORERS[key] = (donors, scorer)
    return scorer


def main() -> int:
    """Embed the imported donor library's edges now (fills the disk cache)."""
    from engine.library.pop909_textures import load_donor_library

    donors = load_donor_library()
    if donors is None:
        print("no POP909 donor library imported: nothing to embed", file=sys.stderr)
        return 1
    began = time.perf_counter()
    try:
        learned_transition(donors)
    except LibraryError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"texture embeddings of {len(donors)} donors cached in "
          f"{cache_path(weights_version(WEIGHTS))} ({time.perf_counter() - began:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
