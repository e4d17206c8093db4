"""The shared AbletonOSC harness (../shared/tools/abletonosc_harness) for tests and benchmarks:
the real AbletonOSC handlers (../shared/vendor/AbletonOSC, MIT, 0ca6821) over a stub Live, in
their own process on private UDP ports. `HARNESS_MISSING` is the reason to skip where ../shared
is not there. `Events` collects an Ableton adapter's events (tests on the harness and on the
double share it)."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from bridge.types import Clip, ClipControl, ClipNote, GenerateResult, JobContext

SHARED = Path(__file__).resolve().parents[2] / "shared"
RUNNER = SHARED / "tools" / "abletonosc_harness" / "run_abletonosc.py"
ABLETONOSC = SHARED / "vendor" / "AbletonOSC"
HARNESS_MISSING = (None if RUNNER.exists() and ABLETONOSC.is_dir() else
                   f"the AbletonOSC harness is not here ({RUNNER.parent} and {ABLETONOSC})")
START_S = 60.0  # the runner extracts AbletonOSC and builds the set: seconds on a busy machine
ERROR_PREFIX = "[abletonosc ERROR]"  # the runner's stderr line for each /live/error sent


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def seed_file(folder: Path, name: str, notes: Sequence[Sequence[float]],
              length_beats: float) -> Path:
    """A `--seed-clip` file: notes as [pitch, start, duration, velocity(, mute)]."""
    path = folder / f"seed-{name}-{len(list(folder.glob('seed-*')))}.json"
    path.write_text(json.dumps({"name": name, "length": length_beats,
                                "notes": [list(n) for n in notes]}))
    return path


def fake_generate(clip: Clip, options: Mapping[str, Any], ctx: JobContext) -> GenerateResult:
    """Chords: each melody note an octave down. Piano: `piano_notes` notes spread evenly;
    {"pedal": True}: the sustain pedal down over the first half of the clip."""
    chords = tuple(ClipNote(max(0, n.pitch - 12), n.start_beats, n.duration_beats, 70, 2)
                   for n in clip.notes)
    count = int(options.get("piano_notes", 8))
    step = clip.length_beats / count
    piano = tuple(ClipNote(36 + i % 48, i * step, step / 2, 60 + i % 40, 3) for i in range(count))
    pedal = (ClipControl(step / 4, 64, 127, 3), ClipControl(clip.length_beats / 2, 64, 0, 3))
    return GenerateResult(ctx.request_id, ctx.source, {"chords": chords, "piano": piano},
                          controls={"piano": pedal} if options.get("pedal") else {})


ENDINGS = frozenset({"done", "failed", "superseded", "cancelled"})


class Events:
    """Adapter events by request; `wait_end(id)` returns a request's events up to its end,
    `wait_for(predicate)` the first event that matches. Bounded waits (`wait_s`)."""

    def __init__(self, wait_s: float = 30.0) -> None:
        self._queue: queue.Queue[tuple[str, str, object]] = queue.Queue()
        self._wait_s = wait_s
        self.seen: list[tuple[str, str, object]] = []

    def __call__(self, request_id: str, kind: str, payload: object) -> None:
        self._queue.put((request_id, kind, payload))

    def next(self) -> tuple[str, str, object]:
        event = self._queue.get(timeout=self._wait_s)
        self.seen.append(event)
        return event

    def wait_for(self, predicate: Callable[[str, str, Any], bool]) -> tuple[str, str, Any]:
        while True:
            event = self.next()
            if predicate(*event):
                return event

    def wait_end(self, request_id: str) -> list[tuple[str, Any]]:
        self.wait_for(lambda rid, kind, payload: rid == request_id and kind == "status"
                      and payload[0] in ENDINGS)
        return [(k, p) for r, k, p in self.seen if r == request_id]

    def wait_done(self, request_id: str) -> tuple[Any, ...]:
        """The request's WrittenParts, once it ended "done"."""
        events = self.wait_end(request_id)
        assert events[-1][1][0] == "done", events
        written = next(p for k, p in events if k == "written")
        assert isinstance(written, tuple)
        return written


class Harness:
    """One runner process: `Harness(args).start()` waits (bounded) for its READY line;
    `close()` stops it. `port`/`reply_port` are where AbletonOSC listens and answers;
    `errors()` lists the `/live/error`s it has sent so far."""

    def __init__(self, args: Sequence[str] = (), *, port: int | None = None,
                 reply_port: int | None = None) -> None:
        self.port = port or free_udp_port()
        self.reply_port = reply_port or free_udp_port()
        self._args = [str(a) for a in args]
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._lock = threading.Lock()

    def start(self) -> Harness:
        self._proc = subprocess.Popen(
            [sys.executable, str(RUNNER), str(ABLETONOSC), "--port", str(self.port),
             "--reply-port", str(self.reply_port), *self._args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        threading.Thread(target=self._read, args=(self._proc.stdout, self._lines.put),
                         daemon=True, name="harness-stdout").start()
        threading.Thread(target=self._read, args=(self._proc.stderr, self._keep),
                         daemon=True, name="harness-stderr").start()
        deadline = time.monotonic() + START_S
        seen = []
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.close()
                raise RuntimeError("the AbletonOSC harness did not start:\n" + "".join(seen) +
                                   "".join(self._stderr))
            seen.append(line)
            if line.startswith("READY"):
                return self

    def errors(self) -> list[str]:
        with self._lock:
            return [line for line in self._stderr if line.startswith(ERROR_PREFIX)]

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=START_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> Harness:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _keep(self, line: str | None) -> None:
        if line is not None:
            with self._lock:
                self._stderr.append(line)

    @staticmethod
    def _read(stream: object, put: object) -> None:
        assert hasattr(stream, "readline") and callable(put)
        for line in iter(stream.readline, ""):
            put(line)
        put(None)
