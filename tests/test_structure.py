"""Musical structure in the search (engine/harmonizer/structure.py, colour.py): small tunes
where a musician's answer is clear, harmonized end to end with the shipped template library."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from engine import pipeline
from engine.chords import triad_of
from engine.harmonizer.colour import colours_for_melody
from engine.harmonizer.structure import (
    PhraseEdges,
    phrase_edges,
    repeated_bars,
    structure_bonus,
)
from engine.types import (
    ChordEvent,
    HarmonizeOptions,
    Key,
    Melody,
    Meter,
    ModelChoice,
    Note,
    Phrase,
)

TPB = 480
Q = TPB  # a quarter note in ticks


def tune(bars: Sequence[Sequence[tuple[int, float]]], meter: Meter = Meter(4, 4)) -> Melody:
    """Bars of (MIDI pitch, quarters) notes laid end to end from tick 0."""
    notes, tick = [], 0
    for bar in bars:
        for pitch, quarters in bar:
            notes.append(Note(pitch, tick, int(quarters * Q)))
            tick += int(quarters * Q)
    return Melody(tuple(notes), TPB, meter)


def chord_at(events: Sequence[ChordEvent], step: int) -> ChordEvent:
    return next(ev for ev in events if ev.start_16th <= step < ev.end_16th)


# An 8-bar C-major tune: the first half ends open on D (a half close), the second on C after
# B–D in bar 7 (the melody asks for V–I).
C_TUNE: list[list[tuple[int, float]]] = [
    [(72, 1), (76, 1), (79, 1), (76, 1)], [(77, 1), (76, 1), (74, 2)],
    [(72, 1), (76, 1), (79, 1), (81, 1)], [(79, 2), (74, 2)],
    [(72, 1), (76, 1), (79, 1), (76, 1)], [(77, 1), (76, 1), (74, 1), (72, 1)],
    [(71, 1), (74, 1), (79, 1), (74, 1)], [(72, 4)],
]


def test_a_tune_ending_on_the_tonic_gets_an_authentic_cadence() -> None:
    result = pipeline.harmonize(tune(C_TUNE), HarmonizeOptions(key=Key(0, "major")))
    events = result.chords
    last = events[-1]
    assert (last.chord.root_pc, triad_of(last.chord.quality)) == (0, "maj")
    assert last.start_16th <= 7 * 16  # the tonic holds the whole last bar
    before = chord_at(events, last.start_16th - 1)
    assert before.chord.root_pc in (7, 5)  # V (or IV) before it
    # and it opens on I: the melody opens on the tonic triad
    assert chord_at(events, 0).chord.root_pc == 0


@pytest.mark.parametrize("scorer", ["rules", "learned"])
def test_a_tune_ending_in_a_run_back_to_the_repeat_closes_on_the_tonic(
    scorer: ModelChoice,
) -> None:
    # bar 8 runs up from ti and lands on do at the half bar, then leads on to fa (the pickup
    # back to the top): the cadence is heard on that strong-beat do, not on the last note
    run = [(pitch, 0.5) for pitch in (71, 67, 69, 71, 72, 74, 76, 77)]
    bars: list[list[tuple[int, float]]] = [
        *C_TUNE[:6], [(74, 1), (79, 1), (77, 1), (74, 1)], run]
    edges = phrase_edges(
        np.array([-1] * 16 * 7 + [11] * 2 + [7] * 2 + [9] * 2 + [11] * 2 + [0] * 2 + [2] * 2
                 + [4] * 2 + [5] * 2), (Phrase("A", 0, 8),), 16, "major", beat_16th=4)
    assert edges[0].last_pc == 0
    result = pipeline.harmonize(tune(bars), HarmonizeOptions(key=Key(0, "major"), scorer=scorer))
    last = result.chords[-1]
    assert (last.chord.root_pc, triad_of(last.chord.quality)) == (0, "maj")
    assert chord_at(result.chords, last.start_16th - 1).chord.root_pc == 7  # V–I
    # a tune that stops on re keeps re as its last note (it ends open, on V)
    edges = phrase_edges(np.array([0] * 12 + [2] * 4), (Phrase("A", 0, 1),), 16, "major",
                         beat_16th=4)
    assert edges[0].last_pc == 2


def test_the_paper_variant_alone_need_not_end_on_the_tonic_but_ours_always_does() -> None:
    # the same tune transposed to every key: ours ends on I each time
    for shift in range(0, 12, 5):
        bars = [[(p + shift - 12 * (shift > 6), d) for p, d in bar] for bar in C_TUNE]
        result = pipeline.harmonize(tune(bars), HarmonizeOptions(key=Key(shift, "major")))
        assert result.chords[-1].chord.root_pc == shift


def test_a_repeated_phrase_is_harmonized_alike() -> None:
    a = C_TUNE[:4]
    b = [[(77, 2), (81, 2)], [(79, 2), (76, 2)], [(77, 1), (74, 1), (71, 2)], [(74, 4)]]
    melody = tune(a + b + a + C_TUNE[4:])
    result = pipeline.harmonize(melody, HarmonizeOptions(key=Key(0, "major"),
                                                         phrases="A4B4A4C4"))
    first, third = result.phrases[0].chosen.chords, result.phrases[2].chosen.chords
    roots = [[chord_at(p, s).chord.root_pc for s in range(start, start + 64, 2)]
             for p, start in ((first, 0), (third, 128))]
    assert roots[0] == roots[1]


def test_a_minor_tune_singing_the_leading_tone_gets_the_major_dominant() -> None:
    # A minor; bars 2 and 6 sing a long G♯ on the downbeat, bar 8 ends on A
    bars = [
        [(69, 1), (72, 1), (76, 1), (72, 1)], [(68, 2), (71, 2)],
        [(69, 1), (72, 1), (76, 2)], [(74, 2), (71, 2)],
        [(69, 1), (72, 1), (76, 1), (72, 1)], [(68, 2), (71, 2)],
        [(74, 1), (72, 1), (71, 1), (68, 1)], [(69, 4)],
    ]
    result = pipeline.harmonize(tune(bars), HarmonizeOptions(key=Key(9, "minor")))
    for bar in (1, 5):
        chord = chord_at(result.chords, bar * 16).chord
        assert chord.root_pc == 4 and triad_of(chord.quality) == "maj", chord  # E, not Em/Am
    last = result.chords[-1].chord
    assert (last.root_pc, triad_of(last.quality)) == (9, "min")


def test_no_sus_chord_ends_a_phrase_or_sits_over_its_own_third() -> None:
    heard = np.zeros((3, 12))  # melody 16ths per pitch class above the tonic (C major)
    heard[0, 0] = 4  # C over G, the 4th above the root only: a sus4 colour fits …
    heard[1, [0, 11]] = 4  # … but not when the melody also sings the third (B)
    heard[2, 0] = 4  # … nor at a cadence
    got = colours_for_melody([("maj", 7)] * 3, "major", "pop_standard", heard,
                             cadence=[False, False, True])
    assert got == ["sus4", "maj", "maj"]
    # a template's own sus chord under a sung third becomes that third's triad
    third = np.zeros((1, 12))
    third[0, 3] = 4
    assert colours_for_melody([("sus4", 2)], "major", "pop_standard", third) == ["min"]


def test_sus_chords_stand_on_their_root() -> None:
    result = pipeline.harmonize(tune(C_TUNE), HarmonizeOptions(key=Key(0, "major"),
                                                               style="pop_complex"))
    for event in result.chords:
        if triad_of(event.chord.quality) in ("sus2", "sus4"):
            assert event.chord.bass_pc == event.chord.root_pc


def test_cadence_terms_reward_only_what_the_melody_asks() -> None:
    spb = 8
    rows = np.array([
        [6 * 7] * 8 + [0] * 8,  # V | I
        [0] * 8 + [6 * 5] * 8,  # I | IV
        [6 * 7] * 12 + [0] * 4,  # V … I only on beat 3 of the last bar
    ])
    ending = structure_bonus(rows, PhraseEdges(0, True, False), "major", spb)
    assert ending[0] > ending[2] > ending[1] == 0.0
    # the melody ends on F (not a tonic-chord tone): no tune-end reward
    assert not structure_bonus(rows, PhraseEdges(5, True, False), "major", spb).any()
    # an inner phrase ending on D: V holds it, I does not
    inner = structure_bonus(np.array([[0] * 8 + [6 * 7] * 8, [6 * 7] * 8 + [0] * 8]),
                            PhraseEdges(2, False, False), "major", spb)
    assert inner[0] > 0 and inner[1] == 0


def test_phrase_edges_and_repeated_bars_read_the_melody() -> None:
    relative = np.array([0] * 8 + [4] * 8 + [2] * 16 + [0] * 8 + [4] * 8 + [7] * 16)
    edges = phrase_edges(relative, (Phrase("A", 0, 2), Phrase("A", 2, 2)), 16, "major")
    assert edges[0] == PhraseEdges(2, False, True)
    assert edges[1] == PhraseEdges(7, True, False)
    # bar 3 repeats bar 1; bars 2 and 4 hold one note each (too little to count)
    assert repeated_bars(relative, 16, 4).tolist() == [0, 1, 0, 3]


@pytest.mark.parametrize("structure", [True, False])
def test_structure_terms_belong_to_ours_and_can_be_switched_off(structure: bool) -> None:
    melody = tune(C_TUNE)
    options = HarmonizeOptions(key=Key(0, "major"), musical_structure=structure)
    paper = pipeline.harmonize(melody, HarmonizeOptions(key=Key(0, "major"), variant="paper",
                                                        musical_structure=structure))
    assert pipeline.harmonize(melody, options).chords  # runs either way
    # the paper's variant never reads the switch
    other = pipeline.harmonize(melody, HarmonizeOptions(key=Key(0, "major"), variant="paper",
                                                        musical_structure=not structure))
    assert paper.chords == other.chords


def test_the_learned_scorer_keeps_the_cadence_and_is_deterministic() -> None:
    from engine.models.chord_model import WEIGHTS_PATH

    if not WEIGHTS_PATH.is_file():
        pytest.skip(f"learned chord model weights not shipped ({WEIGHTS_PATH.name})")
    options = HarmonizeOptions(key=Key(0, "major"), scorer="learned")
    first = pipeline.harmonize(tune(C_TUNE), options)
    again = pipeline.harmonize(tune(C_TUNE), options)
    assert first.chords == again.chords and first.score == again.score
    assert first.chords[-1].chord.root_pc == 0
    rules = pipeline.harmonize(tune(C_TUNE), HarmonizeOptions(key=Key(0, "major"),
                                                              scorer="rules"))
    assert first.score != rules.score  # the learned term is really in the score
