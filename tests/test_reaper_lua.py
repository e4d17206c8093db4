"""AccoBridge.lua under a real Lua 5.4 (Debian's `lua5.4`) with a stub `reaper` table.

The stub (`tests/reaper_stub.py`) models one project: tracks, items, MIDI takes, ExtState,
undo blocks and `reaper.defer`, whose functions the harness runs a fixed number of times;
every change it records, and any misuse as a violation. "Steps" act between loop iterations as
the bridge or the user would: answer the newest clip, edit notes, select an item.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.reaper import LUA_SCRIPT, ReaperSpool, default_spool_folder
from bridge.reaper.spool_format import (
    HEADER,
    SpoolClip,
    format_error,
    format_result,
    parse_clip,
    parse_file_name,
    result_file_name,
    status_file_name,
)
from bridge.types import (
    MAX_CLIP_NOTES,
    ChordSymbol,
    Clip,
    ClipControl,
    ClipNote,
    GenerateResult,
)
from tests.reaper_stub import HARNESS, LUA, lua_literal

PPQ = 960
ITEM_START_QN = 8.0
ITEM_LENGTH_QN = 12.0
TEMPO = 120.0
TAKE_GUID = "{6F1B2C3D-0000-4000-8000-00000000A001}"
# (start_ppq, end_ppq, chan 0-15, pitch, velocity, muted)
NOTES: tuple[tuple[int, int, int, int, int, bool], ...] = (
    (0, 480, 0, 60, 100, False),
    (480, 960, 0, 62, 90, False),
    (960, 2880, 1, 64, 80, False),
    (1440, 1920, 0, 65, 80, True),  # muted: not sent
    (10_560, 11_040, 0, 67, 0, False),  # velocity 0 is sent as 1
    (11_520, 12_480, 0, 69, 80, False),  # starts at the item end: not sent
)
EXPECTED_NOTES = (
    ClipNote(60, 0.0, 0.5, 100, 1),
    ClipNote(62, 0.5, 0.5, 90, 1),
    ClipNote(64, 1.0, 2.0, 80, 2),
    ClipNote(67, 11.0, 0.5, 1, 1),
)

@dataclass(frozen=True)
class Run:
    records: list[list[str]]

    def kind(self, kind: str) -> list[list[str]]:
        return [r[1:] for r in self.records if r[0] == kind]

    @property
    def console(self) -> list[str]:
        return [r[0] for r in self.kind("console")]


class Reaper:
    """One stub REAPER: a resource folder and ExtState that persist between runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.resource = root / "REAPER"
        self.resource.mkdir()
        self.spool = self.resource / "AccoBridge" / "spool"
        self.state_file = root / "extstate.txt"
        self.sent = root / "sent"  # a copy of every clip the script published
        self.sent.mkdir()
        self.runs = 0

    def run(self, loops: int = 6, steps: Mapping[int, Mapping[str, object]] | None = None,
            notes: Sequence[tuple[int, int, int, int, int, bool]] = NOTES) -> Run:
        self.runs += 1
        report = self.root / f"report-{self.runs}.txt"
        config = {
            "script": str(LUA_SCRIPT), "resource": str(self.resource),
            "state_file": str(self.state_file), "report": str(report), "loops": loops,
            "sent_dir": str(self.sent),
            "tracks": ["Melody", "Keys"], "take_guid": TAKE_GUID, "take_name": "Lead\tline",
            "notes": [list(n) for n in notes], "item_start_qn": ITEM_START_QN,
            "item_length_qn": ITEM_LENGTH_QN, "tempo": TEMPO, "ts_num": 3, "ts_den": 4,
            "steps": dict(steps or {}),
        }
        harness = self.root / "harness.lua"
        harness.write_text(f"local CONFIG = {lua_literal(config)}\n"
                           + HARNESS.replace("local CONFIG = ...", "", 1))
        assert LUA is not None
        done = subprocess.run([LUA, str(harness)], capture_output=True, text=True, timeout=60,
                              cwd=self.root, check=False)
        assert done.returncode == 0, done.stderr
        run = Run([line.split("\t") for line in report.read_text().splitlines()])
        assert run.kind("violation") == []
        assert run.kind("missing") == []
        assert not [m for m in run.console if "internal error" in m], run.console
        return run

    def clip_files(self) -> list[Path]:
        return sorted(self.spool.glob("clip-*"))

    def template(self, name: str, text: str) -> str:
        path = self.root / name
        path.write_text(text)
        return str(path)


def answer_result() -> GenerateResult:
    return GenerateResult(
        request_id="reaper-0", source="reaper",
        parts={"chords": (ClipNote(48, 0.0, 3.0, 70, 2), ClipNote(52, 0.0, 3.0, 70, 2)),
               "piano": (ClipNote(36, 0.0, 1.0, 80, 3), ClipNote(60, 1.5, 0.5, 75, 3),
                         ClipNote(64, 12.0, 2.0, 60, 3))},
        chords=(ChordSymbol(0.0, 3.0, "C"), ChordSymbol(3.0, 3.0, "Am7/G")),
        summary={"key": "C major"},
        controls={"piano": (ClipControl(0.0, 64, 127, 3), ClipControl(1.5, 64, 0, 3),
                            ClipControl(1.5, 64, 127, 3), ClipControl(14.0, 64, 0, 3))},
    )


@pytest.fixture
def reaper_stub(tmp_path: Path) -> Reaper:
    """Tests that run the script take this; the static checks below run without Lua."""
    if LUA is None:
        pytest.skip("lua5.4 is not installed (Debian package 'lua5.4'; CI installs it)")
    return Reaper(tmp_path)


def test_sends_the_selected_take_as_a_clip_in_beats(reaper_stub: Reaper) -> None:
    run = reaper_stub.run(loops=6)
    files = reaper_stub.clip_files()
    assert [f.suffix for f in files] == [".txt"]  # renamed from .tmp: nothing half-written
    kind_seq = parse_file_name(files[0].name)
    assert kind_seq is not None and kind_seq[0] == "clip"
    document = parse_clip(files[0].read_bytes())
    assert document.seq == kind_seq[1]
    assert document.clip == Clip("reaper", "Lead line", ITEM_LENGTH_QN, TEMPO, 3, 4,
                                 EXPECTED_NOTES)
    assert (document.track, document.bar) == ("Melody", 3)  # 8 quarter notes into 3/4
    assert [r[0] for r in run.kind("clip")] == [str(document.seq)]
    assert run.kind("undo_begin") == []
    assert any("watching" in m for m in run.console)


def test_an_unchanged_take_is_not_sent_again(reaper_stub: Reaper) -> None:
    reaper_stub.run(loops=8)
    (first,) = reaper_stub.clip_files()
    first.unlink()  # the bridge took it
    second = reaper_stub.run(loops=8)  # the script restarted; the take is as it was
    assert reaper_stub.clip_files() == []
    assert second.kind("clip") == []


def test_imports_the_result_in_one_undo_block_then_removes_it(reaper_stub: Reaper) -> None:
    reaper_stub.run(loops=3)
    (clip_file,) = reaper_stub.clip_files()
    seq = parse_clip(clip_file.read_bytes()).seq
    clip_file.unlink()
    result_path = reaper_stub.spool / result_file_name(seq)
    result_path.write_text(format_result(seq, answer_result()))

    run = reaper_stub.run(loops=3)  # a restarted script still knows what it waits for

    assert not result_path.exists()
    assert reaper_stub.clip_files() == [] and run.kind("clip") == []
    kinds = [r[0] for r in run.records if r[0] not in ("console", "final_track", "final_item")]
    assert kinds[0] == "undo_begin" and kinds[-1] == "undo_end"
    assert kinds.count("undo_begin") == 1 and kinds.count("undo_end") == 1
    assert run.kind("insert_track") == [["1"], ["2"]]  # below the melody, in part order
    assert run.kind("track_name") == [["AccoBridge Chords"], ["AccoBridge Piano"]]
    items = [(track, float(start), float(end)) for track, start, end in run.kind("create_item")]
    assert items == [  # at the source item; the piano's last note ends after it
        ("AccoBridge Chords", ITEM_START_QN, ITEM_START_QN + ITEM_LENGTH_QN),
        ("AccoBridge Piano", ITEM_START_QN, ITEM_START_QN + 14.0),
    ]
    notes = [(track, float(s), float(e), int(ch), int(p), int(v), no_sort)
             for track, s, e, ch, p, v, no_sort in run.kind("note")]
    assert notes == [
        ("AccoBridge Chords", 0.0, 2880.0, 1, 48, 70, "true"),
        ("AccoBridge Chords", 0.0, 2880.0, 1, 52, 70, "true"),
        ("AccoBridge Piano", 0.0, 960.0, 2, 36, 80, "true"),
        ("AccoBridge Piano", 1440.0, 1920.0, 2, 60, 75, "true"),
        ("AccoBridge Piano", 11_520.0, 13_440.0, 2, 64, 60, "true"),
    ]
    # the sustain pedal: CC 64 on the piano's channel, down/up as the result says
    assert [(t, float(ppq), int(msg), int(ch), int(cc), int(v))
            for t, ppq, msg, ch, cc, v in run.kind("cc")] == [
        ("AccoBridge Piano", 0.0, 0xB0, 2, 64, 127), ("AccoBridge Piano", 1440.0, 0xB0, 2, 64, 0),
        ("AccoBridge Piano", 1440.0, 0xB0, 2, 64, 127),
        ("AccoBridge Piano", 13_440.0, 0xB0, 2, 64, 0),
    ]
    assert run.kind("sort") == [["AccoBridge Chords"], ["AccoBridge Piano"]]
    assert [(t, float(ppq), kind, text) for t, ppq, kind, text in run.kind("text")] == [
        ("AccoBridge Chords", 0.0, "1", "C"), ("AccoBridge Chords", 2880.0, "1", "Am7/G"),
    ]
    assert run.kind("final_track") == [["1", "Melody", "1"], ["2", "AccoBridge Chords", "1"],
                                       ["3", "AccoBridge Piano", "1"], ["4", "Keys", "1"]]


def test_a_new_answer_replaces_only_the_items_the_script_made(reaper_stub: Reaper) -> None:
    template = reaper_stub.template("result.txt", format_result(0, answer_result()))
    edited = [*NOTES[:2], (960, 1920, 0, 71, 100, False)]
    run = reaper_stub.run(loops=8, steps={2: {"answer": template}, 4: {"notes": edited},
                                          6: {"answer": template}})
    seqs = [int(r[0]) for r in run.kind("clip")]
    assert len(seqs) == 2 and seqs[0] < seqs[1]
    assert run.kind("undo_begin") == [[], []]
    assert len(run.kind("insert_track")) == 2  # the second answer reuses the tracks
    deleted = run.kind("delete_item")
    assert sorted(track for track, _ in deleted) == ["AccoBridge Chords", "AccoBridge Piano"]
    assert all(guid.startswith("{NEW-") for _, guid in deleted)
    assert run.kind("final_track") == [["1", "Melody", "1"], ["2", "AccoBridge Chords", "1"],
                                       ["3", "AccoBridge Piano", "1"], ["4", "Keys", "1"]]
    assert reaper_stub.clip_files() == []


def test_error_and_malformed_answers_change_nothing(reaper_stub: Reaper) -> None:
    error = reaper_stub.template("error.txt", format_error(0, 2, "clip is 600 bars long"))
    malformed = reaper_stub.template(
        "bad.txt", format_result(0, answer_result()).replace("note 36 0.0", 'note 300 os.exit(1)')
    )
    edited = [*NOTES[:2], (960, 1920, 0, 71, 100, False)]
    run = reaper_stub.run(loops=7, steps={2: {"answer": error}, 4: {"notes": edited},
                                          6: {"answer": malformed}})
    assert run.kind("undo_begin") == [] and run.kind("create_item") == []
    assert any("no accompaniment (error 2): clip is 600 bars long" in m for m in run.console)
    assert any("unreadable answer" in m and "bad note" in m for m in run.console)
    assert list(reaper_stub.spool.glob("result-*")) == []


@pytest.mark.parametrize("bad", ["control 0.0 64 128 3", "control -1 64 0 3",
                                 "control 0.0 64 0 17", "control 0.0 64 0", "control x 64 0 3"])
def test_a_bad_control_line_changes_nothing(reaper_stub: Reaper, bad: str) -> None:
    text = format_result(0, answer_result()).replace("control 0.0 64 127 3", bad)
    assert bad in text
    run = reaper_stub.run(loops=4, steps={2: {"answer": reaper_stub.template("bad.txt", text)}})
    assert run.kind("undo_begin") == [] and run.kind("cc") == []
    assert any("unreadable answer" in m and "bad control" in m for m in run.console)


def test_never_sends_its_own_items_back(reaper_stub: Reaper) -> None:
    template = reaper_stub.template("result.txt", format_result(0, answer_result()))
    run = reaper_stub.run(loops=6, steps={2: {"answer": template}, 4: {"select_created": True}})
    assert len(run.kind("clip")) == 1
    assert len(run.kind("undo_begin")) == 1


EDITED = (*NOTES[:2], (960, 1920, 0, 71, 100, False))


def sent_clips(reaper_stub: Reaper, run: Run) -> list[SpoolClip]:
    """Each clip the run published, in order."""
    return [parse_clip((reaper_stub.sent / f"clip-{seq}.txt").read_bytes())
            for (seq,) in run.kind("clip")]


def test_edits_are_sent_while_the_imported_items_are_selected(reaper_stub: Reaper) -> None:
    """Issue 14: REAPER selects the items the script imports; edits to the melody made then
    went unnoticed, as the script only looked at the selection."""
    template = reaper_stub.template("result.txt", format_result(0, answer_result()))
    run = reaper_stub.run(loops=8, steps={2: {"answer": template}, 4: {"select_created": True},
                                          6: {"notes": EDITED}})
    first, edited = sent_clips(reaper_stub, run)
    assert edited.seq > first.seq
    assert (edited.track, [n.pitch for n in edited.clip.notes]) == ("Melody", [60, 62, 71])


def test_the_watch_moves_only_to_the_users_own_midi_item(reaper_stub: Reaper) -> None:
    run = reaper_stub.run(loops=10, steps={3: {"select_none": True}, 4: {"notes": EDITED},
                                           6: {"select_guid": "{USER-ITEM}"},
                                           8: {"notes": NOTES}})
    # the melody, its edit (nothing selected), the Keys item; then the melody is not watched
    assert [(c.track, len(c.clip.notes)) for c in sent_clips(reaper_stub, run)] == [
        ("Melody", 4), ("Melody", 3), ("Keys", 0)]


def test_a_seq_stored_far_ahead_of_the_clock_is_capped(reaper_stub: Reaper) -> None:
    """Issue 13: after the clock was set back, the stored seq stayed ahead and the bridge
    refused every clip as more than an hour ahead of its clock."""
    ahead = int((time.time() + 10 * 3600) * 1000)
    reaper_stub.state_file.write_text(f"AccoBridge/seq\t{ahead}\n")
    reaper_stub.run(loops=2)
    session = InstantSession()
    with ReaperSpool(reaper_stub.spool, session, start=False) as spool:
        spool.poll_once()
        assert spool.stats()["rejected"] == 0
    assert len(session.clips) == 1
    run = reaper_stub.run(loops=4, steps={2: {"notes": EDITED}})  # and the next one too
    assert len(run.kind("clip")) == 1


WAIT_LOOPS = 44  # 11 s of the stub's time: past the script's 10 s wait for an answer


def test_a_refused_clip_shows_the_bridges_reason(reaper_stub: Reaper) -> None:
    """Issue 13: a clip the bridge refused got no answer, and the script waited silently."""
    reaper_stub.run(loops=2)
    session = InstantSession()
    with ReaperSpool(reaper_stub.spool, session, start=False,  # its clock 2 h behind
                     wall_clock=lambda: time.time() - 7200) as spool:
        spool.poll_once()
        assert spool.stats()["rejected_seq_ahead"] == 1
    run = reaper_stub.run(loops=WAIT_LOOPS)
    refused = [m for m in run.console if "the bridge refused" in m]
    assert len(refused) == 1, run.console
    message = refused[0]
    assert re.fullmatch(r"AccoBridge: the bridge refused clip \d+: BadMessageError "
                        r"\(seq_ahead\): seq \d+ is 7[12]\d\d s ahead of this computer's clock.*",
                        message), message


@pytest.mark.parametrize(("bridge", "words"), [
    ("none", "has not been picked up in 10 s: is 'accobridge serve --reaper-spool' running"),
    ("took", "the bridge took clip"),
    ("working", None),
])
def test_an_unanswered_clip_is_reported_once(reaper_stub: Reaper, bridge: str,
                                             words: str | None) -> None:
    reaper_stub.run(loops=2)
    (clip,) = reaper_stub.clip_files()
    seq = parse_clip(clip.read_bytes()).seq
    if bridge != "none":
        clip.unlink()
    if bridge == "working":
        (reaper_stub.spool / status_file_name(seq)).write_text("progress")
    early = reaper_stub.run(loops=WAIT_LOOPS // 2)  # a restarted script waits afresh
    run = reaper_stub.run(loops=WAIT_LOOPS)
    assert [m for m in early.console if f"clip {seq}" in m] == []
    waiting = [m for m in run.console if f"clip {seq}" in m]
    assert len(waiting) == (0 if words is None else 1), waiting
    assert words is None or words in waiting[0]


class InstantSession:
    """Answers every clip at once with `answer_result()`, as the session's events would."""

    def __init__(self) -> None:
        self.clips: list[Clip] = []

    def submit(self, source: str, request_id: str, clip: Clip, options: object,
               on_event: object) -> None:
        assert callable(on_event)
        self.clips.append(clip)
        on_event("status", ("running", 0.5, "harmonizing"))
        result = answer_result()
        on_event("result", GenerateResult(request_id, source, result.parts, result.chords))
        on_event("status", ("done", 1.0, "done"))


def test_round_trip_through_the_bridge_spool(reaper_stub: Reaper) -> None:
    reaper_stub.run(loops=2)
    session = InstantSession()
    with ReaperSpool(reaper_stub.spool, session, start=False) as spool:
        spool.poll_once()
        assert spool.stats()["results_written"] == 1
    assert [c.notes for c in session.clips] == [EXPECTED_NOTES]
    run = reaper_stub.run(loops=2)
    assert len(run.kind("undo_begin")) == 1 and len(run.kind("note")) == 5
    assert list(reaper_stub.spool.glob("result-*")) == []


def test_the_script_executes_nothing_it_reads() -> None:
    code = "\n".join(line.split("--", 1)[0] for line in LUA_SCRIPT.read_text().splitlines())
    forbidden = re.findall(r"\b(load|loadstring|loadfile|dofile|require)\s*\(|os\.execute|"
                           r"io\.popen", code)
    assert forbidden == []


def test_the_script_agrees_with_the_bridge() -> None:
    text = LUA_SCRIPT.read_text()
    assert f'local HEADER = "{HEADER}"' in text
    assert f"local MAX_SEND_NOTES = {MAX_CLIP_NOTES + 1}" in text
    assert '"/AccoBridge/spool"' in text
    assert default_spool_folder().parts[-2:] == ("AccoBridge", "spool")
