"""The POP909 donor-phrase library: reading songs onto the structure grid, importing (also from a
damaged folder, atomically) and loading. Corpus tests read ../shared/data and skip without it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.arranger.descriptors import onset_roll, rhythmic_density, voice_number
from engine.build.pop909_import import (
    MIN_GROUP_FOR_OWN_CUTS,
    MIN_MELODY_ONSETS,
    import_pop909,
    main,
    quintile_cutpoints,
)
from engine.errors import BadInputError, LibraryError
from engine.library.datasets import is_held_out, shared_data_dir
from engine.library.pop909_textures import BAR_16TH, BEATS_PER_BAR, LIBRARY_FILE, load_donor_library

DATA = shared_data_dir()
POP909 = DATA / "pop909" if DATA else None
STRUCTURE = DATA / "pop909-structure" if DATA else None
needs_corpus = pytest.mark.skipif(
    POP909 is None or STRUCTURE is None or not POP909.is_dir() or not STRUCTURE.is_dir(),
    reason="POP909 and pop909-structure not found (set ACCOBRIDGE_SHARED_DATA or put them in "
    "../shared/data)",
)
LIMIT = 15


def _usable_ids(count: int, start: int = 0) -> list[str]:
    """Non-held-out 4/4 song ids, in order, from the `start`-th one."""
    assert POP909 is not None
    ids = sorted(p.name for p in POP909.iterdir() if p.is_dir() and p.name.isdigit())
    return [s for s in ids if not is_held_out("pop909", s)][start : start + count]


def _structure_onsets(song_id: str) -> list[tuple[int, int]]:
    assert STRUCTURE is not None
    position, onsets = 0, []
    for line in (STRUCTURE / song_id / "melody.txt").read_text().split("\n"):
        if line.strip():
            pitch, duration = (int(x) for x in line.split())
            if pitch:
                onsets.append((position, pitch))
            position += duration
    return onsets


def _labels(song_id: str) -> list[tuple[str, int]]:
    import re

    assert STRUCTURE is not None
    text = (STRUCTURE / song_id / "human_label1.txt").read_text()
    return [(a, int(b)) for a, b in re.findall(r"([A-Za-z])(\d+)", text)]


# ------------------------------------------------------------------------- corpus: reading


@needs_corpus
@pytest.mark.parametrize("song_id", ["001", "005", "010", "023", "045"])
def test_grid_agrees_with_structure_melody(song_id):
    """005/010/023/045 are songs where pop909-structure deleted beats mid-song (seams)."""
    from engine.build.pop909_midi import read_pop909_song

    assert POP909 is not None
    song = read_pop909_song(POP909 / song_id, STRUCTURE)
    midi = {(int(o), int(p)) for o, p in song.melody[:, :2]}
    onsets = _structure_onsets(song_id)
    agree = sum(any((o + d, p) in midi for d in (-1, 0, 1)) for o, p in onsets) / len(onsets)
    assert agree >= 0.95
    assert song.alignment_match == pytest.approx(agree, abs=0.01)
    assert song.meter.name == "4/4"
    assert sum(p.bars for p in song.phrases) == sum(n for _, n in _labels(song_id))
    assert song.chord_chroma.shape == (len(song.chord_roots), 12)
    assert np.all(song.pedal[:, 1] > song.pedal[:, 0])
    assert np.all(song.pedal[1:, 0] >= song.pedal[:-1, 1])  # merged, in order
    if song_id == "001":  # its PIANO track pedals throughout (045's hardly at all)
        assert len(song.pedal) > 50
    assert len(song.piano) > len(song.bridge) > 0
    assert song.piano[:, 0].min() >= 0
    assert song.keys


@needs_corpus
def test_reading_without_structure_uses_the_flagged_downbeats():
    from engine.build.pop909_midi import read_pop909_song

    assert POP909 is not None
    song = read_pop909_song(POP909 / "001")
    assert song.phrases == () and np.isnan(song.alignment_match)
    assert len(song.chord_roots) > 0 and song.keys and len(song.melody) > 100


# ------------------------------------------------------------------------ corpus: importing


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    if POP909 is None or not POP909.is_dir() or STRUCTURE is None or not STRUCTURE.is_dir():
        pytest.skip("POP909 and pop909-structure not found")
    out = tmp_path_factory.mktemp("donors") / LIBRARY_FILE
    messages: list[str] = []
    report = import_pop909(POP909, STRUCTURE, out, progress=messages.append, limit=LIMIT)
    return report, out, messages


@needs_corpus
def test_import_writes_a_loadable_library(imported):
    report, out, messages = imported
    assert out.is_file() and report.file_bytes == out.stat().st_size
    assert [p.name for p in out.parent.iterdir()] == [LIBRARY_FILE]  # no temp files left
    assert report.songs_used + len(report.skipped_songs) == LIMIT
    assert report.phrases_kept > 50 and messages
    library = load_donor_library(out)
    assert library is not None and len(library) == report.phrases_kept
    with np.load(out, allow_pickle=False) as archive:  # plain arrays, no pickles
        assert int(archive["schema_version"]) == 1
        assert len(archive["bars"]) == report.phrases_kept
    assert library.provenance["phrases"] == report.phrases_kept
    assert dict(report.donors_per_bars) == {
        b: int(np.count_nonzero(library.bars == b)) for b in np.unique(library.bars)
    }


@needs_corpus
def test_donors_match_their_labels_and_spans(imported):
    report, out, _ = imported
    library = load_donor_library(out)
    assert library is not None
    labels = {int(s): _labels(f"{int(s):03d}") for s in np.unique(library.song)}
    for i in range(len(library)):
        bars = int(library.bars[i])
        letter, count = labels[int(library.song[i])][int(library.phrase_index[i])]
        assert (str(library.label[i]), bars) == (letter, count)
        notes = library.phrase_notes(i)
        length = bars * BAR_16TH
        assert len(notes) > 0
        assert np.all((notes[:, 0] >= 0) & (notes[:, 0] < length))
        assert np.all((notes[:, 2] >= 1) & (notes[:, 0] + notes[:, 2] <= length))
        assert np.all((notes[:, 1] >= 0) & (notes[:, 1] < 128))
        assert np.all((notes[:, 3] >= 1) & (notes[:, 3] < 128))
        flags = library.melody_flags(i)
        assert flags.shape == (length, 3) and np.all(flags.sum(axis=1) == 1)
        assert np.count_nonzero(flags[:, 0]) >= MIN_MELODY_ONSETS
        roots, bass, chroma = library.beat_chords(i)
        assert roots.shape == bass.shape == (bars * BEATS_PER_BAR,)
        assert chroma.shape == (bars * BEATS_PER_BAR, 12)
        assert np.all(chroma[roots >= 0].any(axis=1)) and not chroma[roots < 0].any()
        assert library.velocity_curve(i).shape == (bars * BEATS_PER_BAR,)
        spans = library.pedal_spans(i)
        assert np.all((spans[:, 0] >= 0) & (spans[:, 1] <= length) & (spans[:, 0] < spans[:, 1]))
        roll = onset_roll(notes, length)
        assert library.density[i] == pytest.approx(rhythmic_density(roll), abs=1e-6)
        assert library.polyphony[i] == pytest.approx(voice_number(roll), abs=1e-5)
    assert not any(is_held_out("pop909", f"{int(s):03d}") for s in library.song)


@needs_corpus
def test_levels_are_equal_population_quintiles_per_length(imported):
    _, out, _ = imported
    library = load_donor_library(out)
    assert library is not None
    for levels in (library.density_level, library.polyphony_level):
        assert set(np.unique(levels).tolist()) <= {0, 1, 2, 3, 4}
    for bars, group in library.groups.items():
        n = len(group.indices)
        assert group.melody_flags.shape == (n, bars * BAR_16TH * 3)
        assert group.chroma.shape == (n, bars * BEATS_PER_BAR, 12)
        assert np.array_equal(group.melody_flags[-1],
                              library.melody_flags(int(group.indices[-1])).reshape(-1))
        assert np.array_equal(group.chroma[0], library.beat_chroma(int(group.indices[0])))
        assert np.all(library.bars[group.indices] == bars)
        if n < MIN_GROUP_FOR_OWN_CUTS:
            continue
        for levels in (library.density_level, library.polyphony_level):
            counts = np.bincount(levels[group.indices], minlength=5)
            assert counts.min() >= 0.4 * n / 5 and counts.max() <= 1.6 * n / 5, counts
    assert library.density_cutpoints.shape == library.polyphony_cutpoints.shape == (4,)
    assert np.all(np.diff(library.density_cutpoints) > 0)


def test_quintile_cutpoints_split_ties_consistently():
    values = np.array([0.1] * 10 + [0.2] * 10 + [0.3] * 10 + [0.4] * 10 + [0.5] * 10)
    assert quintile_cutpoints(values).tolist() == pytest.approx([0.15, 0.25, 0.35, 0.45])
    assert len(quintile_cutpoints(np.array([1.0, 1.0]))) == 4


# ------------------------------------------------------------------ damaged folders, writing


def _copy_song(song_id: str, pop909: Path, structure: Path) -> None:
    assert POP909 is not None and STRUCTURE is not None
    shutil.copytree(POP909 / song_id, pop909 / song_id)
    shutil.copytree(STRUCTURE / song_id, structure / song_id)


@needs_corpus
def test_damaged_folder_is_reported_song_by_song(tmp_path):
    pop909, structure = tmp_path / "pop909", tmp_path / "pop909-structure"
    pop909.mkdir()
    structure.mkdir()
    good = _usable_ids(2)
    no_midi, truncated, no_beats, mismatch = _usable_ids(4, start=2)
    for song_id in [*good, no_midi, truncated, no_beats, mismatch]:
        _copy_song(song_id, pop909, structure)
    (pop909 / no_midi / f"{no_midi}.mid").unlink()
    midi = pop909 / truncated / f"{truncated}.mid"
    midi.write_bytes(midi.read_bytes()[:300])
    (pop909 / no_beats / "beat_midi.txt").unlink()
    (structure / mismatch / "human_label1.txt").write_text("A8" * 40 + "\n")

    report = import_pop909(pop909, out_path=tmp_path / "lib" / LIBRARY_FILE)  # sibling structure
    reasons = dict(report.skipped_songs)
    assert set(reasons) == {no_midi, truncated, no_beats, mismatch}
    assert "not found" in reasons[no_midi] and f"{no_midi}.mid" in reasons[no_midi]
    assert "not a readable MIDI file" in reasons[truncated]
    assert "beat_midi.txt" in reasons[no_beats]
    assert "human_label1.txt" in reasons[mismatch] and "finalized_chord.txt" in reasons[mismatch]
    assert report.songs_used == 2
    assert [p.name for p in report.out_path.parent.iterdir()] == [LIBRARY_FILE]
    library = load_donor_library(report.out_path)
    assert library is not None and set(library.song.tolist()) == {int(s) for s in good}
    summary = report.summary()
    assert all(song in summary for song in reasons)


@needs_corpus
def test_a_failed_write_keeps_the_previous_library(tmp_path, monkeypatch):
    out = tmp_path / LIBRARY_FILE
    assert POP909 is not None
    import_pop909(POP909, STRUCTURE, out, limit=2)
    before = out.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        import_pop909(POP909, STRUCTURE, out, limit=3)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [LIBRARY_FILE]


def test_missing_folder_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(BadInputError, match="not found"):
        import_pop909(tmp_path / "nowhere")
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_folder_without_structure_labels_is_refused(tmp_path):
    (tmp_path / "pop909" / "001").mkdir(parents=True)
    with pytest.raises(BadInputError, match="pop909-structure"):
        import_pop909(tmp_path / "pop909", out_path=tmp_path / LIBRARY_FILE)
    assert not (tmp_path / LIBRARY_FILE).exists()


def test_no_library_loads_as_none_and_a_damaged_one_says_reimport(tmp_path):
    assert load_donor_library(tmp_path / LIBRARY_FILE) is None
    damaged = tmp_path / LIBRARY_FILE
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(LibraryError, match="re-import"):
        load_donor_library(damaged)
    np.savez(damaged, schema_version=np.array(1))
    with pytest.raises(LibraryError, match="missing"):
        load_donor_library(damaged)
