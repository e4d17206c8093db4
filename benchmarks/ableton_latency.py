"""Ableton live mode: a user's edit in Live → the new parts in Live (goal: median ≤ 0.8 s).

    python -m benchmarks.ableton_latency [--edits 24] [--engine authored|serve|fake]

Runs the real AbletonOSC handlers over the shared harness's stub Live (tests/ableton_harness.py,
needs ../shared; macOS's 9,216-byte datagram limit on), an 8-bar melody clip selected, and the
Ableton adapter in live mode (`serve --ableton`'s set-up) with its default poll. Each edit
transposes the whole clip (remove all notes + add them again), sent as a user would from a
separate UDP socket; the time runs from sending it until the adapter reports the request done,
which it does only after reading both bridge tracks' clips back from Live and finding the new
parts there. Prints the median and p90 over the edits, the ratio of the median to the goal, and
the engine's share (median time inside generate).

Engines: "authored" (default) is ui.engine_link.generate with the authored texture library, as
benchmarks/bridge_roundtrip.py uses it; "serve" is generate with serve's default options;
"fake" is a trivial part maker (the adapter and Live alone).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from benchmarks.common import percentile
from bridge.ableton import AbletonAdapter, LiveApi
from bridge.ableton.osc_client import encode
from bridge.session import Session
from bridge.store import ClipStore
from bridge.types import Clip, GenerateResult, JobContext
from engine.demo import demo_melody
from tests.ableton_harness import HARNESS_MISSING, Events, Harness, fake_generate, seed_file

GOAL_S = 0.8
ENGINES: dict[str, Mapping[str, Any]] = {"authored": {"library": "default"}, "serve": {},
                                         "fake": {}}


def melody_notes(bars: int = 8) -> list[tuple[int, float, float, int]]:
    melody = demo_melody()
    tpb = melody.ticks_per_beat
    return [(n.pitch, n.start_tick / tpb, n.duration_tick / tpb, 90) for n in melody.notes
            if n.start_tick < bars * 4 * tpb]


def engine(name: str, spent: list[float]) -> Callable[[Clip, Mapping[str, Any], JobContext],
                                                       GenerateResult]:
    if name == "fake":
        make = fake_generate
    else:
        from ui.engine_link import generate as make

    def timed(clip: Clip, options: Mapping[str, Any], ctx: JobContext) -> GenerateResult:
        start = time.perf_counter()
        try:
            return make(clip, options, ctx)
        finally:
            spent.append(time.perf_counter() - start)

    return timed


def measure(edits: int, engine_name: str, folder: Path) -> tuple[list[float], list[float]]:
    notes = melody_notes()
    seed = seed_file(folder, "Melody", notes, 32.0)
    spent: list[float] = []
    with Harness(["--tracks", "2", "--scenes", "2", "--max-datagram", "9216",
                  "--seed-clip", "0", "0", str(seed)]) as harness, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as user:
        api = LiveApi("127.0.0.1", harness.port, listen_port=harness.reply_port)
        session = Session(engine(engine_name, spent), ClipStore(folder / "sessions"))
        events = Events()
        adapter = AbletonAdapter(api, session, on_event=events)
        done: set[str] = set()

        def next_done() -> str:
            rid, _, _ = events.wait_for(lambda rid, kind, p: rid not in done | {""}
                                        and kind == "status" and p[0] in ("done", "failed"))
            assert events.seen[-1][2][0] == "done", events.seen[-4:]
            done.add(rid)
            return rid

        try:
            first = adapter.start_live(ENGINES[engine_name])
            assert first is not None, adapter.waiting_for
            next_done()
            times = []
            for edit in range(1, edits + 1):
                shift = edit % 5 + 1 if edit % 2 else -(edit % 5 + 1)  # every edit differs
                args: list[Any] = [0, 0]
                for pitch, start, duration, velocity in notes:
                    args += [pitch + shift, start, duration, velocity, False]
                sent = time.monotonic()
                user.sendto(encode("/live/clip/remove/notes", (0, 0, 0, 128, -8192.0, 16384.0)),
                            ("127.0.0.1", harness.port))
                user.sendto(encode("/live/clip/add/notes", tuple(args)),
                            ("127.0.0.1", harness.port))
                next_done()
                times.append(time.monotonic() - sent)
            if harness.errors():
                print(f"AbletonOSC errors: {harness.errors()[:3]}", file=sys.stderr)
            return times, spent[1:]
        finally:
            adapter.close()
            session.close()
            api.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=int, default=24)
    parser.add_argument("--engine", choices=sorted(ENGINES), default="authored")
    args = parser.parse_args(argv)
    if HARNESS_MISSING is not None:
        print(f"skipped: {HARNESS_MISSING}")
        return 0
    with tempfile.TemporaryDirectory() as folder:
        times, spent = measure(args.edits, args.engine, Path(folder))
    median, p90 = statistics.median(times), percentile(times, 0.9)
    print(f"edit -> parts in Live, {len(times)} edits, engine {args.engine!r}: "
          f"median {median * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms "
          f"(engine median {statistics.median(spent) * 1000:.0f} ms); "
          f"median / goal {GOAL_S * 1000:.0f} ms = {median / GOAL_S:.2f}")
    return 0 if median <= GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
