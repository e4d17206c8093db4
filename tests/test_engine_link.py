"""The bridge's generate function: DAW clip in beats → engine → parts back in beats."""

import pytest

from bridge.types import Cancelled, Clip, ClipNote, JobContext
from engine.demo import DEMO_TUNE
from engine.errors import BadInputError
from ui.engine_link import generate


@pytest.fixture(autouse=True)
def _authored_library_only(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCOBRIDGE_DATA_DIR", str(tmp_path))


def _clip(ts=(4, 4), tempo=96.0):
    notes, pos = [], 0
    for pitch, length in DEMO_TUNE:
        if pitch:
            notes.append(ClipNote(pitch, pos / 4, length / 4, 90, 1))
        pos += length
    return Clip("osc:test", "demo", pos / 4, tempo, ts[0], ts[1], tuple(notes))


def _context(cancelled=lambda: False):
    steps = []
    return JobContext("r1", "osc:test", lambda p, m: steps.append((p, m)), cancelled), steps


def test_parts_come_back_in_beats_on_their_channels():
    context, steps = _context()
    result = generate(_clip(), {"style": "pop_standard", "density": 1}, context)
    assert set(result.parts) == {"chords", "piano"}
    assert {n.channel for n in result.parts["chords"]} == {2}
    assert {n.channel for n in result.parts["piano"]} == {3}
    clip_end = _clip().length_beats
    assert all(0 <= n.start_beats < clip_end + 1e-9 for p in result.parts.values() for n in p)
    assert result.chords[0].start_beats == 0 and result.chords[0].symbol.startswith("F")
    assert [p for p, _ in steps] == sorted(p for p, _ in steps)
    assert result.summary["key"]["name"] == "F major"


def test_chords_only_skips_the_arranger():
    context, _ = _context()
    result = generate(_clip(), {"parts": ["chords"]}, context)
    assert set(result.parts) == {"chords"}


@pytest.mark.parametrize(("options", "clip", "needle"), [
    ({"colour": "blue"}, _clip(), "unknown option"),
    ({"parts": ["drums"]}, _clip(), "parts"),
    ({"style": "polka"}, _clip(), "polka"),
    ({}, _clip(ts=(7, 8)), "7/8"),
    ({}, _clip(tempo=1000.0), "tempo"),
    ({"key": "H"}, _clip(), "H"),
    ({"tonic_balance": -0.1}, _clip(), "tonic_balance must lie in 0..1"),
    ({"colours": "loud"}, _clip(), "colours must be one of melody, style"),
])
def test_bad_options_and_clips_are_bad_input(options, clip, needle):
    context, _ = _context()
    with pytest.raises(BadInputError, match=needle):
        generate(clip, options, context)


def test_a_cancelled_job_stops():
    context, _ = _context(cancelled=lambda: True)
    with pytest.raises(Cancelled):
        generate(_clip(), {}, context)


@pytest.mark.parametrize("name", ["reharmonizer", "transition"])
def test_learned_part_choice_is_checked(name):
    context, _ = _context()
    with pytest.raises(BadInputError, match=f"{name} must be one of rules, learned"):
        generate(_clip(), {name: "neural"}, context)
    result = generate(_clip(), {name: "learned"}, context)  # authored textures: rules unused
    assert result.parts["piano"]
