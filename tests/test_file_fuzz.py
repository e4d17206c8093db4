"""The seeded file fuzzer (benchmarks.file_fuzz) in CI: a few hundred mutated MIDI and MusicXML
files each end as a melody or as one clear error, never a traceback, a timeout, a memory error
or a crash; and the fuzzer's own bounds (time, memory, a dying worker) hold. The long run is
`python3 -m benchmarks.file_fuzz --cases 4500`."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest

import engine
from benchmarks import file_fuzz
from benchmarks.file_fuzz import describe, make_case, run_fuzz, seed_files
from engine.midi_io import read_melody

CASES, SEED = 300, 2024


def test_mutated_files_end_in_a_melody_or_a_clear_error() -> None:
    report = run_fuzz(CASES, SEED, jobs=2)
    totals = Counter(key.split(":")[0] for key in report.outcomes.elements())
    assert report.cases == CASES
    assert report.bad_count == 0, describe(report, SEED)
    assert totals["ok"] > 10 and totals["error"] > 100, describe(report, SEED)  # it bites


@pytest.mark.filterwarnings("ignore::engine.melody_source.MelodyWarning")  # the Flute's chord
def test_seed_files_are_valid(tmp_path: Path) -> None:
    for name, _, data in seed_files():
        (tmp_path / name).write_bytes(data)
        assert len(read_melody(tmp_path / name).notes) >= 8, name


def test_a_case_is_the_same_file_every_time() -> None:
    assert make_case(5, 17) == make_case(5, 17)
    assert {make_case(5, i).data for i in range(20)} != {make_case(6, i).data for i in range(20)}


def test_the_fuzzer_bounds_each_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A case that hangs, allocates without end, raises or kills its worker is counted as such
    and the run goes on (the workers are forked, so they see this test's stand-in reader)."""
    calls = tmp_path / "calls"
    calls.mkdir()

    def hostile_reader(path: Path) -> None:
        n = len(list(calls.iterdir()))
        (calls / str(n)).touch()
        if n == 0:
            time.sleep(60)
        elif n == 1:
            bytearray(4 << 30)
        elif n == 2:
            raise KeyError("steps")
        elif n == 3:
            os._exit(3)
        raise engine.BadInputError(f"{path.name}: clear")

    monkeypatch.setattr(file_fuzz, "_warm_up", lambda: None)
    monkeypatch.setattr(engine, "load_melody", hostile_reader)
    report = run_fuzz(5, SEED, jobs=1, case_seconds=2, headroom=256 << 20)
    outcomes = Counter(key.split(":")[0] for key in report.outcomes.elements())
    assert outcomes == {"timeout": 1, "memory": 1, "traceback": 1, "crash": 1, "error": 1}
    assert report.bad_count == 4 and [index for index, _ in report.bad] == [0, 1, 2, 3]
