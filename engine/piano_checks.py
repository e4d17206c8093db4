"""Ear-level piano checks (docs/evaluation.md, issue 11): what an arranger hears in a piano part.

Stacked notes (a key struck while it still sounds), loudness against the melody, chords whose
third sounds nowhere, parallel octaves between the melody and the piano's bass, and whether the
part ends with a held chord at the melody's last note. Counts are kept so a corpus pools them.
Every input is on one 16th grid from the same step 0: piano rows (onset, pitch, duration,
velocity), the melody's pitch/onset grids and velocities, and the intended chord per 16th
(its pitch classes and root), so POP909's own piano is judged exactly like ours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.grid import REST

LOUD_VELOCITY = 110  # a piano note this loud shouts over a sung line


@dataclass(frozen=True)
class PianoChecks:
    note_ons: int
    stacked: int  # note-ons whose pitch already sounds in the piano
    piano_velocity: float  # mean
    melody_velocity: float  # mean
    loud: int  # piano notes at LOUD_VELOCITY or more
    chords_judged: int  # major/minor chords lasting at least a beat
    thirdless: int  # … whose third sounds in neither the piano nor the melody
    bass_moves: int
    parallel_octaves: int  # bass moves in octaves/unisons with the melody
    ending_held: float  # 1/0: last piano onset within a beat of the melody's, held ≥ a beat
    chord_changes: int = 0  # new chords of at least a beat with a piano onset in their first beat
    bass_on_root: int = 0  # … whose first onset's lowest note is the chord's root

    @property
    def stacked_share(self) -> float:
        return self.stacked / self.note_ons if self.note_ons else math.nan

    @property
    def velocity_gap(self) -> float:
        """Melody mean − piano mean: POP909's own piano sits about 17 under the melody."""
        return self.melody_velocity - self.piano_velocity

    @property
    def loud_share(self) -> float:
        return self.loud / self.note_ons if self.note_ons else math.nan

    @property
    def thirdless_share(self) -> float:
        return self.thirdless / self.chords_judged if self.chords_judged else math.nan

    @property
    def bass_on_root_share(self) -> float:
        return self.bass_on_root / self.chord_changes if self.chord_changes else math.nan

    @property
    def parallel_octaves_per_100(self) -> float:
        return 100 * self.parallel_octaves / self.bass_moves if self.bass_moves else math.nan


def stacked_note_ons(rows: np.ndarray) -> int:
    """Note-ons whose pitch is already sounding (started earlier, not yet ended)."""
    count = 0
    for pitch in np.unique(rows[:, 1]):
        same = rows[rows[:, 1] == pitch]
        same = same[np.argsort(same[:, 0], kind="stable")]
        ends = np.maximum.accumulate(same[:, 0] + np.maximum(same[:, 2], 1))
        count += int((same[1:, 0] < ends[:-1]).sum())
    return count


def _thirdless(
    rows: np.ndarray, melody_pitch: np.ndarray, chord_tones: np.ndarray, chord_roots: np.ndarray,
    beat_16th: int,
) -> tuple[int, int]:
    """(judged, thirdless) over the chord spans: runs of steps with one root and tone set."""
    length = len(chord_roots)
    heard = np.zeros((length, 12), dtype=bool)
    for onset, pitch, duration in rows[:, :3].tolist():
        lo, hi = max(onset, 0), min(onset + max(duration, 1), length)
        if lo < hi:
            heard[lo:hi, pitch % 12] = True
    sung = np.flatnonzero(melody_pitch[:length] != REST)
    heard[sung, melody_pitch[sung] % 12] = True
    judged = thirdless = 0
    start = 0
    for step in range(1, length + 1):
        if step < length and chord_roots[step] == chord_roots[start] and np.array_equal(
                chord_tones[step], chord_tones[start]):
            continue
        root = int(chord_roots[start])
        if root >= 0 and step - start >= beat_16th:
            tones = chord_tones[start]
            thirds = [(root + i) % 12 for i in (3, 4) if tones[(root + i) % 12]]
            if len(thirds) == 1 and tones[(root + 7) % 12]:  # a major or minor chord
                judged += 1
                thirdless += not heard[start:step, thirds[0]].any()
        start = step
    return judged, thirdless


def _parallel_octaves(rows: np.ndarray, melody_pitch: np.ndarray) -> tuple[int, int]:
    """(bass moves, those in octaves/unisons with the melody): the bass is the lowest note
    struck at each piano onset; a move is a change of bass pitch between onsets."""
    if not len(rows):
        return 0, 0
    order = np.lexsort((rows[:, 1], rows[:, 0]))
    onsets, first = np.unique(rows[order, 0], return_index=True)
    bass = rows[order, 1][first]
    moves = parallel = 0
    for k in range(1, len(onsets)):
        if bass[k] == bass[k - 1]:
            continue
        moves += 1
        a, b = int(onsets[k - 1]), int(onsets[k])
        if not (0 <= a < len(melody_pitch) and 0 <= b < len(melody_pitch)):
            continue
        m1, m2 = int(melody_pitch[a]), int(melody_pitch[b])
        if REST in (m1, m2) or m1 == m2:
            continue
        octaves = (m1 - bass[k - 1]) % 12 == 0 and (m2 - bass[k]) % 12 == 0
        parallel += bool(octaves and np.sign(m2 - m1) == np.sign(bass[k] - bass[k - 1]))
    return moves, parallel


def _bass_on_root(rows: np.ndarray, chord_roots: np.ndarray, beat_16th: int) -> tuple[int, int]:
    """(changes, on root): at every new chord of a beat or more, the lowest note of the piano's
    first onset in its first beat is the chord's root (a bass figure restarts on it)."""
    changes = hits = 0
    roots = np.asarray(chord_roots)
    starts = [0, *np.flatnonzero(np.diff(roots) != 0) + 1]
    ends = [*starts[1:], len(roots)]
    for lo, hi in zip(starts, ends, strict=True):
        root = int(roots[lo])
        if root < 0 or hi - lo < beat_16th:
            continue
        inside = rows[(rows[:, 0] >= lo) & (rows[:, 0] < lo + beat_16th)]
        if not len(inside):
            continue
        first = inside[inside[:, 0] == inside[:, 0].min()]
        changes += 1
        hits += int(first[:, 1].min()) % 12 == root
    return changes, hits


def _ending_held(rows: np.ndarray, melody_onsets: np.ndarray, beat_16th: int) -> float:
    if not len(rows) or not melody_onsets.size:
        return math.nan
    last_melody = int(melody_onsets.max())
    last_onset = int(rows[:, 0].max())
    held = rows[rows[:, 0] == last_onset, 2].max() >= beat_16th
    return float(abs(last_onset - last_melody) <= beat_16th and held)


def piano_checks(
    rows: np.ndarray, melody_pitch: np.ndarray, melody_onset: np.ndarray,
    melody_velocities: np.ndarray, chord_tones: np.ndarray, chord_roots: np.ndarray,
    beat_16th: int,
) -> PianoChecks:
    """The checks of one piano part (module docstring): `rows` (onset, pitch, duration,
    velocity) in 16ths, `chord_tones` (steps × 12) and `chord_roots` (steps; −1 = none) the
    intended chords, all from the same step 0 and already cut to the span being judged."""
    notes = np.asarray(rows, dtype=np.int64).reshape(-1, 4)
    moves, parallel = _parallel_octaves(notes, melody_pitch)
    judged, thirdless = _thirdless(notes, melody_pitch, np.asarray(chord_tones, dtype=bool),
                                   np.asarray(chord_roots), beat_16th)
    velocities = np.asarray(melody_velocities, dtype=float)
    changes, on_root = _bass_on_root(notes, chord_roots, beat_16th)
    return PianoChecks(
        note_ons=len(notes),
        stacked=stacked_note_ons(notes) if len(notes) else 0,
        piano_velocity=float(notes[:, 3].mean()) if len(notes) else math.nan,
        melody_velocity=float(velocities.mean()) if velocities.size else math.nan,
        loud=int((notes[:, 3] >= LOUD_VELOCITY).sum()),
        chords_judged=judged,
        thirdless=thirdless,
        bass_moves=moves,
        parallel_octaves=parallel,
        ending_held=_ending_held(notes, np.flatnonzero(melody_onset), beat_16th),
        chord_changes=changes,
        bass_on_root=on_root,
    )


__all__ = ["LOUD_VELOCITY", "PianoChecks", "piano_checks", "stacked_note_ons"]
