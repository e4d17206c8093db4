"""`accobridge harmonize` end to end: the output contract and every bad input (exit 2, one
line, no traceback, nothing half-written)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mido
import pytest

from engine.atomic_file import process_umask
from engine.demo import DEMO_TUNE, melody_from_steps
from engine.midi_io import write_song
from engine.types import Meter
from ui.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _run(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code, capsys.readouterr()


def _ok(args, capsys):
    main([str(a) for a in args])
    return capsys.readouterr()


@pytest.fixture
def demo_mid(tmp_path):
    path = tmp_path / "demo_in.mid"
    write_song(path, melody_from_steps(DEMO_TUNE, tempo_bpm=101.0), [])
    return path


def _notes(track):
    tick, on, out = 0, {}, []
    for msg in track:
        tick += msg.time
        if msg.type == "note_on" and msg.velocity:
            on[msg.note] = tick
        elif msg.type in ("note_off", "note_on") and msg.note in on:
            out.append((on.pop(msg.note), msg.note, msg.channel))
    return sorted(out)


def test_output_contract(demo_mid, tmp_path, capsys):
    out, chart = tmp_path / "out.mid", tmp_path / "chart.json"
    printed = _ok(["harmonize", demo_mid, "-o", out, "--json", chart], capsys)
    assert "F major" in printed.out
    song, source = mido.MidiFile(out), mido.MidiFile(demo_mid)
    assert song.type == 1 and song.ticks_per_beat == source.ticks_per_beat
    assert [t.name for t in song.tracks] == ["Melody", "Chords"]
    assert _notes(song.tracks[0]) == _notes(source.tracks[0])  # melody timing unchanged
    assert {c for _, _, c in _notes(song.tracks[0])} == {0}
    chords = _notes(song.tracks[1])
    assert chords and {c for _, _, c in chords} == {1}
    tempos = [m.tempo for m in song.tracks[0] if m.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(101.0)]
    sig = next(m for m in song.tracks[0] if m.type == "time_signature")
    assert (sig.numerator, sig.denominator) == (4, 4)
    doc = json.loads(chart.read_text())
    assert doc["key"]["name"] == "F major" and doc["meter"] == "4/4"
    assert sum(p["bars"] for p in doc["phrases"]) == 16
    first = doc["phrases"][0]
    assert first["chosen"]["chords"][0]["bar"] == 1 and first["chosen"]["chords"][0]["beat"] == 1
    assert 1 <= len(first["alternatives"]) <= 5
    assert {"micro", "meso", "prefix", "path"} <= set(first["chosen"]["scores"])


def test_given_key_and_phrases_win(demo_mid, tmp_path, capsys):
    out, chart = tmp_path / "out.mid", tmp_path / "c.json"
    _ok(["harmonize", demo_mid, "-o", out, "--key", "Bb", "--mode", "major", "--phrases",
         "A4A4B4B4", "--style", "pop_complex", "--json", chart], capsys)
    doc = json.loads(chart.read_text())
    assert doc["key"]["tonic"] == "Bb" and doc["key"]["source"] == "user"
    assert doc["phrase_string"] == "A4A4B4B4"
    assert all(p["style"] == "pop_complex" for p in doc["phrases"])


@pytest.mark.parametrize("meter", [(3, 4), (6, 8), (2, 4), (2, 2), (9, 8), (12, 8)])
def test_other_meters_end_to_end(meter, tmp_path, capsys):
    n, d = meter
    bar = n * 16 // d
    steps = [(p, bar // 2) for p in (67, 64, 65, 62, 64, 60, 62, 67, 69, 65, 67, 64, 65, 62, 60,
                                     60)] * 2
    src, out, chart = tmp_path / "in.mid", tmp_path / "out.mid", tmp_path / "c.json"
    write_song(src, melody_from_steps(steps, meter=Meter(n, d)), [])
    _ok(["harmonize", src, "-o", out, "--json", chart], capsys)
    doc = json.loads(chart.read_text())
    assert doc["meter"] == f"{n}/{d}"
    assert sum(p["bars"] for p in doc["phrases"]) == 16
    ends = [c["start_16th"] + c["duration_16th"] for p in doc["phrases"]
            for c in p["chosen"]["chords"]]
    assert max(ends) == 16 * bar


def _broken_inputs(tmp_path):
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd\x00\x00\x00\x06garbage-not-midi")
    no_notes = tmp_path / "nonotes.mid"
    mido.MidiFile(type=1).save(no_notes)
    one = tmp_path / "one.mid"
    write_song(one, melody_from_steps([(60, 4)]), [])
    many = tmp_path / "many.mid"
    write_song(many, melody_from_steps([(60 + i % 12, 1) for i in range(10_000)]), [])
    slow = tmp_path / "slow.mid"
    write_song(slow, melody_from_steps(DEMO_TUNE, tempo_bpm=5.0), [])
    odd = tmp_path / "five.mid"
    song = mido.MidiFile(type=1)
    track = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=5, denominator=4)])
    for i in range(8):
        track += [mido.Message("note_on", note=60 + i, velocity=80, time=0),
                  mido.Message("note_off", note=60 + i, velocity=0, time=480)]
    song.tracks.append(track)
    song.save(odd)
    return {
        "missing": ([tmp_path / "nope.mid"], "not found"),
        "empty": ([empty], "empty"),
        "corrupt": ([corrupt], ""),
        "no notes": ([no_notes], "note"),
        "one note": ([one], "1 note"),
        "10,000 notes": ([many], "10000"),
        "absurd tempo": ([slow], "tempo"),
        "5/4": ([odd], "5/4"),
        "unknown track": ([one, "--track", "Bassoon"], "Bassoon"),
        "bad style": ([one, "--style", "polka"], "polka"),
        "bad key": ([one, "--key", "H"], "H"),
        "phrases too short": (["DEMO", "--phrases", "A8A4"], "12"),
        "phrases syntax": (["DEMO", "--phrases", "A8?"], "?"),
        "tonic balance": (["DEMO", "--tonic-balance", "1.5"], "--tonic-balance"),
        "colours": (["DEMO", "--colours", "loud"], "loud"),
    }


BAD_CASES = [
    "missing", "empty", "corrupt", "no notes", "one note", "10,000 notes", "absurd tempo", "5/4",
    "unknown track", "bad style", "bad key", "phrases too short", "phrases syntax",
    "tonic balance", "colours",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_line_exit_2(case, demo_mid, tmp_path, capsys):
    args, needle = _broken_inputs(tmp_path)[case]
    args = [demo_mid if a == "DEMO" else a for a in args]
    out = tmp_path / "out.mid"
    out.write_bytes(b"previous result")
    code, printed = _run(["harmonize", *args, "-o", out], capsys)
    assert code == 2
    lines = [line for line in printed.err.splitlines() if not line.startswith("accobridge: warn")]
    assert len(lines) == 1 and lines[0].startswith("accobridge: error:")
    assert needle in lines[0]
    assert out.read_bytes() == b"previous result"  # never half-written or clobbered
    assert not list(tmp_path.glob("*.tmp"))


def test_process_level_error_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ui.cli", "harmonize", str(tmp_path / "x.mid"), "-o",
         str(tmp_path / "o.mid")], capture_output=True, text=True, cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_usage_error_is_one_line(capsys):
    code, printed = _run(["harmonize"], capsys)
    assert code == 2 and printed.err.count("\n") == 1


def test_outputs_are_readable_by_other_programs(demo_mid, tmp_path, capsys):
    """The atomic writes go through mkstemp (owner-only); a song and its chart are ordinary
    files a DAW or a script running as another user must be able to read."""
    out, chart = tmp_path / "out.mid", tmp_path / "chart.json"
    _ok(["harmonize", demo_mid, "-o", out, "--json", chart], capsys)
    for path in (out, chart):
        assert path.stat().st_mode & 0o777 == 0o666 & ~process_umask(), oct(path.stat().st_mode)
    before = os.umask(0o027)  # … and they follow the user's umask, like any other program's
    try:
        _ok(["harmonize", demo_mid, "-o", out], capsys)
    finally:
        os.umask(before)
    assert out.stat().st_mode & 0o777 == 0o640


def test_a_bare_reaper_spool_flag_means_reapers_own_folder():
    from bridge.reaper import default_spool_folder
    from ui.cli import build_parser

    bare = build_parser().parse_args(["serve", "--reaper-spool"]).reaper_spool
    assert bare == ""  # ServiceConfig: "" = REAPER's default spool folder, not "."
    assert Path(bare or default_spool_folder()) == default_spool_folder()
    assert build_parser().parse_args(["serve", "--reaper-spool", "x"]).reaper_spool == "x"
    assert build_parser().parse_args(["serve"]).reaper_spool is None


def test_each_send_is_its_own_source():
    from ui.cli import send_source

    sources = {send_source(Path(folder) / "take.mid") for folder in ("a", "b", "a")}
    assert len(sources) == 3 and all(s.startswith("cli:") and s.endswith(":take.mid")
                                     for s in sources)


@pytest.mark.parametrize(("args", "needle"), [
    (["serve", "--osc-port", "70000"], "0-65535"),
    (["serve", "--osc-port", "-1"], "0-65535"),
    (["send", "x.mid", "-o", "y.mid", "--osc-port", "port"], "0-65535"),
    (["serve", "--listen", "nosuch.invalid"], "cannot listen on 'nosuch.invalid'"),
    (["serve", "--density", "9"], "--density must be a whole number 0..4"),
    (["serve", "--mode", "minor"], "--mode needs --key"),
    (["serve", "--preset", "No such preset"], "--preset"),
])
def test_ports_and_listen_addresses_are_checked(args, needle, capsys):
    code, printed = _run(args, capsys)
    assert code == 2 and printed.err.count("\n") == 1 and needle in printed.err


def test_demo_harmonizes_and_arranges_the_shipped_melody(tmp_path, capsys, monkeypatch):
    """The README's first command: the demo writes all three tracks from the shipped data
    alone, its piano from the shipped POP909 donor phrases (issue 11)."""
    monkeypatch.setenv("ACCOBRIDGE_DATA_DIR", str(tmp_path / "no-user-data"))
    out, chart = tmp_path / "demo.mid", tmp_path / "demo.json"
    printed = _ok(["demo", "-o", out, "--json", chart], capsys)
    assert "F major" in printed.out and "piano notes" in printed.out
    song = mido.MidiFile(out)
    assert [t.name for t in song.tracks] == ["Melody", "Chords", "Piano"]
    piano = _notes(song.tracks[2])
    assert piano and {c for _, _, c in piano} == {2}
    doc = json.loads(chart.read_text())
    assert {p["texture"]["library"] for p in doc["phrases"]} == {"pop909"}
