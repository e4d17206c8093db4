"""Aligns a POP909 song's MIDI grid with the bar grid of pop909-structure, which dropped beats
by hand: melody.txt onsets vote for offsets, and a Viterbi over them picks a non-decreasing,
piecewise-constant offset whose changes are seams (why and how well: `pop909_midi`'s module text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# A melody.txt onset counts as matched when the MIDI melody has the same pitch within this many
# 16ths of it (after alignment).
MATCH_TOLERANCE_16TH = 1
# Viterbi of the alignment: an offset change costs this many matched notes, so a seam needs a
# clear run of notes behind it; an onset one 16th off scores NEAR_MATCH instead of 1.
SWITCH_PENALTY = 3.0
NEAR_MATCH = 0.6
# Offsets a structure onset may vote for, in 16ths (MIDI grid − structure grid), and how many of
# the most voted ones the Viterbi considers (those with at least MIN_VOTE_SHARE of the notes).
OFFSET_RANGE_16TH = (-256, 1024)
MAX_OFFSETS = 16
MIN_VOTE_SHARE = 0.04
NOTE_COLUMNS = 4  # onset_16th, pitch, duration_16th, velocity


@dataclass(frozen=True)
class AlignmentSegment:
    """From structure 16th `start_16th` on (until the next segment), structure 16th t is MIDI
    16th t + `offset_16th` (MIDI 16th 0 = the first beat of `beat_midi.txt`)."""

    start_16th: int
    offset_16th: int


def align_to_structure(
    midi_onsets: np.ndarray,
    structure_notes: np.ndarray,
    bar_16th: int,
    phrase_starts_16th: set[int] | frozenset[int] = frozenset(),
) -> tuple[tuple[AlignmentSegment, ...], float]:
    """Piecewise offsets mapping the structure grid onto the MIDI grid (see `pop909_midi`).

    `midi_onsets`: rows (onset_16th, pitch) of the MIDI melody on the MIDI grid;
    `structure_notes`: rows (onset_16th, pitch, duration_16th) of melody.txt. Returns the
    segments and the share of structure onsets matched within MATCH_TOLERANCE_16TH."""
    if len(structure_notes) == 0 or len(midi_onsets) == 0:
        return (AlignmentSegment(0, 0),), 0.0
    s_onset, s_pitch = structure_notes[:, 0], structure_notes[:, 1]
    m_onset, m_pitch = midi_onsets[:, 0], midi_onsets[:, 1]
    low, high = OFFSET_RANGE_16TH
    same = s_pitch[:, None] == m_pitch[None, :]
    diff = (m_onset[None, :] - s_onset[:, None])[same]
    diff = diff[(diff >= low) & (diff < high)]
    votes = np.bincount(diff - low, minlength=high - low)
    n = len(s_onset)
    order = np.argsort(votes)[::-1][:MAX_OFFSETS]
    keep = order[votes[order] >= max(3.0, MIN_VOTE_SHARE * n)]
    if len(keep) == 0:
        keep = order[:1]
    offsets = np.sort(keep) + low

    # Emission: 1 for a same-pitch MIDI onset exactly there, NEAR_MATCH one 16th off.
    span = int(max(m_onset.max(), s_onset.max() + offsets.max())) + 3
    base = int(min(m_onset.min(), s_onset.min() + offsets.min())) - 2
    occupied = np.zeros((128, span - base + 1), dtype=bool)
    occupied[np.clip(m_pitch, 0, 127), m_onset - base] = True
    where = s_onset[:, None] + offsets[None, :] - base
    rows = np.clip(s_pitch, 0, 127)[:, None]
    exact = occupied[rows, where]
    near = occupied[rows, where - 1] | occupied[rows, where + 1]
    emission = np.where(exact, 1.0, np.where(near, NEAR_MATCH, 0.0))

    # Viterbi with non-decreasing offsets: from k <= j, a change costing SWITCH_PENALTY.
    k_count = len(offsets)
    back = np.zeros((n, k_count), dtype=np.int64)
    score = emission[0].copy()
    columns = np.arange(k_count)
    for i in range(1, n):
        best_before = np.maximum.accumulate(score)
        arg_before = _running_argmax(score)
        moved = np.concatenate([[-np.inf], best_before[:-1] - SWITCH_PENALTY])
        moved_from = np.concatenate([[0], arg_before[:-1]])
        stay = score >= moved
        back[i] = np.where(stay, columns, moved_from)
        score = np.where(stay, score, moved) + emission[i]
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    matched = float(np.mean(emission[np.arange(n), path] > 0))

    segments = [AlignmentSegment(0, int(offsets[path[0]]))]
    changes = np.flatnonzero(np.diff(path)) + 1
    for change in changes:
        cut = _seam(int(s_onset[change - 1]), int(s_onset[change]), bar_16th, phrase_starts_16th)
        segments.append(AlignmentSegment(max(cut, segments[-1].start_16th + 1),
                                         int(offsets[path[change]])))
    return tuple(segments), matched


def _running_argmax(values: np.ndarray) -> np.ndarray:
    """Index of the running maximum (first one on ties) at each position."""
    best = np.maximum.accumulate(values)
    is_new = np.concatenate([[True], values[1:] > best[:-1]])
    return np.maximum.accumulate(np.where(is_new, np.arange(len(values)), 0))


def _seam(last_onset: int, next_onset: int, bar_16th: int, phrase_starts: set[int] |
          frozenset[int]) -> int:
    """Where the structure dropped beats between two melody onsets: a phrase boundary bar line
    in (last_onset, next_onset], else the bar line nearest the middle of that gap, else the
    beat of the next onset."""
    first_bar = -(-(last_onset + 1) // bar_16th) * bar_16th
    bars = list(range(first_bar, next_onset + 1, bar_16th))
    on_phrase = [b for b in bars if b in phrase_starts]
    if on_phrase:
        return on_phrase[-1]
    if bars:
        middle = (last_onset + next_onset) / 2
        return min(bars, key=lambda b: abs(b - middle))
    return max(last_onset + 1, next_onset - next_onset % 4)


def notes_on_grid(notes: np.ndarray, alignment: Sequence[AlignmentSegment]) -> np.ndarray:
    """MIDI-grid note rows -> structure-grid note rows. Notes before 16th 0 or in beats the
    structure deleted are dropped; a note sounding across a seam ends there."""
    if len(notes) == 0:
        return np.zeros((0, NOTE_COLUMNS), dtype=np.int32)
    starts = np.array([s.start_16th for s in alignment], dtype=np.int64)
    offsets = np.array([s.offset_16th for s in alignment], dtype=np.int64)
    ends = np.concatenate([starts[1:], [np.iinfo(np.int32).max]])
    # Offsets never decrease, so the segments' MIDI starts increase too.
    k = np.clip(np.searchsorted(starts + offsets, notes[:, 0], side="right") - 1, 0, None)
    onset = notes[:, 0] - offsets[k]
    inside = (onset >= 0) & (onset < ends[k])
    end = np.minimum(onset + notes[:, 2], ends[k])
    rows = np.stack([onset, notes[:, 1], np.maximum(end - onset, 1), notes[:, 3]], axis=1)
    rows = rows[inside]
    return rows[np.lexsort((rows[:, 1], rows[:, 0]))].astype(np.int32)


def spans_on_grid(spans_16th: np.ndarray, alignment: Sequence[AlignmentSegment]) -> np.ndarray:
    """Pedal-down spans (fractional MIDI 16ths) -> structure-grid spans, cut at seams."""
    start = np.rint(spans_16th[:, 0]).astype(np.int64)
    end = np.rint(spans_16th[:, 1]).astype(np.int64)
    zeros = np.zeros_like(start)
    notes = np.stack([start, zeros, np.maximum(end - start, 1), zeros], axis=1)
    rows = notes_on_grid(notes, alignment)
    return np.stack([rows[:, 0], rows[:, 0] + rows[:, 2]], axis=1).astype(np.int32)
