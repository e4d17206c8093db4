"""The two places a learned model plugs into the arranger (algorithms.md §2.2–2.3): the donor
transition score and the re-harmonizer. Both have a rule-based default here; the torch models
in engine/models implement the same protocols (chosen by engine/arranger/learned.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from engine.arranger.placement import RenderedNote
from engine.arranger.reharmonize import reharmonize_notes
from engine.types import ChordEvent


class TransitionScorer(Protocol):
    def __call__(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """Scores in [0, 1] for moving from each donor in `before` to each in `after`
        (shape (len(before), len(after)))."""
        ...


class Reharmonizer(Protocol):
    def __call__(
        self, notes: np.ndarray, source_chroma: np.ndarray, source_roots: np.ndarray, shift: int,
        chords: Sequence[ChordEvent], start_16th: int, length_16th: int,
    ) -> list[RenderedNote]:
        """A donor phrase's notes laid on new chords (see `reharmonize_notes`)."""
        ...


@dataclass(frozen=True, eq=False)
class DonorPhrase:
    """One phrase's re-harmonization request: the `Reharmonizer` arguments except the chords,
    so a song's phrases can go to a batching re-harmonizer together."""

    notes: np.ndarray
    source_chroma: np.ndarray
    source_roots: np.ndarray
    shift: int
    start_16th: int
    length_16th: int


class BatchReharmonizer(Reharmonizer, Protocol):
    def reharmonize_phrases(
        self, phrases: Sequence[DonorPhrase], chords: Sequence[ChordEvent],
    ) -> list[list[RenderedNote]]:
        """All phrases of a song at once (a learned model runs them in one forward pass)."""
        ...


def reharmonize_all(
    reharmonizer: Reharmonizer, phrases: Sequence[DonorPhrase], chords: Sequence[ChordEvent],
) -> list[list[RenderedNote]]:
    """Every phrase through `reharmonizer`: in one call when it batches, else one by one."""
    batched = getattr(reharmonizer, "reharmonize_phrases", None)
    if callable(batched):
        result: list[list[RenderedNote]] = batched(phrases, chords)
        return result
    return [reharmonizer(p.notes, p.source_chroma, p.source_roots, p.shift, chords,
                         p.start_16th, p.length_16th) for p in phrases]


class TextureContinuity:
    """Rule-based transition: cosine between the onset profile of one donor's last two bars
    and the next donor's first two (the paper uses learned embeddings of the same windows)."""

    def __init__(self, head: np.ndarray, tail: np.ndarray) -> None:
        self.head, self.tail = head, tail

    def __call__(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        return np.clip(self.tail[before] @ self.head[after].T, 0.0, 1.0)


RULE_BASED_REHARMONIZER: Reharmonizer = reharmonize_notes
