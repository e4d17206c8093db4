"""Chord-template library: builder pieces, file round-trip, shipped-library invariants
(AccoMontage2 §3.1 / algorithms.md §1.6)."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest

from engine.build import chord_templates as builder
from engine.build import template_songs
from engine.build.chord_templates import build_library
from engine.build.template_rules import derive_compound, derive_duple, derive_triple, label_style
from engine.errors import BadInputError
from engine.library.chord_labels import parse_pop909_label, recognise_pitch_set
from engine.library.chord_templates import (
    DEFAULT_LIBRARY_PATH,
    NO_CHORD,
    SLOTS_PER_BAR,
    ChordTemplate,
    MeterLibrary,
    TemplateChord,
    TemplateLibrary,
    load_library,
    save_library,
    to_json,
)
from engine.library.datasets import is_held_out, shared_data_dir
from engine.types import MODES, QUALITY_SUFFIX, STYLES


def chords(*spec: tuple[int, str, int]) -> tuple[TemplateChord, ...]:
    """(root, quality, slots) in root position."""
    return tuple(TemplateChord(r, q, 0, s) for r, q, s in spec)


# ---------------------------------------------------------------------------------------------
# Style rule
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("progression", "mode", "style"), [
    # I–V–vi–IV, triads on scale roots
    (chords((0, "maj", 8), (7, "maj", 8), (9, "min", 8), (5, "maj", 8)), "major", "pop_standard"),
    # i–iv–v in minor: plain minor triads, no dark colour
    (chords((0, "min", 8), (5, "min", 8), (7, "min", 16)), "minor", "pop_standard"),
    # sus chords still count as triads
    (chords((0, "sus4", 4), (0, "maj", 4), (7, "sus2", 8)), "major", "pop_standard"),
    # a dominant 7th
    (chords((0, "maj", 8), (7, "7", 8)), "major", "pop_complex"),
    # chromatic root (bVII in major) with triads only
    (chords((0, "maj", 8), (10, "maj", 8)), "major", "pop_complex"),
    # add9 colour
    (chords((0, "add9", 8), (5, "maj", 8)), "major", "pop_complex"),
    # Aeolian i–bVI–bVII
    (chords((0, "min", 8), (8, "maj", 4), (10, "maj", 4)), "minor", "dark"),
    # minor with a half-diminished ii
    (chords((0, "min", 8), (2, "hdim7", 4), (7, "7", 4)), "minor", "dark"),
    # borrowed minor iv in major
    (chords((0, "maj", 8), (5, "min", 8)), "major", "dark"),
    # maj7 colour
    (chords((0, "maj7", 8), (9, "min7", 8)), "major", "rnb"),
    # ii7–V7 motion without any R&B-only quality
    (chords((2, "min7", 8), (7, "7", 8)), "major", "rnb"),
    # R&B colour wins over dark colour in minor
    (chords((0, "min", 8), (8, "maj7", 4), (10, "maj", 4)), "minor", "rnb"),
])
def test_label_style(progression: tuple[TemplateChord, ...], mode: str, style: str) -> None:
    assert label_style(progression, mode) == style


def test_label_style_ignores_no_chord_slots() -> None:
    progression = (TemplateChord(NO_CHORD, "maj", 0, 8), *chords((0, "maj", 8)))
    assert label_style(progression, "major") == "pop_standard"


# ---------------------------------------------------------------------------------------------
# Chord recognition
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("label", "expected"), [
    ("B:maj", (11, "maj", 0)),
    ("B:maj/3", (11, "maj", 4)),
    ("C:min/b3", (0, "min", 3)),
    ("C:min7/b7", (0, "min7", 10)),
    ("C:maj7/7", (0, "maj7", 11)),
    ("G:7/5", (7, "7", 7)),
    ("D:sus4(b7)", (2, "7sus4", 0)),
    ("D:sus4(b7,9)", (2, "7sus4", 0)),
    ("D:sus4(b7,", (2, "7sus4", 0)),  # cut at a space in the source files
    ("A:maj(9)", (9, "add9", 0)),
    ("Gb:maj(9)/5", (6, "add9", 7)),
    ("E:min(9)", (4, "minadd9", 0)),
    ("F#:hdim7", (6, "hdim7", 0)),
    ("Bb:maj6", (10, "6", 0)),
    ("Bb:maj6(9)", (10, "6", 0)),
    ("Eb:min7(11)", (3, "min11", 0)),
    ("Ab:maj9(13)", (8, "maj9", 0)),
    ("C#:maj/#4", (1, "maj", 6)),
    ("C:maj(2)/2\x01", (0, "add9", 2)),  # a control character, as in two source lines
    ("C:min(2)/", (0, "minadd9", 0)),
])
def test_parse_pop909_label(label: str, expected: tuple[int, str, int]) -> None:
    assert parse_pop909_label(label) == expected
    assert expected[1] in QUALITY_SUFFIX


def test_parse_pop909_label_no_chord_and_errors() -> None:
    assert parse_pop909_label("N") is None
    with pytest.raises(BadInputError):
        parse_pop909_label("C:weird")
    with pytest.raises(BadInputError):
        parse_pop909_label("H:maj")


@pytest.mark.parametrize(("pitches", "expected"), [
    ([48, 52, 55], (0, "maj", 0)),  # C
    ([52, 55, 60], (0, "maj", 4)),  # C/E: lowest note is the bass, not the root
    ([45, 48, 52], (9, "min", 0)),  # Am
    ([45, 48, 52, 55], (9, "min7", 0)),  # Am7, not C6/A
    ([48, 52, 55, 57], (0, "6", 0)),  # C6, not Am7/C
    ([43, 47, 50, 53], (7, "7", 0)),  # G7
    ([47, 50, 53], (11, "dim", 0)),  # Bdim
    ([48, 52, 56], (0, "aug", 0)),  # Caug (symmetric: the bass names it)
    ([48, 49, 52, 55, 58], (0, "7", 0)),  # C7(b9): nearest vocabulary chord
])
def test_recognise_pitch_set(pitches: list[int], expected: tuple[int, str, int]) -> None:
    assert recognise_pitch_set(pitches) == expected


# ---------------------------------------------------------------------------------------------
# Meter derivation
# ---------------------------------------------------------------------------------------------

TWO_BARS_44 = chords((0, "maj", 4), (7, "maj", 4), (9, "min", 8))  # | C G | Am |


def test_derive_duple_splits_bars() -> None:
    derived = derive_duple(TWO_BARS_44)
    template = ChordTemplate(0, "2/4", "major", 4, derived, 1, "pop_standard", "derived")
    assert template.bar_signatures() == ((0,) * 4, (7,) * 4, (9,) * 4, (9,) * 4)


def test_derive_triple_half_bar_rule() -> None:
    assert derive_triple(TWO_BARS_44, "3/4") == chords((0, "maj", 4), (7, "maj", 2), (9, "min", 6))
    assert derive_triple(TWO_BARS_44, "6/8") == chords((0, "maj", 3), (7, "maj", 3), (9, "min", 6))


def test_derive_triple_keeps_held_chords_and_refuses_busy_bars() -> None:
    held = chords((0, "maj", 12), (7, "maj", 4))  # | C | C G |
    assert derive_triple(held, "3/4") == chords((0, "maj", 10), (7, "maj", 2))
    off_half = chords((0, "maj", 6), (7, "maj", 2))  # change on beat 4
    assert derive_triple(off_half, "6/8") is None
    three = chords((0, "maj", 4), (5, "maj", 2), (7, "maj", 2))
    assert derive_triple(three, "3/4") is None
    with pytest.raises(ValueError):
        derive_triple(chords((0, "maj", 6)), "3/4")


def test_derive_compound_gives_each_quarter_beat_a_dotted_beat() -> None:
    # | C . G . | Am | in 4/4 -> 12/8: C and G take two dotted beats (6 slots) each
    assert derive_compound(TWO_BARS_44, "4/4") == chords((0, "maj", 6), (7, "maj", 6),
                                                         (9, "min", 12))
    waltz = chords((0, "maj", 4), (7, "maj", 2), (9, "min", 6))  # | C . G | Am |
    assert derive_compound(waltz, "3/4") == chords((0, "maj", 6), (7, "maj", 3), (9, "min", 9))
    off_beat = chords((0, "maj", 3), (7, "maj", 3))  # a change on an off-beat 8th
    assert derive_compound(off_beat, "3/4") is None
    with pytest.raises(ValueError):
        derive_compound(TWO_BARS_44, "6/8")


# ---------------------------------------------------------------------------------------------
# Building from a hand-made corpus folder
# ---------------------------------------------------------------------------------------------

def _free_id(dataset: str, candidates: list[str], held_out: bool) -> str:
    return next(c for c in candidates if is_held_out(dataset, c) == held_out)


def _write_pop909_song(root: Path, song_id: str, key: str, labels: str, lines: list[str]) -> None:
    folder = root / "pop909-structure" / song_id
    folder.mkdir(parents=True)
    (folder / "finalized_chord.txt").write_text("\n".join(lines) + "\n")
    (folder / "analyzed_key.txt").write_text(key + "\n")
    (folder / "human_label1.txt").write_text(labels + "\n")


def _write_jig(root: Path, name: str) -> None:
    """A 6/8 tune in E minor (G major signature) with an 8th-note pickup: | Em | Em | D | Em |."""
    tpb, bar = 1024, 3072
    for kind, events in (
        ("melody", [(2560, 3072, [71]), (3072, 15360, [76])]),
        ("chords", [(3072, 9216, [40, 43, 47]), (9216, 12288, [38, 42, 45]),
                    (12288, 15360, [40, 43, 47])]),
    ):
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("key_signature", key="G", time=0))
        track.append(mido.MetaMessage("time_signature", numerator=6, denominator=8, time=0))
        timeline = sorted(
            [(start, 1, p) for start, _, ps in events for p in ps]
            + [(end, 0, p) for _, end, ps in events for p in ps]
        )
        now = 0
        for tick, is_on, pitch in timeline:
            kind_msg = "note_on" if is_on else "note_off"
            track.append(mido.Message(kind_msg, note=pitch, velocity=90 * is_on, time=tick - now))
            now = tick
        assert now % bar == 0
        midi = mido.MidiFile(ticks_per_beat=tpb)
        midi.tracks.append(track)
        (root / "nottingham" / kind).mkdir(parents=True, exist_ok=True)
        midi.save(root / "nottingham" / kind / f"{name}.mid")


@pytest.fixture(scope="module")
def toy_library(tmp_path_factory: pytest.TempPathFactory) -> TemplateLibrary:
    root = tmp_path_factory.mktemp("corpora")
    ids = [f"{i:03d}" for i in range(1, 200)]
    # | C | G | Am | F | twice, two 4-bar phrases; chords written in our own words
    lines = ["C:maj [0, 4, 7] 0 4", "G:maj [2, 7, 11] 7 4", "A:min [0, 4, 9] 9 4",
             "F:maj [0, 5, 9] 5 4"] * 2
    _write_pop909_song(root, _free_id("pop909", ids, False), "C:maj", "A4A4", lines)
    _write_pop909_song(root, _free_id("pop909", ids, True), "C:maj", "A4A4", lines)
    names = [f"toyjig{i}" for i in range(100)]
    _write_jig(root, _free_id("nottingham", names, False))
    _write_jig(root, _free_id("nottingham", names, True))
    return build_library(root)


def _find(library: TemplateLibrary, meter: str, bars: int, progression: tuple) -> ChordTemplate:
    hits = [t for t in library.for_meter(meter).templates
            if t.bars == bars and t.chords == progression]
    assert len(hits) == 1, f"{meter} {bars} bars {progression}: {len(hits)} hits"
    return hits[0]


def test_toy_build_pop909_templates(toy_library: TemplateLibrary) -> None:
    song = chords((0, "maj", 8), (7, "maj", 8), (9, "min", 8), (5, "maj", 8))
    four = _find(toy_library, "4/4", 4, song)
    assert (four.mode, four.count, four.source, four.style) == ("major", 2, "pop909",
                                                                "pop_standard")
    assert _find(toy_library, "4/4", 2, song[:2]).count == 2
    assert _find(toy_library, "4/4", 2, song[2:]).count == 2
    assert not [t for t in toy_library.for_meter("4/4").templates if t.bars == 8]
    # derived meters: 2/4 doubles the bars, 3/4 and 6/8 keep them
    assert _find(toy_library, "2/4", 8, song).source == "derived"
    assert _find(toy_library, "2/4", 2, song[:1]).count == 2
    triple = chords((0, "maj", 6), (7, "maj", 6), (9, "min", 6), (5, "maj", 6))
    assert _find(toy_library, "3/4", 4, triple).count == 2
    assert _find(toy_library, "6/8", 4, triple).source == "derived"
    # compound meters: a dotted beat per quarter (12/8 from 4/4, 9/8 from the 3/4 form)
    twelve = chords((0, "maj", 12), (7, "maj", 12), (9, "min", 12), (5, "maj", 12))
    assert _find(toy_library, "12/8", 4, twelve).count == 2
    nine = chords((0, "maj", 9), (7, "maj", 9), (9, "min", 9), (5, "maj", 9))
    assert _find(toy_library, "9/8", 4, nine).source == "derived"
    assert toy_library.for_meter("9/8").junctions[("major", (0,) * 9, (7,) * 9)] == 2


def test_toy_build_junctions(toy_library: TemplateLibrary) -> None:
    junctions = toy_library.for_meter("4/4").junctions
    c, g, am, f = ((r,) * 8 for r in (0, 7, 9, 5))
    assert junctions[("major", c, g)] == 2
    assert junctions[("major", am, f)] == 2
    assert junctions[("major", f, c)] == 1
    half = toy_library.for_meter("2/4").junctions
    assert half[("major", (0,) * 4, (0,) * 4)] == 2  # the two halves of each C bar
    assert half[("major", (0,) * 4, (7,) * 4)] == 2


def test_toy_build_nottingham_pickup_and_mode(toy_library: TemplateLibrary) -> None:
    # E minor read from the chords (mido gives the signature as G major); the pickup bar is
    # skipped, so the tune's 4 bars are | i | i | bVII | i |.
    tune = chords((0, "min", 12), (10, "maj", 6), (0, "min", 6))
    four = _find(toy_library, "6/8", 4, tune)
    assert (four.mode, four.count, four.source, four.style) == ("minor", 1, "nottingham",
                                                                "pop_standard")
    assert _find(toy_library, "6/8", 2, tune[:1]).count == 1
    junctions = toy_library.for_meter("6/8").junctions
    assert junctions[("minor", (0,) * 6, (10,) * 6)] == 1
    assert junctions[("minor", (10,) * 6, (0,) * 6)] == 1
    # two 6/8 bars make one 12/8 bar: | i i | bVII i |
    assert _find(toy_library, "12/8", 2, tune).count == 1
    assert toy_library.for_meter("12/8").junctions[
        ("minor", (0,) * 12, (10,) * 6 + (0,) * 6)] == 1


def test_toy_build_excludes_held_out(toy_library: TemplateLibrary) -> None:
    songs = toy_library.provenance["songs"]
    assert songs["pop909 held out"] == 1 and songs["pop909 4/4"] == 1
    assert songs["nottingham held out"] == 1 and songs["nottingham 6/8"] == 1


# ---------------------------------------------------------------------------------------------
# File round trip
# ---------------------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path: Path) -> None:
    template = ChordTemplate(0, "3/4", "minor", 2, chords((0, "min", 6), (7, "7", 6)), 3,
                             "pop_complex", "derived")
    original = TemplateLibrary(
        meters={"3/4": MeterLibrary("3/4", (template,),
                                    {("minor", (0,) * 6, (7,) * 6): 4})},
        provenance={"build_command": builder.BUILD_COMMAND},
    )
    path = tmp_path / "lib.json.gz"
    save_library(original, path)
    loaded = load_library(path)
    assert to_json(loaded) == to_json(original)
    assert loaded.for_meter("3/4").templates[0] == template


# ---------------------------------------------------------------------------------------------
# The shipped library
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped() -> TemplateLibrary:
    if not DEFAULT_LIBRARY_PATH.exists():
        pytest.fail(f"shipped library missing: run `{builder.BUILD_COMMAND}`")
    return load_library(DEFAULT_LIBRARY_PATH)


def test_shipped_library_size_and_shape(shipped: TemplateLibrary) -> None:
    assert shipped.size >= 3000
    for meter, body in shipped.meters.items():
        per_bar = SLOTS_PER_BAR[meter]
        for t in body.templates:
            assert t.meter == meter and t.mode in MODES and t.style in STYLES
            assert sum(c.slots for c in t.chords) == t.bars * per_bar
            assert all(-1 <= c.root <= 11 and 0 <= c.bass <= 11 for c in t.chords)
            assert all(c.quality in QUALITY_SUFFIX and c.slots > 0 for c in t.chords)
            assert t.count >= 1
        for (mode, a, b), count in body.junctions.items():
            assert mode in MODES and count >= 1
            assert len(a) == len(b) == per_bar


def test_shipped_library_coverage(shipped: TemplateLibrary) -> None:
    for meter in ("4/4", "2/4", "3/4", "6/8", "9/8", "12/8"):
        templates = shipped.for_meter(meter).templates
        for mode in MODES:
            for bars in (2, 4, 8):
                assert any(t.mode == mode and t.bars == bars for t in templates), (meter, mode,
                                                                                   bars)
    for mode in MODES:
        styles = {t.style for t in shipped.for_meter("4/4").templates if t.mode == mode}
        assert styles == set(STYLES), mode


def test_shipped_library_is_deduplicated_and_documented(shipped: TemplateLibrary) -> None:
    for body in shipped.meters.values():
        keys = [(t.mode, t.bars, t.chords) for t in body.templates]
        assert len(keys) == len(set(keys))
    provenance = shipped.provenance
    for key in ("build_command", "held_out_rule", "songs", "skipped_songs", "census", "built"):
        assert key in provenance


# ---------------------------------------------------------------------------------------------
# Building from the real corpora
# ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_build_from_real_corpora(monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = shared_data_dir()
    if data_dir is None:
        pytest.skip("corpora not found: set ACCOBRIDGE_SHARED_DATA to the shared data folder")
    read: list[tuple[str, str]] = []
    pop909_song, nottingham_song = template_songs._pop909_song, template_songs._nottingham_song

    def spy_pop909(folder: Path) -> template_songs.SongChords:
        read.append(("pop909", folder.name))
        return pop909_song(folder)

    def spy_nottingham(chords_path: Path, melody_path: Path) -> template_songs.SongChords:
        read.append(("nottingham", chords_path.stem))
        return nottingham_song(chords_path, melody_path)

    monkeypatch.setattr(template_songs, "_pop909_song", spy_pop909)
    monkeypatch.setattr(template_songs, "_nottingham_song", spy_nottingham)
    library = build_library(data_dir, limit=30)
    assert read and not [song for song in read if is_held_out(*song)]
    assert {dataset for dataset, _ in read} == {"pop909", "nottingham"}
    four_four = library.for_meter("4/4").templates
    assert {t.source for t in four_four} >= {"pop909", "nottingham"}
    assert {t.mode for t in four_four} == set(MODES)
    for body in library.meters.values():
        for t in body.templates:
            assert sum(c.slots for c in t.chords) == t.bars * body.slots_per_bar
    again = build_library(data_dir, limit=30)
    assert to_json(again)["meters"] == to_json(library)["meters"]  # deterministic
