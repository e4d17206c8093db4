"""`accobridge serve` + `accobridge send` as real processes over loopback UDP."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import mido
import pytest

from engine.demo import DEMO_TUNE, melody_from_steps
from engine.midi_io import write_song
from ui.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def server(tmp_path):
    env = dict(os.environ, ACCOBRIDGE_DATA_DIR=str(tmp_path / "userdata"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "serve", "--osc-port", "0"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()  # blocks until the server has bound its port
        assert "listening on 127.0.0.1:" in line, line + proc.stderr.read()
        yield proc, int(line.rsplit(":", 1)[1])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


def test_send_gets_chords_and_piano_back(server, tmp_path, monkeypatch):
    proc, port = server
    monkeypatch.setenv("ACCOBRIDGE_DATA_DIR", str(tmp_path / "userdata"))
    src, out = tmp_path / "in.mid", tmp_path / "out.mid"
    write_song(src, melody_from_steps(DEMO_TUNE), [])
    main(["send", str(src), "-o", str(out), "--osc-port", str(port), "--style", "pop_complex",
          "--density", "2"])
    song = mido.MidiFile(out)
    assert [t.name for t in song.tracks] == ["Melody", "Chords", "Piano"]
    assert all(any(m.type == "note_on" for m in t) for t in song.tracks)
    # the sustain pedal came over OSC: the same as `arrange` writes for the same file/options
    local = tmp_path / "local.mid"
    main(["arrange", str(src), "-o", str(local), "--style", "pop_complex", "--density", "2"])
    pedal = _pedal(mido.MidiFile(out).tracks[2])
    assert pedal == _pedal(mido.MidiFile(local).tracks[2])
    assert {value for _, value, _ in pedal} == {0, 127} and {c for *_, c in pedal} == {2}
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert "stopped" in proc.stdout.read()


def _pedal(track: mido.MidiTrack) -> list[tuple[int, int, int]]:
    """The track's sustain-pedal changes: (absolute tick, value, channel 0-15)."""
    changes, tick = [], 0
    for message in track:
        tick += message.time
        if message.type == "control_change" and message.control == 64:
            changes.append((tick, message.value, message.channel))
    return changes


def test_send_reports_engine_errors_as_one_line(server, tmp_path, capsys):
    _, port = server
    src = tmp_path / "in.mid"
    write_song(src, melody_from_steps(DEMO_TUNE), [])
    with pytest.raises(SystemExit) as exit_info:
        main(["send", str(src), "-o", str(tmp_path / "o.mid"), "--osc-port", str(port),
              "--phrases", "A4"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "16" in err
    assert not (tmp_path / "o.mid").exists()


def test_serve_with_a_reaper_spool_answers_a_clip_file(tmp_path):
    from bridge.reaper.spool_format import SpoolResult, format_clip, parse

    spool = tmp_path / "spool"
    env = dict(os.environ, ACCOBRIDGE_DATA_DIR=str(tmp_path / "userdata"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "serve", "--osc-port", "0", "--reaper-spool",
         str(spool)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert "listening" in proc.stdout.readline()
        assert "REAPER spool" in proc.stdout.readline()
        notes, pos = [], 0
        from bridge.types import Clip, ClipNote

        for pitch, length in DEMO_TUNE:
            if pitch:
                notes.append(ClipNote(pitch, pos / 4, length / 4, 90, 1))
            pos += length
        clip = Clip("reaper", "take", pos / 4, 100.0, 4, 4, tuple(notes))
        (spool / "clip-7.tmp").write_text(format_clip(7, clip, {"density": 1}))
        (spool / "clip-7.tmp").rename(spool / "clip-7.txt")
        result_file = spool / "result-7.txt"
        import time

        deadline = time.monotonic() + 60
        while not result_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting on another process's file: there is no event to wait on
        answer = parse(result_file.read_text())
        assert isinstance(answer, SpoolResult)
        assert set(answer.result.parts) == {"chords", "piano"}
        assert {c.controller for c in answer.result.controls["piano"]} == {64}  # the pedal
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


# A serve whose worker thread warns once stdin says so, started as `python -m ui.cli` would be.
_SERVE_THAT_WARNS = """
import runpy, sys, threading, warnings
def warn_on_request():
    sys.stdin.readline()
    warnings.warn("probe warning from a worker thread")
threading.Thread(target=warn_on_request, daemon=True).start()
sys.argv = ["accobridge", "serve", "--osc-port", "0"]
runpy.run_module("ui.cli", run_name="__main__")
"""


def test_serve_logs_warnings_as_they_happen_and_its_counts_at_exit(tmp_path):
    import queue
    import socket
    import threading
    import time

    env = dict(os.environ, ACCOBRIDGE_DATA_DIR=str(tmp_path / "userdata"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE_THAT_WARNS], cwd=ROOT, env=env, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr],
                              daemon=True)
    reader.start()
    try:
        line = proc.stdout.readline()
        assert "listening on 127.0.0.1:" in line, line
        port = int(line.rsplit(":", 1)[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as bad:
            for _ in range(3):
                bad.sendto(b"not osc", ("127.0.0.1", port))
        proc.stdin.write("warn now\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if "probe warning from a worker thread" in lines.get(timeout=1):
                    break
            except queue.Empty:
                continue
        else:
            raise AssertionError("the warning was not logged while serve ran")
        assert proc.poll() is None  # logged while serving, not collected until the exit
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        reader.join(timeout=20)  # the whole of stderr, to its end
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    final = [line for line in rest if "acco-osc: final counts:" in line]
    assert final and "bad 3 (parse 3)" in final[0], "".join(rest)
    assert not any("probe warning" in line for line in rest)  # not printed a second time
