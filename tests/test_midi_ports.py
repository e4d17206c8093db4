"""Real virtual MIDI ports through a JACK dummy server (bridge.midi.ports, .adapter).

A test double of the DAW — JACK MIDI clients made with python-rtmidi — connects to "AccoBridge
In"/"AccoBridge Out", plays clock + Start + a melody + Stop, and receives the streamed result.
The server is the one `.ci/run` started (`ACCOBRIDGE_TEST_JACK_SERVER`, see tests/jack_server.py)
or, without it, one this module starts under a unique name. protocol.md's traps: a client that
is not scheduled in time loses JACK MIDI events, so a scenario is retried only when jackd's log
reports missed cycles during it; and every client is closed, which each test checks.
"""

from __future__ import annotations

import contextlib
import os
import queue
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jack_server
import pytest
from jack_server import fit_ticks, song

from bridge.errors import BadMessageError
from bridge.midi.adapter import MidiAdapter
from bridge.midi.clock import Kind, MidiEvent
from bridge.midi.ports import IN_PORT_NAME, OUT_PORT_NAME, match_port, resolve_api
from bridge.midi.wire import ArrivalTimes, decode
from bridge.session import Session
from bridge.store import ClipStore
from bridge.types import Clip, ClipControl, ClipNote, GenerateResult, JobContext

rtmidi = pytest.importorskip("rtmidi")

WAIT = 10.0  # seconds; only reached when a test is about to fail
BPM = 123.0  # a beat is not a whole number of JACK periods: arrival phases vary
ATTEMPTS = 3  # a scenario runs again only when jackd logged missed cycles during it

needs_jack = pytest.mark.skipif(
    not jack_server.jackd_available(),
    reason="jackd/jack_lsp not installed (apt-get install jackd2; .ci/run installs it)",
)


# ---- pure pieces ------------------------------------------------------------------------------

def test_decode_maps_messages_to_events() -> None:
    assert decode([0xF8], 1.5) == MidiEvent(Kind.CLOCK, 1.5)
    assert decode([0xF2, 0x22, 0x01], 0.0) == MidiEvent(Kind.SONG_POSITION, 0.0, 0, 162)
    assert decode([0x90, 60, 0], 0.0) == MidiEvent(Kind.NOTE_OFF, 0.0, 1, 60, 0)
    assert decode([0x92, 60, 99], 0.0) == MidiEvent(Kind.NOTE_ON, 0.0, 3, 60, 99)
    assert decode([0xB0, 64, 127], 0.0) == MidiEvent(Kind.CONTROL_CHANGE, 0.0, 1, 64, 127)
    assert decode([0xE0, 0, 64], 0.0) is None  # pitch bend: not used
    assert decode([0x83, 61, 40], 0.0) == MidiEvent(Kind.NOTE_OFF, 0.0, 4, 61, 40)
    assert decode([0xFC], 2.0) == MidiEvent(Kind.STOP, 2.0)
    assert decode([0xFE], 0.0) is None  # active sensing
    assert decode([0xF0, 0x7E, 0x01, 0xF7], 0.0) is None  # a whole sysex: valid, unused
    with pytest.raises(ValueError):
        decode([0x90, 200, 1], 0.0)


@pytest.mark.parametrize(("data", "reason"), [
    ([], "empty"), ([60, 100], "no_status"), ([0x90, 60], "length"),
    ([0x90, 60, 1, 2], "length"), ([0xC0], "length"), ([0xF2, 1], "length"),
    ([0xE0, 5], "length"), ([0xF1], "length"), ([0xF4], "undefined"), ([0xF9], "undefined"),
    ([0xF7], "undefined"), ([0xF0, 1, 2], "sysex"), ([0xF0, 0x90, 0xF7], "sysex"),
    ([256], "no_status"), ([-1, 0], "no_status"), ([0x90, 60, 128], "data_byte"),
])
def test_decode_refuses_what_is_not_one_midi_message(data: list[int], reason: str) -> None:
    with pytest.raises(BadMessageError) as refused:
        decode(data, 0.0)
    assert refused.value.reason == reason  # the tally's counters are kept per reason


def test_port_names_match_by_case_insensitive_substring() -> None:
    names = ["loopMIDI Port 1", "accobridge in 2", "AccoBridge Out 3"]
    assert match_port(names, "AccoBridge In") == 1
    assert match_port(names, "ACCOBRIDGE OUT") == 2
    assert match_port(names, "Nope") is None


def test_arrival_times_follow_the_backend_stamps() -> None:
    times = ArrivalTimes()
    # Arrived at 10.000, 10.010, 10.015; polled 3, 1 and 2 ms later. The soonest poll so far
    # sets the offset (stamps are never later than the poll that read them).
    got = [times.stamp(0.0, 10.003), times.stamp(0.010, 10.011), times.stamp(0.005, 10.017)]
    assert got == pytest.approx([10.003, 10.011, 10.016])


def test_an_unknown_api_is_refused() -> None:
    with pytest.raises(ValueError, match="MIDI API"):
        resolve_api("BEOS_MIDI")


# ---- the JACK server ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def jack() -> Iterator[jack_server.JackServer]:
    if not jack_server.jackd_available():
        pytest.skip("jackd/jack_lsp not installed (apt-get install jackd2; .ci/run installs it)")
    name = os.environ.get(jack_server.SERVER_ENV)
    if name:
        pid_path, log_path = jack_server.state_paths(name)
        pid = int(pid_path.read_text()) if pid_path.exists() else -1
        server = jack_server.JackServer(name, pid, log_path)
        jack_server.ports(name)  # fails loudly if .ci/run's server does not answer
    else:
        server = jack_server.start()
    try:
        with jack_server.as_default(server.name):
            yield server
    finally:
        if not name:
            jack_server.stop(server)


def leftovers(server: str) -> list[str]:
    """Our ports still on the server, and semaphores of our clients (one per open client)."""
    found = [p for p in jack_server.ports(server) if "AccoBridge" in p or jack_server.DAW in p]
    found += [p.name for p in jack_server.SHM_DIR.glob(f"jack_sem.*_{server}_*")
              if "AccoBridge" in p.name or jack_server.DAW in p.name]
    return found


def run_scenario(server: jack_server.JackServer, scenario: Callable[[], None]) -> None:
    """Runs `scenario`; a failure is retried only if jackd reported missed cycles meanwhile
    (those lose events by design), never blindly."""
    for attempt in range(1, ATTEMPTS + 1):
        since = server.log_size()
        try:
            scenario()
            return
        except AssertionError:
            missed = server.missed_cycles(since)
            if not missed or attempt == ATTEMPTS:
                raise
            print(f"attempt {attempt}: jackd reported {len(missed)} missed cycles "
                  f"({missed[0]}); running the scenario again")
        finally:
            assert leftovers(server.name) == []


# ---- the bridge's engine, faked -------------------------------------------------------------

class FakeEngine:
    """Chords: one root-position triad per bar; piano: an octave below each melody note, with
    the sustain pedal down from the middle of each bar's first beat to its last beat."""

    def __init__(self) -> None:
        self.clips: queue.Queue[Clip] = queue.Queue()

    def __call__(self, clip: Clip, options: Mapping[str, Any], ctx: JobContext
                 ) -> GenerateResult:
        self.clips.put(clip)
        bar = clip.ts_num * 4 / clip.ts_den
        chords = tuple(ClipNote(pitch, start, bar, 70, 2)
                       for start in range(0, int(clip.length_beats), int(bar))
                       for pitch in (48, 52, 55))
        piano = tuple(ClipNote(n.pitch - 12, n.start_beats, 0.25, 64, 3) for n in clip.notes)
        pedal = tuple(ClipControl(start + offset, 64, value, 3)
                      for start in range(0, int(clip.length_beats), int(bar))
                      for offset, value in PEDAL)
        return GenerateResult(ctx.request_id, ctx.source, {"chords": chords, "piano": piano},
                              controls={"piano": pedal})


PEDAL = ((0.5, 127), (3.0, 0))  # (beats into the bar, CC 64 value)


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def session(engine: FakeEngine, tmp_path: Path) -> Iterator[Session]:
    session = Session(engine, ClipStore(tmp_path / "sessions"))
    yield session
    session.close()


class Reports:
    """Collects the adapter's (kind, message) reports; `wait(kind)` returns the next one."""

    def __init__(self) -> None:
        self.items: queue.Queue[tuple[str, str]] = queue.Queue()
        self.seen: list[tuple[str, str]] = []  # everything reported, for failure messages

    def __call__(self, kind: str, message: str) -> None:
        self.seen.append((kind, message))
        self.items.put((kind, message))

    def wait(self, kind: str, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        seen: list[tuple[str, str]] = []
        while True:
            try:
                got = self.items.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {kind!r} report; got {seen}") from None
            if got[0] == kind:
                return got[1]
            seen.append(got)


MELODY = [(60, 0.0, 0.9), (64, 1.0, 1.9), (67, 2.0, 2.9), (72, 3.0, 3.5), (71, 4.5, 5.0),
          (69, 5.0, 5.9), (67, 6.0, 7.5)]


# ---- the round trip ---------------------------------------------------------------------------

@needs_jack
def test_capture_generate_and_stream_in_time(
    jack: jack_server.JackServer, session: Session, engine: FakeEngine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # protocol.md: >= 2 JACK periods. Input is stamped 0-1 period late and output goes out at
    # the next period: 0-2 periods, plus up to 2 ms of thread scheduling.
    # protocol.md: ≥ 2 JACK periods; one more period of slack for a loaded 2-core CI machine
    tolerance = 3 * jack.period_s + 0.002
    measured: list[float] = []

    def scenario() -> None:
        reports = Reports()
        adapter = MidiAdapter(session, api="UNIX_JACK", end_on="stop", on_report=reports)
        try:
            with jack_server.daw_client() as daw:
                daw.connect()
                # 1. The DAW plays the melody with its clock; Stop ends the take.
                script = song(BPM, time.monotonic() + 0.3, 8.0, MELODY)
                daw.perform(script)
                clip = engine.clips.get(timeout=WAIT)
                got = [(n.pitch, round(n.start_beats * 4) / 4) for n in clip.notes]
                assert got == [(p, on) for p, on, _ in MELODY]
                assert clip.length_beats == 8.0 and clip.source == "midi"
                assert clip.tempo_bpm == pytest.approx(BPM, rel=0.01)
                reports.wait("result")
                # 2. It plays again: the result streams on channels 2 and 3 in time.
                daw.drain()
                script = song(BPM, time.monotonic() + 0.3, 8.5)
                sent = daw.perform(script)
                tick0, spt = fit_ticks(sent, script)
                expected = 3 * 2 + len(MELODY)  # two bars of triads, one note per melody note

                # The all-notes-off that pass 1's Stop caused can reach the DAW after the
                # drain above (a JACK period later, on a loaded machine later still): only what
                # arrives once pass 2 has begun is pass 2's, and only its Stop ends it.
                def finished(got: list[tuple[float, tuple[int, ...]]]) -> bool:
                    return sum(1 for t, d in got if t >= sent[-1] - 0.01 and d[0] in (0xB1, 0xB2)
                               and d[1] == 123) >= 2

                received = [(t, d) for t, d in daw.collect(finished) if t >= sent[0]]
                sender = adapter.sender
                state = (f"reports {reports.seen}, sender sent {sender.sent}, skipped late "
                         f"{sender.skipped_late}, failed {sender.failed}, clock {sender.clock}")
        finally:
            adapter.close()
        ons = [(t, d) for t, d in received if d[0] in (0x91, 0x92) and d[2] > 0]
        offs = [(t, d) for t, d in received if d[0] in (0x81, 0x82)]
        pedal = [(t, d) for t, d in received if d[:2] == (0xB2, 64)]
        assert len(ons) == expected, (state, received)
        # the pedal in each of the two bars, then lifted again at Stop (nothing left held)
        assert [d[2] for _, d in pedal] == [127, 0, 127, 0, 0], (state, received)
        assert (0xB1, 64, 0) in [d for _, d in received]
        assert sorted((d[0] & 0x0F, d[1]) for _, d in offs) == sorted(
            (d[0] & 0x0F, d[1]) for _, d in ons)  # every note ended
        assert {d[0] for _, d in received if d[1] == 123} == {0xB1, 0xB2}  # all-notes-off
        plan = _planned(clip)
        errors = []
        for t, d in ons:
            beat = plan[(d[0] & 0x0F) + 1, d[1]].pop(0)
            errors.append(t - (tick0 + beat * 24 * spt))
        scheduled = pedal[:-1]  # the last is Stop's
        for (t, _), beat in zip(scheduled, [bar + offset for bar in (0, 4) for offset, _ in PEDAL],
                                strict=True):
            errors.append(t - (tick0 + beat * 24 * spt))
        measured[:] = errors
        worst = max(abs(e) for e in errors)
        detail = [(d[0] & 0x0F, d[1], round(e * 1e3, 2))
                  for (_, d), e in zip(ons + scheduled, errors, strict=True)]
        assert worst <= tolerance, f"timing errors (channel-1, pitch, ms): {detail}"

    run_scenario(jack, scenario)
    ms = sorted(abs(e) * 1e3 for e in measured)
    with capsys.disabled():
        print(f"\nMIDI streaming vs clock on JACK (period {jack.period_s * 1e3:.2f} ms): "
              f"median {statistics.median(ms):.2f} ms, max {ms[-1]:.2f} ms, "
              f"spread {(max(measured) - min(measured)) * 1e3:.2f} ms over {len(ms)} notes "
              "and pedal changes")


def _planned(clip: Clip) -> dict[tuple[int, int], list[float]]:
    """(channel, pitch) -> note-on beats the fake engine's result plays, in order."""
    plan: dict[tuple[int, int], list[float]] = {}
    for start in range(0, int(clip.length_beats), 4):
        for pitch in (48, 52, 55):
            plan.setdefault((2, pitch), []).append(float(start))
    for n in clip.notes:
        plan.setdefault((3, n.pitch - 12), []).append(n.start_beats)
    return plan


# ---- ports that go away -------------------------------------------------------------------

@needs_jack
def test_virtual_ports_come_back_after_the_jack_server_restarts(
    jack: jack_server.JackServer, session: Session, monkeypatch: pytest.MonkeyPatch,
) -> None:
    own = jack_server.start()
    monkeypatch.setenv("JACK_DEFAULT_SERVER", own.name)
    reports = Reports()
    adapter = None
    try:
        adapter = MidiAdapter(session, api="UNIX_JACK", on_report=reports, watch_s=0.05)
        assert {f"{IN_PORT_NAME}:{IN_PORT_NAME}", f"{OUT_PORT_NAME}:{OUT_PORT_NAME}"} <= set(
            jack_server.ports(own.name))
        jack_server.stop(own)
        assert "JACK server went away" in reports.wait("lost")
        own = jack_server.start(own.name)
        reports.wait("back")
        assert f"{IN_PORT_NAME}:{IN_PORT_NAME}" in jack_server.ports(own.name)
        assert adapter.ports.reopened == 1
    finally:
        if adapter is not None:
            adapter.close()
        with contextlib.suppress(RuntimeError):
            assert leftovers(own.name) == []
        jack_server.stop(own)
    assert not list(jack_server.SHM_DIR.glob(f"jack_*{own.name}*"))


@needs_jack
def test_a_vanished_daw_port_is_reported_and_reopened(
    jack: jack_server.JackServer, session: Session, engine: FakeEngine,
) -> None:
    def scenario() -> None:
        reports = Reports()
        with jack_server.daw_client() as daw:
            daw.open_virtual("DAW to bridge", "DAW from bridge")
            adapter = MidiAdapter(session, api="UNIX_JACK", in_match="daw to bridge",
                                  out_match="daw from bridge", on_report=reports,
                                  watch_s=0.05)
            try:
                daw.quit_and_restart()
                assert "vanished" in reports.wait("lost")
                daw.open_virtual("DAW to bridge", "DAW from bridge")  # and comes back
                reports.wait("back")
                script = song(BPM, time.monotonic() + 0.2, 4.0, MELODY[:3])
                daw.perform(script)
                clip = engine.clips.get(timeout=WAIT)
                assert [n.pitch for n in clip.notes] == [60, 64, 67]
                # The output was re-connected too: the result's all-notes-off comes back.
                reports.wait("result")
                daw.drain()
                daw.perform(song(BPM, time.monotonic() + 0.1, 0.5))
                got = daw.collect(lambda m: any(d[:2] == (0xB2, 123) for _, d in m))
                assert any(d[:2] == (0xB2, 123) for _, d in got)
            finally:
                adapter.close()

    run_scenario(jack, scenario)


@needs_jack
def test_auto_api_picks_jack_only_when_a_server_answers(
    jack: jack_server.JackServer, session: Session, monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert resolve_api("auto") == rtmidi.API_UNIX_JACK
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jack_server.unique_name("absent"))
    assert resolve_api("auto") != rtmidi.API_UNIX_JACK
    reports = Reports()
    adapter = MidiAdapter(session, api="UNIX_JACK", on_report=reports)  # waits for a server
    try:
        assert "not open yet" in reports.wait("lost")
        assert not adapter.ports.is_open
    finally:
        adapter.close()


@needs_jack
def test_cli_starts_and_stops_a_server_leaving_nothing_behind() -> None:
    import subprocess
    import sys

    name = jack_server.unique_name("accobridge-cli")
    root = Path(__file__).resolve().parents[1]
    started = subprocess.run([sys.executable, "-m", "tests.jack_server", "start", name],
                             cwd=root, capture_output=True, text=True, timeout=60, check=False)
    try:
        assert started.returncode == 0, started.stderr
        assert f"JACK_DEFAULT_SERVER={name}" in started.stdout
        assert jack_server.ports(name)  # answers
    finally:
        subprocess.run([sys.executable, "-m", "tests.jack_server", "stop", name], cwd=root,
                       capture_output=True, timeout=60, check=True)
    assert jack_server.lsp(name).returncode != 0
    assert not list(jack_server.SHM_DIR.glob(f"jack_*{name}*"))
    assert not any(p.exists() for p in jack_server.state_paths(name)[:1])


@needs_jack
def test_killed_servers_leave_no_slot_behind() -> None:
    """jack2 has 8 server slots; a server killed outright keeps its slot and segments until
    `stop` frees them. Nine kill -9 in a row must not run out."""
    for _ in range(9):
        server = jack_server.start(jack_server.unique_name("accobridge-kill"))
        assert server.process is not None
        server.process.kill()
        jack_server.stop(server)
        assert not [n for _, n in jack_server.registered_servers() if server.name in n]
        assert not list(jack_server.SHM_DIR.glob(f"jack_*{server.name}*"))
