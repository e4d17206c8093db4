"""REAPER edit → import: the real AccoBridge.lua (under lua5.4, with the stub REAPER of
tests/reaper_stub.py, its deferred loop run every DEFER_S as REAPER does) and the real bridge
(`ReaperSpool` polling every 0.1 s as `serve` does, the session, the engine with the authored
library). Each run edits one note of a 32-bar take, at a random moment of the script's loop, and
times it until the parts are inserted (the end of the script's undo block), split into edit →
clip written, clip → answer written and answer → inserted.

    python -m benchmarks.reaper_latency [--runs 20] [--bars 32]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import median_p95
from benchmarks.harmonize_speed import long_melody
from bridge.reaper import LUA_SCRIPT, ReaperSpool
from bridge.session import Session
from bridge.store import ClipStore
from tests.reaper_stub import HARNESS, LUA, lua_literal
from ui.engine_link import generate

DEFER_S = 0.033  # REAPER runs deferred functions about 30 times a second
PPQ = 960
WAIT_S = 60.0


class Script:
    """AccoBridge.lua in an interactive stub REAPER, ticked by the caller."""

    def __init__(self, root: Path, bars: int) -> None:
        melody = long_melody(bars)
        scale = PPQ / melody.ticks_per_beat
        notes = [[round(n.start_tick * scale), round(n.end_tick * scale), 0, n.pitch, 90, False]
                 for n in melody.notes]
        state = root / "extstate.txt"
        state.write_text('AccoBridge/options\t{"library":"default"}\n')
        (root / "sent").mkdir()
        config = {
            "script": str(LUA_SCRIPT), "resource": str(root), "state_file": str(state),
            "report": str(root / "report.txt"), "loops": 0, "interactive": True,
            "sent_dir": str(root / "sent"), "tracks": ["Melody", "Keys"],
            "take_guid": "{BENCH}", "take_name": "Melody", "notes": notes, "item_start_qn": 0.0,
            "item_length_qn": bars * 4.0, "tempo": 96.0, "ts_num": 4, "ts_den": 4, "steps": {},
        }
        harness = root / "harness.lua"
        harness.write_text(f"local CONFIG = {lua_literal(config)}\n"
                           + HARNESS.replace("local CONFIG = ...", "", 1))
        assert LUA is not None, "lua5.4 is not installed"
        self._lua = subprocess.Popen([LUA, str(harness)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=root)

    def _send(self, line: str) -> None:
        assert self._lua.stdin is not None
        self._lua.stdin.write(line + "\n")
        self._lua.stdin.flush()

    def edit(self, semitones: int) -> None:
        self._send(f"edit {semitones}")

    def tick(self) -> list[str]:
        """One pass of the deferred loop; what the stub recorded in it."""
        self._send(f"tick {time.monotonic()}")
        assert self._lua.stdout is not None
        records = []
        while (line := self._lua.stdout.readline().rstrip("\n")) != "done":
            assert line, "the stub REAPER stopped"
            records.append(line)
        return records

    def until(self, kind: str | None, wait_s: float = WAIT_S) -> float:
        """Tick every DEFER_S until a record of `kind` (None: for `wait_s`); when it came
        (monotonic)."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            started = time.monotonic()
            if any(r.split("\t")[0] == kind for r in self.tick()):
                return time.monotonic()
            time.sleep(max(0.0, DEFER_S - (time.monotonic() - started)))  # REAPER's pace
        if kind is not None:
            raise TimeoutError(f"no {kind!r} within {wait_s} s")
        return time.monotonic()

    def close(self) -> None:
        self._send("quit")
        self._lua.wait(10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--bars", type=int, default=32)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["ACCOBRIDGE_DATA_DIR"] = str(root / "data")  # the authored library
        answered: list[float] = []
        answer = threading.Event()

        def on_activity(what: str, seq: int) -> None:
            if what in ("result", "error"):
                answered.append(time.monotonic())
                answer.set()

        session = Session(generate, ClipStore(root / "sessions"))
        spool = ReaperSpool(root / "AccoBridge" / "spool", session, on_activity=on_activity)
        script = Script(root, args.bars)
        try:
            script.until("undo_end")  # warm: library load, first analysis
            totals, to_clip, to_answer, to_import = [], [], [], []
            rng = random.Random(1)
            for run in range(args.runs):
                script.until(None, rng.uniform(0.0, 0.5))  # an edit comes at any moment
                answer.clear()
                edited = time.monotonic()
                script.edit(1 + run % 5)
                clip = script.until("clip")
                inserted = script.until("undo_end")
                assert answer.is_set()
                totals.append((inserted - edited) * 1000)
                to_clip.append((clip - edited) * 1000)
                to_answer.append((answered[-1] - clip) * 1000)
                to_import.append((inserted - answered[-1]) * 1000)
        finally:
            script.close()
            spool.close()
            session.close()
    for name, values in (("edit → parts inserted", totals), ("  edit → clip written", to_clip),
                         ("  clip → answer written", to_answer),
                         ("  answer → parts inserted", to_import)):
        med, p95 = median_p95(values)
        print(f"{name}, {args.bars} bars: median {med:.0f} ms, p95 {p95:.0f} ms")


if __name__ == "__main__":
    main()
