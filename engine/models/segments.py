"""POP909 2-bar accompaniment segments for training the learned texture models (algorithms.md
§2.3: the chord/texture VAE; §2.2: the contrastive transition embeddings): building them from a
user-supplied POP909 folder into one .npz (`engine.build.segments`), and loading that file.

A segment is 2 bars (32 sixteenths) of one 4/4 song's accompaniment; how they are cut and
which songs are skipped: `engine.build.segments`.

File format (one uncompressed .npz, no pickles; S segments, N notes):
- `notes` uint8 (N, 4): onset_16th 0..31 (segment-relative), pitch, duration_16th 1..32
  (clipped to 32), velocity; `note_offsets` int64 (S+1): segment s owns
  notes[note_offsets[s]:note_offsets[s+1]], sorted by onset then pitch.
- `chord_root`, `chord_bass` int8 (S, 8): per beat pitch class (-1 = no chord);
  `chord_chroma` uint8 (S, 8, 12) 0/1.
- `song` int32 (S,) POP909 song number; `bar` int32 (S,) the segment's first bar in the song;
  `phrase` int16 (S,) index of the human phrase (human_label1.txt) holding that bar (-1: none);
  `phrase_bar` int16 (S,) bar offset inside that phrase (-1: none).
- `split` uint8 (S,): 2 = test (`is_held_out("pop909", id)`), 1 = valid (a fixed seeded ~5% of
  the other songs, by song), 0 = train.
- `provenance`: JSON string (source, counts, seed, date, git commit).

The file is never committed (POP909 note content stays out of the repository).

Build: `python3 -m engine.build.segments build --data /work/shared/data --out FILE`.
Loading (`load_segments`) needs only numpy: it is on the training path of the GPU machine,
which has no mido.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import LibraryError

SCHEMA_VERSION = 1
SEGMENT_BARS = 2
BAR_16TH = 16
BEAT_16TH = 4
SEGMENT_16TH = SEGMENT_BARS * BAR_16TH  # 32
SEGMENT_BEATS = SEGMENT_16TH // BEAT_16TH  # 8
TRAIN, VALID, TEST = 0, 1, 2
ARRAYS = ("notes", "note_offsets", "chord_root", "chord_bass", "chord_chroma", "song", "bar",
          "phrase", "phrase_bar", "split")


@dataclass(frozen=True, eq=False)
class SegmentSet:
    """The 2-bar segments of a built file (see the module text); arrays are read-only."""

    notes: np.ndarray  # (N, 4) uint8 onset_16th, pitch, duration_16th, velocity
    note_offsets: np.ndarray  # (S+1,) int64
    chord_root: np.ndarray  # (S, 8) int8
    chord_bass: np.ndarray  # (S, 8) int8
    chord_chroma: np.ndarray  # (S, 8, 12) uint8
    song: np.ndarray  # (S,) int32
    bar: np.ndarray  # (S,) int32
    phrase: np.ndarray  # (S,) int16
    phrase_bar: np.ndarray  # (S,) int16
    split: np.ndarray  # (S,) uint8
    provenance: Mapping[str, object]

    def __len__(self) -> int:
        return len(self.song)

    def segment_notes(self, s: int) -> np.ndarray:
        """(n, 4) uint8 rows (onset_16th, pitch, duration_16th, velocity) of segment s."""
        return self.notes[self.note_offsets[s] : self.note_offsets[s + 1]]

    def note_counts(self) -> np.ndarray:
        return np.diff(self.note_offsets)

    def window_roll(self, s: int) -> np.ndarray:
        """(32, 128) float32 duration roll (Wang et al. 2020 §3.1: the texture encoder's input):
        each onset holds its duration in 16ths, 0 elsewhere; duplicates keep the longest."""
        return segment_rolls(self, np.array([s]))[0]

    def chord_features(self, s: int) -> np.ndarray:
        """(8, 36) float32 per beat: one-hot root, chroma, one-hot bass (the chord encoder's
        input, algorithms.md §2.3); a beat without a chord is all zeros."""
        return chord_features(self.chord_root[s], self.chord_chroma[s], self.chord_bass[s])

    def indices(self, split: int) -> np.ndarray:
        """Segment indices of TRAIN, VALID or TEST."""
        return np.flatnonzero(self.split == split)

    def next_segment(self) -> np.ndarray:
        """Index of the segment one bar later in the same song, -1 where there is none (its
        window was dropped or the song ends) — the positive pair of §2.2's transition model."""
        later = np.full(len(self), -1, dtype=np.int64)
        same = (self.song[1:] == self.song[:-1]) & (self.bar[1:] == self.bar[:-1] + 1)
        later[:-1][same] = np.arange(1, len(self))[same]
        return later


def segment_rolls(segments: SegmentSet, which: np.ndarray) -> np.ndarray:
    """(len(which), 32, 128) float32 duration rolls of the chosen segments, in one pass."""
    counts = np.diff(segments.note_offsets)[which]
    starts = segments.note_offsets[which]
    owner = np.repeat(np.arange(len(which)), counts)
    rows = segments.notes[np.repeat(starts, counts) + _ranges(counts)].astype(np.int64)
    roll = np.zeros((len(which), SEGMENT_16TH, 128), dtype=np.float32)
    np.maximum.at(roll, (owner, rows[:, 0], rows[:, 1]), rows[:, 2].astype(np.float32))
    return roll


def chord_features(root: np.ndarray, chroma: np.ndarray, bass: np.ndarray) -> np.ndarray:
    """(…, beats, 36) float32: one-hot root (12), chroma (12), one-hot bass (12)."""
    root, bass = np.asarray(root), np.asarray(bass)
    out = np.zeros((*root.shape, 36), dtype=np.float32)
    eye = np.eye(12, dtype=np.float32)
    out[..., :12] = np.where(root[..., None] >= 0, eye[np.maximum(root, 0)], 0.0)
    out[..., 12:24] = np.asarray(chroma, dtype=np.float32)
    out[..., 24:] = np.where(bass[..., None] >= 0, eye[np.maximum(bass, 0)], 0.0)
    return out


def _ranges(counts: np.ndarray) -> np.ndarray:
    """Concatenated aranges 0..count-1 for each count."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    return np.arange(total, dtype=np.int64) - np.repeat(ends - counts, counts)


def load_segments(path: Path | str) -> SegmentSet:
    """The segments in `path`; LibraryError when it is missing, damaged or of another schema."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in (*ARRAYS, "provenance", "schema_version")
                       if k not in archive.files]
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
            arrays = {k: archive[k] for k in ARRAYS}
            version = int(archive["schema_version"])
            provenance = json.loads(str(archive["provenance"]))
        if version != SCHEMA_VERSION:
            raise ValueError(f"schema version {version}, this AccoBridge reads {SCHEMA_VERSION}")
        check_arrays(arrays)
    except FileNotFoundError as err:
        raise LibraryError(f"segment file {path} not found; build it with `python3 -m "
                           "engine.build.segments build --data DIR --out FILE`") from err
    except (OSError, ValueError, KeyError, TypeError, EOFError) as err:
        raise LibraryError(f"segment file {path} is damaged ({err}); rebuild it") from err
    for value in arrays.values():
        value.flags.writeable = False
    return SegmentSet(**arrays, provenance=provenance)


def check_arrays(a: Mapping[str, np.ndarray]) -> None:
    """ValueError naming the first array that does not fit the others."""
    s = len(a["song"])
    want = {"notes": (len(a["notes"]), 4), "note_offsets": (s + 1,),
            "chord_root": (s, SEGMENT_BEATS), "chord_bass": (s, SEGMENT_BEATS),
            "chord_chroma": (s, SEGMENT_BEATS, 12), "bar": (s,), "phrase": (s,),
            "phrase_bar": (s,), "split": (s,)}
    for name, shape in want.items():
        if a[name].shape != shape:
            raise ValueError(f"{name} has shape {a[name].shape}, expected {shape}")
    offsets = a["note_offsets"]
    if offsets[0] != 0 or offsets[-1] != len(a["notes"]) or np.any(np.diff(offsets) <= 0):
        raise ValueError("note_offsets do not index the notes (or a segment has none)")

