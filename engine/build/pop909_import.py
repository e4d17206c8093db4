"""Imports the POP909 donor-phrase library (AccoMontage §3.3, algorithms.md §2.1) from a
user-supplied POP909 folder into the user data directory; `engine.library.pop909_textures`
describes what it stores and loads it for the arranger.

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


The library is written to a temporary file beside the target and moved over it, so a failed
import leaves the previous library as it was.

Run: `python -m engine.build.pop909_import PATH [--structure PATH] [-o OUT] [--limit N]
[--include-held-out]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.arranger.descriptors import level, onset_roll, rhythmic_density, voice_number
from engine.build.provenance import write_npz_atomically
from engine.errors import BadInputError
from engine.library.datasets import is_held_out
from engine.library.parallel import map_songs
from engine.library.pop909_textures import (
    BAR_16TH,
    BEATS_PER_BAR,
    IMPORT_COMMAND,
    QUANTILES,
    SCHEMA_VERSION,
    default_library_path,
    ragged_offsets,
)

if TYPE_CHECKING:  # the reader pulls in mido; `--help` needs none of it
    from engine.build.pop909_midi import Pop909Song

BEAT_16TH = 4
MIN_MELODY_ONSETS = 3  # the paper drops phrases with <= 2 melody onsets
MIN_GROUP_FOR_OWN_CUTS = 25  # fewer donors of one length: use the library-wide cutpoints
# Chord-file check: shifts (16ths) tried, and how much better a shift must fit to refuse a song.
CHORD_SHIFTS_16TH = (-8, -4, 0, 4, 8)
CHORD_SHIFT_MARGIN = 0.05
PROGRESS_EVERY = 50
PARALLEL_FROM = 32  # songs; fewer are read in this process

Progress = Callable[[str], None]


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
    write_npz_atomically(out_path, arrays)
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
    from engine.build.pop909_midi import read_pop909_song

    song_dir, structure_dir = job
    try:
        song = read_pop909_song(song_dir, structure_dir)
        if song.meter.numerator != BEATS_PER_BAR:
            return _SongResult(song_dir.name, _Donors(), [],
                               f"{song.meter.name} (the donor library is 4/4, as in the paper)")
        shift = chord_shift(song)
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


def chord_shift(song: Pop909Song) -> int:
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
        "note_offsets": ragged_offsets(np.array([len(x) for x in notes])),
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
        "pedal_offsets": ragged_offsets(np.array([len(x) for x in pedal])),
        "cut_bars": cut_bars,
        "density_cuts": density_cuts,
        "polyphony_cuts": polyphony_cuts,
        "density_cuts_all": cuts_all[0],
        "polyphony_cuts_all": cuts_all[1],
    }
    return arrays, per_bars, cuts_all


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m engine.build.pop909_import",
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
