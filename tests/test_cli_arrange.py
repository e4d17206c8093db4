"""`accobridge arrange` end to end with the authored library: the three-track contract, the
texture prefilter, given chords, other meters and errors."""

import json

import mido
import pytest

from engine.demo import DEMO_TUNE, melody_from_steps
from engine.midi_io import write_song
from engine.types import Meter
from ui.cli import main


@pytest.fixture(autouse=True)
def _no_user_library(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCOBRIDGE_DATA_DIR", str(tmp_path / "userdata"))


@pytest.fixture
def demo_mid(tmp_path):
    path = tmp_path / "demo_in.mid"
    write_song(path, melody_from_steps(DEMO_TUNE), [])
    return path


def _notes(track):
    tick, on, out = 0, {}, []
    for msg in track:
        tick += msg.time
        if msg.type == "note_on" and msg.velocity:
            on[msg.note] = (tick, msg.channel)
        elif msg.type in ("note_off", "note_on") and msg.note in on:
            start, channel = on.pop(msg.note)
            out.append((start, tick, msg.note, channel))
    return out


def test_arrange_output_contract(demo_mid, tmp_path, capsys):
    out, chart = tmp_path / "out.mid", tmp_path / "chart.json"
    main(["arrange", str(demo_mid), "-o", str(out), "--json", str(chart)])
    song = mido.MidiFile(out)
    assert song.type == 1 and [t.name for t in song.tracks] == ["Melody", "Chords", "Piano"]
    melody, piano = _notes(song.tracks[0]), _notes(song.tracks[2])
    assert piano and {c for *_, c in piano} == {2}
    assert {c for *_, c in _notes(song.tracks[1])} == {1}
    # the piano stays below the melody note sounding at each piano onset
    for start, _, pitch, _ in piano:
        above = [m for s, e, m, _ in melody if s <= start < e]
        assert all(pitch < m for m in above)
    doc = json.loads(chart.read_text())
    # a fresh install arranges 4/4 with the shipped POP909 donors (issue 11)
    assert all(p["texture"]["library"] == "pop909" for p in doc["phrases"])
    assert "piano notes" in capsys.readouterr().out


@pytest.mark.parametrize(("density", "polyphony"), [(0, 0), (2, 3), (4, 4), (4, 1)])
def test_requested_levels_are_honoured(density, polyphony, demo_mid, tmp_path):
    chart = tmp_path / "c.json"
    main(["arrange", str(demo_mid), "-o", str(tmp_path / "o.mid"), "--json", str(chart),
          "--density", str(density), "--polyphony", str(polyphony)])
    for phrase in json.loads(chart.read_text())["phrases"]:
        assert phrase["texture"]["density_level"] == density
        assert phrase["texture"]["polyphony_level"] == polyphony


def test_arrange_against_given_chords(demo_mid, tmp_path):
    chords_mid, chart = tmp_path / "chords.mid", tmp_path / "c.json"
    main(["harmonize", str(demo_mid), "-o", str(chords_mid), "--style", "pop_standard"])
    main(["arrange", str(demo_mid), "-o", str(tmp_path / "o.mid"), "--chords", str(chords_mid),
          "--json", str(chart)])
    harmonized = json.loads(chart.read_text())
    symbols = [c["symbol"] for p in harmonized["phrases"] for c in p["chosen"]["chords"]]
    assert symbols and all(p["chosen"]["template_ids"] == [] for p in harmonized["phrases"])


@pytest.mark.parametrize("meter", [(3, 4), (6, 8), (2, 4), (9, 8), (12, 8)])
def test_arrange_other_meters(meter, tmp_path):
    n, d = meter
    bar = n * 16 // d
    steps = [(p, bar // 2) for p in (67, 64, 65, 62, 64, 60, 62, 67)] * 4
    src, out = tmp_path / "in.mid", tmp_path / "out.mid"
    write_song(src, melody_from_steps(steps, meter=Meter(n, d)), [])
    main(["arrange", str(src), "-o", str(out)])
    piano = _notes(mido.MidiFile(out).tracks[2])
    assert piano and max(e for _, e, _, _ in piano) <= 16 * bar * 120


@pytest.mark.parametrize(("args", "needle"), [
    (["--density", "7"], "density"),
    (["--polyphony", "-1"], "polyphony"),
])
def test_arrange_errors(args, needle, demo_mid, tmp_path, capsys):
    out = tmp_path / "o.mid"
    with pytest.raises(SystemExit) as exit_info:
        main(["arrange", str(demo_mid), "-o", str(out), *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and needle in err
    assert not out.exists()


def test_library_pop909_without_any_library_says_how_to_import(demo_mid, tmp_path, capsys,
                                                                monkeypatch):
    from engine.library import pop909_textures

    monkeypatch.setenv("ACCOBRIDGE_DATA_DIR", str(tmp_path / "no-user-data"))
    monkeypatch.setattr(pop909_textures, "SHIPPED_LIBRARY_PATH", tmp_path / "trimmed.npz")
    out = tmp_path / "o.mid"
    with pytest.raises(SystemExit) as exit_info:
        main(["arrange", str(demo_mid), "-o", str(out), "--library", "pop909"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "import-pop909" in err
    assert not out.exists()
