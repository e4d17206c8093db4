"""engine.analysis: key estimation and key names, pickup and first downbeat, phrase detection and
phrase strings. Melodies are built in code; one corpus check reads the shared Nottingham data."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pytest

from engine.analysis import analyze
from engine.analysis.key import (
    RELATIVE_BONUS,
    SIGNATURE_BONUS,
    estimate_key,
    key_scores,
    parse_key,
)
from engine.analysis.meter_grid import detect_pickup, first_downbeat
from engine.analysis.phrases import parse_phrase_string, segment_phrases, total_bars
from engine.errors import OptionError, PhraseStringError
from engine.library.datasets import shared_data_dir
from engine.types import Key, Melody, Meter, Note

TPB = 480
REST = 0
Steps = Sequence[tuple[int, int]]  # (pitch or REST, length in 16ths)


def melody(
    steps: Steps,
    meter: tuple[int, int] = (4, 4),
    key_signature: Key | None = None,
    start_16th: int = 0,
) -> Melody:
    """A Melody from (pitch, 16ths) pairs laid end to end from `start_16th`; pitch 0 = rest."""
    notes = []
    position = start_16th
    for pitch, length in steps:
        if pitch != REST:
            notes.append(Note(pitch, position * TPB // 4, length * TPB // 4))
        position += length
    return Melody(tuple(notes), TPB, Meter(*meter), key_signature=key_signature)


def in_key(tonic: int, semitones: Sequence[int | None], lengths: Sequence[int]) -> list[
    tuple[int, int]
]:
    """Steps from semitone offsets above `tonic` (octave 5); None = rest."""
    return [
        (REST if s is None else 60 + tonic + s, length)
        for s, length in zip(semitones, lengths, strict=True)
    ]


# --------------------------------------------------------------------------------------- key

# Ode to Joy (public domain), as semitones above a major tonic.
ODE = [4, 4, 5, 7, 7, 5, 4, 2, 0, 0, 2, 4, 4, 2, 2,
       4, 4, 5, 7, 7, 5, 4, 2, 0, 0, 2, 4, 2, 0, 0]
ODE_LENGTHS = [4] * 12 + [6, 2, 8] + [4] * 12 + [6, 2, 8]
# A harmonic-minor tune: arpeggio, descent with the leading tone, cadence on the tonic.
MINOR_TUNE = [0, 3, 7, 3, 5, 2, -1, -5, 0, 3, 7, 8, 7, 5, 3, 2, -1, 2, -1, 0]
MINOR_LENGTHS = [4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 8, 8]
MAJOR_SCALE = [0, 2, 4, 5, 7, 9, 11, 12, 11, 9, 7, 5, 4, 2, 0]
MINOR_SCALE = [0, 2, 3, 5, 7, 8, 11, 12, 11, 8, 7, 5, 3, 2, 0]
MAJOR_ARPEGGIO = [0, 4, 7, 12, 7, 4, 7, 11, 14, 17, 14, 11, 12, 7, 4, 0]
MINOR_ARPEGGIO = [0, 3, 7, 12, 7, 3, 7, 11, 14, 17, 14, 11, 12, 7, 3, 0]

MATERIAL = {
    "major": {
        "tune": (ODE, ODE_LENGTHS),
        "scale": (MAJOR_SCALE, [2] * 14 + [8]),
        "arpeggio": (MAJOR_ARPEGGIO, [2] * 15 + [8]),
    },
    "minor": {
        "tune": (MINOR_TUNE, MINOR_LENGTHS),
        "scale": (MINOR_SCALE, [2] * 14 + [8]),
        "arpeggio": (MINOR_ARPEGGIO, [2] * 15 + [8]),
    },
}


@pytest.mark.parametrize("tonic", [0, 2, 3, 5, 7, 9, 10, 4, 6])
@pytest.mark.parametrize("mode", ["major", "minor"])
@pytest.mark.parametrize("kind", ["tune", "scale", "arpeggio"])
def test_estimate_key_scales_arpeggios_tunes(tonic: int, mode: str, kind: str) -> None:
    semitones, lengths = MATERIAL[mode][kind]
    key, confidence = estimate_key(melody(in_key(tonic, semitones, lengths)))
    assert key == Key(tonic, mode)  # type: ignore[arg-type]
    assert 0.0 <= confidence <= 1.0


# Only E and C: C major and A minor explain it about equally well.
AMBIGUOUS = [(64, 4), (64, 4), (64, 4), (72, 4)] * 2 + [(72, 8)]


def test_key_signature_prior_breaks_a_relative_tie() -> None:
    scores = key_scores(melody(AMBIGUOUS))
    c_major, a_minor = scores[0], scores[12 + 9]
    assert set(np.argsort(scores)[-2:]) == {0, 21}  # the two relatives lead
    assert abs(c_major - a_minor) < SIGNATURE_BONUS - RELATIVE_BONUS  # a tie the prior decides
    assert estimate_key(melody(AMBIGUOUS, key_signature=Key(0, "major")))[0] == Key(0, "major")
    assert estimate_key(melody(AMBIGUOUS, key_signature=Key(9, "minor")))[0] == Key(9, "minor")


def test_confidence_is_higher_for_a_clear_tune() -> None:
    _, clear = estimate_key(melody(in_key(0, ODE, ODE_LENGTHS)))
    _, ambiguous = estimate_key(melody(AMBIGUOUS))
    assert clear > ambiguous
    assert ambiguous < 0.5


@pytest.mark.parametrize(
    ("text", "mode", "expected"),
    [
        ("C", None, Key(0, "major")),
        ("c#", None, Key(1, "major")),
        ("Db", "minor", Key(1, "minor")),
        ("ebm", None, Key(3, "minor")),
        ("F# minor", None, Key(6, "minor")),
        ("Bbmaj", None, Key(10, "major")),
        ("bb", None, Key(10, "major")),
        ("B", "MIN", Key(11, "minor")),
        ("A:min", None, Key(9, "minor")),
        ("Gmin", None, Key(7, "minor")),
        ("e", "major", Key(4, "major")),
        ("Cb", None, Key(11, "major")),
        (" G# m ", None, Key(8, "minor")),
    ],
)
def test_parse_key_variants(text: str, mode: str | None, expected: Key) -> None:
    assert parse_key(text, mode) == expected


@pytest.mark.parametrize("text", ["H", "Cx", "", "C##", "Amoll", "7"])
def test_parse_key_rejects_bad_names_listing_valid_ones(text: str) -> None:
    with pytest.raises(OptionError, match="C#, Db") as info:
        parse_key(text, None)
    assert repr(text) in str(info.value)


def test_parse_key_mode_errors() -> None:
    with pytest.raises(OptionError, match="minor but the mode given is major"):
        parse_key("Am", "major")
    with pytest.raises(OptionError, match="unknown mode 'dorian'"):
        parse_key("D", "dorian")


# ------------------------------------------------------------------------------ bar grid

WALTZ_BAR = [(67, 8), (64, 4)]
MARCH_BAR = [(67, 8), (64, 4), (65, 4)]
# Two 6/8 bars: one bar alone fits its half-bar shift equally well; the held bar does not.
JIG_BAR = [(67, 4), (65, 2), (64, 2), (65, 2), (67, 2), (72, 12)]


def tune_bars(bar: Steps, count: int, pitches: Sequence[int]) -> list[tuple[int, int]]:
    """`count` bars with `bar`'s rhythm, each bar's first note replaced by the next pitch."""
    steps: list[tuple[int, int]] = []
    for i in range(count):
        first, *rest = bar
        steps += [(pitches[i % len(pitches)], first[1]), *rest]
    return steps


@pytest.mark.parametrize(
    ("steps", "meter"),
    [
        (in_key(0, ODE, ODE_LENGTHS), (4, 4)),
        (in_key(9, MINOR_TUNE, MINOR_LENGTHS), (4, 4)),
        (tune_bars(WALTZ_BAR, 8, [72, 71, 69, 67]), (3, 4)),
        (tune_bars(JIG_BAR, 8, [72, 71, 69, 67]), (6, 8)),
        (tune_bars(MARCH_BAR, 8, [72, 71, 69, 67]), (2, 2)),
    ],
)
def test_bar_aligned_melodies_have_no_pickup(steps: Steps, meter: tuple[int, int]) -> None:
    assert detect_pickup(melody(steps, meter)) == 0


@pytest.mark.parametrize(
    ("upbeat", "bar", "meter", "expected"),
    [
        ([(60, 2), (62, 2)], MARCH_BAR, (4, 4), 4),  # two 8ths before the first downbeat
        ([(60, 4)], WALTZ_BAR, (3, 4), 4),  # one quarter
        ([(60, 2)], JIG_BAR, (6, 8), 2),  # one 8th
        ([(60, 4), (62, 4), (64, 4)], MARCH_BAR, (4, 4), 12),  # three beats
    ],
)
def test_unaligned_anacrusis_is_found(
    upbeat: Steps, bar: Steps, meter: tuple[int, int], expected: int
) -> None:
    tune = melody([*upbeat, *tune_bars(bar, 8, [72, 71, 69, 67])], meter)
    assert detect_pickup(tune) == expected


def test_silence_before_an_upbeat_means_the_clip_is_bar_aligned() -> None:
    # the same march with its two-8th upbeat, once trimmed to the first note, once padded
    bars = tune_bars(MARCH_BAR, 8, [72, 71, 69, 67])
    assert detect_pickup(melody([(60, 2), (62, 2), *bars])) == 4
    padded = melody([(REST, 12), (60, 2), (62, 2), *bars])
    assert detect_pickup(padded) == 0
    assert first_downbeat(padded, 0) == 16


def test_first_downbeat_rules() -> None:
    bar_of_quarters = [(60, 4), (62, 4), (64, 4), (65, 4)] * 2
    # onset on the downbeat
    assert first_downbeat(melody(bar_of_quarters), 0) == 0
    # two leading empty bars are skipped
    assert first_downbeat(melody(bar_of_quarters, start_16th=32), 0) == 32
    # an upbeat figure on beat 4 belongs to the next bar
    assert first_downbeat(melody([(REST, 12), (55, 2), (57, 2), *bar_of_quarters]), 0) == 16
    # a first note on beat 2 keeps its own bar
    assert first_downbeat(melody([(REST, 4), *bar_of_quarters]), 0) == 0
    # the partial bar the file starts with is always an upbeat (phrases start at P)
    assert first_downbeat(melody(bar_of_quarters), 12) == 12
    # notes only in the second half of the one bar they fill: no later bar to move to
    assert first_downbeat(melody([(REST, 8), (60, 2), (62, 2), (64, 2), (65, 2)]), 0) == 0
    # 3/4: a note on beat 3 is an upbeat
    assert first_downbeat(melody([(REST, 8), (60, 4), *WALTZ_BAR * 4], (3, 4)), 0) == 12


# ---------------------------------------------------------------------------------- phrases


def phrase_a(bar_rhythm: Sequence[int], bar_16th: int) -> list[tuple[int, int]]:
    """An 8-bar C-major phrase: running notes, a softer mid-point, a long tonic then a rest."""
    return _phrase([72, 76, 74, 79, 77, 76, 74], 60, bar_rhythm, bar_16th)


def phrase_b(bar_rhythm: Sequence[int], bar_16th: int) -> list[tuple[int, int]]:
    """A contrasting 8-bar phrase ending on the fifth."""
    return _phrase([65, 69, 71, 74, 72, 71, 69], 67, bar_rhythm, bar_16th)


def _phrase(
    tops: Sequence[int], final: int, bar_rhythm: Sequence[int], bar_16th: int
) -> list[tuple[int, int]]:
    steps: list[tuple[int, int]] = []
    for top in tops:
        contour = [top, top - 3, top - 5, top - 1, top - 2, top - 4]
        steps += [(contour[j % len(contour)], length) for j, length in enumerate(bar_rhythm)]
    steps += [(final, bar_16th - 4), (REST, 4)]
    return steps


RHYTHMS = {
    (4, 4): [4, 2, 2, 4, 4],
    (3, 4): [4, 2, 2, 4],
    (6, 8): [4, 2, 2, 2, 2],
    (2, 4): [2, 2, 4],
}


@pytest.mark.parametrize("meter", [(4, 4), (3, 4), (6, 8), (2, 4)])
def test_segmentation_recovers_aaba(meter: tuple[int, int]) -> None:
    bar_16th = Meter(*meter).sixteenths_per_bar
    a, b = phrase_a(RHYTHMS[meter], bar_16th), phrase_b(RHYTHMS[meter], bar_16th)
    tune = melody(a + a + b + a, meter)
    phrases = segment_phrases(tune, 0, Key(0, "major"))
    assert "".join(f"{p.label}{p.bars}" for p in phrases) == "A8A8B8A8"
    assert [p.start_bar for p in phrases] == [0, 8, 16, 24]


def test_segmentation_repeats_get_the_same_letter_through_analyze() -> None:
    a, b = phrase_a(RHYTHMS[(4, 4)], 16), phrase_b(RHYTHMS[(4, 4)], 16)
    analysis = analyze(melody(a + b + a + b))
    assert analysis.phrase_string == "A8B8A8B8"
    assert analysis.key == Key(0, "major")


@pytest.mark.parametrize(("bars", "allowed"), [
    (6, [[6], [4, 2], [2, 4]]),
    (10, [[8, 2], [2, 8], [4, 6], [6, 4]]),
    (12, [[8, 4], [4, 8], [12], [4, 4, 4]]),
])
def test_uneven_totals_use_the_secondary_lengths(bars: int, allowed: list[list[int]]) -> None:
    steps = [(60 + (i * 5) % 12, 4) for i in range(4 * bars - 2)] + [(60, 8)]
    phrases = segment_phrases(melody(steps), 0, Key(0, "major"))
    assert [p.bars for p in phrases] in allowed


def test_last_note_on_a_bar_line_adds_no_phantom_bar() -> None:
    exact = melody([(60, 16)] * 8)
    assert total_bars(exact, 0) == 8
    assert sum(p.bars for p in segment_phrases(exact, 0, Key(0, "major"))) == 8
    held_over = melody([(60, 16)] * 7 + [(60, 17)])
    assert total_bars(held_over, 0) == 9


def test_parse_phrase_string_ok() -> None:
    phrases = parse_phrase_string("A8A8B8B8", 32)
    assert [(p.label, p.start_bar, p.bars) for p in phrases] == [
        ("A", 0, 8), ("A", 8, 8), ("B", 16, 8), ("B", 24, 8),
    ]
    assert [p.label for p in parse_phrase_string("i4 A8 b4", 16)] == ["i", "A", "b"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("A8X", "'X'"),
        ("8A8", "'8'"),
        ("A8-B8", "'-B8'"),
        ("A0", "1-64"),
        ("A65", "65 bars"),
        ("", "empty"),
    ],
)
def test_parse_phrase_string_syntax_errors(text: str, fragment: str) -> None:
    with pytest.raises(PhraseStringError, match=fragment):
        parse_phrase_string(text, 8)


def test_parse_phrase_string_states_both_bar_counts() -> None:
    with pytest.raises(PhraseStringError) as info:
        parse_phrase_string("A8A8B8", 32)
    assert str(info.value) == (
        "phrases cover 24 bars but the melody has 32 bars (from the first downbeat)"
    )
    with pytest.raises(PhraseStringError, match="cover 40 bars but the melody has 32"):
        parse_phrase_string("A8A8B8B8A8", 32)


def test_shorter_phrase_string_only_over_empty_bars() -> None:
    assert sum(p.bars for p in parse_phrase_string("A8", 9, last_onset_bar=7)) == 8
    with pytest.raises(PhraseStringError, match="cover 8 bars but the melody has 9"):
        parse_phrase_string("A8", 9, last_onset_bar=8)
    # through analyze: the 9th bar holds only the tail of the last note
    held_over = melody([(60, 4), (62, 4), (64, 4), (65, 4)] * 7 + [(67, 17)])
    assert analyze(held_over, phrases="A8").total_bars == 8
    with pytest.raises(PhraseStringError):
        analyze(held_over, phrases="A4")


# --------------------------------------------------------------------------------- analyze


def test_user_values_win() -> None:
    tune = melody(in_key(0, ODE, ODE_LENGTHS))
    analysis = analyze(tune, key=Key(9, "minor"), phrases="A4A4", pickup_16th=0)
    assert analysis.key == Key(9, "minor") and analysis.key_confidence == 1.0
    assert (analysis.key_source, analysis.phrase_source) == ("user", "user")
    assert analysis.phrase_string == "A4A4"
    detected = analyze(tune)
    assert (detected.key_source, detected.phrase_source) == ("detected", "detected")
    assert detected.key == Key(0, "major")


@pytest.mark.parametrize(("pickup", "meter", "bar"), [(16, (4, 4), 16), (-1, (4, 4), 16),
                                                      (12, (3, 4), 12), (12, (6, 8), 12)])
def test_pickup_out_of_range_states_the_bar_length(
    pickup: int, meter: tuple[int, int], bar: int
) -> None:
    tune = melody(tune_bars(WALTZ_BAR, 8, [72, 71, 69, 67]), meter)
    with pytest.raises(OptionError, match=f"bar is {bar} sixteenths") as info:
        analyze(tune, pickup_16th=pickup)
    assert f"got {pickup}" in str(info.value)


def test_user_pickup_moves_the_grid() -> None:
    tune = melody([(60, 4), *tune_bars(MARCH_BAR, 8, [72, 71, 69, 67])])
    analysis = analyze(tune, pickup_16th=4)
    assert (analysis.pickup_16th, analysis.downbeat_16th, analysis.total_bars) == (4, 4, 8)


# ------------------------------------------------------------------------------ corpus check


def _final_chord_key(path: object, signature: Key) -> Key | None:
    """The tune's key from its chord file: the signature's major key, or its relative minor
    when the last chord is that minor triad (the MIDI files mark every signature as major);
    None for modal endings."""
    import mido

    ticks: list[tuple[int, int]] = []
    for track in mido.MidiFile(str(path)).tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.velocity > 0:
                ticks.append((tick, message.note % 12))
    if not ticks:
        return None
    last = max(t for t, _ in ticks)
    final = {pc for t, pc in ticks if t == last}
    major, minor = signature.tonic_pc, (signature.tonic_pc + 9) % 12
    if final == {major, (major + 4) % 12, (major + 7) % 12}:
        return Key(major, "major")
    if final == {minor, (minor + 3) % 12, (minor + 7) % 12}:
        return Key(minor, "minor")
    return None


def test_key_accuracy_on_nottingham_tunes() -> None:
    data = shared_data_dir()
    if data is None or not (data / "nottingham" / "melody").is_dir():
        pytest.skip("shared corpora not found (set ACCOBRIDGE_SHARED_DATA to run)")
    from engine.errors import BadInputError
    from engine.midi_io import read_melody

    files = sorted((data / "nottingham" / "melody").glob("*.mid"))
    cases: list[tuple[Melody, Key]] = []
    for path in files[:: max(1, len(files) // 60)]:
        try:
            tune = read_melody(path)
        except BadInputError:
            continue  # meters the engine does not support
        chords = data / "nottingham" / "chords" / path.name
        if tune.key_signature is None or not chords.exists():
            continue
        truth = _final_chord_key(chords, tune.key_signature)
        if truth is not None:
            cases.append((dataclasses.replace(tune, key_signature=None), truth))
        if len(cases) == 30:
            break
    assert len(cases) == 30
    accuracy = sum(estimate_key(tune)[0] == truth for tune, truth in cases) / len(cases)
    print(f"key accuracy on {len(cases)} Nottingham tunes: {accuracy:.2f}")
    assert accuracy >= 0.7
