"""Arranging with POP909 donors end to end: a small library imported from ../shared/data into a
temporary user data dir, then `accobridge arrange --library pop909`."""

import json

import mido
import numpy as np
import pytest

from engine.demo import DEMO_TUNE, melody_from_steps
from engine.library.datasets import shared_data_dir
from engine.metrics.accompaniment import chord_tone_ratio
from engine.midi_io import write_song
from ui.cli import main

DATA = shared_data_dir()
pytestmark = pytest.mark.skipif(
    DATA is None, reason="POP909 is not available (../shared/data or $ACCOBRIDGE_SHARED_DATA)"
)


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
    from engine.build.pop909_import import import_pop909

    folder = tmp_path_factory.mktemp("userdata")
    assert DATA is not None
    import_pop909(DATA / "pop909", out_path=folder / "pop909_donors.npz", limit=40)
    return folder


@pytest.fixture
def demo_mid(tmp_path, monkeypatch, user_dir):
    monkeypatch.setenv("ACCOBRIDGE_DATA_DIR", str(user_dir))
    path = tmp_path / "demo_in.mid"
    write_song(path, melody_from_steps(DEMO_TUNE * 2), [])
    return path


def _piano(path):
    tick, on, notes = 0, {}, []
    for msg in mido.MidiFile(path).tracks[2]:
        tick += msg.time
        if msg.type == "note_on" and msg.velocity:
            on[msg.note] = tick
        elif msg.type in ("note_on", "note_off") and msg.note in on:
            notes.append((on.pop(msg.note), tick, msg.note))
    return notes


def test_donor_arrangement_follows_the_chords_and_the_rules(demo_mid, tmp_path):
    out, chart = tmp_path / "o.mid", tmp_path / "c.json"
    main(["arrange", str(demo_mid), "-o", str(out), "--json", str(chart)])  # auto → pop909
    doc = json.loads(chart.read_text())
    textures = [p["texture"] for p in doc["phrases"]]
    assert all(t["library"] == "pop909" for t in textures)
    # no donor follows itself or an earlier phrase of its own song, unless a label repeats
    labels = [p["label"] for p in doc["phrases"]]
    for (la, ta), (lb, tb) in zip(zip(labels, textures, strict=True),
                                  zip(labels[1:], textures[1:], strict=True), strict=False):
        song_a, idx_a = ta["name"].split(":")
        song_b, idx_b = tb["name"].split(":")
        if song_a == song_b and la != lb:
            assert int(idx_b) > int(idx_a)
    notes = _piano(out)
    assert notes
    events = [c for p in doc["phrases"] for c in p["chosen"]["chords"]]
    length = max(c["start_16th"] + c["duration_16th"] for c in events)
    target = np.zeros((length, 12), dtype=bool)
    from engine.chords import chord_pitch_classes

    for c in events:
        pcs = sorted(chord_pitch_classes(c["root"], c["quality"]))
        target[c["start_16th"]: c["start_16th"] + c["duration_16th"], pcs] = True
    rows = np.array([[s // 120, p, max(1, (e - s) // 120), 80] for s, e, p in notes])
    assert chord_tone_ratio(rows, target) >= 0.85


def test_requested_levels_filter_every_phrase(demo_mid, tmp_path):
    chart = tmp_path / "c.json"
    main(["arrange", str(demo_mid), "-o", str(tmp_path / "o.mid"), "--json", str(chart),
          "--library", "pop909", "--density", "3", "--polyphony", "1"])
    for phrase in json.loads(chart.read_text())["phrases"]:
        assert phrase["texture"]["density_level"] == 3
        assert phrase["texture"]["polyphony_level"] == 1


def test_learned_parts_are_chosen_from_the_command_line(demo_mid, tmp_path):
    """--reharmonizer/--transition learned reach the arranger: the piano part changes."""
    rules, learned = tmp_path / "rules.mid", tmp_path / "learned.mid"
    main(["arrange", str(demo_mid), "-o", str(rules)])
    main(["arrange", str(demo_mid), "-o", str(learned), "--reharmonizer", "learned",
          "--transition", "learned"])
    assert _piano(learned) and _piano(learned) != _piano(rules)
