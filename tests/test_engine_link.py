"""The bridge's generate function: DAW clip in beats → engine → parts back in beats."""

import pytest

from bridge.types import Cancelled, Clip, ClipNote, JobContext
from engine.demo import DEMO_TUNE
from engine.errors import BadInputError, OptionError
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


def test_the_piano_part_brings_its_sustain_pedal():
    """The arrangement's pedal (CC 64) travels with the piano part, in beats, on its channel."""
    from engine import ArrangeOptions, arrange
    from ui.engine_link import clip_melody

    context, _ = _context()
    result = generate(_clip(), {"density": 1}, context)
    pedal = result.controls["piano"]
    expected = arrange(clip_melody(_clip()), ArrangeOptions.from_json({"density": 1})).pedal
    assert len(pedal) == len(expected) > 0
    assert {(c.controller, c.channel) for c in pedal} == {(64, 3)}
    assert [c.value for c in pedal] == [127 if p.down else 0 for p in expected]
    assert [c.start_beats for c in pedal] == [p.tick / 480 for p in expected]


def test_a_daw_scale_is_a_key_prior_not_an_override():
    from ui.engine_link import clip_melody, key_of_hint

    assert key_of_hint("F# Minor").name == "F# minor"
    assert key_of_hint("D Dorian") is None and key_of_hint("") is None
    hinted = Clip(**{**_clip().__dict__, "key_hint": "D Minor"})
    assert clip_melody(hinted).key_signature.name == "D minor"
    # the demo is plainly F major: a hint of its relative minor does not override that
    result = generate(hinted, {"parts": ["chords"]}, _context()[0])
    assert result.summary["key"]["name"] == "F major"
    assert result.summary["key"]["daw_scale"] == "D Minor"  # shown beside what we heard
    # a melody between C major and A minor: the DAW's scale moves the estimate's confidence
    pitches = [69, 72, 76, 72, 74, 71, 67, 71, 69, 72, 76, 79, 77, 76, 74, 72] * 2
    notes = tuple(ClipNote(p, float(i), 1.0, 90, 1) for i, p in enumerate(pitches))
    confidence = {}
    for hint in ("C Major", None, "A Minor"):
        clip = Clip("osc:test", "between", len(pitches), 100.0, 4, 4, notes, hint)
        key = generate(clip, {"parts": ["chords"]}, _context()[0]).summary["key"]
        confidence[hint] = key["confidence"] if key["name"] == "C major" else -key["confidence"]
    assert confidence["C Major"] > confidence[None] > confidence["A Minor"]


def test_chords_only_skips_the_arranger():
    context, _ = _context()
    result = generate(_clip(), {"parts": ["chords"]}, context)
    assert set(result.parts) == {"chords"} and not result.controls
    assert "textures" not in result.summary


@pytest.mark.parametrize(("options", "clip", "needle"), [
    ({"colour": "blue"}, _clip(), "unknown option"),
    ({"parts": ["drums"]}, _clip(), "parts"),
    ({"style": "polka"}, _clip(), "polka"),
    ({}, _clip(ts=(7, 8)), "7/8"),
    ({}, _clip(tempo=1000.0), "tempo"),
    ({"key": "H"}, _clip(), "H"),
    ({"tonic_balance": -0.1}, _clip(), "tonic_balance must be a number 0..1"),
    ({"colours": "loud"}, _clip(), "colours must be one of melody, style"),
    # what the OSC API used to accept silently or answer with an engine error (issue 12)
    ({"alpha": float("nan")}, _clip(), "alpha must be a number 0..1"),
    ({"beta": float("inf")}, _clip(), "beta must be a number 0..1"),
    ({"variant": "x"}, _clip(), "variant must be one of ours, paper, release"),
    ({"library": "../../../etc"}, _clip(), "library must be one of default, pop909"),
    ({"parts": 7}, _clip(), "parts must be a non-empty list"),
    ({"density": 1e999}, _clip(), "density must be a whole number 0..4"),
    ({"density": True}, _clip(), "density must be a whole number 0..4"),
    ({"key": "C", "mode": 5}, _clip(), "mode must be one of major, minor"),
    ({"mode": "minor"}, _clip(), "mode needs option key"),
    ({"phrase_styles": [[[[]]]]}, _clip(), "phrase_styles must be one of"),
    ({"seed": "7"}, _clip(), "seed must be a whole number"),
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
    with pytest.raises(OptionError, match=f"{name} must be one of rules, learned"):
        generate(_clip(), {name: "neural"}, context)
    result = generate(_clip(), {name: "learned"}, context)  # authored textures: rules unused
    assert result.parts["piano"]


@pytest.fixture
def real_bridge(tmp_path):
    """Our OSC server on loopback UDP with a real session running the one generate path."""
    from bridge.server import BridgeServer
    from bridge.session import Session
    from bridge.store import ClipStore

    session = Session(generate, ClipStore(tmp_path / "sessions"))
    try:
        with BridgeServer(session, port=0) as bridge:
            yield bridge
    finally:
        session.close(5.0)


@pytest.mark.parametrize(("options", "needle"), [
    ({"parts": 7}, "parts must be a non-empty list"),
    ({"density": 1e300}, "density must be a whole number 0..4"),
    ({"key": "C", "mode": 5}, "mode must be one of major, minor"),
    ({"variant": "x"}, "variant must be one of ours, paper, release"),
    ({"library": "../../../etc"}, "library must be one of default, pop909"),
    ({"reharmonizer": "learned", "transition": "neural"}, "transition must be one of"),
])
def test_over_osc_a_bad_option_is_error_1_and_the_server_keeps_working(real_bridge, options,
                                                                        needle):
    from bridge.client import send_clip_and_wait
    from bridge.errors import BridgeError, ErrorCode

    with pytest.raises(BridgeError, match=needle) as caught:
        send_clip_and_wait("127.0.0.1", real_bridge.port, _clip(), options, 30.0)
    assert caught.value.code == ErrorCode.BAD_INPUT
    result = send_clip_and_wait("127.0.0.1", real_bridge.port, _clip(), {"parts": ["chords"]},
                                30.0)
    assert result.parts["chords"]


def test_serve_defaults_apply_to_daw_clips_and_what_the_daw_sends_wins():
    from ui.engine_link import with_defaults

    generate_dark = with_defaults({"style": "dark", "parts": ["chords"], "key": "D",
                                   "mode": "minor"})
    result = generate_dark(_clip(), {}, _context()[0])
    assert set(result.parts) == {"chords"} and result.summary["key"]["name"] == "D minor"
    own = generate_dark(_clip(), {"key": "F", "mode": "major", "parts": ["chords", "piano"]},
                        _context()[0])
    assert set(own.parts) == {"chords", "piano"} and own.summary["key"]["name"] == "F major"
    with pytest.raises(OptionError, match="density must be a whole number 0..4"):
        with_defaults({"density": 9})
