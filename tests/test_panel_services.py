"""ui.services: the adapter starter shared by `accobridge serve` and the panel — statuses with
plain-language hints, strict (serve) versus reporting (panel) start-up."""

from __future__ import annotations

import socket
import threading

import pytest

from bridge.reaper.spool_format import clip_file_name, format_clip
from bridge.session import Session
from bridge.store import ClipStore
from bridge.types import Clip, ClipNote
from ui.engine_link import generate
from ui.services import HINTS, BridgeServices, MidiEndError, ServiceConfig


@pytest.fixture
def session(tmp_path):
    s = Session(generate, ClipStore(tmp_path / "sessions"))
    yield s
    s.close(5.0)


def _states(services):
    return {s.name: s for s in services.statuses()}


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_disabled_adapters_are_off_with_a_hint(session):
    with BridgeServices(session, ServiceConfig(osc_enabled=False)) as services:
        services.start(strict=False)
        states = _states(services)
    assert {n: s.state for n, s in states.items()} == {
        "OSC API": "off", "Ableton Live": "off", "MIDI ports": "off", "REAPER": "off"}
    assert all(s.hint for s in states.values())


def test_the_osc_api_announces_itself_as_serve_did(session):
    lines = []
    port = _free_port()
    with BridgeServices(session, ServiceConfig(osc_port=port), announce=lines.append) as services:
        services.start(strict=True)
        assert services.server is not None and services.server.port == port
        osc = _states(services)["OSC API"]
    assert lines == [f"accobridge: OSC API listening on 127.0.0.1:{port}"]
    assert osc.state == "listening" and "hello" in osc.hint  # no client yet: not "connected"


def test_the_osc_api_is_connected_once_a_client_says_hello(session):
    import time

    from bridge.client import BridgeClient

    port = _free_port()
    with BridgeServices(session, ServiceConfig(osc_port=port)) as services:
        services.start(strict=True)
        assert _states(services)["OSC API"].state == "listening"
        with BridgeClient("127.0.0.1", port) as client:
            client.hello(time.monotonic() + 10)
        osc = _states(services)["OSC API"]
    assert osc.state == "connected" and osc.hint == "" and "1 client said hello" in osc.detail


def test_a_taken_port_raises_for_serve_and_is_a_status_for_the_panel(session):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(OSError), BridgeServices(session, ServiceConfig(osc_port=port)) as s:
            s.start(strict=True)
        with BridgeServices(session, ServiceConfig(osc_port=port)) as services:
            services.start(strict=False)
            osc = _states(services)["OSC API"]
    assert osc.state == "error" and str(port) in osc.detail
    assert osc.hint == HINTS["osc_error"]


def test_the_reaper_spool_waits_for_the_script_then_reports_a_clip(session, tmp_path):
    lines, events = [], []
    seen = threading.Event()

    def on_event(adapter, kind, message):
        events.append((adapter, kind, message))
        if (adapter, kind) == ("reaper", "result"):
            seen.set()

    folder = tmp_path / "spool"
    config = ServiceConfig(osc_enabled=False, reaper_spool=str(folder))
    with BridgeServices(session, config, announce=lines.append, on_event=on_event) as services:
        services.start(strict=True)
        reaper = _states(services)["REAPER"]
        assert reaper.state == "waiting" and "ReaScript" in reaper.hint
        assert lines[0].startswith(f"accobridge: REAPER spool {folder} (load ")
        clip = Clip("reaper", "take", 8.0, 120.0, 4, 4,
                    tuple(ClipNote(60 + i % 5, i * 1.0, 1.0, 90, 1) for i in range(8)))
        temporary = folder / "clip-1.tmp"  # written, then renamed, as AccoBridge.lua does
        temporary.write_text(format_clip(1, clip), encoding="utf-8")
        temporary.rename(folder / clip_file_name(1))
        assert seen.wait(30), events
        reaper = _states(services)["REAPER"]
    assert ("reaper", "clip", "1") in events
    assert reaper.state == "connected" and reaper.hint == ""


def test_a_bad_midi_end_is_our_error(session):
    config = ServiceConfig(osc_enabled=False, midi=True, midi_end="whenever")
    with pytest.raises(MidiEndError), BridgeServices(session, config) as services:
        services.start(strict=False)


def test_ableton_before_live_starts_is_waiting_not_connected(session):
    """serve --ableton started before Live: the status says what it waits for (issue 14)."""
    config = ServiceConfig(osc_enabled=False, ableton=True, ableton_send_port=_free_port(),
                           ableton_reply_port=_free_port())
    with BridgeServices(session, config) as services:
        services.start(strict=False, ableton_live=True)
        live = _states(services)["Ableton Live"]
    assert live.state == "waiting", live
    assert "waiting for" in live.detail and live.hint == HINTS["ableton_waiting"]
