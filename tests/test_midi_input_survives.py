"""MIDI input that cannot die (issue 13, item 4), on a real JACK dummy server: messages that
are not MIDI are counted and logged rate-limited while the good ones still arrive; a sink that
raises, or a reader or watchdog thread that stops, stops neither the input nor the watchdog; a
full RtMidi input queue is counted; ports started before the JACK server open once it runs.

The server and the scenario retry (only when jackd logged missed cycles) are test_midi_ports'.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator

import jack_server
import pytest
from test_midi_ports import WAIT, Reports, leftovers, needs_jack, run_scenario
from test_midi_ports import engine as engine  # fixtures: the fake engine, its session,
from test_midi_ports import jack as jack  # the module's JACK server
from test_midi_ports import session as session

from bridge.midi.clock import Kind, MidiEvent
from bridge.midi.ports import API_ENV, MidiPorts, service_absent
from bridge.midi.watchdog import ReportFunction
from bridge.session import Session
from ui.services import HINTS, BridgeServices, ServiceConfig

rtmidi = pytest.importorskip("rtmidi")

LOG_BURST = 10  # bridge.tally.Tally's default: warnings per reason and window
NOTE = [0x90, 60, 100]


@contextlib.contextmanager
def reading(sink: Callable[[MidiEvent], None], report: ReportFunction | None = None, *,
            in_match: str | None = None, out_match: str | None = None) -> Iterator[MidiPorts]:
    """Ports on the current JACK server (virtual unless matching), read into `sink`, closed
    afterwards."""
    ports = MidiPorts("UNIX_JACK", watch_s=0.05, in_match=in_match, out_match=out_match)
    try:
        ports.start(sink, report)
        yield ports
    finally:
        ports.close()


def arrives(events: queue.Queue[MidiEvent], kind: Kind, timeout: float = WAIT) -> MidiEvent:
    """The next event of `kind` that reaches the sink (earlier ones of other kinds skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            event = events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no {kind} event within {timeout:g} s") from None
        if event.kind is kind:
            return event


def send(daw: jack_server.Daw, *messages: list[int]) -> None:
    daw.perform([(0.0, message) for message in messages])


# ---- bad messages ----------------------------------------------------------------------------

@needs_jack
@pytest.mark.parametrize("bad", [[0xF2, 0x01], [0xE0, 0x05], [0xF1]],
                         ids=["song-position", "pitch-bend", "time-code"])
def test_truncated_messages_are_counted_and_the_good_ones_still_arrive(
    jack: jack_server.JackServer, bad: list[int], caplog: pytest.LogCaptureFixture,
) -> None:
    copies = 3 * LOG_BURST  # a flood: more than are logged

    def scenario() -> None:
        events: queue.Queue[MidiEvent] = queue.Queue()
        caplog.clear()
        with (caplog.at_level(logging.WARNING, "bridge.midi.ports"), reading(events.put) as ports,
              jack_server.daw_client() as daw):
            daw.connect()
            send(daw, *[bad] * copies, [0xF8], NOTE)
            assert arrives(events, Kind.CLOCK)
            note = arrives(events, Kind.NOTE_ON)
        assert (note.channel, note.data1, note.data2) == (1, 60, 100)
        logged = [r.getMessage() for r in caplog.records if "bad" in r.getMessage()]
        assert 1 <= len(logged) <= LOG_BURST, logged
        assert logged[0].startswith(f"midi-in: bad message {bytes(bad).hex(' ')} (length)")
        stats = ports.stats()
        assert (stats["bad"], stats["bad_length"], stats["received"]) == (copies, copies,
                                                                          copies + 2)

    run_scenario(jack, scenario)


# ---- failures in the reader and the watchdog -------------------------------------------------

def failing_on(pitch: int, error: BaseException, events: queue.Queue[MidiEvent],
               failed: threading.Event) -> Callable[[MidiEvent], None]:
    """A sink that raises `error` for note-ons of `pitch` and queues everything else."""
    def sink(event: MidiEvent) -> None:
        if event.kind is Kind.NOTE_ON and event.data1 == pitch:
            failed.set()
            raise error
        events.put(event)
    return sink


@needs_jack
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize(("error", "counter"), [
    (RuntimeError("a bug downstream"), "failed_sink"), (SystemExit(), "restarted_reader"),
], ids=["exception", "thread-stopped"])
def test_a_failing_sink_stops_neither_the_input_nor_the_watchdog(
    jack: jack_server.JackServer, error: BaseException, counter: str,
) -> None:
    def scenario() -> None:
        events: queue.Queue[MidiEvent] = queue.Queue()
        failed = threading.Event()
        reports = Reports()
        with (reading(failing_on(61, error, events, failed), reports) as ports,
              jack_server.daw_client() as daw):
            daw.connect()
            send(daw, [0x90, 61, 100])
            assert failed.wait(WAIT)
            if isinstance(error, SystemExit):
                # The one failure the reader does not catch: it stops the thread, silently
                # (threading prints nothing for it); the watchdog starts it again.
                assert "reader thread had stopped" in reports.wait("error")
            send(daw, NOTE)
            assert arrives(events, Kind.NOTE_ON).data1 == 60
            assert ports.stats()[counter] == 1

    run_scenario(jack, scenario)


@needs_jack
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_reader_survives_the_watchdog_and_starts_it_again(
    jack: jack_server.JackServer,
) -> None:
    """The watchdog runs outside code in one place, the report callback; when that stops its
    thread, the reader starts it again and ports that vanish are still re-opened."""
    def scenario() -> None:
        reports = Reports()
        stopped = threading.Event()

        def report(kind: str, message: str) -> None:
            reports(kind, message)
            if kind == "lost" and not stopped.is_set():
                stopped.set()
                raise SystemExit

        with jack_server.daw_client() as daw:
            daw.open_virtual("DAW to bridge", "DAW from bridge")
            with reading(lambda event: None, report, in_match="daw to bridge",
                         out_match="daw from bridge") as ports:
                daw.quit_and_restart()  # its ports vanish: "lost" stops the watchdog
                assert "vanished" in reports.wait("lost")
                assert "watchdog thread had stopped" in reports.wait("error")
                daw.open_virtual("DAW to bridge", "DAW from bridge")
                reports.wait("back")
                assert ports.is_open and ports.stats()["restarted_watchdog"] == 1

    run_scenario(jack, scenario)


# ---- RtMidi's queue --------------------------------------------------------------------------

@needs_jack
def test_a_full_input_queue_is_counted(jack: jack_server.JackServer) -> None:
    """RtMidi drops what arrives while its input queue is full (it only prints that to
    stderr): a poll that finds the queue full counts it."""
    ports = MidiPorts("UNIX_JACK", queue_size=8)
    try:
        ports.open()  # no reader: nothing empties the queue until the test polls
        with jack_server.daw_client() as daw:
            daw.connect()
            send(daw, *[[0x90, 60 + k % 12, 100] for k in range(200)])
            deadline = time.monotonic() + WAIT
            while not ports.stats().get("lost_queue_full") and time.monotonic() < deadline:
                ports.poll()
                time.sleep(0.001)  # the polling period, not a synchronisation
        stats = ports.stats()
    finally:
        ports.close()
    assert stats["lost_queue_full"] >= 1 and stats["lost"] == stats["lost_queue_full"]
    assert stats["received"] < 200


# ---- no JACK server yet ------------------------------------------------------------------------

@needs_jack
@pytest.mark.parametrize("api", ["UNIX_JACK", "auto"])
def test_ports_started_before_the_jack_server_open_once_it_runs(
    api: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    if api == "auto" and not service_absent(rtmidi.API_UNSPECIFIED):
        pytest.skip("an ALSA sequencer runs here: auto opens the ports on ALSA at once")
    name = no_server_yet(monkeypatch)
    reports = Reports()
    events: queue.Queue[MidiEvent] = queue.Queue()
    ports = MidiPorts(api, watch_s=0.05)
    server = None
    try:
        ports.start(events.put, reports)  # no server: reported, not raised
        assert "not open yet" in reports.wait("lost")
        assert not ports.is_open
        server = jack_server.start(name)
        assert reports.wait("back") == "MIDI ports open (jack)"
        with jack_server.daw_client() as daw:
            daw.connect()
            send(daw, NOTE)
            assert arrives(events, Kind.NOTE_ON).data1 == 60
    finally:
        ports.close()
        if server is not None:
            with contextlib.suppress(RuntimeError):
                assert leftovers(name) == []
            jack_server.stop(server)


@needs_jack
def test_serve_midi_before_jack_says_so_then_connects(
    session: Session, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`serve --midi` (and the panel) started before JACK: the MIDI status is an error with
    its hint, nothing claims the ports are open, and they connect once JACK runs."""
    name = no_server_yet(monkeypatch)
    monkeypatch.setenv(API_ENV, "UNIX_JACK")  # auto would try ALSA where it runs
    lines: list[str] = []
    reports = Reports()
    server = None
    config = ServiceConfig(osc_enabled=False, midi=True)
    try:
        with BridgeServices(session, config, announce=lines.append,
                            on_event=lambda _, kind, message: reports(kind, message)
                            ) as services:
            services.start(strict=True)
            midi = next(s for s in services.statuses() if s.name == "MIDI ports")
            assert (midi.state, midi.hint, lines) == ("error", HINTS["midi_error"], [])
            server = jack_server.start(name)
            reports.wait("back")
            midi = next(s for s in services.statuses() if s.name == "MIDI ports")
            assert midi.state == "connected"
    finally:
        if server is not None:
            jack_server.stop(server)


def no_server_yet(monkeypatch: pytest.MonkeyPatch) -> str:
    """A JACK server name nothing runs under yet, made this process's server."""
    name = jack_server.unique_name("accobridge-late")
    for key, value in jack_server.client_env(name).items():
        if key.startswith("JACK_"):
            monkeypatch.setenv(key, value)
    return name
