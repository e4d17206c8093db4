"""Melody-aware chord colours (engine/harmonizer/colour.py): hand-computed fits and the styles'
palettes, then the harmonizer's use of them."""

import numpy as np
import pytest
from builders import library, template

from engine.chords import INTERVALS, triad_of
from engine.harmonizer import harmonize_phrases
from engine.harmonizer.colour import (
    PALETTES,
    SUNG_ONLY,
    MelodyPitchClasses,
    colour_for_melody,
    colours_for_melody,
    melody_fit,
    melody_histogram,
)
from engine.types import HarmonizeOptions, Key, MelodyAnalysis, Meter, Phrase
from engine.voicing import style_quality


def _held(*pcs_and_16ths):
    """Histogram of a melody holding each pitch class for the given 16ths."""
    hist = np.zeros(12)
    for pc, n in pcs_and_16ths:
        hist[pc] += n
    return hist


@pytest.mark.parametrize(("quality", "melody_pc", "consonance"), [
    ("maj", 5, -2 / 3),  # F over C: 4th (0), minor 2nd below E (−1), 7th above G (−1)
    ("sus4", 5, 0.0),  # F over Csus4: 4th (0), unison (+1), 7th (−1)
    ("maj", 2, -1 / 3),
    ("6", 0, 0.75),  # C over C6: unison, 6th, 4th, 3rd
    ("maj7", 0, 0.25),  # C over Cmaj7: the minor 9th against B costs −1
    ("maj7", 11, 0.5),
])
def test_melody_fit_by_hand(quality, melody_pc, consonance):
    fit = melody_fit(quality, _held((melody_pc, 4)))
    in_chord = melody_pc in {i % 12 for i in INTERVALS[quality]}
    assert fit == pytest.approx(consonance + 1e-3 * in_chord)


C_MAJOR, A_MINOR = Key(0, "major"), Key(9, "minor")


@pytest.mark.parametrize(("style", "key", "degree", "held", "expected"), [
    ("pop_standard", C_MAJOR, 0, [(5, 8)], "sus4"),  # the melody sits on the 4th
    ("pop_standard", C_MAJOR, 0, [(2, 8)], "sus2"),  # sus2 and sus4 tie: D is sus2's tone
    ("pop_standard", C_MAJOR, 0, [(4, 8), (5, 2)], "maj"),  # a passing 4th does not suspend it
    ("pop_standard", C_MAJOR, 9, [(2, 8)], "sus4"),  # Am under a held D
    ("pop_standard", C_MAJOR, 10, [(5, 8)], "maj"),  # B♭sus4 would add E♭, outside the key
    ("pop_complex", C_MAJOR, 0, [(0, 8)], "6"),  # maj7 under its own root would clash: C6
    ("pop_complex", C_MAJOR, 0, [(11, 8)], "maj7"),
    ("pop_complex", C_MAJOR, 7, [(11, 4), (2, 4)], "7"),  # G6 only ties V7: the style's own
    ("pop_complex", C_MAJOR, 7, [(7, 4), (11, 4)], "6"),  # V's 7th would clash with its root
    ("pop_complex", A_MINOR, 0, [(0, 8)], "min7"),  # Am6's F♯ is outside A minor; m(add9) ties
    ("pop_complex", A_MINOR, 0, [(0, 8), (9, 8)], "min6"),  # unless the melody sings it
    ("rnb", C_MAJOR, 2, [], "min9"),  # no melody: the style rule's colour
])
def test_colour_for_melody(style, key, degree, held, expected):
    quality = "min" if (degree in (2, 9)) == (key.mode == "major") else "maj"
    assert colour_for_melody(quality, key.mode, degree, style, _held(*held)) == expected
    # the batched form the harmonizer uses agrees, next to a chord with no melody over it
    batch = colours_for_melody([(quality, degree), ("maj", 5)], key.mode, style,
                               np.stack([_held(*held), np.zeros(12)]))
    assert batch == [expected, style_quality("maj", 5, style)]


def test_palettes_keep_each_styles_character():
    for triad_name, palette in PALETTES["pop_standard"].items():  # Pop-standard: triads …
        sung = SUNG_ONLY["pop_standard"]  # … and a seventh only where the melody sings it
        assert all(len({i % 12 for i in INTERVALS[q]}) == 3 for q in palette if q not in sung)
        assert all(sung[q] in INTERVALS[q] for q in palette if q in sung), triad_name
    for triad_name, palette in PALETTES["dark"].items():  # Dark: minors stay minor
        if triad_name == "min":
            assert all(triad_of(q) == "min" for q in palette)
    for palette in (p for style in PALETTES.values() for p in style.values()):
        assert all(q in INTERVALS for q in palette)


def test_melody_histogram_counts_sounding_16ths_by_pitch_class():
    pitch = np.array([60, 60, -1, 72, 65, 65, 65, -1])
    assert melody_histogram(pitch, 0, 8).tolist() == [3, 0, 0, 0, 0, 3] + [0] * 6
    assert melody_histogram(pitch, 4, 6)[5] == 2 and melody_histogram(pitch, 2, 3).sum() == 0
    assert melody_histogram(pitch, -4, 99).sum() == 6  # clipped to the melody
    in_f = MelodyPitchClasses(pitch, tonic_pc=5)  # counted above the tonic F
    assert in_f.histogram(0, 8)[0] == 3 and in_f.histogram(0, 8)[7] == 3


def _analysis():
    return MelodyAnalysis(Key(0, "major"), 1.0, Meter(4, 4), 0, 0, (Phrase("A", 0, 4),))


def test_the_melody_colours_searched_chords_in_ours_only():
    lib = library([
        template(4, [(0, "maj", 8), (5, "maj", 8), (7, "maj", 8), (0, "maj", 8)]),
    ])
    # bar 1 holds F over C (→ Csus4), bar 2 A over F (a chord tone), bar 3 C over G (sus4)
    pitch = np.array([65] * 16 + [69] * 16 + [72] * 16 + [64] * 16)
    found = {}
    for variant in ("ours", "paper"):
        for colours in (True, False):
            options = HarmonizeOptions(variant=variant, melody_colours=colours)
            (ph,), _ = harmonize_phrases(pitch, _analysis(), options, lib)
            found[variant, colours] = [(e.chord.root_pc, e.chord.quality) for e in ph.chosen.chords]
    assert found["ours", True] == [(0, "sus4"), (5, "maj"), (7, "sus4"), (0, "maj")]
    plain = [(0, "maj"), (5, "maj"), (7, "maj"), (0, "maj")]
    assert found["ours", False] == found["paper", True] == found["paper", False] == plain


def test_pop_standard_takes_a_seventh_only_where_the_melody_sings_it():
    fa = np.zeros(12)
    fa[5] = 4  # F over G (degree 7) in C major: the dominant seventh the melody sings
    assert colour_for_melody("maj", "major", 7, "pop_standard", fa) == "7"
    mi = np.zeros(12)
    mi[11] = 4  # B over G: its third, no seventh sung → stays a triad
    assert colour_for_melody("maj", "major", 7, "pop_standard", mi) == "maj"
