"""Melodies whose meter changes (engine/meter_sections.py): read from MIDI and MusicXML,
harmonized and arranged section by section, written back with every time signature."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import mido
import pytest

from engine.chart import arrangement_chart
from engine.demo import melody_from_steps
from engine.edits import choose_alternative, rearrange_phrase, regenerate_phrase
from engine.errors import OptionError, PhraseStringError, UnsupportedMeterError
from engine.meter_sections import split_melody
from engine.midi_io import read_melody, write_song
from engine.pipeline import analyze_melody, arrange, harmonize, require_one_meter
from engine.types import (
    Arrangement,
    ArrangeOptions,
    HarmonizeOptions,
    Melody,
    Meter,
    Note,
)
from ui.cli import main

TPB = 480
TICK = TPB // 4  # ticks per 16th
BARS = 8  # bars of each meter in the test tunes
FOUR_FOUR = [(p, 4) for p in (60, 64, 67, 64, 65, 69, 72, 69, 67, 71, 74, 71, 72, 67, 64, 60)] * 2
SIX_EIGHT = [(p, 6) for p in (67, 64, 65, 62, 64, 60, 62, 55, 67, 64, 65, 62, 64, 67, 60, 60)]


def tune(first: Meter, second: Meter) -> tuple[Melody, int]:
    """BARS bars in `first`, then BARS bars in `second` (C major); and the change's tick."""
    parts = {Meter(4, 4): FOUR_FOUR, Meter(6, 8): SIX_EIGHT}
    melody = melody_from_steps(parts[first] + parts[second], meter=first)
    change = BARS * first.sixteenths_per_bar * TICK
    return replace(melody, meter_changes=((change, second),)), change


def musicxml(path: Path, melody: Melody) -> Path:
    """The melody as score-partwise MusicXML (one measure per bar, quarter = 4 divisions)."""
    steps = ("C", "C", "D", "D", "E", "F", "F", "G", "G", "A", "A", "B")
    alters = (0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0)
    bounds = [(0, melody.meter), *melody.meter_changes]
    measures = []
    for k, (lo, meter) in enumerate(bounds):
        hi = bounds[k + 1][0] if k + 1 < len(bounds) else melody.end_tick
        bar = meter.sixteenths_per_bar * TICK
        for start in range(lo, hi, bar):
            body = []
            if start == lo:
                body.append(f"<attributes><divisions>4</divisions><time><beats>{meter.numerator}"
                            f"</beats><beat-type>{meter.denominator}</beat-type></time>"
                            "</attributes>")
            for n in melody.notes:
                if start <= n.start_tick < start + bar:
                    pc = n.pitch % 12
                    alter = f"<alter>{alters[pc]}</alter>" if alters[pc] else ""
                    body.append(f"<note><pitch><step>{steps[pc]}</step>{alter}<octave>"
                                f"{n.pitch // 12 - 1}</octave></pitch><duration>"
                                f"{n.duration_tick // TICK}</duration></note>")
            measures.append(f"<measure number='{len(measures) + 1}'>{''.join(body)}</measure>")
    path.write_text(
        "<?xml version='1.0'?><score-partwise><part-list><score-part id='P1'><part-name>"
        f"Melody</part-name></score-part></part-list><part id='P1'>{''.join(measures)}"
        "</part></score-partwise>")
    return path


def time_signatures(path: Path) -> list[tuple[int, int, int]]:
    tick, found = 0, []
    for message in mido.MidiFile(path).tracks[0]:
        tick += message.time
        if message.type == "time_signature":
            found.append((tick, message.numerator, message.denominator))
    return found


def check_sections(result: Arrangement, change: int, first: Meter, second: Meter) -> None:
    """Chords and piano on each section's own grid, nothing across the change."""
    harmony = result.harmonization
    analysis = harmony.analysis
    change_16th = change // TICK
    assert [(s.meter, s.start_16th, s.first_bar) for s in analysis.sections] == [
        (first, 0, 0), (second, change_16th, BARS)]
    for ph in harmony.phrases:
        section = analysis.section_of_bar(ph.phrase.start_bar)
        assert analysis.section_of_bar(ph.phrase.end_bar - 1) == section  # no phrase crosses
        lo = analysis.bar_start_16th(ph.phrase.start_bar)
        assert (lo - section.start_16th) % section.meter.sixteenths_per_bar == 0
        assert ph.chosen.chords[0].start_16th == lo  # each phrase opens on its bar line
        for ev in ph.chosen.chords:
            assert (ev.start_16th - section.start_16th) % 2 == 0  # the section's 8th slots
            assert ev.start_16th >= change_16th or ev.end_16th <= change_16th
    starts = {ev.start_16th for ev in harmony.chords}
    assert 0 in starts and change_16th in starts  # both sections harmonized from bar 1
    assert max(ev.end_16th for ev in harmony.chords) == change_16th + BARS * (
        second.sixteenths_per_bar)
    for note in (*harmony.chord_notes, *result.piano_notes):
        assert note.start_tick >= change or note.end_tick <= change
    assert [t.phrase.start_bar for t in result.textures] == [
        ph.phrase.start_bar for ph in harmony.phrases]


@pytest.mark.parametrize(("first", "second"), [(Meter(4, 4), Meter(6, 8)),
                                               (Meter(6, 8), Meter(4, 4))])
@pytest.mark.parametrize("kind", ["mid", "musicxml"])
def test_meter_change_arranges_end_to_end(first, second, kind, tmp_path):
    melody, change = tune(first, second)
    source = tmp_path / f"in.{kind}"
    if kind == "mid":
        write_song(source, melody, [])
    else:
        musicxml(source, melody)
    read = read_melody(source)
    assert (read.meter, read.meter_changes) == (first, ((change, second),))
    result = arrange(read)
    check_sections(result, change, first, second)

    out, chart = tmp_path / "out.mid", tmp_path / "chart.json"
    main(["arrange", str(source), "-o", str(out), "--json", str(chart)])
    song = mido.MidiFile(out)
    assert [t.name for t in song.tracks] == ["Melody", "Chords", "Piano"]
    assert time_signatures(out) == [(0, first.numerator, first.denominator),
                                    (change, second.numerator, second.denominator)]
    doc = json.loads(chart.read_text())
    assert doc["meters"] == [
        {"bar": 1, "meter": first.name, "start_16th": 0},
        {"bar": BARS + 1, "meter": second.name, "start_16th": change // TICK}]
    opening = [p for p in doc["phrases"] if p["start_bar"] == BARS + 1]
    assert opening and opening[0]["meter"] == second.name
    assert (opening[0]["chosen"]["chords"][0]["bar"],
            opening[0]["chosen"]["chords"][0]["beat"]) == (BARS + 1, 1)


def test_chart_counts_bars_and_beats_in_each_meter():
    melody, change = tune(Meter(4, 4), Meter(6, 8))
    chart = arrangement_chart(arrange(melody))
    for phrase in chart["phrases"]:
        beats = 4 if phrase["meter"] == "4/4" else 2  # 6/8: two dotted-quarter beats
        for chord in phrase["chosen"]["chords"]:
            section_start = 0 if phrase["meter"] == "4/4" else change // TICK
            bar16 = 16 if phrase["meter"] == "4/4" else 12
            offset = chord["start_16th"] - section_start
            first_bar = 1 if phrase["meter"] == "4/4" else BARS + 1
            assert chord["bar"] == first_bar + offset // bar16
            assert 1 <= chord["beat"] < beats + 1


def test_one_meter_melodies_have_no_sections():
    melody, _ = tune(Meter(4, 4), Meter(6, 8))
    one = replace(melody, meter_changes=())
    assert analyze_melody(one).sections == ()
    (piece,) = split_melody(one)
    assert (piece.melody.notes, piece.melody.meter, piece.offset_tick) == (one.notes, one.meter, 0)


def test_split_cuts_a_note_held_over_the_change():
    melody = melody_from_steps([(60, 8), (62, 16), (64, 12), (65, 12)])  # 62 holds over 16
    melody = replace(melody, meter_changes=((16 * TICK, Meter(6, 8)),))
    first, second = split_melody(melody)
    assert first.melody.notes[-1] == Note(62, 8 * TICK, 8 * TICK, 90)  # cut at the change
    assert second.offset_tick == 16 * TICK and second.melody.meter == Meter(6, 8)
    assert [n.start_tick for n in second.melody.notes] == [8 * TICK, 20 * TICK]


def test_given_phrases_are_split_at_the_change():
    melody, _ = tune(Meter(4, 4), Meter(6, 8))
    result = harmonize(melody, HarmonizeOptions(phrases="A4A4B8"))
    assert [(p.phrase.label, p.phrase.start_bar, p.phrase.bars) for p in result.phrases] == [
        ("A", 0, 4), ("A", 4, 4), ("B", 8, 8)]
    with pytest.raises(PhraseStringError, match="'A6' crosses the change to 6/8 at bar 9"):
        harmonize(melody, HarmonizeOptions(phrases="A6A6B4"))
    with pytest.raises(PhraseStringError, match="6/8 section from bar 9"):
        harmonize(melody, HarmonizeOptions(phrases="A8B4"))


def test_pickup_follows_from_the_change():
    melody, change = tune(Meter(4, 4), Meter(6, 8))
    shifted = replace(
        melody, notes=tuple(replace(n, start_tick=n.start_tick + 4 * TICK) for n in melody.notes),
        meter_changes=((change + 4 * TICK, Meter(6, 8)),))
    assert analyze_melody(shifted).pickup_16th == 4
    with pytest.raises(OptionError, match="the pickup is 4 sixteenths"):
        analyze_melody(shifted, HarmonizeOptions(pickup_16th=0))


def test_phrase_edits_keep_each_section():
    melody, change = tune(Meter(4, 4), Meter(6, 8))
    options = ArrangeOptions()
    arranged = arrange(melody, options)
    harmony = arranged.harmonization
    last = len(harmony.phrases) - 1
    again = regenerate_phrase(harmony, last, options.harmonize)
    assert again.phrases[:last] == harmony.phrases[:last]
    assert all(ev.start_16th >= change // TICK for ev in again.phrases[last].chosen.chords)
    if harmony.phrases[0].alternatives:
        swapped = choose_alternative(harmony, 0, 0)
        assert swapped.phrases[0].chosen == harmony.phrases[0].alternatives[0]
    other = rearrange_phrase(arranged, last, options)
    assert other.textures[:last] == arranged.textures[:last]
    assert other.textures[last].name != arranged.textures[last].name


def test_unsupported_change_in_musicxml_lists_the_supported_meters(tmp_path):
    melody, change = tune(Meter(4, 4), Meter(6, 8))
    path = musicxml(tmp_path / "in.musicxml", melody)
    path.write_text(path.read_text().replace("<beats>6</beats>", "<beats>7</beats>"))
    with pytest.raises(UnsupportedMeterError, match="7/8 at bar 9 .*9/8, 12/8"):
        read_melody(path)


def test_one_meter_doors_refuse_a_meter_change():
    melody, _ = tune(Meter(4, 4), Meter(6, 8))
    with pytest.raises(UnsupportedMeterError, match="from 4/4 to 6/8 at bar 9"):
        require_one_meter(melody, "the bridge")
    require_one_meter(replace(melody, meter_changes=()), "the bridge")
