"""The default texture library: format, descriptors (algorithms.md §2.1), shipped textures and
the renderer's promises (chord tones, registers, melody floor, chord-length notes, tiling)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from engine.arranger import texture_format
from engine.arranger import texture_render as render
from engine.arranger.descriptors import (
    DENSITY_CUTPOINTS,
    POLYPHONY_CUTPOINTS,
    level,
    onset_roll,
    rhythmic_density,
    voice_number,
)
from engine.arranger.texture_format import format_textures, load_default_textures, parse_textures
from engine.arranger.texture_render import render_texture
from engine.arranger.textures import PatternEvent, Texture, Tone
from engine.chords import chord_pitch_classes
from engine.errors import BadInputError, LibraryError
from engine.types import LEVELS, Chord, ChordEvent, Meter

INLINE = """
# a comment line
texture test_runs            # trailing comment
meter 4/4
bars 2
tags ballad test
styles pop_standard rnb
pedal yes
velocity 60
lh 0+16:b 16+8:b_,5 24+8:b
rh 0+2:5_/r/-/3!/c2~/t^ 16+16:c

texture test_waltz
meter 3/4
lh 0+4:b!
rh 4+4:c/c
"""

TEXTURES = load_default_textures()
BY_NAME = {t.name: t for t in TEXTURES}
METERS = {"4/4": Meter(4, 4), "3/4": Meter(3, 4), "6/8": Meter(6, 8), "9/8": Meter(9, 8),
          "12/8": Meter(12, 8)}


def single(body: str, meter: str = "4/4", bars: int = 1) -> Texture:
    """One inline texture: `body` holds its lh/rh lines."""
    return parse_textures(f"texture t\nmeter {meter}\nbars {bars}\n{body}\n", "<inline>")[0]


def chords_of(spec: list[tuple[int, str, int]], length: int, start: int = 0) -> list[ChordEvent]:
    """(root_pc, quality, bass_pc) chords of equal length from `start`."""
    return [ChordEvent(Chord(r, q, b), start + i * length, length)
            for i, (r, q, b) in enumerate(spec)]


# ------------------------------------------------------------------------------------ format


def test_parse_reads_headers_runs_groups_and_marks():
    runs, waltz = parse_textures(INLINE, "<inline>")
    assert (runs.name, runs.meter, runs.bars, runs.pedal, runs.velocity) == (
        "test_runs", "4/4", 2, True, 60)
    assert runs.tags == ("ballad", "test") and runs.styles == ("pop_standard", "rnb")
    rh = [e for e in runs.events if e.hand == "rh"]
    # the run 0+2:5_/r/-/3!/c2~/t^ steps by 2 and skips the rest at 4
    assert [e.onset_16th for e in rh] == [0, 2, 6, 8, 10, 16]
    assert rh[0].tones == (Tone("5", octave=-1),)
    assert rh[2].tones == (Tone("3", dynamic=1),)
    assert rh[3].tones == (Tone("c", voices=2, dynamic=-1),)
    assert rh[4].tones == (Tone("t", octave=1),)
    lh_group = next(e for e in runs.events if e.hand == "lh" and e.onset_16th == 16)
    assert lh_group == PatternEvent("lh", 16, 8, (Tone("b", octave=-1), Tone("5")))
    assert waltz.styles == ("pop_standard", "pop_complex", "dark", "rnb")  # default: all
    assert (waltz.bars, waltz.pedal, waltz.velocity) == (1, False, texture_format.DEFAULT_VELOCITY)


def test_format_round_trip():
    parsed = parse_textures(INLINE, "<inline>")
    assert parse_textures(format_textures(parsed), "<formatted>") == parsed
    shipped = TEXTURES[:10]
    assert parse_textures(format_textures(shipped)) == shipped


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("meter 4/4\n", 1, "before the first"),
        ("texture a\nmeter 5/4\nlh 0+4:b\n", 2, "meter"),
        ("texture a\nmeter 4/4\ncolour red\nlh 0+4:b\n", 3, "unknown key"),
        ("texture a\nmeter 4/4\n\nrh 0+4:q\n", 4, "bad tone"),
        ("texture a\nmeter 4/4\nrh 0+4:b^_\n", 3, "mixes"),
        ("texture a\nmeter 4/4\nrh 0-4:b\n", 3, "bad event"),
        ("texture a\nmeter 4/4\nrh 14+4:b\n", 3, "past the pattern"),
        ("texture a\nmeter 3/4\nrh 0+4:b/b/b/b\n", 3, "past the pattern"),
        ("texture a\nmeter 4/4\nstyles jazz\nlh 0+4:b\n", 3, "unknown style"),
        ("texture a\nmeter 4/4\nbars 3\nlh 0+4:b\n", 3, "bars"),
        ("texture a\nmeter 4/4\nvelocity 200\nlh 0+4:b\n", 3, "velocity"),
        ("texture a\nmeter 4/4\npedal maybe\nlh 0+4:b\n", 3, "pedal"),
        ("texture a\nlh 0+4:b\n", 1, "no meter"),
        ("texture a\nmeter 4/4\n", 1, "no lh/rh events"),
        ("texture a\nmeter 4/4\nlh 0+4:b\ntexture a\n", 4, "defined twice"),
        ("texture A b\n", 1, "texture NAME"),
    ],
)
def test_parse_errors_name_source_and_line(text, line, words):
    with pytest.raises(LibraryError, match=f"^<inline>:{line}: .*{words}"):
        parse_textures(text, "<inline>")


def test_loader_error_names_the_file(tmp_path, monkeypatch):
    (tmp_path / "broken.tex").write_text("texture a\nmeter 4/4\nlh 0+4:x\n")
    monkeypatch.setattr(texture_format, "TEXTURE_DIR", tmp_path)
    load_default_textures.cache_clear()
    try:
        with pytest.raises(LibraryError, match="broken.tex:3:"):
            load_default_textures()
        (tmp_path / "broken.tex").unlink()
        with pytest.raises(LibraryError, match="no texture files"):
            load_default_textures()
    finally:
        load_default_textures.cache_clear()


# ------------------------------------------------------------------------------- descriptors


def test_onset_roll_marks_onsets_only_inside_the_roll():
    notes = np.array([[0, 60, 4, 80], [0, 64, 2, 80], [3, 48, 8, 70], [8, 50, 1, 70],
                      [-1, 52, 2, 70]])
    roll = onset_roll(notes, 8)
    assert roll.shape == (8, 128) and roll.dtype == bool
    assert sorted(zip(*np.nonzero(roll), strict=True)) == [(0, 60), (0, 64), (3, 48)]
    assert not onset_roll(np.zeros((0, 4), dtype=int), 4).any()


def test_rhythmic_density_is_the_share_of_steps_with_an_onset():
    roll = np.zeros((8, 128), dtype=bool)
    roll[0, [48, 60, 64]] = True
    roll[3, 60] = True
    assert rhythmic_density(roll) == pytest.approx(2 / 8)
    assert rhythmic_density(np.zeros((0, 128), dtype=bool)) == 0.0


def test_voice_number_means_over_struck_positions_only():
    roll = np.zeros((16, 128), dtype=bool)
    roll[0, [36, 60, 64, 67]] = True  # beat: 4 notes
    roll[8, [60, 64]] = True  # beat: 2 notes; beats 4 and 12 are silent and do not count
    roll[2, 72] = True  # off-beat 8th: 1 note
    roll[5, [40, 41, 42, 43, 44]] = True  # a 16th position: ignored by VN
    assert voice_number(roll) == pytest.approx(3.0)  # max(mean(4, 2), mean(1))
    roll[[6, 10, 14], 70:75] = True  # off-beats now 1, 5, 5, 5 notes
    assert voice_number(roll) == pytest.approx(4.0)
    # 6/8: beats every 6 steps, off-beat 8ths at 2, 4, 8, 10
    compound = np.zeros((12, 128), dtype=bool)
    compound[0, [40, 52]] = True
    compound[[2, 4], 60] = True
    compound[6, [52, 55, 60]] = True
    assert voice_number(compound, beat_16th=6) == pytest.approx(2.5)
    assert voice_number(compound, beat_16th=4) == pytest.approx(2.0)  # beats 0, 4, 8
    assert voice_number(np.zeros((8, 128), dtype=bool)) == 0.0


def test_level_cuts_at_the_cutpoints():
    cuts = (0.2, 0.4, 0.6, 0.8)
    assert [level(v, cuts) for v in (0.0, 0.19, 0.2, 0.5, 0.79, 0.8, 5.0)] == [
        0, 0, 1, 2, 3, 4, 4]
    for cutpoints in (DENSITY_CUTPOINTS, POLYPHONY_CUTPOINTS):
        assert len(cutpoints) == LEVELS - 1
        assert list(cutpoints) == sorted(set(cutpoints))


def test_texture_descriptors_come_from_its_pattern_on_c_major():
    pad = single("lh 0+16:b\nrh 0+16:c")  # C2 + C-E-G once a bar
    assert pad.density == pytest.approx(1 / 16) and pad.polyphony == pytest.approx(4.0)
    eighths = single("rh 0+2:r/3/5/3/r/3/5/3")
    assert eighths.density == pytest.approx(0.5) and eighths.polyphony == pytest.approx(1.0)
    for t in TEXTURES:
        assert t.density_level == level(t.density, DENSITY_CUTPOINTS)
        assert t.polyphony_level == level(t.polyphony, POLYPHONY_CUTPOINTS)


# ---------------------------------------------------------------------------- the library


def test_library_size_names_and_kinds():
    counts = {m: sum(t.meter == m for t in TEXTURES) for m in METERS}
    assert len(TEXTURES) >= 60
    assert counts["4/4"] >= 20 and counts["3/4"] >= 15 and counts["6/8"] >= 15
    assert counts["9/8"] >= 8 and counts["12/8"] >= 8
    assert len(BY_NAME) == len(TEXTURES)
    tags = {tag for t in TEXTURES for tag in t.tags}
    assert {"ballad", "arpeggio", "alberti", "broken", "block", "pop", "syncopated", "stride",
            "waltz", "rnb", "neo_soul", "pad", "sparse", "classical"} <= tags
    for t in TEXTURES:
        assert any(e.hand == "lh" for e in t.events), t.name  # every texture has a bass part
        assert t.styles and t.bars in (1, 2, 4)


@pytest.mark.parametrize("meter", sorted(METERS))
def test_every_level_is_covered_in_every_meter(meter):
    mine = [t for t in TEXTURES if t.meter == meter]
    assert {t.density_level for t in mine} == set(range(LEVELS))
    assert {t.polyphony_level for t in mine} == set(range(LEVELS))


# ---------------------------------------------------------------------------------- render

MAJOR_DEGREES = ((0, "maj"), (2, "min"), (4, "min"), (5, "maj"), (7, "maj"), (9, "min"),
                 (11, "dim"))
COLOURS = {"maj": ("maj7", "6", "add9", "maj9", "sus4"), "min": ("min7", "min9", "minadd9"),
           "dim": ("hdim7",)}


def diatonic_progression(
    rng: np.random.Generator, key: int, bars: int, bar_16th: int, start: int
) -> list[ChordEvent]:
    """Random diatonic chords (some coloured, some inverted, some half a bar long)."""
    events, at, end = [], start, start + bars * bar_16th
    while at < end:
        degree, quality = MAJOR_DEGREES[rng.integers(len(MAJOR_DEGREES))]
        if rng.random() < 0.35:
            quality = str(rng.choice(COLOURS[quality]))
        if degree == 7 and rng.random() < 0.5:
            quality = str(rng.choice(["7", "9", "7sus4"]))
        root = (key + degree) % 12
        pcs = sorted(chord_pitch_classes(root, quality))
        bass = root if rng.random() < 0.7 else int(rng.choice(pcs))
        length = min(bar_16th if rng.random() < 0.6 else bar_16th // 2, end - at)
        events.append(ChordEvent(Chord(root, quality, bass), at, length))
        at += length
    return events


def check_rendering(
    notes: list[tuple[int, int, int, int]], chords: list[ChordEvent], start: int, length: int,
    floor: np.ndarray | None = None,
) -> None:
    for onset, duration, pitch, velocity in notes:
        assert start <= onset and onset + duration <= start + length and duration >= 1
        assert render.LH_LOWEST <= pitch <= render.RH_HIGHEST and 1 <= velocity <= 127
        chord = next(c for c in chords if c.start_16th <= onset < c.end_16th)
        assert onset + duration <= chord.end_16th  # no note outlasts its chord
        assert pitch % 12 in chord_pitch_classes(chord.chord.root_pc, chord.chord.quality)
        if floor is not None:
            over = floor[onset : onset + duration]
            over = over[over >= 0]
            assert not over.size or pitch < over.min()  # never at or above the melody


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_shipped_texture_renders_chord_tones_in_range_below_the_melody(name):
    texture = BY_NAME[name]
    meter = METERS[texture.meter]
    bar = meter.sixteenths_per_bar
    rng = np.random.default_rng(sum(map(ord, name)))
    for bars, key in zip((4, 6, 7, 8), (0, 3, 7, 10), strict=True):
        start = 2 * bar  # phrases start anywhere on the song's grid
        length = bars * bar
        chords = diatonic_progression(rng, key, bars, bar, start)
        notes = render_texture(texture, chords, start, length, meter)
        assert notes, "a phrase with chords is never silent"
        assert notes == render_texture(texture, chords, start, length, meter)  # deterministic
        check_rendering(notes, chords, start, length)
        for top in (76, 62):  # a high melody and one low in the right hand's register
            floor = np.full(start + length + 4, top)
            floor[start + 5 :: 9] = -1  # rests: free
            floor[start + 3 :: 11] = top - 3  # dips
            check_rendering(render_texture(texture, chords, start, length, meter, floor),
                            chords, start, length, floor)


def test_pattern_tiles_over_odd_phrase_lengths():
    two_bars = single("rh 0+4:r 16+4:3/5", bars=2)
    c_major = chords_of([(0, "maj", 0)], 48, start=8)
    notes = render_texture(two_bars, c_major, 8, 48, Meter(4, 4))
    # bars 1, 2, 1: one onset, two onsets, one onset
    assert [n[0] for n in notes] == [8, 24, 28, 40]
    assert [n[2] % 12 for n in notes] == [0, 4, 7, 0]


def test_events_without_a_chord_are_silent_and_notes_clip_or_restrike_at_changes():
    pad = single("lh 0+16:b\nrh 14+2:t")
    # C for half a bar, then nothing, then G from the next bar
    chords = [ChordEvent(Chord(0, "maj", 0), 0, 8), ChordEvent(Chord(7, "maj", 7), 16, 16)]
    notes = render_texture(pad, chords, 0, 32, Meter(4, 4))
    starts = sorted({n[0] for n in notes})
    assert starts == [0, 16, 30]  # the 14+2 event of bar 1 falls on no chord
    assert all(n[0] + n[1] <= 8 for n in notes if n[0] < 8)
    changes = chords_of([(0, "maj", 0), (5, "maj", 5), (7, "maj", 7)], 6)
    held = render_texture(single("lh 0+16:b"), changes, 0, 16, Meter(4, 4))
    # clipped at each change and re-struck while at least a quarter is left (10, then 4)
    assert [(n[0], n[1], n[2] % 12) for n in held] == [(0, 6, 0), (6, 6, 5), (12, 4, 7)]
    short = render_texture(single("rh 4+6:r"), chords_of([(0, "maj", 0), (5, "maj", 5)], 8),
                           0, 16, Meter(4, 4))
    assert [(n[0], n[1]) for n in short] == [(4, 4)]  # 2 sixteenths left: no re-strike


def test_two_four_plays_four_four_patterns_and_other_meters_refuse():
    texture = BY_NAME["ballad_arpeggio_8ths"]
    chords = chords_of([(0, "maj", 0), (9, "min", 9), (5, "maj", 5)], 8)
    notes = render_texture(texture, chords, 0, 24, Meter(2, 4))
    check_rendering(notes, chords, 0, 24)
    with pytest.raises(BadInputError, match="3/4"):
        render_texture(texture, chords, 0, 24, Meter(3, 4))
    assert render_texture(texture, chords, 0, 0, Meter(4, 4)) == []


def test_bass_moves_by_at_most_a_sixth_on_common_progressions():
    bass_only = single("lh 0+16:b")
    progressions = [
        [(0, "maj", 0), (7, "maj", 7), (9, "min", 9), (5, "maj", 5)] * 2,
        [(2, "min7", 2), (7, "7", 7), (0, "maj7", 0), (5, "maj7", 5), (11, "hdim7", 11),
         (4, "7", 4), (9, "min", 9), (9, "min", 9)],
        [(0, "maj", 0), (7, "maj", 11), (9, "min", 9), (4, "min", 7), (5, "maj", 5),
         (0, "maj", 4), (2, "min", 2), (7, "maj", 7)],
    ]
    for spec in progressions:
        for key in range(12):
            chords = chords_of([((r + key) % 12, q, (b + key) % 12) for r, q, b in spec], 16)
            basses = [n[2] for n in render_texture(bass_only, chords, 0, 128, Meter(4, 4))]
            assert len(basses) == 8
            assert max(abs(a - b) for a, b in pairwise(basses)) <= render.MAX_BASS_LEAP
            # roughly 33-55: a step outside beats a leap (a falling line in F reaches G1)
            assert all(31 <= b <= 55 for b in basses)


def test_right_hand_voicings_move_smoothly():
    block = single("rh 0+16:c")
    chords = chords_of([(0, "maj", 0), (9, "min", 9), (5, "maj", 5), (7, "maj", 7)] * 2, 16)
    notes = render_texture(block, chords, 0, 128, Meter(4, 4))
    voicings = [sorted(n[2] for n in notes if n[0] == bar * 16) for bar in range(8)]
    for a, b in pairwise(voicings):
        assert sum(min(abs(x - y) for y in a) for x in b) <= 6  # common tones kept
        assert min(b) >= 52 and max(b) <= 76


def test_right_hand_gesture_drops_under_a_low_melody_keeping_its_shape():
    arpeggio = single("rh 0+4:r/3/5/r^")
    chords = chords_of([(0, "maj", 0)], 16)
    free = [n[2] for n in render_texture(arpeggio, chords, 0, 16, Meter(4, 4))]
    low = [n[2] for n in render_texture(arpeggio, chords, 0, 16, Meter(4, 4),
                                        np.full(16, 64))]
    assert np.diff(free).tolist() == [4, 3, 5] == np.diff(low).tolist()
    assert max(low) < 64
