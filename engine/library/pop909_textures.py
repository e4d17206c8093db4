"""The POP909 donor-phrase library (AccoMontage §3.3, algorithms.md §2.1): importing it from a
user-supplied POP909 folder into the user data directory, and loading it for the arranger.

The package ships one built by this importer (`engine/data/pop909_donors.npz`, POP909's MIT
licence and a provenance file with the command, the songs used and its SHA-256 beside it), so
a fresh install arranges with human-played phrases; a library the user imports wins over it.

What a donor is: the accompaniment (PIANO + BRIDGE, `pop909_midi`) of one phrase of
`pop909-structure/NNN/human_label1.txt`, cut at the phrase's bar lines, onsets relative to the
phrase start and durations clipped at its end. Kept as in the paper: 4/4 songs only (the arranger
lays donors on a 16-step bar), phrases with more than 2 melody onsets (intros, outros and
instrumental breaks without a tune carry no melody rhythm to match; lower-case phrases that do
have a melody stay). Also dropped, as unusable rather than by the paper: phrases with no
accompaniment notes, phrases past the end of the chord file, phrases across an alignment seam
(beats the structure deleted inside them, see `pop909_midi`), and songs whose chord file sits off
the accompaniment (the piano fits `finalized_chord.txt` clearly better shifted by one or two
beats: the annotation is misaligned there, so its chord features would mislead the search).
Held-out songs (`is_held_out("pop909", id)`) are left out by default, so the evaluation songs
are never their own donors.

Per donor: song id, phrase index, label, bars; the notes (onset_16th, pitch, duration_16th,
velocity); the melody's [onset, hold, rest] flags per 16th (from melody.txt, the labels' own
grid); per-beat chords (root pc, bass pc, 12-d chroma; -1 = no chord); rhythmic density and
voice number (`engine.arranger.descriptors`) and their levels 0..4, equal-population quintiles
among the donors of the same length (the paper's prefilter; lengths with fewer than
`MIN_GROUP_FOR_OWN_CUTS` donors use the cutpoints of the whole library); mean velocity and a
per-beat velocity curve; sustain-pedal spans.

Storage: one uncompressed .npz (no pickles) of flat arrays; donors are sorted by bar count so
each length's features are contiguous views (`DonorLibrary.groups`). Notes and pedal spans are
ragged (offset arrays); per-16th and per-beat arrays are regular per donor (16·bars, 4·bars).
Written to a temporary file beside the target and moved over it, so a failed import leaves the
previous library as it was.

Run: `python -m engine.library.pop909_textures PATH [--structure PATH] [-o OUT] [--limit N]
[--include-held-out]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.arranger.descriptors import level, onset_roll, rhythmic_density, voice_number
from engine.atomic_file import atomic_output
from engine.errors import BadInputError, LibraryError
from engine.library.datasets import is_held_out
from engine.library.parallel import map_songs
from engine.userdata import user_data_dir

if TYPE_CHECKING:  # the reader pulls in mido and the chord vocabulary; loading needs neither
    from engine.library.pop909_midi import Pop909Song

SCHEMA_VERSION = 1
LIBRARY_FILE = "pop909_donors.npz"
IMPORT_COMMAND = "accobridge library import-pop909"
BAR_16TH = 16
BEATS_PER_BAR = 4
BEAT_16TH = 4
MIN_MELODY_ONSETS = 3  # the paper drops phrases with <= 2 melody onsets
QUANTILES = (0.2, 0.4, 0.6, 0.8)
MIN_GROUP_FOR_OWN_CUTS = 25  # fewer donors of one length: use the library-wide cutpoints
# Chord-file check: shifts (16ths) tried, and how much better a shift must fit to refuse a song.
CHORD_SHIFTS_16TH = (-8, -4, 0, 4, 8)
CHORD_SHIFT_MARGIN = 0.05
PROGRESS_EVERY = 50
PARALLEL_FROM = 32  # songs; fewer are read in this process

Progress = Callable[[str], None]
_REQUIRED = (
    "schema_version", "provenance", "song", "phrase_index", "label", "bars", "notes",
    "note_offsets", "melody_flags", "beat_root", "beat_bass", "beat_chroma", "velocity_curve",
    "density", "polyphony", "density_level", "polyphony_level", "velocity", "pedal",
    "pedal_offsets", "cut_bars", "density_cuts", "polyphony_cuts", "density_cuts_all",
    "polyphony_cuts_all",
)


# ------------------------------------------------------------------------------ the library


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


def _offsets(lengths: np.ndarray) -> np.ndarray:
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
    step_offsets = _offsets(bars * BAR_16TH)
    beat_offsets = _offsets(bars * BEATS_PER_BAR)
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


# ------------------------------------------------------------------------------- importing


@dataclass(frozen=True)
class ImportReport:
    """What an import read, kept and skipped (with reasons), and where it wrote the library."""

    out_path: Path
    songs_seen: int  # song folders found
    held_out: int  # left out for evaluation
    songs_used: int  # gave at least one donor
    skipped_songs: tuple[tuple[str, str], ...]  # (song id, reason)
    phrases_kept: int
    skipped_phrases: tuple[tuple[str, int, str], ...]  # (song id, phrase index, reason)
    donors_per_bars: tuple[tuple[int, int], ...]
    density_cutpoints: tuple[float, ...]
    polyphony_cutpoints: tuple[float, ...]
    file_bytes: int
    seconds: float

    def summary(self) -> str:
        lines = [
            f"POP909 donor library: {self.phrases_kept} phrases from {self.songs_used} songs "
            f"-> {self.out_path} ({self.file_bytes / 1e6:.1f} MB, {self.seconds:.1f} s)",
            f"  songs: {self.songs_seen} found, {self.held_out} held out for evaluation, "
            f"{len(self.skipped_songs)} skipped",
            "  donors per length: "
            + ", ".join(f"{bars} bars: {count}" for bars, count in self.donors_per_bars),
            "  density cutpoints: " + ", ".join(f"{c:.3f}" for c in self.density_cutpoints),
            "  polyphony cutpoints: " + ", ".join(f"{c:.3f}" for c in self.polyphony_cutpoints),
        ]
        if self.skipped_phrases:
            reasons = Counter(reason for _, _, reason in self.skipped_phrases)
            lines.append(f"  phrases skipped: {len(self.skipped_phrases)} (" + "; ".join(
                f"{count} {reason}" for reason, count in reasons.most_common()) + ")")
        if self.skipped_songs:
            lines.append("  songs skipped:")
            lines.extend(f"    {song}: {reason}" for song, reason in self.skipped_songs)
        return "\n".join(lines)


@dataclass
class _Donors:
    """Donor phrases of one song (or the whole library), as lists of per-donor arrays."""

    song: list[int] = field(default_factory=list)
    phrase_index: list[int] = field(default_factory=list)
    label: list[str] = field(default_factory=list)
    bars: list[int] = field(default_factory=list)
    notes: list[np.ndarray] = field(default_factory=list)
    melody_flags: list[np.ndarray] = field(default_factory=list)
    beat_root: list[np.ndarray] = field(default_factory=list)
    beat_bass: list[np.ndarray] = field(default_factory=list)
    beat_chroma: list[np.ndarray] = field(default_factory=list)
    velocity_curve: list[np.ndarray] = field(default_factory=list)
    pedal: list[np.ndarray] = field(default_factory=list)
    density: list[float] = field(default_factory=list)
    polyphony: list[float] = field(default_factory=list)
    velocity: list[float] = field(default_factory=list)

    def extend(self, other: _Donors) -> None:
        for name, values in vars(other).items():
            getattr(self, name).extend(values)


@dataclass
class _SongResult:
    song_id: str
    donors: _Donors
    skipped_phrases: list[tuple[str, int, str]]
    error: str | None = None


def import_pop909(
    pop909_dir: Path,
    structure_dir: Path | None = None,
    out_path: Path | None = None,
    progress: Progress | None = None,
    exclude_held_out: bool = True,
    limit: int | None = None,
    *,
    command: str | None = None,
) -> ImportReport:
    """Build the donor library from `pop909_dir` (NNN/NNN.mid …) and its pop909-structure
    folder (default: `pop909-structure` beside it) and write it atomically to `out_path`
    (default: the user data directory). BadInputError for a missing folder or no usable song;
    bad songs are skipped and listed in the report. `command` is recorded in the provenance
    (default: this process's command line)."""
    started = time.perf_counter()
    pop909_dir = Path(pop909_dir)
    if not pop909_dir.is_dir():
        raise BadInputError(f"POP909 folder not found: {pop909_dir}")
    if structure_dir is None:
        structure_dir = pop909_dir.parent / "pop909-structure"
        if not structure_dir.is_dir():
            raise BadInputError(
                f"no pop909-structure folder beside {pop909_dir}; give it with --structure "
                "(the phrase labels cut the donor phrases)"
            )
    structure_dir = Path(structure_dir)
    if not structure_dir.is_dir():
        raise BadInputError(f"pop909-structure folder not found: {structure_dir}")
    out_path = default_library_path() if out_path is None else Path(out_path)
    say = progress or (lambda _message: None)

    song_ids = sorted(p.name for p in pop909_dir.iterdir() if p.is_dir() and p.name.isdigit())
    if not song_ids:
        raise BadInputError(f"no song folders (NNN/) in {pop909_dir}")
    held_out = {s for s in song_ids if exclude_held_out and is_held_out("pop909", s)}
    todo = [s for s in song_ids if s not in held_out]
    if limit is not None:
        todo = todo[: max(0, limit)]
    say(f"reading {len(todo)} songs from {pop909_dir} ({len(held_out)} held out)")

    library = _Donors()
    skipped_songs: list[tuple[str, str]] = []
    skipped_phrases: list[tuple[str, int, str]] = []
    used = 0
    jobs = [(pop909_dir / s, structure_dir / s) for s in todo]
    for done, result in enumerate(map_songs(_song_donors, jobs, PARALLEL_FROM), start=1):
        if result.error is not None:
            skipped_songs.append((result.song_id, result.error))
        else:
            skipped_phrases.extend(result.skipped_phrases)
            if result.donors.song:
                used += 1
                library.extend(result.donors)
            else:
                skipped_songs.append((result.song_id, "no phrase kept"))
        if done % PROGRESS_EVERY == 0 or done == len(jobs):
            say(f"  {done}/{len(jobs)} songs, {len(library.song)} phrases "
                f"({time.perf_counter() - started:.1f} s)")
    if not library.song:
        first = f"; first: {skipped_songs[0][0]}: {skipped_songs[0][1]}" if skipped_songs else ""
        raise BadInputError(
            f"no usable POP909 song in {pop909_dir} ({len(skipped_songs)} skipped{first}); "
            "the previous library, if any, is unchanged"
        )

    arrays, per_bars, cuts_all = _library_arrays(library)
    provenance = {
        "schema": SCHEMA_VERSION,
        "source": str(pop909_dir.resolve()),
        "structure": str(structure_dir.resolve()),
        "songs_found": len(song_ids),
        "songs_held_out": len(held_out),
        "songs_read": len(todo),
        "songs_used": used,
        "songs_skipped": len(skipped_songs),
        "phrases": len(library.song),
        "phrases_skipped": len(skipped_phrases),
        "donors_per_bars": {str(b): c for b, c in per_bars},
        "density_cutpoints": [float(c) for c in cuts_all[0]],
        "polyphony_cutpoints": [float(c) for c in cuts_all[1]],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    arrays["provenance"] = np.array(json.dumps(provenance, sort_keys=True))
    _write_atomically(out_path, arrays)
    say(f"wrote {out_path}")
    return ImportReport(
        out_path=out_path,
        songs_seen=len(song_ids),
        held_out=len(held_out),
        songs_used=used,
        skipped_songs=tuple(skipped_songs),
        phrases_kept=len(library.song),
        skipped_phrases=tuple(skipped_phrases),
        donors_per_bars=tuple(per_bars),
        density_cutpoints=tuple(float(c) for c in cuts_all[0]),
        polyphony_cutpoints=tuple(float(c) for c in cuts_all[1]),
        file_bytes=out_path.stat().st_size,
        seconds=time.perf_counter() - started,
    )


def _song_donors(job: tuple[Path, Path]) -> _SongResult:
    """Read one song and cut its donor phrases; any failure becomes the song's skip reason
    (the importer lists it), so one bad file never stops an import."""
    from engine.library.pop909_midi import read_pop909_song

    song_dir, structure_dir = job
    try:
        song = read_pop909_song(song_dir, structure_dir)
        if song.meter.numerator != BEATS_PER_BAR:
            return _SongResult(song_dir.name, _Donors(), [],
                               f"{song.meter.name} (the donor library is 4/4, as in the paper)")
        shift = _chord_shift(song)
        if shift:
            return _SongResult(
                song_dir.name, _Donors(), [],
                f"{structure_dir / 'finalized_chord.txt'} sits {abs(shift) // BEAT_16TH} "
                f"beat(s) {'late' if shift > 0 else 'early'} against the accompaniment",
            )
        donors, skipped = _cut_phrases(song)
    except BadInputError as err:
        return _SongResult(song_dir.name, _Donors(), [], str(err))
    except Exception as err:  # a corrupt file may break mido in any way: report, go on
        return _SongResult(song_dir.name, _Donors(), [],
                           f"{song_dir}: unexpected {type(err).__name__}: {err}")
    return _SongResult(song_dir.name, donors, skipped)


def _chord_shift(song: Pop909Song) -> int:
    """0 when the accompaniment fits the chord file best where it is; else the shift s (16ths)
    such that notes at t fall into the chord written at t + s clearly more often (s > 0: the
    chord file is late)."""
    piano = song.piano
    fit = []
    for shift in CHORD_SHIFTS_16TH:
        beat = (piano[:, 0] + shift) // BEAT_16TH
        ok = (beat >= 0) & (beat < len(song.chord_roots))
        beat, pitch = beat[ok], piano[ok, 1]
        has = song.chord_roots[beat] >= 0
        inside = song.chord_chroma[beat[has], pitch[has] % 12]
        fit.append(float(inside.mean()) if inside.size else 0.0)
    best = int(np.argmax(fit))
    here = CHORD_SHIFTS_16TH.index(0)
    return CHORD_SHIFTS_16TH[best] if fit[best] - fit[here] > CHORD_SHIFT_MARGIN else 0


def _cut_phrases(song: Pop909Song) -> tuple[_Donors, list[tuple[str, int, str]]]:
    """The song's donor phrases (see the module text for what is kept)."""
    donors = _Donors()
    skipped: list[tuple[str, int, str]] = []
    length = max((p.end_bar for p in song.phrases), default=0) * BAR_16TH
    melody = song.structure_melody
    onset = np.zeros(length, dtype=bool)
    onset[melody[melody[:, 0] < length, 0]] = True
    change = np.zeros(length + 1, dtype=np.int64)
    np.add.at(change, np.clip(melody[:, 0], 0, length), 1)
    np.add.at(change, np.clip(melody[:, 0] + melody[:, 2], 0, length), -1)
    sounding = np.cumsum(change)[:length] > 0
    flags = np.stack([onset, sounding & ~onset, ~sounding], axis=1)
    seams = {s.start_16th for s in song.alignment[1:]}
    piano = song.piano
    for index, phrase in enumerate(song.phrases):
        start, end = phrase.start_bar * BAR_16TH, phrase.end_bar * BAR_16TH
        first_beat, beats = start // BEAT_16TH, phrase.bars * BEATS_PER_BAR
        inside = piano[(piano[:, 0] >= start) & (piano[:, 0] < end)]
        reason = None
        if np.count_nonzero(onset[start:end]) < MIN_MELODY_ONSETS:
            reason = f"< {MIN_MELODY_ONSETS} melody onsets"
        elif len(inside) == 0:
            reason = "no accompaniment"
        elif first_beat + beats > len(song.chord_roots):
            reason = "past the end of the chord file"
        elif any(start < s < end for s in seams):
            reason = "alignment seam inside"
        if reason is not None:
            skipped.append((song.song_id, index, reason))
            continue
        notes = inside.copy()
        notes[:, 0] -= start
        notes[:, 2] = np.minimum(notes[:, 2], phrase.bars * BAR_16TH - notes[:, 0])
        roll = onset_roll(notes, phrase.bars * BAR_16TH)
        chords = slice(first_beat, first_beat + beats)
        donors.song.append(int(song.song_id))
        donors.phrase_index.append(index)
        donors.label.append(phrase.label)
        donors.bars.append(phrase.bars)
        donors.notes.append(notes.astype(np.int16))
        donors.melody_flags.append(flags[start:end])
        donors.beat_root.append(song.chord_roots[chords])
        donors.beat_bass.append(song.chord_bass[chords])
        donors.beat_chroma.append(song.chord_chroma[chords])
        donors.velocity_curve.append(_velocity_curve(notes, beats))
        donors.pedal.append(_pedal_inside(song.pedal, start, end))
        donors.density.append(rhythmic_density(roll))
        donors.polyphony.append(voice_number(roll, beat_16th=BEAT_16TH))
        donors.velocity.append(float(notes[:, 3].mean()))
    return donors, skipped


def _velocity_curve(notes: np.ndarray, beats: int) -> np.ndarray:
    """Mean onset velocity per beat; a beat without onsets keeps the one before (the phrase
    mean before the first onset)."""
    beat = notes[:, 0] // BEAT_16TH
    total = np.bincount(beat, weights=notes[:, 3], minlength=beats)[:beats]
    count = np.bincount(beat, minlength=beats)[:beats]
    mean = np.concatenate([[notes[:, 3].mean()], total / np.maximum(count, 1)])
    # index into `mean` of the latest beat with onsets (0 = the phrase mean)
    latest = np.maximum.accumulate(np.where(count > 0, np.arange(1, beats + 1), 0))
    return mean[latest].astype(np.float32)


def _pedal_inside(pedal: np.ndarray, start: int, end: int) -> np.ndarray:
    spans = pedal[(pedal[:, 1] > start) & (pedal[:, 0] < end)]
    return (np.clip(spans, start, end) - start).astype(np.int16).reshape(-1, 2)


def quintile_cutpoints(values: np.ndarray) -> np.ndarray:
    """Cutpoints splitting `values` into 5 levels as equal in population as ties allow: each
    cut lies halfway between the two distinct neighbouring values nearest the 20/40/60/80%
    rank, so `descriptors.level` gives every value one unambiguous level."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n = len(ordered)
    if n == 0:
        return np.zeros(len(QUANTILES))
    steps = np.flatnonzero(np.diff(ordered) > 0) + 1  # ranks where a new value starts
    cuts = []
    for q in QUANTILES:
        if len(steps) == 0:
            cuts.append(float(ordered[0]) + 1.0)  # one value: all donors share level 0
            continue
        j = int(steps[np.argmin(np.abs(steps - q * n))])
        cuts.append(float(ordered[j - 1] + ordered[j]) / 2)
    return np.array(cuts)


def _library_arrays(
    library: _Donors,
) -> tuple[dict[str, np.ndarray], list[tuple[int, int]], tuple[np.ndarray, np.ndarray]]:
    """Sorted flat arrays for the .npz, donors per length and the library-wide cutpoints."""
    order = sorted(range(len(library.song)),
                   key=lambda i: (library.bars[i], library.song[i], library.phrase_index[i]))

    def pick(values: list[np.ndarray]) -> list[np.ndarray]:
        return [values[i] for i in order]

    bars = np.array(library.bars, dtype=np.int16)[order]
    density = np.array(library.density, dtype=np.float32)[order]
    polyphony = np.array(library.polyphony, dtype=np.float32)[order]
    cuts_all = (quintile_cutpoints(density), quintile_cutpoints(polyphony))
    cut_bars = np.unique(bars)
    density_cuts = np.zeros((len(cut_bars), len(QUANTILES)))
    polyphony_cuts = np.zeros((len(cut_bars), len(QUANTILES)))
    density_level = np.zeros(len(bars), dtype=np.int8)
    polyphony_level = np.zeros(len(bars), dtype=np.int8)
    per_bars = []
    for row, b in enumerate(cut_bars.tolist()):
        members = np.flatnonzero(bars == b)
        per_bars.append((b, len(members)))
        own = len(members) >= MIN_GROUP_FOR_OWN_CUTS
        density_cuts[row] = quintile_cutpoints(density[members]) if own else cuts_all[0]
        polyphony_cuts[row] = quintile_cutpoints(polyphony[members]) if own else cuts_all[1]
        for i in members:
            density_level[i] = level(float(density[i]), density_cuts[row].tolist())
            polyphony_level[i] = level(float(polyphony[i]), polyphony_cuts[row].tolist())
    notes = pick(library.notes)
    pedal = pick(library.pedal)
    arrays = {
        "schema_version": np.array(SCHEMA_VERSION),
        "song": np.array(library.song, dtype=np.int16)[order],
        "phrase_index": np.array(library.phrase_index, dtype=np.int16)[order],
        "label": np.array(library.label)[order],
        "bars": bars,
        "notes": np.concatenate(notes).astype(np.int16),
        "note_offsets": _offsets(np.array([len(x) for x in notes])),
        "melody_flags": np.concatenate(pick(library.melody_flags)),
        "beat_root": np.concatenate(pick(library.beat_root)).astype(np.int8),
        "beat_bass": np.concatenate(pick(library.beat_bass)).astype(np.int8),
        "beat_chroma": np.concatenate(pick(library.beat_chroma)).astype(bool),
        "velocity_curve": np.concatenate(pick(library.velocity_curve)),
        "density": density,
        "polyphony": polyphony,
        "density_level": density_level,
        "polyphony_level": polyphony_level,
        "velocity": np.array(library.velocity, dtype=np.float32)[order],
        "pedal": np.concatenate(pedal).astype(np.int16).reshape(-1, 2),
        "pedal_offsets": _offsets(np.array([len(x) for x in pedal])),
        "cut_bars": cut_bars,
        "density_cuts": density_cuts,
        "polyphony_cuts": polyphony_cuts,
        "density_cuts_all": cuts_all[0],
        "polyphony_cuts_all": cuts_all[1],
    }
    return arrays, per_bars, cuts_all


def _write_atomically(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """np.savez into a temporary file beside `path`, then os.replace: readers see the old
    library or the new one, never half a file; on any failure the temporary file goes."""
    with atomic_output(path) as out:
        np.savez(out, **arrays)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m engine.library.pop909_textures",
        description="Import the POP909 accompaniment donor phrases (AccoMontage §3.3) into the "
        "user data directory.",
    )
    parser.add_argument("path", type=Path, help="the POP909 folder (NNN/NNN.mid …)")
    parser.add_argument("--structure", type=Path,
                        help="the pop909-structure folder (default: beside PATH)")
    parser.add_argument("-o", "--output", type=Path,
                        help=f"library file (default: {default_library_path()})")
    parser.add_argument("--limit", type=int, help="read only the first N songs")
    parser.add_argument("--include-held-out", action="store_true",
                        help="also use the songs held out for evaluation")
    args = parser.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    try:
        report = import_pop909(
            args.path, args.structure, args.output,
            progress=lambda message: print(message, flush=True),
            exclude_held_out=not args.include_held_out, limit=args.limit,
            command=" ".join([IMPORT_COMMAND, *given]),
        )
    except (BadInputError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(report.summary())


if __name__ == "__main__":
    main()
