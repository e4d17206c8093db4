"""The held-out evaluation corpus and the diatonic baseline (benchmarks.eval_corpus/baseline).

Synthetic song folders check the loading rules without the corpora; the real held-out songs are
checked when the shared data folder is present.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import mido
import pytest

from benchmarks.baseline import baseline_chords, diatonic_triads, span_16th
from benchmarks.eval_corpus import (
    NOTTINGHAM,
    POP909,
    CorpusSkip,
    EvalItem,
    held_out_ids,
    load_nottingham_tune,
    load_pop909_song,
)
from engine.analysis.meter_grid import first_downbeat
from engine.grid import melody_end_16th
from engine.library.datasets import is_held_out, shared_data_dir
from engine.pipeline import harmonize
from engine.types import Key, Melody, Meter, Note

ITEMS_PER_CORPUS = 3


def chords_by_onset(notes: tuple[Note, ...]) -> dict[int, frozenset[int]]:
    groups: dict[int, set[int]] = defaultdict(set)
    for note in notes:
        groups[note.start_tick].add(note.pitch % 12)
    return {tick: frozenset(pcs) for tick, pcs in groups.items()}


def phrase_bars(phrases: str) -> list[int]:
    assert re.fullmatch(r"([A-Z]\d+)+", phrases), phrases
    return [int(n) for n in re.findall(r"\d+", phrases)]


def assert_phrases_cover_melody(item: EvalItem) -> None:
    bar = item.meter.sixteenths_per_bar
    assert item.downbeat_16th == first_downbeat(item.melody, item.pickup_16th)
    assert item.end_16th == item.downbeat_16th + sum(phrase_bars(item.phrases)) * bar
    # the phrases end with the bar that holds the melody's end
    assert item.end_16th - bar < melody_end_16th(item.melody) <= item.end_16th
    # nothing but an upbeat (second half of the bar before) precedes the first phrase
    first = min(n.start_tick for n in item.melody.notes) / item.melody.ticks_per_16th
    assert first >= item.downbeat_16th - bar / 2


def assert_diatonic_baseline(item: EvalItem) -> None:
    chords = baseline_chords(item.melody, item.key, item.pickup_16th)
    triads = set(diatonic_triads(item.key))
    assert chords
    assert all(pcs in triads for pcs in chords_by_onset(chords).values())


# ------------------------------------------------------------------ synthetic POP909 folders


def write_pop909_song(
    folder: Path,
    melody: list[tuple[int, int]],
    labels: str,
    key: str = "C:maj",
    beats_per_bar: int = 4,
) -> Path:
    """A pop909-structure folder; the chords cycle C, none, G, one bar each."""
    folder.mkdir()
    (folder / "melody.txt").write_text("".join(f"{p} {d}\n" for p, d in melody))
    bars = sum(int(n) for n in re.findall(r"\d+", labels))
    b = beats_per_bar
    lines = [f"C:maj [0, 4, 7] 0 {b} \n", f"N []  {b} \n", f"G:maj [2, 7, 11] 7 {b} \n"]
    body = "".join(lines[i % 3] for i in range(bars))
    (folder / "finalized_chord.txt").write_text(body)
    (folder / "analyzed_key.txt").write_text(key + "\n")
    (folder / "human_label1.txt").write_text(labels + "\n")
    (folder / "tempo.txt").write_text("100\n")
    return folder


def test_pop909_phrases_start_at_the_first_vocal_phrase(tmp_path: Path) -> None:
    # intro i2 (with a stray intro note in bar 0), vocal A2 from bar 2 with an upbeat 8th in the
    # second half of bar 1, instrumental b1, vocal B3 whose melody ends in its first bar, outro
    # o2 after the melody.
    melody = [(72, 2), (0, 22), (67, 2), (60, 16), (64, 16), (0, 16), (65, 8)]
    song = write_pop909_song(tmp_path / "007", melody, "i2A2b1B3o2")
    item = load_pop909_song(song)
    # b → C, since the vocal B already uses that letter; B3 is cut at the melody's last bar
    assert item.phrases == "A2C1B1"
    assert item.downbeat_16th == 32
    assert item.dropped_notes == 1
    assert item.key == Key(0, "major")
    assert [n.pitch for n in item.melody.notes] == [67, 60, 64, 65]
    assert item.melody.ticks_per_beat == 480 and item.melody.key_signature is None
    assert_phrases_cover_melody(item)
    assert {frozenset({0, 4, 7}), frozenset({2, 7, 11})} == set(
        chords_by_onset(item.human_chords).values()
    )
    # close position at 48 + pc over the annotated bass (the root here) at 36 + pc
    assert all(48 <= n.pitch < 60 or n.pitch in (36, 43) for n in item.human_chords)
    assert {n.pitch for n in item.human_chords if n.pitch < 48} == {36, 43}


def test_pop909_three_four_is_read_from_the_chord_length(tmp_path: Path) -> None:
    song = write_pop909_song(tmp_path / "010", [(60, 12), (62, 12)], "A2", beats_per_bar=3)
    item = load_pop909_song(song)
    assert item.meter == Meter(3, 4)
    assert (item.phrases, item.downbeat_16th, item.end_16th) == ("A2", 0, 24)


def test_pop909_modulating_song_is_skipped(tmp_path: Path) -> None:
    song = write_pop909_song(tmp_path / "008", [(60, 16)], "A1", key="C:maj\nA:min")
    with pytest.raises(CorpusSkip, match="modulates"):
        load_pop909_song(song)


def test_pop909_late_entry_into_the_first_phrase_is_skipped(tmp_path: Path) -> None:
    # The singer enters on beat 3 of the phrase's first bar: that reads as an upbeat to bar 1.
    song = write_pop909_song(tmp_path / "009", [(0, 8), (60, 24), (62, 16)], "A3")
    with pytest.raises(CorpusSkip, match="downbeat"):
        load_pop909_song(song)


# --------------------------------------------------------------- synthetic Nottingham tune


def write_midi(
    path: Path, notes: list[tuple[int, int, int]], key: str,
    meters: tuple[tuple[int, int, int], ...] = ((0, 6, 8),),
) -> None:
    """One-track file (6/8 unless `meters` gives (tick, n, d) signatures) at 1024 ticks per
    beat, as the Nottingham conversions are."""
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("key_signature", key=key, time=0))
    events = sorted(
        [(start, 1, pitch) for start, _, pitch in notes]
        + [(start + length, 0, pitch) for start, length, pitch in notes]
        + [(tick, -1, (n, d)) for tick, n, d in meters]  # -1: a time signature first
    )
    now = 0
    for tick, on, pitch in events:
        if on == -1:
            n, d = pitch
            track.append(mido.MetaMessage("time_signature", numerator=n, denominator=d,
                                          time=tick - now))
        else:
            kind = "note_on" if on else "note_off"
            track.append(mido.Message(kind, note=pitch, velocity=90 if on else 0,
                                      time=tick - now))
        now = tick
    path.parent.mkdir(parents=True, exist_ok=True)
    mido.MidiFile(ticks_per_beat=1024, tracks=[track]).save(path)


def test_nottingham_pickup_and_regular_phrases(tmp_path: Path) -> None:
    bar = 3072  # 6/8 at 1024 ticks per quarter
    # an 8th upbeat at the end of padded bar 0, then 10 bars of dotted quarters
    melody = [(bar - 512, 512, 69)] + [(bar + i * 1536, 1536, 69 + i % 3) for i in range(20)]
    chords = [(bar * b, bar, p) for b in range(1, 11) for p in (45, 48, 52)]  # A minor
    write_midi(tmp_path / "melody" / "jigs0.mid", melody, "C")
    write_midi(tmp_path / "chords" / "jigs0.mid", chords, "C")
    item = load_nottingham_tune(tmp_path, "jigs0")
    assert item.meter == Meter(6, 8)
    assert item.downbeat_16th == 12
    assert item.phrases == "A8A2"
    assert item.key == Key(9, "minor")  # C signature, ends on A minor → relative minor
    assert item.melody.notes[0] == Note(69, 1200, 240, 90)
    assert_phrases_cover_melody(item)


def test_nottingham_meter_change_gets_phrases_per_section(tmp_path: Path) -> None:
    # 10 bars of 2/4 (two quarters a bar), then 9 bars of 6/8 (two dotted quarters a bar)
    change = 10 * 2048
    melody = ([(i * 1024, 1024, 69 + i % 3) for i in range(20)]
              + [(change + i * 1536, 1536, 69 + i % 3) for i in range(18)])
    chords = [(b * 2048, 2048, p) for b in range(10) for p in (45, 48, 52)]
    chords += [(change + b * 3072, 3072, p) for b in range(9) for p in (45, 48, 52)]
    meters = ((0, 2, 4), (change, 6, 8))
    write_midi(tmp_path / "melody" / "ashover0.mid", melody, "C", meters)
    write_midi(tmp_path / "chords" / "ashover0.mid", chords, "C", meters)
    item = load_nottingham_tune(tmp_path, "ashover0")
    assert item.meter == Meter(2, 4)
    assert item.melody.meter_changes == ((change * 480 // 1024, Meter(6, 8)),)
    assert item.phrases == "A8A2A8A1"
    assert (item.downbeat_16th, item.end_16th) == (0, 10 * 8 + 9 * 12)
    harmonized = harmonize(item.melody, item.given_options())
    assert [p.phrase.bars for p in harmonized.phrases] == [8, 2, 8, 1]


# ------------------------------------------------------------------------------- baseline


def test_baseline_picks_best_covering_triad_per_half_bar() -> None:
    # 4/4 in C: half bars C-E-G (I), F-A (IV), rest (held IV), B-D (V: covers 2, vii° too,
    # but V comes first), then D alone (ii, V and vii° tie at 1 → V, the tie-break order).
    notes = [(60, 0, 2), (64, 2, 2), (67, 4, 4), (65, 8, 4), (69, 12, 4), (71, 24, 4),
             (74, 28, 4), (62, 32, 8)]
    melody = Melody(
        tuple(Note(p, s * 120, d * 120) for p, s, d in notes), 480, Meter(4, 4)
    )
    chords = chords_by_onset(baseline_chords(melody, Key(0, "major")))
    c, f, g = frozenset({0, 4, 7}), frozenset({5, 9, 0}), frozenset({7, 11, 2})
    assert [chords[t] for t in sorted(chords)] == [c, f, f, g, g]
    assert sorted(chords) == [0, 960, 1920, 2880, 3840]


def test_baseline_span_per_meter() -> None:
    assert [span_16th(Meter(n, d)) for n, d in ((4, 4), (2, 2), (2, 4), (3, 4), (6, 8))] == [
        8, 8, 8, 12, 12
    ]


def test_minor_triads_include_the_harmonic_dominant() -> None:
    triads = diatonic_triads(Key(9, "minor"))
    assert triads[0] == frozenset({9, 0, 4})
    assert frozenset({4, 8, 11}) in triads  # E major, V of A minor


# ---------------------------------------------------------------------- the real corpora

requires_data = pytest.mark.skipif(
    shared_data_dir() is None,
    reason="shared corpora not found (../shared/data or $ACCOBRIDGE_SHARED_DATA)",
)


def first_loadable(dataset: str, count: int) -> list[EvalItem]:
    root = shared_data_dir()
    assert root is not None
    items = []
    for song_id in held_out_ids(dataset, root):
        try:
            if dataset == POP909:
                items.append(load_pop909_song(root / "pop909-structure" / song_id))
            else:
                items.append(load_nottingham_tune(root / "nottingham", song_id))
        except CorpusSkip:
            continue
        if len(items) == count:
            break
    return items


@requires_data
@pytest.mark.parametrize("dataset", [POP909, NOTTINGHAM])
def test_held_out_items_load(dataset: str) -> None:
    items = first_loadable(dataset, ITEMS_PER_CORPUS)
    assert len(items) == ITEMS_PER_CORPUS
    for item in items:
        assert is_held_out(dataset, item.song_id)
        assert item.melody.notes and item.human_chords
        assert_phrases_cover_melody(item)
        assert_diatonic_baseline(item)
