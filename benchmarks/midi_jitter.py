"""MIDI streaming timing vs the DAW's clock on JACK (goal: jitter <= 2 ms).

    python -m benchmarks.midi_jitter [--periods 256 64] [--bpm 123] [--bars 8] [--stall-ms 150]

For each JACK period it starts a private dummy server (tests/jack_server.py), opens the
bridge's virtual ports (`MidiAdapter`, JACK API) with a fake engine, and has a DAW double send
a one-bar take with its clock, then play the song again while the result streams back: 16th
notes on channel 3 and a chord per beat on channel 2 for `--bars` bars. It prints, in ms:

- sender: when the sender thread called `send` vs the note's deadline on the bridge's
  clock estimate (what the bridge's own timing adds);
- clock estimate: the bridge's beat->time map vs the DAW's clock as it went out (JACK stamps
  input at the cycle that received it: 0-1 period late);
- end to end: arrival at the DAW double vs the DAW's clock (error), and jitter = error minus
  its median (a constant offset is latency, not jitter). RtMidi's JACK backend sends at the
  start of the next cycle, so at 256 frames expect up to a period (5.3 ms) of spread.

`--stall-ms N` forces an xrun: a helper JACK client feeding "AccoBridge In" (so the bridge's
input runs after it in the graph) is stopped (SIGSTOP) for N ms in bar 2 of the playback; the
bridge's input misses its cycles and loses the clock ticks meanwhile. It adds the error per bar.
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import median_p95
from bridge.midi.adapter import MidiAdapter
from bridge.midi.ports import JACK_SETTLE_S, WATCH_S, jack_uptime_s
from bridge.session import Session
from bridge.store import ClipStore
from bridge.types import Clip, ClipNote, GenerateResult, JobContext
from tests import jack_server

GOAL_MS = 2.0


class DenseEngine:
    """A result of `bars` bars: a triad per beat (channel 2), 16th notes (channel 3)."""

    def __init__(self, bars: int) -> None:
        self.bars = bars

    def __call__(self, clip: Clip, options: Mapping[str, Any], ctx: JobContext
                 ) -> GenerateResult:
        beats = self.bars * 4
        chords = tuple(ClipNote(p, float(b), 0.9, 70) for b in range(beats) for p in (48, 52, 55))
        piano = tuple(ClipNote(60 + (i * 5) % 24, i / 4, 0.2, 64) for i in range(beats * 4))
        return GenerateResult(ctx.request_id, ctx.source, {"chords": chords, "piano": piano})


STALLER = """
import sys, rtmidi
from bridge.midi.ports import match_port
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=sys.argv[1])
out.open_port(match_port(out.get_ports(), "AccoBridge In"), name="stall")
print("ready", flush=True)
sys.stdin.readline()
out.close_port()
out.delete()
"""


@contextlib.contextmanager
def staller(server: str) -> Iterator[subprocess.Popen[bytes]]:
    """A JACK client feeding "AccoBridge In", in a process of its own to stop (SIGSTOP)."""
    process = subprocess.Popen(
        [sys.executable, "-c", STALLER, f"{jack_server.DAW} staller"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, env=jack_server.client_env(server))
    assert process.stdin is not None and process.stdout is not None
    try:
        assert process.stdout.readline().strip() == b"ready"
        yield process
    finally:
        process.send_signal(signal.SIGCONT)
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(jack_server.WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(jack_server.WAIT)


def perform_stalling(daw: jack_server.Daw, script: Sequence[tuple[float, Sequence[int]]],
                     stall: tuple[float, float] | None, process: subprocess.Popen[bytes] | None
                     ) -> list[float]:
    """`daw.perform(script)`, stopping `process` from stall[0] to stall[1] on the way."""
    if stall is None or process is None:
        return daw.perform(script)
    sent: list[float] = []
    pending = [(stall[0], signal.SIGSTOP), (stall[1], signal.SIGCONT)]
    for item in script:
        while pending and pending[0][0] <= item[0]:
            when, signum = pending.pop(0)
            while time.monotonic() < when:  # a performance's timing, not synchronisation
                time.sleep(0.0005)
            process.send_signal(signum)
        sent += daw.perform([item])
    return sent


def settled(server: jack_server.JackServer) -> None:
    """Wait (bounded) until the server has run `JACK_SETTLE_S`: clients opened earlier can
    stall the graph for good (bridge.midi.ports)."""
    deadline = time.monotonic() + jack_server.START_TIMEOUT_S
    while (jack_uptime_s() or 0.0) < JACK_SETTLE_S + 0.1 and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the socket's age: nothing to wait on


def measure(period: int, bpm: float, bars: int, watch_s: float = WATCH_S,
            stall_ms: float = 0.0) -> dict[str, list[float]]:
    server = jack_server.start(period=period)
    results: queue.Queue[str] = queue.Queue()
    try:
        with jack_server.as_default(server.name), tempfile.TemporaryDirectory() as folder:
            settled(server)
            session = Session(DenseEngine(bars), ClipStore(Path(folder)))
            adapter = MidiAdapter(session, api="UNIX_JACK", watch_s=watch_s,
                                  on_report=lambda kind, _: results.put(kind))
            try:
                with jack_server.daw_client() as daw, contextlib.ExitStack() as stack:
                    stalled = stack.enter_context(staller(server.name)) if stall_ms else None
                    daw.connect()
                    daw.perform(jack_server.song(bpm, time.monotonic() + 0.3, 4.0,
                                                 [(60, 0.0, 1.0), (64, 2.0, 3.0)]))
                    while results.get(timeout=jack_server.WAIT) != "result":
                        pass
                    daw.drain()
                    t0 = time.monotonic() + 0.3
                    script = jack_server.song(bpm, t0, bars * 4 + 0.5)
                    stall_at = t0 + 5.5 * 60 / bpm  # bar 2, beat 2.5
                    sent = perform_stalling(daw, script, (stall_at, stall_at + stall_ms / 1e3)
                                            if stall_ms else None, stalled)
                    # Only the Stop of this pass ends it: the all-notes-off of the recording
                    # pass's Stop can still arrive after the drain on a loaded machine.
                    received = daw.collect(lambda got: sum(
                        t >= sent[-1] - 0.01 and d[1] == 123 for t, d in got
                        if d[0] & 0xF0 == 0xB0) >= 2)
                    timing = list(adapter.sender.timing)
            finally:
                adapter.close()
                session.close()
        missed = server.missed_cycles()
    finally:
        jack_server.stop(server)
    tick0, spt = jack_server.fit_ticks(sent, script)
    planned = _planned(DenseEngine(bars), bars)
    errors, bars_of = [], []
    for t, data in received:
        if data[0] & 0xF0 == 0x90 and data[2] > 0:
            # The nearest planned note of that channel and pitch: a lost one (JACK drops the
            # events of a client that misses its cycle) must not shift the rest.
            beats = planned[(data[0] & 0x0F) + 1, data[1]]
            beat = min(beats, key=lambda b: abs(t - (tick0 + b * 24 * spt)))
            beats.remove(beat)
            errors.append(t - (tick0 + beat * 24 * spt))
            bars_of.append(int(beat // 4))
    expected = len(_notes(DenseEngine(bars), bars))
    if len(errors) != expected or missed:
        print(f"  {expected - len(errors)} of {expected} notes did not arrive; jackd reported "
              f"{len(missed)} missed cycles")
    median = statistics.median(errors)
    first = min(beats for beats, _, _ in timing)
    steady = [(b, d, s) for b, d, s in timing if b > first]
    return {
        "sender": [sent_at - deadline for _, deadline, sent_at in steady],
        "first": [sent_at - deadline for beats, deadline, sent_at in timing if beats == first],
        "clock": [deadline - (tick0 + beats * 24 * spt) for beats, deadline, _ in steady],
        "error": errors,
        "jitter": [e - median for e in errors],
        **{f"bar {bar + 1}": [e for e, b in zip(errors, bars_of, strict=True) if b == bar]
           for bar in range(bars)},
    }


def _notes(engine: DenseEngine, bars: int) -> list[tuple[int, int, float]]:
    clip = Clip("midi", "bench", bars * 4.0, 120.0, 4, 4, ())
    context = JobContext("bench", "midi", lambda f, m: None, lambda: False)
    result = engine(clip, {}, context)
    channels = {"chords": 2, "piano": 3}
    return [(channels[part], n.pitch, n.start_beats)
            for part, notes in result.parts.items() for n in notes]


def _planned(engine: DenseEngine, bars: int) -> dict[tuple[int, int], list[float]]:
    plan: dict[tuple[int, int], list[float]] = {}
    for channel, pitch, beat in sorted(_notes(engine, bars), key=lambda n: n[2]):
        plan.setdefault((channel, pitch), []).append(beat)
    return plan


def _row(label: str, values: Sequence[float], absolute: bool = True) -> str:
    if not values:
        return f"  {label:<34} (no data)"
    ms = [abs(v) * 1e3 if absolute else v * 1e3 for v in values]
    median, p95 = median_p95(ms)
    return f"  {label:<34} median {median:6.2f}  p95 {p95:6.2f}  max {max(ms):6.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--periods", type=int, nargs="+", default=[256, 64])
    parser.add_argument("--bpm", type=float, default=123.0)
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--watch-s", type=float, default=WATCH_S,
                        help="port watchdog interval (default %(default)s s)")
    parser.add_argument("--stall-ms", type=float, default=0.0,
                        help="force an xrun of this many ms in bar 2 (default: none)")
    args = parser.parse_args(argv)
    if not jack_server.jackd_available():
        print("jackd not installed: apt-get install --no-install-recommends jackd2")
        return 1
    for period in args.periods:
        data = measure(period, args.bpm, args.bars, args.watch_s, args.stall_ms)
        jitter_max = max(abs(v) for v in data["jitter"]) * 1e3
        sender_max = max(abs(v) for v in data["sender"]) * 1e3 if data["sender"] else 0.0
        print(f"JACK dummy, 48000 Hz, period {period} ({period / 48:.2f} ms), {args.bpm:g} bpm, "
              f"{len(data['error'])} notes")
        print(_row("sender: send call vs deadline", data["sender"]))
        print(_row("  the run's first beat (reacting)", data["first"]))
        print(_row("clock estimate vs DAW clock (late)", data["clock"], absolute=False))
        print(_row("end to end vs DAW clock: error", data["error"], absolute=False))
        print(_row("jitter (error - its median)", data["jitter"]))
        if args.stall_ms:
            print(f"  xrun: the bridge's input stopped {args.stall_ms:g} ms in bar 2")
            for bar in range(1, args.bars + 1):
                print(_row(f"  bar {bar}: error", data[f"bar {bar}"], absolute=False))
        print(f"  goal <= {GOAL_MS:g} ms: sender {'met' if sender_max <= GOAL_MS else 'MISSED'}"
              f" ({sender_max:.2f}), end to end {'met' if jitter_max <= GOAL_MS else 'missed'}"
              f" ({jitter_max:.2f}; JACK period {period / 48:.2f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
