"""Builds the POP909 2-bar segment file (`engine.models.segments` describes and loads it) for
training the learned texture models (algorithms.md §2.3, §2.2).

A segment is 2 bars (32 sixteenths) of one 4/4 song's accompaniment (PIANO + BRIDGE, as the
donor library, `engine.build.pop909_midi`) on the bar grid of pop909-structure, cut at a 1-bar
hop from the song's first bar line; segments without an accompaniment note are dropped. Songs
are skipped (with the reason logged) when the reader refuses them, when they are not 4/4, or
when their chord file sits off the accompaniment (the donor importer's check), so chords and
notes always agree in time. Nothing built here is ever committed (POP909 note content stays
out of the repository).

Run: `python3 -m engine.build.segments build --data /work/shared/data --out FILE`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from engine.build.provenance import git_commit, write_npz_atomically
from engine.errors import BadInputError
from engine.library.datasets import is_held_out
from engine.library.parallel import map_songs
from engine.models.segments import (
    BAR_16TH,
    BEAT_16TH,
    SCHEMA_VERSION,
    SEGMENT_16TH,
    SEGMENT_BARS,
    SEGMENT_BEATS,
    TEST,
    TRAIN,
    VALID,
    check_arrays,
)

MAX_DURATION_16TH = 32
VALID_SHARE = 0.05
DEFAULT_SEED = 0
PROGRESS_EVERY = 50
PARALLEL_FROM = 16  # songs; fewer are read in this process

Progress = Callable[[str], None]


@dataclass
class SongSegments:
    """The segments of one song (the build's per-song unit; concatenated into the file)."""

    song: int
    notes: list[np.ndarray]  # per segment (n, 4) int rows
    chord_root: np.ndarray  # (k, 8)
    chord_bass: np.ndarray  # (k, 8)
    chord_chroma: np.ndarray  # (k, 8, 12)
    bar: np.ndarray  # (k,)
    phrase: np.ndarray  # (k,)
    phrase_bar: np.ndarray  # (k,)


def cut_segments(
    song_number: int, piano: np.ndarray, chord_root: np.ndarray, chord_bass: np.ndarray,
    chord_chroma: np.ndarray, phrase_starts: Sequence[tuple[int, int]] = (),
) -> SongSegments:
    """2-bar segments at a 1-bar hop of one 4/4 song on its bar grid (16th 0 = first bar line).

    `piano`: (n, 4) note rows (onset_16th, pitch, duration_16th, velocity); chords per beat
    (beats past the chord file read as no chord); `phrase_starts`: (start_bar, bars) of each
    labelled phrase in order. Segments lie inside the song's extent (up to the last note end)."""
    piano = np.asarray(piano, dtype=np.int64).reshape(-1, 4)
    piano = piano[np.lexsort((piano[:, 1], piano[:, 0]))]
    end = int((piano[:, 0] + piano[:, 2]).max()) if len(piano) else 0
    n_bars = -(-end // BAR_16TH)
    beats = len(chord_root)
    notes, keep = [], []
    for b in range(max(n_bars - SEGMENT_BARS + 1, 0)):
        start = b * BAR_16TH
        lo, hi = np.searchsorted(piano[:, 0], [start, start + SEGMENT_16TH])
        if hi == lo:
            continue
        inside = piano[lo:hi].copy()
        inside[:, 0] -= start
        inside[:, 2] = np.clip(inside[:, 2], 1, MAX_DURATION_16TH)
        inside[:, 3] = np.clip(inside[:, 3], 0, 127)
        notes.append(inside)
        keep.append(b)
    bars = np.array(keep, dtype=np.int64)
    beat = bars[:, None] * (BAR_16TH // BEAT_16TH) + np.arange(SEGMENT_BEATS)[None, :]
    has = beat < beats
    safe = np.minimum(beat, max(beats - 1, 0))
    roots = np.where(has, np.asarray(chord_root)[safe] if beats else -1, -1)
    basses = np.where(has, np.asarray(chord_bass)[safe] if beats else -1, -1)
    chroma = (np.asarray(chord_chroma)[safe] if beats
              else np.zeros((*beat.shape, 12))) * has[..., None]
    phrase = np.full(len(bars), -1, dtype=np.int64)
    phrase_bar = np.full(len(bars), -1, dtype=np.int64)
    for index, (first, length) in enumerate(phrase_starts):
        inside_phrase = (bars >= first) & (bars < first + length)
        phrase[inside_phrase] = index
        phrase_bar[inside_phrase] = bars[inside_phrase] - first
    return SongSegments(
        song=song_number, notes=notes, chord_root=roots.reshape(-1, SEGMENT_BEATS),
        chord_bass=basses.reshape(-1, SEGMENT_BEATS),
        chord_chroma=chroma.reshape(-1, SEGMENT_BEATS, 12), bar=bars, phrase=phrase,
        phrase_bar=phrase_bar,
    )


def _song_segments(job: tuple[Path, Path | None]) -> tuple[str, SongSegments | None, str]:
    """Read one song and cut it; any failure becomes its skip reason (one bad file never stops
    a build)."""
    from engine.build.pop909_import import chord_shift  # the donor importer's check
    from engine.build.pop909_midi import read_pop909_song

    song_dir, structure_dir = job
    try:
        song = read_pop909_song(song_dir, structure_dir)
        if song.meter.numerator != 4:
            return song_dir.name, None, f"{song.meter.name}, not 4/4"
        shift = chord_shift(song)
        if shift:
            return song_dir.name, None, f"chord file {shift:+d} 16ths off the accompaniment"
        cut = cut_segments(int(song.song_id), song.piano, song.chord_roots, song.chord_bass,
                           song.chord_chroma, [(p.start_bar, p.bars) for p in song.phrases])
    except BadInputError as err:
        return song_dir.name, None, str(err)
    except Exception as err:  # a corrupt file may break mido in any way: report, go on
        return song_dir.name, None, f"unexpected {type(err).__name__}: {err}"
    if not cut.notes:
        return song_dir.name, None, "no accompaniment"
    return song_dir.name, cut, ""


def split_songs(songs: Sequence[int], seed: int = DEFAULT_SEED) -> dict[int, int]:
    """Song number -> TRAIN/VALID/TEST: TEST by `is_held_out`, VALID a seeded ~5% of the rest
    (fixed for a given seed and song set)."""
    test = {s for s in songs if is_held_out("pop909", f"{s:03d}")}
    rest = sorted(set(songs) - test)
    rng = np.random.default_rng(seed)
    n_valid = max(1, round(VALID_SHARE * len(rest))) if len(rest) > 1 else 0
    valid = set(rng.choice(rest, size=n_valid, replace=False).tolist()) if n_valid else set()
    return {s: TEST if s in test else VALID if s in valid else TRAIN for s in songs}

def build_segments(
    data_dir: Path, out_path: Path, seed: int = DEFAULT_SEED, limit: int | None = None,
    progress: Progress | None = None,
) -> dict[str, object]:
    """Read every POP909 song under `data_dir` (pop909/ and pop909-structure/), write the
    segment file atomically, and return its provenance (counts included)."""
    say = progress or (lambda message: None)
    started = time.perf_counter()
    pop909 = Path(data_dir) / "pop909"
    if not pop909.is_dir():
        raise BadInputError(f"{data_dir}: no pop909 folder")
    structure = Path(data_dir) / "pop909-structure"
    ids = sorted(p.name for p in pop909.iterdir() if p.is_dir() and p.name.isdigit())
    if limit is not None:
        ids = ids[:limit]
    jobs = [(pop909 / s, structure / s if (structure / s).is_dir() else None) for s in ids]
    say(f"reading {len(jobs)} POP909 songs from {pop909}")
    kept: list[SongSegments] = []
    skipped: list[tuple[str, str]] = []
    songs = map_songs(_song_segments, jobs, PARALLEL_FROM)
    for done, (song_id, cut, reason) in enumerate(songs, start=1):
        if cut is None:
            skipped.append((song_id, reason))
            say(f"  skip {song_id}: {reason}")
        else:
            kept.append(cut)
        if done % PROGRESS_EVERY == 0 or done == len(jobs):
            say(f"  {done}/{len(jobs)} songs, {sum(len(k.bar) for k in kept)} segments "
                f"({time.perf_counter() - started:.1f} s)")
    if not kept:
        raise BadInputError(f"no usable POP909 song in {pop909} ({len(skipped)} skipped)")
    arrays = _stack(kept)
    split_of = split_songs([k.song for k in kept], seed)
    arrays["split"] = np.array([split_of[int(s)] for s in arrays["song"]], dtype=np.uint8)
    check_arrays(arrays)
    counts = Counter(arrays["split"].tolist())
    song_counts = Counter(split_of.values())
    provenance: dict[str, object] = {
        "schema": SCHEMA_VERSION,
        "source": str(pop909.resolve()),
        "structure": str(structure.resolve()) if structure.is_dir() else None,
        "songs_found": len(ids),
        "songs_used": len(kept),
        "songs_skipped": len(skipped),
        "skip_reasons": dict(Counter(_reason_kind(r) for _, r in skipped).most_common()),
        "skipped": sorted(song_id for song_id, _ in skipped),
        "segments": len(arrays["song"]),
        "notes": len(arrays["notes"]),
        "segments_per_split": {name: counts.get(k, 0) for k, name in
                               ((TRAIN, "train"), (VALID, "valid"), (TEST, "test"))},
        "songs_per_split": {name: song_counts.get(k, 0) for k, name in
                            ((TRAIN, "train"), (VALID, "valid"), (TEST, "test"))},
        "seed": seed,
        "valid_share": VALID_SHARE,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    arrays["provenance"] = np.array(json.dumps(provenance, sort_keys=True))
    arrays["schema_version"] = np.array(SCHEMA_VERSION)
    write_npz_atomically(Path(out_path), arrays)
    say(f"wrote {out_path}: {provenance['segments']} segments, {provenance['notes']} notes, "
        f"{len(kept)} songs ({len(skipped)} skipped); per split "
        f"{provenance['segments_per_split']}")
    return provenance


def _reason_kind(reason: str) -> str:
    """A skip reason without its file names, for the provenance counts."""
    for needle, kind in (("not 4/4", "not 4/4"), ("off the accompaniment", "chord file offset"),
                         ("lasts", "chord file length != labelled bars"),
                         ("agrees with", "melody alignment below 90%")):
        if needle in reason:
            return kind
    return "other"


def _stack(kept: Sequence[SongSegments]) -> dict[str, np.ndarray]:
    notes = [n for k in kept for n in k.notes]
    counts = np.array([len(n) for n in notes], dtype=np.int64)
    return {
        "notes": np.concatenate(notes).astype(np.uint8),
        "note_offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "chord_root": np.concatenate([k.chord_root for k in kept]).astype(np.int8),
        "chord_bass": np.concatenate([k.chord_bass for k in kept]).astype(np.int8),
        "chord_chroma": np.concatenate([k.chord_chroma for k in kept]).astype(np.uint8),
        "song": np.concatenate([np.full(len(k.bar), k.song) for k in kept]).astype(np.int32),
        "bar": np.concatenate([k.bar for k in kept]).astype(np.int32),
        "phrase": np.concatenate([k.phrase for k in kept]).astype(np.int16),
        "phrase_bar": np.concatenate([k.phrase_bar for k in kept]).astype(np.int16),
    }

# ------------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python3 -m engine.build.segments",
        description="Build the POP909 2-bar segment file for training the texture models.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="read POP909 and write the segment .npz")
    build.add_argument("--data", type=Path, required=True,
                       help="folder holding pop909/ and pop909-structure/")
    build.add_argument("--out", type=Path, required=True, help="output .npz")
    build.add_argument("--seed", type=int, default=DEFAULT_SEED, help="valid-split seed")
    build.add_argument("--limit", type=int, help="read only the first N songs")
    args = parser.parse_args(argv)
    try:
        build_segments(args.data, args.out, seed=args.seed, limit=args.limit,
                       progress=lambda message: print(message, flush=True))
    except (BadInputError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
