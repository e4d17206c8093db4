"""The POP909 donor-phrase library (AccoMontage §3.3, algorithms.md §2.1) as the arranger loads
it. `engine.build.pop909_import` builds it from a user-supplied POP909 folder.

The package ships one built by that importer (`engine/data/pop909_donors.npz`, POP909's MIT
licence and a provenance file with the command, the songs used and its SHA-256 beside it), so
a fresh install arranges with human-played phrases; a library the user imports wins over it.

Per donor: song id, phrase index, label, bars; the notes (onset_16th, pitch, duration_16th,
velocity); the melody's [onset, hold, rest] flags per 16th (from melody.txt, the labels' own
grid); per-beat chords (root pc, bass pc, 12-d chroma; -1 = no chord); rhythmic density and
voice number (`engine.arranger.descriptors`) and their levels 0..4, equal-population quintiles
among the donors of the same length (the paper's prefilter; lengths with fewer than
`pop909_import.MIN_GROUP_FOR_OWN_CUTS` donors use the cutpoints of the whole library); mean
velocity and a per-beat velocity curve; sustain-pedal spans.

Storage: one uncompressed .npz (no pickles) of flat arrays; donors are sorted by bar count so
each length's features are contiguous views (`DonorLibrary.groups`). Notes and pedal spans are
ragged (offset arrays); per-16th and per-beat arrays are regular per donor (16·bars, 4·bars).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import LibraryError
from engine.userdata import user_data_dir

SCHEMA_VERSION = 1
LIBRARY_FILE = "pop909_donors.npz"
IMPORT_COMMAND = "accobridge library import-pop909"
BAR_16TH = 16
BEATS_PER_BAR = 4
QUANTILES = (0.2, 0.4, 0.6, 0.8)  # the level cutpoints: equal-population quintiles
_REQUIRED = (
    "schema_version", "provenance", "song", "phrase_index", "label", "bars", "notes",
    "note_offsets", "melody_flags", "beat_root", "beat_bass", "beat_chroma", "velocity_curve",
    "density", "polyphony", "density_level", "polyphony_level", "velocity", "pedal",
    "pedal_offsets", "cut_bars", "density_cuts", "polyphony_cuts", "density_cuts_all",
    "polyphony_cuts_all",
)


@dataclass(frozen=True, eq=False)
class DonorGroup:
    """All donors of one length, stacked for matrix work (views into the library arrays)."""

    bars: int
    indices: np.ndarray  # (n,) donor indices, consecutive
    melody_flags: np.ndarray  # (n, 16·bars·3) bool: per 16th [onset, hold, rest], step-major
    chroma: np.ndarray  # (n, 4·bars, 12) bool per-beat chord chroma
    density_cutpoints: np.ndarray  # (4,) the RD quintile cutpoints used for this length
    polyphony_cutpoints: np.ndarray  # (4,) the VN ones


@dataclass(frozen=True, eq=False)
class DonorLibrary:
    """The imported donor phrases; read-only arrays, one row per donor (sorted by bars)."""

    song: np.ndarray  # (n,) int POP909 song number
    phrase_index: np.ndarray  # (n,) position of the phrase in its song
    label: np.ndarray  # (n,) str phrase letter (upper case: vocal)
    bars: np.ndarray  # (n,)
    density: np.ndarray  # (n,) float rhythmic density RD
    polyphony: np.ndarray  # (n,) float voice number VN
    density_level: np.ndarray  # (n,) 0..4
    polyphony_level: np.ndarray  # (n,) 0..4
    velocity: np.ndarray  # (n,) mean MIDI velocity
    density_cutpoints: np.ndarray  # (4,) over all donors
    polyphony_cutpoints: np.ndarray  # (4,)
    groups: Mapping[int, DonorGroup]
    provenance: Mapping[str, object]
    notes: np.ndarray  # (N, 4) int32 all donors' notes
    note_offsets: np.ndarray  # (n+1,)
    melody_steps: np.ndarray  # (S, 3) bool, 16·bars rows per donor
    step_offsets: np.ndarray  # (n+1,)
    beat_root: np.ndarray  # (B,) int8, 4·bars per donor
    beat_bass: np.ndarray  # (B,) int8
    chroma: np.ndarray  # (B, 12) bool
    velocity_steps: np.ndarray  # (B,) float32 per-beat velocity
    beat_offsets: np.ndarray  # (n+1,)
    pedal: np.ndarray  # (P, 2) int32 sustain-down spans (start_16th, end_16th), phrase-relative
    pedal_offsets: np.ndarray  # (n+1,)

    def __len__(self) -> int:
        return len(self.bars)

    def phrase_notes(self, i: int) -> np.ndarray:
        """(n, 4) int32 rows (onset_16th, pitch, duration_16th, velocity), phrase-relative."""
        return self.notes[self.note_offsets[i] : self.note_offsets[i + 1]]

    def melody_flags(self, i: int) -> np.ndarray:
        """(16·bars, 3) bool per 16th: [onset, hold, rest] of the donor's melody."""
        return self.melody_steps[self.step_offsets[i] : self.step_offsets[i + 1]]

    def beat_chords(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per beat: root pc, bass pc (-1 = no chord) and (beats, 12) chroma."""
        span = slice(self.beat_offsets[i], self.beat_offsets[i + 1])
        return self.beat_root[span], self.beat_bass[span], self.chroma[span]

    def beat_roots(self, i: int) -> np.ndarray:
        return self.beat_root[self.beat_offsets[i] : self.beat_offsets[i + 1]]

    def beat_chroma(self, i: int) -> np.ndarray:
        return self.chroma[self.beat_offsets[i] : self.beat_offsets[i + 1]]

    def velocity_curve(self, i: int) -> np.ndarray:
        """Mean onset velocity per beat (a beat without onsets keeps the previous value)."""
        return self.velocity_steps[self.beat_offsets[i] : self.beat_offsets[i + 1]]

    def pedal_spans(self, i: int) -> np.ndarray:
        return self.pedal[self.pedal_offsets[i] : self.pedal_offsets[i + 1]]

    def group(self, bars: int) -> DonorGroup | None:
        return self.groups.get(bars)


SHIPPED_LIBRARY_PATH = Path(__file__).resolve().parents[1] / "data" / LIBRARY_FILE


def default_library_path() -> Path:
    """Where `library import-pop909` writes the user's own library."""
    return user_data_dir() / LIBRARY_FILE


def donor_library_path() -> Path | None:
    """The library the arranger uses: the user's import if there is one, else the shipped one
    (None if neither exists, e.g. a trimmed install)."""
    for path in (default_library_path(), SHIPPED_LIBRARY_PATH):
        if path.exists():
            return path
    return None


def load_donor_library(path: Path | None = None) -> DonorLibrary | None:
    """The given library, else the user's or the shipped one (`donor_library_path`); None when
    there is none; LibraryError if it is damaged."""
    found = donor_library_path() if path is None else Path(path)
    if found is None or not found.exists():
        return None
    path = found
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in _REQUIRED if k not in archive.files]
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
            arrays = {k: archive[k] for k in _REQUIRED}
        version = int(arrays["schema_version"])
        if version != SCHEMA_VERSION:
            raise ValueError(f"schema version {version}, this AccoBridge reads {SCHEMA_VERSION}")
        library = _assemble(arrays)
    except (OSError, ValueError, KeyError, IndexError, TypeError, EOFError,
            zipfile.BadZipFile) as err:
        raise LibraryError(
            f"the POP909 donor library {path} is damaged ({err}); re-import it with "
            f"`{IMPORT_COMMAND} PATH`"
        ) from err
    return library


def ragged_offsets(lengths: np.ndarray) -> np.ndarray:
    """Start of each donor's rows in a flat array, and the end: [0, l0, l0 + l1, …]."""
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])


def _assemble(a: dict[str, np.ndarray]) -> DonorLibrary:
    """Check the arrays fit together and build the views; ValueError names the first misfit."""
    bars = a["bars"].astype(np.int64)
    n = len(bars)
    for name in ("song", "phrase_index", "label", "density", "polyphony", "density_level",
                 "polyphony_level", "velocity"):
        if a[name].shape != (n,):
            raise ValueError(f"{name} has shape {a[name].shape}, expected ({n},)")
    if n and (bars.min() <= 0 or np.any(np.diff(bars) < 0)):
        raise ValueError("bar counts are not positive and sorted")
    step_offsets = ragged_offsets(bars * BAR_16TH)
    beat_offsets = ragged_offsets(bars * BEATS_PER_BAR)
    checks = (
        ("melody_flags", a["melody_flags"].shape, (int(step_offsets[-1]), 3)),
        ("beat_root", a["beat_root"].shape, (int(beat_offsets[-1]),)),
        ("beat_bass", a["beat_bass"].shape, (int(beat_offsets[-1]),)),
        ("beat_chroma", a["beat_chroma"].shape, (int(beat_offsets[-1]), 12)),
        ("velocity_curve", a["velocity_curve"].shape, (int(beat_offsets[-1]),)),
        ("note_offsets", a["note_offsets"].shape, (n + 1,)),
        ("pedal_offsets", a["pedal_offsets"].shape, (n + 1,)),
        ("notes", a["notes"].shape[1:], (4,)),
        ("pedal", a["pedal"].shape[1:], (2,)),
        ("density_cuts_all", a["density_cuts_all"].shape, (len(QUANTILES),)),
        ("polyphony_cuts_all", a["polyphony_cuts_all"].shape, (len(QUANTILES),)),
    )
    for name, got, want in checks:
        if got != want:
            raise ValueError(f"{name} has shape {got}, expected {want}")
    for name, rows in (("note_offsets", len(a["notes"])), ("pedal_offsets", len(a["pedal"]))):
        offsets = a[name]
        if offsets[0] != 0 or offsets[-1] != rows or np.any(np.diff(offsets) < 0):
            raise ValueError(f"{name} do not index their rows")
    provenance = json.loads(str(a["provenance"]))
    if not isinstance(provenance, dict):
        raise ValueError("provenance is not a JSON object")

    melody = a["melody_flags"].astype(bool, copy=False)
    chroma = a["beat_chroma"].astype(bool, copy=False)
    cut_rows = {int(b): i for i, b in enumerate(a["cut_bars"])}
    groups: dict[int, DonorGroup] = {}
    for b in np.unique(bars).tolist():
        lo, hi = np.searchsorted(bars, [b, b + 1])
        if b not in cut_rows:
            raise ValueError(f"no cutpoints for {b}-bar donors")
        groups[b] = DonorGroup(
            bars=b,
            indices=np.arange(lo, hi),
            melody_flags=melody[step_offsets[lo] : step_offsets[hi]].reshape(hi - lo, -1),
            chroma=chroma[beat_offsets[lo] : beat_offsets[hi]].reshape(
                hi - lo, b * BEATS_PER_BAR, 12
            ),
            density_cutpoints=a["density_cuts"][cut_rows[b]],
            polyphony_cutpoints=a["polyphony_cuts"][cut_rows[b]],
        )
    library = DonorLibrary(
        song=a["song"], phrase_index=a["phrase_index"], label=a["label"], bars=bars,
        density=a["density"], polyphony=a["polyphony"], density_level=a["density_level"],
        polyphony_level=a["polyphony_level"], velocity=a["velocity"],
        density_cutpoints=a["density_cuts_all"], polyphony_cutpoints=a["polyphony_cuts_all"],
        groups=groups, provenance=provenance, notes=a["notes"].astype(np.int32),
        note_offsets=a["note_offsets"], melody_steps=melody, step_offsets=step_offsets,
        beat_root=a["beat_root"], beat_bass=a["beat_bass"], chroma=chroma,
        velocity_steps=a["velocity_curve"], beat_offsets=beat_offsets, pedal=a["pedal"].astype(
            np.int32), pedal_offsets=a["pedal_offsets"],
    )
    for value in vars(library).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return library
