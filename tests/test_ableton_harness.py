"""The sustain pedal into Live through the real AbletonOSC handlers: the shared harness runs
AbletonOSC (ideoforms/AbletonOSC) against a stand-in for Live's Python API in its own process
(../shared/tools/abletonosc_harness); skipped where the harness or AbletonOSC is not there."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from bridge.ableton import BRIDGE_TRACK_NAMES, AbletonAdapter, LiveApi
from bridge.ableton.notes import compare_notes, live_notes
from bridge.pedal import sustain_into_durations
from bridge.session import Session
from bridge.store import ClipStore
from bridge.types import Clip, ClipControl, ClipNote, GenerateResult, JobContext

SHARED = Path(__file__).resolve().parents[2] / "shared"
RUNNER = SHARED / "tools" / "abletonosc_harness" / "run_abletonosc.py"
ABLETONOSC = SHARED / "vendor" / "AbletonOSC"
WAIT_S = 30.0  # AbletonOSC ticks every 100 ms; only reached when a test is about to fail

pytestmark = pytest.mark.skipif(not (RUNNER.exists() and ABLETONOSC.is_dir()),
                                reason="the AbletonOSC harness (../shared) is not here")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def generate(clip: Clip, options: Mapping[str, Any], ctx: JobContext) -> GenerateResult:
    """Piano: short notes on each beat, two of one pitch; the pedal down from beat 0.125 to 3."""
    piano = tuple(ClipNote(pitch, float(beat), 0.25, 70, 3)
                  for beat, pitch in enumerate((48, 55, 48, 64, 67, 72, 76, 79)))
    pedal = (ClipControl(0.125, 64, 127, 3), ClipControl(3.0, 64, 0, 3))
    return GenerateResult(ctx.request_id, ctx.source, {"piano": piano},
                          controls={"piano": pedal})


@pytest.fixture
def abletonosc(tmp_path: Path) -> Iterator[tuple[int, int]]:
    port, reply_port = free_udp_port(), free_udp_port()
    seed = tmp_path / "melody.json"
    seed.write_text(json.dumps({"name": "Melody", "length": 8,
                                "notes": [[60 + i, float(i), 1.0, 100] for i in range(8)]}))
    proc = subprocess.Popen(
        [sys.executable, str(RUNNER), str(ABLETONOSC), "--tracks", "2", "--scenes", "2",
         "--port", str(port), "--reply-port", str(reply_port), "--seed-clip", "0", "0",
         str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # blocks until the runner listens (or ends)
            seen.append(line)
            if line.startswith("READY"):
                break
        assert seen and seen[-1].startswith("READY"), "".join(seen)
        yield port, reply_port
    finally:
        proc.terminate()
        proc.wait(timeout=WAIT_S)


def test_live_gets_the_piano_notes_held_by_the_pedal(abletonosc: tuple[int, int],
                                                     tmp_path: Path) -> None:
    port, reply_port = abletonosc
    events: queue.Queue[tuple[str, str, object]] = queue.Queue()
    api = LiveApi("127.0.0.1", port, listen_port=reply_port)
    session = Session(generate, ClipStore(tmp_path / "sessions"))
    adapter = AbletonAdapter(api, session, on_event=lambda *event: events.put(event))
    try:
        rid = adapter.generate_now()
        while True:
            got_rid, kind, payload = events.get(timeout=WAIT_S)
            if got_rid == rid and kind == "result":
                result = payload
            if got_rid == rid and kind == "status" and payload[0] in (  # type: ignore[index]
                    "done", "failed", "superseded", "cancelled"):
                assert payload[0] == "done", payload  # type: ignore[index]
                break
        assert isinstance(result, GenerateResult)
        sustained = sustain_into_durations(result.parts["piano"], result.controls["piano"])
        # 48@0 is down at the press, 55@1, 48@2 start under it; 48@0 stops at the next 48
        assert [n.duration_beats for n in sustained] == [2.0, 2.0, 1.0, 0.25, 0.25, 0.25,
                                                         0.25, 0.25]
        track = api.track_names().index(BRIDGE_TRACK_NAMES["piano"])
        back = api.clip_notes(track, 0, span_beats=8.0, expected=len(sustained))
        assert compare_notes(live_notes(sustained), back) is None
    finally:
        adapter.close()
        session.close()
        api.close()
