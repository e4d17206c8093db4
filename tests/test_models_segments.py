"""The POP909 2-bar segment file of the learned texture models: cutting a song into segments,
the split, building from a (synthetic, then real) POP909 folder, and loading."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import numpy as np
import pytest

from engine.build.provenance import write_npz_atomically
from engine.build.segments import build_segments, cut_segments, main, split_songs
from engine.errors import LibraryError
from engine.library.datasets import is_held_out, shared_data_dir
from engine.models.segments import TEST, TRAIN, VALID, chord_features, load_segments, segment_rolls

DATA = shared_data_dir()


def _c_major(beats: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    chroma = np.zeros((beats, 12), dtype=bool)
    chroma[:, [0, 4, 7]] = True
    return np.zeros(beats, np.int8), np.zeros(beats, np.int8), chroma


def test_cut_segments_hops_one_bar_and_drops_empty_windows():
    # notes in bars 0, 1 and 4 of a 5-bar song; bar 2-3 silent
    piano = np.array([[0, 60, 4, 80], [20, 64, 40, 70], [16, 48, 2, 90], [70, 67, 8, 60]])
    roots, bass, chroma = _c_major(12)  # chord file covers 3 bars only
    cut = cut_segments(7, piano, roots, bass, chroma, [(0, 2), (2, 4)])
    # windows start at bars 0, 1, 3 (bar 2's window 32..64 holds nothing)
    assert cut.bar.tolist() == [0, 1, 3]
    first = cut.notes[0]
    assert first[:, :2].tolist() == [[0, 60], [16, 48], [20, 64]]  # sorted by onset, pitch
    assert first[2, 2] == 32  # duration 40 clipped to 32
    assert cut.notes[1][:, 0].tolist() == [0, 4]  # bar 1 window: onsets relative to 16th 16
    assert cut.notes[2][:, 0].tolist() == [22]
    assert cut.phrase.tolist() == [0, 0, 1] and cut.phrase_bar.tolist() == [0, 1, 1]
    # beats past the chord file read as no chord
    assert cut.chord_root[1].tolist() == [0] * 8
    assert cut.chord_root[2].tolist() == [-1] * 8
    assert cut.chord_chroma[2].sum() == 0 and cut.chord_chroma[0, 0].tolist()[:5] == [1, 0, 0, 0, 1]


def test_split_is_fixed_and_holds_out_the_evaluation_songs():
    songs = list(range(1, 301))
    split = split_songs(songs, seed=0)
    assert split == split_songs(songs, seed=0)
    assert split != split_songs(songs, seed=1)
    assert all((split[s] == TEST) == is_held_out("pop909", f"{s:03d}") for s in songs)
    rest = [s for s in songs if split[s] != TEST]
    valid = [s for s in rest if split[s] == VALID]
    assert len(valid) == round(0.05 * len(rest))
    assert sum(split[s] == TRAIN for s in songs) == len(rest) - len(valid)


def _write_arrays(path: Path) -> dict[str, np.ndarray]:
    arrays = {
        "notes": np.array([[0, 60, 4, 80], [3, 64, 2, 70], [8, 67, 32, 90]], dtype=np.uint8),
        "note_offsets": np.array([0, 2, 3]),
        "chord_root": np.zeros((2, 8), np.int8), "chord_bass": np.zeros((2, 8), np.int8),
        "chord_chroma": np.zeros((2, 8, 12), np.uint8), "song": np.array([5, 5], np.int32),
        "bar": np.array([0, 1], np.int32), "phrase": np.array([0, -1], np.int16),
        "phrase_bar": np.array([0, -1], np.int16), "split": np.array([0, 2], np.uint8),
        "provenance": np.array(json.dumps({"seed": 0})), "schema_version": np.array(1),
    }
    arrays["chord_chroma"][:, :, [0, 4, 7]] = 1
    write_npz_atomically(path, arrays)
    return arrays


def test_load_round_trip_rolls_and_chord_features(tmp_path):
    path = tmp_path / "seg.npz"
    _write_arrays(path)
    assert [p.name for p in tmp_path.iterdir()] == ["seg.npz"]  # no temp file left
    segments = load_segments(path)
    assert len(segments) == 2 and segments.provenance == {"seed": 0}
    assert segments.segment_notes(0)[:, 1].tolist() == [60, 64]
    roll = segments.window_roll(0)
    assert roll.shape == (32, 128) and roll[0, 60] == 4 and roll[3, 64] == 2 and roll.sum() == 6
    assert np.array_equal(segment_rolls(segments, np.array([1, 0]))[1], roll)
    features = segments.chord_features(0)
    assert features.shape == (8, 36)
    assert features[0, [0, 12, 16, 19, 24]].tolist() == [1, 1, 1, 1, 1] and features.sum() == 40
    none = chord_features(np.array([-1]), np.zeros((1, 12)), np.array([-1]))
    assert none.sum() == 0
    assert segments.indices(TEST).tolist() == [1]
    assert segments.next_segment().tolist() == [1, -1]
    with pytest.raises(ValueError):
        segments.song[0] = 3  # read-only


def test_load_refuses_missing_and_damaged_files(tmp_path):
    with pytest.raises(LibraryError, match="not found"):
        load_segments(tmp_path / "nothing.npz")
    path = tmp_path / "seg.npz"
    arrays = _write_arrays(path)
    arrays["note_offsets"] = np.array([0, 2, 5])
    write_npz_atomically(path, arrays)
    with pytest.raises(LibraryError, match="damaged.*note_offsets"):
        load_segments(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(LibraryError, match="damaged"):
        load_segments(path)


# --------------------------------------------------------------- a synthetic POP909 folder


def _synthetic_song(folder: Path, song_id: str, bars: int) -> None:
    """A 120 bpm 4/4 song: melody of quarter notes, piano C-major 8th-note chords in bars
    with an even index only (odd bars silent), and the annotation files the reader needs."""
    song = folder / song_id
    song.mkdir(parents=True)
    midi = mido.MidiFile(ticks_per_beat=480)
    for name, notes in (
        ("MELODY", [(b * 4 + q, 72, 1) for b in range(bars) for q in range(4)]),
        ("PIANO", [(b * 4 + e / 2, p, 0.5) for b in range(0, bars, 2) for e in range(8)
                   for p in (48, 64, 67)]),
    ):
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
        events = sorted([(round(s * 480), 1, p) for s, p, _ in notes]
                        + [(round((s + d) * 480), 0, p) for s, p, d in notes])
        now = 0
        for tick, on, pitch in events:
            kind = "note_on" if on else "note_off"
            track.append(mido.Message(kind, note=pitch, velocity=80, time=tick - now))
            now = tick
        midi.tracks.append(track)
    midi.save(song / f"{song_id}.mid")
    beats = bars * 4 + 4
    (song / "beat_midi.txt").write_text("".join(
        f"{b * 0.5:.3f} {1 if b % 2 == 0 else 0} {1 if b % 4 == 0 else 0}\n" for b in range(beats)))
    (song / "chord_midi.txt").write_text(f"0.0 {beats * 0.5:.1f} C:maj\n")
    (song / "key_audio.txt").write_text(f"0.0 {beats * 0.5:.1f} C:maj\n")


def test_build_from_a_synthetic_folder(tmp_path, capsys):
    data = tmp_path / "data"
    _synthetic_song(data / "pop909", "001", 8)
    _synthetic_song(data / "pop909", "002", 4)
    (data / "pop909" / "003").mkdir()  # no files: skipped with a reason
    out = tmp_path / "seg.npz"
    main(["build", "--data", str(data), "--out", str(out)])
    assert "skip 003" in capsys.readouterr().out
    segments = load_segments(out)
    # even bars hold notes, the song ends with the last piano note (bar 6 of 8, bar 2 of 4):
    # windows from bars 0..5 and 0..1, each touching an even bar
    assert segments.song.tolist() == [1] * 6 + [2] * 2
    assert segments.bar.tolist() == list(range(6)) + list(range(2))
    assert segments.phrase.tolist() == [-1] * 8  # no structure folder: no phrases
    first = segments.segment_notes(0)
    assert len(first) == 24 and first[:, 0].tolist() == [e * 2 for e in range(8) for _ in range(3)]
    assert set(first[:, 2].tolist()) == {2} and set(first[:, 3].tolist()) == {80}
    assert segments.segment_notes(1)[0, 0] == 16  # window at bar 1: its notes are in bar 2
    assert set(segments.chord_root.ravel().tolist()) == {0}
    assert segments.provenance["songs_used"] == 2 and segments.provenance["songs_skipped"] == 1
    assert segments.provenance["skipped"] == ["003"]


# ------------------------------------------------------------------------------- the corpus


def test_build_from_pop909_songs(tmp_path):
    if DATA is None or not (DATA / "pop909").is_dir():
        pytest.skip("POP909 not found (set ACCOBRIDGE_SHARED_DATA or put it in ../shared/data)")
    from engine.build.pop909_midi import read_pop909_song

    out = tmp_path / "seg.npz"
    provenance = build_segments(DATA, out, limit=4)
    segments = load_segments(out)
    assert provenance["segments"] == len(segments) > 200
    song = read_pop909_song(DATA / "pop909" / "001", DATA / "pop909-structure")
    mine = np.flatnonzero(segments.song == 1)
    assert len(mine) > 50
    for s in mine[[0, len(mine) // 2, -1]]:
        start = int(segments.bar[s]) * 16
        piano = song.piano[(song.piano[:, 0] >= start) & (song.piano[:, 0] < start + 32)]
        got = segments.segment_notes(s).astype(np.int64)
        assert np.array_equal(got[:, [0, 1, 3]], piano[:, [0, 1, 3]] - [start, 0, 0])
        assert np.array_equal(got[:, 2], np.minimum(piano[:, 2], 32))
        beat = start // 4
        known = song.chord_roots[beat : beat + 8]  # past the chord file: no chord
        assert np.array_equal(segments.chord_root[s, : len(known)], known)
        assert np.all(segments.chord_root[s, len(known) :] == -1)
        phrase = song.phrases[segments.phrase[s]]
        assert phrase.start_bar + segments.phrase_bar[s] == segments.bar[s]
