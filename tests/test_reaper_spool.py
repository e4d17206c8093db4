"""The REAPER spool: its text format (round trips, every validation error, file names) and
`ReaperSpool` against a fake session, polled with `poll_once()`; one test runs the real thread
and session, waiting on events. A seeded fuzz run feeds 10,000 mutated spool files.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bridge.errors import BadMessageError, ClipTooLargeError, ErrorCode
from bridge.protocol import MAX_PART_CONTROLS
from bridge.reaper import spool as spool_module
from bridge.reaper.spool import ReaperSpool
from bridge.reaper.spool_folder import MAX_REJECTED_KEPT
from bridge.reaper.spool_format import (
    HEADER,
    MAX_CLIP_FILE_BYTES,
    MAX_SEQ,
    SpoolClip,
    SpoolError,
    SpoolResult,
    SpoolStatus,
    clip_file_name,
    format_clip,
    format_error,
    format_result,
    format_status,
    is_temporary_name,
    parse,
    parse_clip,
    parse_file_name,
    result_file_name,
    status_file_name,
)
from bridge.reaper.spool_jobs import STATUS_INTERVAL_S
from bridge.session import Session
from bridge.store import ClipStore
from bridge.types import (
    MAX_CLIP_BARS,
    MAX_CLIP_NOTES,
    ChordSymbol,
    Clip,
    ClipControl,
    ClipNote,
    GenerateResult,
    JobContext,
)

WAIT_S = 10.0  # only reached when a test is about to fail
EventCallback = Callable[[str, object], None]


def melody(n: int = 8, name: str = "Verse", key_hint: str | None = None) -> Clip:
    notes = tuple(ClipNote(60 + i % 12, i * 0.5, 0.5, 90, 1) for i in range(n))
    return Clip("reaper", name, max(4.0, n * 0.5), 96.5, 3, 4, notes, key_hint)


def accompaniment(request_id: str, clip: Clip) -> GenerateResult:
    return GenerateResult(
        request_id, "reaper",
        {"chords": tuple(ClipNote(n.pitch - 12, n.start_beats, 1.5, 70, 2) for n in clip.notes),
         "piano": tuple(ClipNote(n.pitch - 24, n.start_beats, 0.25, 64, 3) for n in clip.notes)},
        (ChordSymbol(0.0, 3.0, "C"), ChordSymbol(3.0, 3.0, "G7/B")),
        {"key": "C major", "phrases": ["A4"]},
        {"piano": (ClipControl(0.0, 64, 127, 3), ClipControl(2.75, 64, 0, 3))},
    )


def clip_text(seq: int, clip: Clip | None = None, options: Mapping[str, Any] | None = None) -> str:
    return format_clip(seq, clip or melody(), options)


# ---- format: round trips ---------------------------------------------------------------------


def test_clip_round_trip() -> None:
    clip = melody(20, "Lead é ✓", "A minor")
    options = {"style": "pop", "seed": 3, "parts": ["chords", "piano"], "density": 0.5}
    text = format_clip(42, clip, options)
    assert text.startswith(f"{HEADER}\nseq 42\nkind clip\n") and text.endswith("\nend\n")
    document = parse_clip(text.encode("utf-8"))
    assert document == SpoolClip(42, clip, options)
    assert parse_clip(format_clip(MAX_SEQ, melody(0))).clip.notes == ()


def test_the_items_track_and_bar_round_trip_and_old_clips_still_read() -> None:
    clip = melody(6, "untitled MIDI item")
    document = parse_clip(format_clip(9, clip, track="Drums 'n' Bass", bar=-2))
    assert document == SpoolClip(9, clip, track="Drums 'n' Bass", bar=-2)
    old = parse_clip(format_clip(9, clip))  # a script before these fields
    assert (old.track, old.bar, old.clip) == (None, None, clip)
    with pytest.raises(BadMessageError, match="bar"):
        format_clip(9, clip, bar=10**7)


def test_clip_round_trip_keeps_exact_floats() -> None:
    notes = (ClipNote(0, 0.0, 1 / 3, 1, 16), ClipNote(127, 1e-7, 2.5e-5, 127, 1),
             ClipNote(64, 2999.789, 0.1, 64, 9))
    clip = Clip("reaper", "", 3000.0, 1.0, 99, 64, notes)  # 485 bars
    assert parse_clip(format_clip(1, clip)).clip == clip


def test_result_error_and_status_round_trip() -> None:
    result = accompaniment("reaper-7", melody())
    document = parse(format_result(7, result))
    assert isinstance(document, SpoolResult) and document.seq == 7
    assert document.result == result
    assert list(document.result.parts) == ["chords", "piano"]
    assert parse(format_error(7, 2, "too large")) == SpoolError(7, 2, "too large")
    assert parse(format_status(7, "running", 0.25, "phrase 2/4")) == SpoolStatus(
        7, "running", 0.25, "phrase 2/4")


def test_format_forces_part_channels_and_fits_free_text() -> None:
    result = GenerateResult("r1", "reaper", {"piano": (ClipNote(60, 0.0, 1.0, 80, 9),)},
                            (ChordSymbol(0.0, 4.0, "Cmaj7\t#11" + "x" * 40),))
    parsed = parse(format_result(1, result))
    assert isinstance(parsed, SpoolResult)
    assert parsed.result.parts["piano"][0].channel == 3
    assert parsed.result.chords[0].symbol == ("Cmaj7 #11" + "x" * 40)[:32]
    error = parse(format_error(1, 3, "first line\nsecond\r\nthird " + "é" * 1000))
    assert isinstance(error, SpoolError)
    assert error.message.startswith("first line second  third ")
    assert len(error.message.encode("utf-8")) <= 1024
    renamed = parse_clip(format_clip(1, melody(name="two\nlines")))
    assert renamed.clip.name == "two lines"


def test_windows_line_ends_are_accepted() -> None:
    text = clip_text(3).replace("\n", "\r\n")
    assert parse_clip(text.encode()).clip == melody()
    assert parse_clip(clip_text(3).rstrip("\n")).clip == melody()  # no final newline


@pytest.mark.parametrize(("make", "message"), [
    (lambda: format_clip(1, melody(), {"x": float("nan")}), "options"),
    (lambda: format_clip(1, Clip("reaper", "", 4.0, 120.0, 4, 4,
                                 (ClipNote(128, 0.0, 1.0, 90, 1),))), "pitch"),
    (lambda: format_clip(1, Clip("reaper", "", 4.0, 0.5, 4, 4, ())), "tempo_bpm"),
    (lambda: format_clip(-1, melody()), "seq"),
    (lambda: format_result(1, GenerateResult("r", "s", {"bass_line": ()})), "bass_line"),
    (lambda: format_result(1, GenerateResult("r", "s", {}, (ChordSymbol(-1.0, 1.0, "C"),))),
     "start_beats"),
    (lambda: format_result(1, GenerateResult("bad id", "s", {})), "request"),
    (lambda: format_error(1, 100, "x"), "code"),
    (lambda: format_status(1, "Running", 0.5, ""), "state"),
    (lambda: format_status(1, "running", 1.5, ""), "progress"),
])
def test_format_refuses_invalid_values(make: Callable[[], str], message: str) -> None:
    with pytest.raises(BadMessageError, match=message):
        make()


def test_format_refuses_too_large_clips() -> None:
    notes = tuple(ClipNote(60, i * 0.25, 0.25, 90, 1) for i in range(MAX_CLIP_NOTES + 1))
    with pytest.raises(ClipTooLargeError):
        format_clip(1, Clip("reaper", "", 4.0, 120.0, 4, 4, notes))


# ---- format: every validation error ---------------------------------------------------------

GOOD = clip_text(5, melody(2), {"style": "pop"})
GOOD_LINES = GOOD.splitlines()  # header, seq, kind, name, length, tempo, ts, options, 2 notes, end


def with_line(index: int, line: str | None) -> str:
    """GOOD with line `index` (0-based) replaced, or removed when `line` is None."""
    lines = list(GOOD_LINES)
    if line is None:
        del lines[index]
    else:
        lines[index] = line
    return "\n".join(lines) + "\n"


def inserted(index: int, line: str) -> str:
    lines = list(GOOD_LINES)
    lines.insert(index, line)
    return "\n".join(lines) + "\n"


NOTE_LINE = 8
BAD_CLIPS: list[tuple[str, str | bytes, str, int]] = [
    # (id, text, reason, line)
    ("empty", "", "incomplete", 1),
    ("not_spool", "hello\n", "header", 1),
    ("lower_magic", with_line(0, "accobridge-spool 1"), "header", 1),
    ("version", with_line(0, "ACCOBRIDGE-SPOOL 2"), "version", 1),
    ("seq_missing", with_line(1, "kind clip"), "order", 2),
    ("seq_text", with_line(1, "seq five"), "value", 2),
    ("seq_negative", with_line(1, "seq -5"), "value", 2),
    ("seq_huge", with_line(1, f"seq {MAX_SEQ + 1}"), "value", 2),
    ("kind_unknown", with_line(2, "kind melody"), "kind", 3),
    ("missing_tempo", with_line(5, None), "missing", 8),
    ("duplicate_name", inserted(4, "name again"), "duplicate", 5),
    ("unknown_field", inserted(4, "colour red"), "order", 5),
    ("field_after_note", inserted(NOTE_LINE + 1, "name late"), "order", NOTE_LINE + 2),
    ("note_fields", with_line(NOTE_LINE, "note 60 0 1 90"), "parse", NOTE_LINE + 1),
    ("double_space", with_line(NOTE_LINE, "note 60  0 1 90 1"), "parse", NOTE_LINE + 1),
    ("pitch_high", with_line(NOTE_LINE, "note 128 0 1 90 1"), "value", NOTE_LINE + 1),
    ("pitch_float", with_line(NOTE_LINE, "note 60.0 0 1 90 1"), "value", NOTE_LINE + 1),
    ("velocity_zero", with_line(NOTE_LINE, "note 60 0 1 0 1"), "value", NOTE_LINE + 1),
    ("channel_17", with_line(NOTE_LINE, "note 60 0 1 90 17"), "value", NOTE_LINE + 1),
    ("duration_zero", with_line(NOTE_LINE, "note 60 0 0 90 1"), "value", NOTE_LINE + 1),
    ("start_negative", with_line(NOTE_LINE, "note 60 -1 1 90 1"), "value", NOTE_LINE + 1),
    ("start_nan", with_line(NOTE_LINE, "note 60 nan 1 90 1"), "value", NOTE_LINE + 1),
    ("start_inf", with_line(NOTE_LINE, "note 60 inf 1 90 1"), "value", NOTE_LINE + 1),
    ("start_overflow", with_line(NOTE_LINE, "note 60 1e999 1 90 1"), "value", NOTE_LINE + 1),
    ("start_hex", with_line(NOTE_LINE, "note 60 0x10 1 90 1"), "value", NOTE_LINE + 1),
    ("start_underscore", with_line(NOTE_LINE, "note 60 1_0 1 90 1"), "value", NOTE_LINE + 1),
    ("start_plus", with_line(NOTE_LINE, "note 60 +1 1 90 1"), "value", NOTE_LINE + 1),
    ("length_zero", with_line(4, "length_beats 0"), "value", 5),
    ("tempo_high", with_line(5, "tempo_bpm 1001"), "value", 6),
    ("ts_den", with_line(6, "ts 3 5"), "value", 7),
    ("ts_num", with_line(6, "ts 0 4"), "value", 7),
    ("ts_one_value", with_line(6, "ts 4"), "parse", 7),
    ("options_not_json", with_line(7, "options {style: pop}"), "json", 8),
    ("options_array", with_line(7, "options [1, 2]"), "json", 8),
    ("options_nan", with_line(7, 'options {"x": NaN}'), "json", 8),
    ("options_deep", with_line(7, "options " + "[" * 5000 + "]" * 5000), "value", 8),
    ("options_deep_short", with_line(7, "options " + "[" * 3000 + "]" * 3000), "json", 8),
    ("name_long", with_line(3, "name " + "x" * 257), "value", 4),
    ("track_long", inserted(4, "track " + "x" * 257), "value", 5),
    ("bar_text", inserted(4, "bar five"), "value", 5),
    ("bar_float", inserted(4, "bar 5.0"), "value", 5),
    ("bar_huge", inserted(4, "bar 1000001"), "value", 5),
    ("bar_twice", inserted(4, "bar 1\nbar 2"), "duplicate", 6),
    ("tab", with_line(3, "name a\tb"), "parse", 4),
    ("nul", with_line(3, "name a\x00b"), "parse", 4),
    ("lone_cr", with_line(3, "name a\rb"), "parse", 4),
    ("blank_line", inserted(4, ""), "parse", 5),
    ("upper_key", with_line(3, "Name x"), "parse", 4),
    ("no_end", "\n".join(GOOD_LINES[:-1]) + "\n", "incomplete", len(GOOD_LINES)),
    ("after_end", GOOD + "note 60 0 1 90 1\n", "parse", len(GOOD_LINES) + 1),
    ("line_long", with_line(3, "name " + "x" * 70_001), "size", 4),
    ("not_utf8", GOOD.replace("Verse", "Ve\udcffrse").encode("utf-8", "surrogateescape"),
     "utf8", 4),
    ("file_large", GOOD + "x" * MAX_CLIP_FILE_BYTES, "size", 0),
    ("many_lines", GOOD + "\n" * (2 * MAX_CLIP_NOTES + 64), "size", 0),
    ("result_kind", format_result(5, accompaniment("r", melody())), "kind", 3),
]


@pytest.mark.parametrize(("text", "reason", "line"), [case[1:] for case in BAD_CLIPS],
                         ids=[case[0] for case in BAD_CLIPS])
def test_every_clip_error_names_its_reason_and_line(text: str | bytes, reason: str,
                                                    line: int) -> None:
    with pytest.raises(BadMessageError) as caught:
        parse_clip(text)
    assert caught.value.reason == reason, caught.value
    assert isinstance(caught.value, ValueError)
    if line:
        assert str(caught.value).startswith(f"line {line}: "), caught.value


def test_a_clip_whose_seq_differs_from_its_file_name_is_refused() -> None:
    with pytest.raises(BadMessageError, match="line 2: seq 5 differs") as caught:
        parse_clip(GOOD, seq=6)
    assert caught.value.reason == "seq"


def test_too_many_notes_or_bars_is_too_large() -> None:
    notes = "".join(f"note 60 {i * 0.25} 0.25 90 1\n" for i in range(MAX_CLIP_NOTES + 1))
    text = "\n".join(GOOD_LINES[:NOTE_LINE]) + "\n" + notes + "end\n"
    with pytest.raises(ClipTooLargeError, match=f"line {NOTE_LINE + MAX_CLIP_NOTES + 1}:"):
        parse_clip(text)
    bars = MAX_CLIP_BARS * 3 + 1  # 3/4: three beats a bar
    with pytest.raises(ClipTooLargeError, match="bars"):
        parse_clip(with_line(4, f"length_beats {bars}"))
    with pytest.raises(ClipTooLargeError, match="bars"):
        parse_clip(with_line(NOTE_LINE, f"note 60 {bars} 1 90 1"))
    exactly = "\n".join(GOOD_LINES[:NOTE_LINE]) + "\n" + "".join(
        f"note 60 {i * 0.125} 0.125 90 1\n" for i in range(MAX_CLIP_NOTES)) + "end\n"
    assert len(parse_clip(exactly).clip.notes) == MAX_CLIP_NOTES


RESULT = format_result(9, accompaniment("reaper-9", melody(2))).splitlines()
# header, seq, kind, request, source, summary, part chords, 2 notes, part piano, 2 notes,
# 2 controls, 2 chords, end
CONTROL_LINE = 12


def result_with(index: int, line: str | None, insert: bool = False) -> str:
    lines = list(RESULT)
    if insert:
        lines.insert(index, line or "")
    elif line is None:
        del lines[index]
    else:
        lines[index] = line
    return "\n".join(lines) + "\n"


BAD_OTHERS: list[tuple[str, str, str, int]] = [
    ("missing_request", result_with(3, None), "missing", 6),
    ("bad_request", result_with(3, "request a/b"), "value", 4),
    ("summary_array", result_with(5, "summary []"), "json", 6),
    ("note_before_part", result_with(6, "note 48 0 1 70 2", insert=True), "order", 7),
    ("part_twice", result_with(9, "part chords 2"), "duplicate", 10),
    ("part_after_chord", result_with(len(RESULT) - 1, "part bass 4", insert=True), "order",
     len(RESULT)),
    ("note_after_chord", result_with(len(RESULT) - 1, "note 1 0 1 1 1", insert=True), "order",
     len(RESULT)),
    ("part_name", result_with(6, "part Chords 2"), "value", 7),
    ("part_channel", result_with(6, "part chords 0"), "value", 7),
    ("control_value", result_with(CONTROL_LINE, "control 0.0 64 128 3"), "value",
     CONTROL_LINE + 1),
    ("control_fields", result_with(CONTROL_LINE, "control 0.0 64 127"), "parse",
     CONTROL_LINE + 1),
    ("control_before_part", result_with(6, "control 0 64 0 3", insert=True), "order", 7),
    ("control_after_chord", result_with(len(RESULT) - 1, "control 0 64 0 3", insert=True),
     "order", len(RESULT)),
    ("chord_symbol_missing", result_with(len(RESULT) - 2, "chord 0 1"), "value",
     len(RESULT) - 1),
    ("chord_duration", result_with(len(RESULT) - 2, "chord 0 0 C"), "value", len(RESULT) - 1),
    ("error_code", format_error(1, 2, "x").replace("code 2", "code 0"), "value", 4),
    ("error_no_message", format_error(1, 2, "x").replace("message x\n", ""), "missing", 5),
    ("status_progress", format_status(1, "running", 0.5, "").replace("0.5", "1.5"), "value", 5),
    ("status_state", format_status(1, "running", 0.5, "").replace("state running",
                                                                    "state Running"), "value", 4),
    ("status_unknown", format_status(1, "running", 0.5, "").replace("state", "phase"), "order",
     4),
]


@pytest.mark.parametrize(("text", "reason", "line"), [case[1:] for case in BAD_OTHERS],
                         ids=[case[0] for case in BAD_OTHERS])
def test_every_answer_error_names_its_reason_and_line(text: str, reason: str, line: int) -> None:
    with pytest.raises(BadMessageError) as caught:
        parse(text)
    assert caught.value.reason == reason, caught.value
    assert str(caught.value).startswith(f"line {line}: "), caught.value


def test_result_limits() -> None:
    lines = [HEADER, "seq 1", "kind result", "request r"]
    lines += [f"part p{i} 1" for i in range(17)] + ["end"]
    with pytest.raises(BadMessageError, match="line 21: more than 16 parts"):
        parse("\n".join(lines))
    with pytest.raises(BadMessageError, match="result has 17 parts; at most 16"):
        format_result(1, GenerateResult("r", "s", {f"p{i}": () for i in range(17)}))
    with pytest.raises(BadMessageError, match="no MIDI channel"):
        format_result(1, GenerateResult("r", "s", {"p1": ()}))
    pedal = (ClipControl(0.0, 64, 127),) * (MAX_PART_CONTROLS + 1)
    with pytest.raises(BadMessageError, match="part piano has 200001 control changes"):
        format_result(1, GenerateResult("r", "s", {"piano": ()}, controls={"piano": pedal}))


def test_control_lines_follow_their_part_on_its_channel() -> None:
    result = accompaniment("reaper-3", melody(2))
    lines = format_result(3, replace(result, controls={
        "piano": (ClipControl(0.5, 64, 127, 9),), "chords": (ClipControl(1.0, 1, 5, 2),),
        "bass": (ClipControl(1.0, 64, 0),)})).splitlines()  # a part not in the result: dropped
    assert lines[lines.index("part chords 2") + 3] == "control 1.0 1 5 2"
    assert lines[lines.index("part piano 3") + 3] == "control 0.5 64 127 3"
    assert not any(line.startswith("control") and line.endswith(" 0 1") for line in lines)
    # a result without controls reads back with none
    plain = parse(format_result(3, replace(result, controls={})))
    assert isinstance(plain, SpoolResult) and plain.result.controls == {}


@pytest.mark.parametrize(("control", "words"), [
    (ClipControl(-0.5, 64, 0), "control 0 start_beats"),
    (ClipControl(float("nan"), 64, 0), "finite"),
    (ClipControl(0.0, 128, 0), "control 0 controller"),
    (ClipControl(0.0, 64, -1), "control 0 value"),
])
def test_format_refuses_invalid_controls(control: ClipControl, words: str) -> None:
    result = replace(accompaniment("r", melody(2)), controls={"piano": (control,)})
    with pytest.raises(BadMessageError, match=words):
        format_result(1, result)


# ---- file names ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["clip-0.txt", "clip-1.txt", "result-42.txt", "status-7.txt",
                                  f"clip-{MAX_SEQ}.txt"])
def test_spool_file_names(name: str) -> None:
    parsed = parse_file_name(name)
    assert parsed is not None
    kind, seq = parsed
    assert {"clip": clip_file_name, "result": result_file_name,
            "status": status_file_name}[kind](seq) == name


@pytest.mark.parametrize("name", [
    "clip-01.txt", "clip--1.txt", "clip-1.TXT", "CLIP-1.txt", "clip-1.txt.bak", "clip-1.txt ",
    " clip-1.txt", "clip-.txt", "clip-1", "clip-1.tmp", "clip-٣.txt", "clip-１.txt",
    f"clip-{MAX_SEQ + 1}.txt", "clip-99999999999999999.txt", "../clip-1.txt", "a/clip-1.txt",
    "clip-1.txt/..", "clip-1\x00.txt", "result-1.txt\n", "bridge.txt", "", "rejected",
])
def test_other_names_are_not_spool_files(name: str) -> None:
    assert parse_file_name(name) is None


def test_names_are_built_from_ints_only() -> None:
    for bad in (-1, MAX_SEQ + 1, True, 1.0, "1"):
        with pytest.raises(BadMessageError):
            clip_file_name(bad)  # type: ignore[arg-type]
    assert is_temporary_name("clip-5.tmp") and is_temporary_name(".result-5.txt.ab_c9.tmp")
    assert not is_temporary_name("clip-5.txt") and not is_temporary_name("../clip-5.tmp")


# ---- the spool ------------------------------------------------------------------------------


class FakeSession:
    """Records submissions; by default answers at once (on the caller's thread) the way the
    real session's events go: queued, running, result, done. `hold=True` keeps the callbacks
    for the test to fire."""

    def __init__(self, hold: bool = False, refuse: Exception | None = None) -> None:
        self.hold = hold
        self.refuse = refuse
        self.submitted: list[tuple[str, str, Clip, dict[str, Any]]] = []
        self.callbacks: dict[str, EventCallback] = {}

    def submit(self, source: str, request_id: str, clip: Clip, options: Mapping[str, Any],
               on_event: EventCallback) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.submitted.append((source, request_id, clip, dict(options)))
        self.callbacks[request_id] = on_event
        if not self.hold:
            on_event("status", ("queued", 0.0, "queued"))
            on_event("status", ("running", 0.0, "started"))
            on_event("result", accompaniment(request_id, clip))
            on_event("status", ("done", 1.0, "done"))


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def put(folder: Path, name: str, text: str | bytes) -> Path:
    """Write a file the way the script does: a temporary name, then a rename."""
    temp = folder / (name + ".partial")
    if isinstance(text, str):
        temp.write_text(text, encoding="utf-8")
    else:
        temp.write_bytes(text)
    final = folder / name
    os.replace(temp, final)
    return final


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "REAPER" / "AccoBridge" / "spool"


@pytest.fixture
def session() -> FakeSession:
    return FakeSession()


@pytest.fixture
def spool(folder: Path, session: FakeSession) -> Any:
    with ReaperSpool(folder, session, start=False) as s:
        yield s


def read_answer(folder: Path, seq: int) -> SpoolResult | SpoolError:
    document = parse((folder / result_file_name(seq)).read_bytes())
    assert isinstance(document, SpoolResult | SpoolError)
    return document


def test_folder_is_created(folder: Path, spool: ReaperSpool) -> None:
    assert folder.is_dir()


def test_clip_file_is_submitted_and_answered_atomically(
    folder: Path, session: FakeSession, spool: ReaperSpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        replaced.append((os.fspath(src), os.fspath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)  # the atomic writes of spool_folder
    clip = melody(12, "Chorus")
    put(folder, "clip-17.txt", format_clip(17, clip, {"style": "ballad"}))
    spool.poll_once()

    assert session.submitted == [("reaper", "reaper-17", clip, {"style": "ballad"})]
    answer = read_answer(folder, 17)
    assert isinstance(answer, SpoolResult)
    assert answer.result == accompaniment("reaper-17", clip)
    assert spool.stats()["status_written"] == 2  # queued, running; after the answer: gone
    # Every answer went through a temporary file in the same folder, then os.replace.
    result_writes = [(s, d) for s, d in replaced if d.endswith(result_file_name(17))]
    assert len(result_writes) == 1
    temp = Path(result_writes[0][0])
    assert temp.parent == folder and is_temporary_name(temp.name) and not temp.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["result-17.txt"]
    stats = spool.stats()
    assert stats["clips_received"] == 1 and stats["results_written"] == 1
    assert stats["highest_seq"] == 17 and stats["rejected"] == 0


def test_temporary_files_are_never_read(folder: Path, session: FakeSession,
                                        spool: ReaperSpool) -> None:
    (folder / "clip-3.tmp").write_text(clip_text(3)[:40])  # the script is still writing
    spool.poll_once()
    assert session.submitted == [] and (folder / "clip-3.tmp").exists()
    os.replace(folder / "clip-3.tmp", folder / "clip-3.txt")
    (folder / "clip-3.txt").write_text(clip_text(3))
    spool.poll_once()
    assert [s[1] for s in session.submitted] == ["reaper-3"]


def test_abandoned_temporary_files_are_deleted(folder: Path, session: FakeSession) -> None:
    clock = FakeClock()
    with ReaperSpool(folder, session, start=False, clock=clock) as spool:
        (folder / "clip-3.tmp").write_text("half")
        (folder / ".result-2.txt.abc123.tmp").write_text("half")
        spool.poll_once()
        clock.now += spool_module.ABANDONED_TMP_S - 1
        spool.poll_once()
        assert (folder / "clip-3.tmp").exists()
        clock.now += 1
        spool.poll_once()
        assert list(folder.iterdir()) == []
        assert spool.stats()["tmp_abandoned"] == 2


def test_stale_and_duplicate_seqs_are_ignored(folder: Path, session: FakeSession,
                                              spool: ReaperSpool) -> None:
    put(folder, "clip-10.txt", clip_text(10))
    spool.poll_once()
    put(folder, "clip-10.txt", clip_text(10, melody(3)))  # a duplicate
    put(folder, "clip-4.txt", clip_text(4))  # older
    spool.poll_once()
    assert [s[1] for s in session.submitted] == ["reaper-10"]
    assert spool.stats()["clips_stale"] == 2
    assert not (folder / "clip-10.txt").exists() and not (folder / "clip-4.txt").exists()


def test_only_the_newest_of_one_scan_is_submitted(folder: Path, session: FakeSession,
                                                  spool: ReaperSpool) -> None:
    for seq in (21, 23, 22):
        put(folder, clip_file_name(seq), clip_text(seq, melody(seq)))
    spool.poll_once()
    assert [(s[1], len(s[2].notes)) for s in session.submitted] == [("reaper-23", 23)]
    assert spool.stats()["clips_superseded"] == 2
    assert not list(folder.glob("clip-*"))


def test_answers_for_older_seqs_are_dropped_and_cleaned(folder: Path) -> None:
    session = FakeSession(hold=True)
    with ReaperSpool(folder, session, start=False) as spool:
        put(folder, "clip-5.txt", clip_text(5))
        spool.poll_once()
        session.callbacks["reaper-5"]("status", ("running", 0.1, "started"))
        spool.poll_once()
        assert (folder / status_file_name(5)).exists()
        put(folder, "clip-6.txt", clip_text(6))
        spool.poll_once()
        session.callbacks["reaper-5"]("result", accompaniment("reaper-5", melody()))
        session.callbacks["reaper-5"]("error", (3, "late"))
        session.callbacks["reaper-6"]("error", (77, "strange code"))
        spool.poll_once()
        assert not (folder / result_file_name(5)).exists()
        assert not (folder / status_file_name(5)).exists()  # the script waits for 6 only
        assert spool.stats()["results_dropped"] == 2
        answer = read_answer(folder, 6)
        assert answer == SpoolError(6, int(ErrorCode.ENGINE_ERROR), "strange code")


def test_status_progress_is_throttled(folder: Path) -> None:
    session = FakeSession(hold=True)
    clock = FakeClock()
    with ReaperSpool(folder, session, start=False, clock=clock) as spool:
        put(folder, "clip-5.txt", clip_text(5))
        spool.poll_once()
        send = session.callbacks["reaper-5"]
        for fraction in (0.1, 0.2, 0.3):
            send("status", ("running", fraction, f"at {fraction}"))
        spool.poll_once()
        assert spool.stats()["status_written"] == 1
        clock.now += STATUS_INTERVAL_S
        send("status", ("running", 0.4, "at 0.4"))
        send("status", ("running", float("nan"), "nan"))
        send("status", ("done", 1.0, "done"))
        spool.poll_once()
        assert spool.stats()["status_written"] == 3
        status = parse((folder / status_file_name(5)).read_bytes())
        assert status == SpoolStatus(5, "done", 1.0, "done")
        send("status", ("Weird State", 0.5, ""))
        send("mystery", None)
        spool.poll_once()
        assert spool.stats()["internal_errors"] == 2


def test_a_bad_newest_clip_gets_an_error_answer_and_is_kept_aside(
    folder: Path, session: FakeSession, spool: ReaperSpool
) -> None:
    put(folder, "clip-8.txt", GOOD.replace("note 60", "note 600"))
    spool.poll_once()
    answer = read_answer(folder, 8)
    assert isinstance(answer, SpoolError) and answer.code == ErrorCode.BAD_INPUT
    assert answer.message.startswith("clip-8.txt: line 9: note pitch")
    assert session.submitted == []
    rejected = folder / "rejected"
    assert (rejected / "clip-8.txt").exists()
    assert "line 9" in (rejected / "clip-8.txt.reason").read_text()
    stats = spool.stats()
    assert stats["rejected"] == 1 and stats["rejected_value"] == 1 and stats["highest_seq"] == 8

    beyond = with_line(NOTE_LINE, f"note 60 {MAX_CLIP_BARS * 3} 1 90 1")  # 3/4: 3 beats a bar
    put(folder, "clip-9.txt", beyond.replace("\nseq 5\n", "\nseq 9\n"))
    spool.poll_once()
    answer = read_answer(folder, 9)
    assert isinstance(answer, SpoolError) and answer.code == ErrorCode.TOO_LARGE
    assert spool.stats()["rejected_too_large"] == 1
    assert not (folder / result_file_name(8)).exists()  # superseded by 9's answer


def test_rejected_files_kept_are_capped(folder: Path, session: FakeSession) -> None:
    (folder / "rejected").mkdir(parents=True)
    (folder / "rejected" / "clip-1.txt").write_text("from an earlier run")
    clock = FakeClock()
    with ReaperSpool(folder, session, start=False, clock=clock) as spool:
        for seq in range(2, 2 + MAX_REJECTED_KEPT + 5):
            put(folder, clip_file_name(seq), "garbage\n")
            spool.poll_once()
            clock.now += spool_module.LOG_WINDOW_S  # each one is logged, so each one is kept
        kept = sorted(p.name for p in (folder / "rejected").glob("clip-*.txt"))
        assert len(kept) == MAX_REJECTED_KEPT
        assert "clip-1.txt" not in kept and f"clip-{1 + MAX_REJECTED_KEPT + 5}.txt" in kept
        assert len(list((folder / "rejected").glob("*.reason"))) == MAX_REJECTED_KEPT
        assert spool.stats()["rejected_header"] == MAX_REJECTED_KEPT + 5


def test_other_names_are_ignored_counted_once_and_left_alone(
    folder: Path, session: FakeSession, spool: ReaperSpool
) -> None:
    names = ["notes.txt", "clip-01.txt", "CLIP-2.TXT", "clip-3.txt.bak", "clip-٣.txt",
             "clip-99999999999999999.txt", ".DS_Store", "clip-4.txt~"]
    for name in names:
        (folder / name).write_text(clip_text(4))
    (folder / "a-folder").mkdir()
    spool.poll_once()
    spool.poll_once()
    assert session.submitted == []
    assert spool.stats()["ignored"] == len(names) + 1
    assert spool.stats()["ignored_name"] == len(names) + 1
    assert sorted(p.name for p in folder.iterdir()) == sorted([*names, "a-folder"])


def test_path_traversal_is_impossible(tmp_path: Path, folder: Path, session: FakeSession,
                                      spool: ReaperSpool) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(clip_text(30))  # a valid clip, outside the folder
    (folder / "clip-30.txt").symlink_to(secret)
    (folder / "clip-31.txt").mkdir()
    outside_before = sorted(p for p in tmp_path.rglob("*") if folder not in p.parents)
    # Content that names other places is only ever data.
    evil = clip_text(32, melody(name="../../../secret.txt"),
                     {"out": "../../x", "file": "/etc/passwd"})
    put(folder, "clip-32.txt", evil)
    put(folder, "clip-33.txt", clip_text(1))  # claims seq 1 inside: refused
    spool.poll_once()

    assert secret.read_text() == clip_text(30)  # never read, moved or deleted
    assert (folder / "clip-30.txt").is_symlink() and (folder / "clip-31.txt").is_dir()
    stats = spool.stats()
    assert stats["ignored_not_regular"] == 2
    assert stats["rejected_seq"] == 1
    assert session.submitted == []  # 32 was superseded by 33, the newest, which was bad
    outside_after = sorted(p for p in tmp_path.rglob("*") if folder not in p.parents)
    assert outside_after == outside_before
    assert sorted(p.name for p in folder.iterdir()) == [
        "clip-30.txt", "clip-31.txt", "rejected", "result-33.txt"]


def test_a_planted_reason_link_is_replaced_never_written_through(
    tmp_path: Path, folder: Path, session: FakeSession, spool: ReaperSpool
) -> None:
    """Issue 13: a planted ``rejected/clip-5.txt.reason`` link overwrote any file the user
    can write."""
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    (folder / "rejected").mkdir()
    (folder / "rejected" / "clip-5.txt.reason").symlink_to(precious)
    (folder / "rejected" / "clip-5.txt").symlink_to(precious)
    put(folder, "clip-5.txt", "garbage\n")
    spool.poll_once()
    assert precious.read_text() == "keep me"
    reason = folder / "rejected" / "clip-5.txt.reason"
    assert not reason.is_symlink() and "header" in reason.read_text()
    assert (folder / "rejected" / "clip-5.txt").read_text() == "garbage\n"
    assert isinstance(read_answer(folder, 5), SpoolError)


@pytest.mark.parametrize("kind", ["link", "file"])
def test_a_rejected_folder_that_is_a_link_or_a_file_is_refused(
    tmp_path: Path, folder: Path, session: FakeSession, spool: ReaperSpool,
    caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if kind == "link":
        (folder / "rejected").symlink_to(elsewhere, target_is_directory=True)
    else:
        (folder / "rejected").write_text("not a folder")
    put(folder, "clip-5.txt", "garbage\n")
    with caplog.at_level("WARNING", logger=spool_module.__name__):
        spool.poll_once()
    assert list(elsewhere.iterdir()) == []  # nothing sent elsewhere
    assert not (folder / "clip-5.txt").exists()  # deleted instead of kept
    assert isinstance(read_answer(folder, 5), SpoolError)  # the script still hears of it
    stats = spool.stats()
    assert stats["unsafe"] == 1 and stats["unsafe_rejected_folder"] == 1
    assert stats["rejected_header"] == 1
    what = "a symbolic link" if kind == "link" else "not a folder"
    assert any(what in r.getMessage() for r in caplog.records)


def test_a_poisoned_seq_is_rejected_and_later_clips_still_work(
    folder: Path, session: FakeSession, spool: ReaperSpool
) -> None:
    """Issue 13: one clip file with seq 2^53-1 made every later clip "not newer", deleted
    unread until restart, and the script waited forever."""
    put(folder, clip_file_name(MAX_SEQ), clip_text(MAX_SEQ))
    spool.poll_once()
    assert session.submitted == [] and spool.stats()["rejected_seq_ahead"] == 1
    assert not (folder / result_file_name(MAX_SEQ)).exists()  # no exchange is started
    put(folder, "clip-5.txt", clip_text(5))
    spool.poll_once()
    assert [s[1] for s in session.submitted] == ["reaper-5"]
    assert isinstance(read_answer(folder, 5), SpoolResult)
    # … and in one scan, the poisoned file does not supersede the script's clip
    put(folder, clip_file_name(MAX_SEQ - 1), clip_text(MAX_SEQ - 1))
    put(folder, "clip-6.txt", clip_text(6))
    spool.poll_once()
    assert [s[1] for s in session.submitted] == ["reaper-5", "reaper-6"]
    assert spool.stats()["highest_seq"] == 6


def test_the_seq_may_lead_the_clock_by_an_hour(folder: Path, session: FakeSession) -> None:
    now_s = 1_718_000_000.0
    limit = int((now_s + spool_module.MAX_SEQ_LEAD_S) * 1000)
    with ReaperSpool(folder, session, start=False, wall_clock=lambda: now_s) as spool:
        put(folder, clip_file_name(limit), clip_text(limit))
        spool.poll_once()
        put(folder, clip_file_name(limit + 1), clip_text(limit + 1))
        spool.poll_once()
    assert [s[1] for s in session.submitted] == [f"reaper-{limit}"]
    assert spool.stats()["rejected_seq_ahead"] == 1


def test_status_files_go_after_the_exchange_and_on_close(folder: Path) -> None:
    session = FakeSession(hold=True)
    with ReaperSpool(folder, session, start=False) as spool:
        put(folder, "clip-5.txt", clip_text(5))
        spool.poll_once()
        send = session.callbacks["reaper-5"]
        send("status", ("running", 0.5, "half"))
        spool.poll_once()
        assert (folder / status_file_name(5)).exists()
        send("result", accompaniment("reaper-5", melody()))
        send("status", ("done", 1.0, "done"))  # after the answer: nobody waits for it
        spool.poll_once()
        assert sorted(p.name for p in folder.iterdir()) == ["result-5.txt"]
        put(folder, "clip-6.txt", clip_text(6))
        spool.poll_once()
        session.callbacks["reaper-6"]("status", ("running", 0.1, "started"))
        spool.poll_once()
        assert (folder / status_file_name(6)).exists()
    assert not (folder / status_file_name(6)).exists()  # closed: it would never change again


def test_an_earlier_runs_leftovers_are_cleared_at_start(folder: Path,
                                                        session: FakeSession) -> None:
    folder.mkdir(parents=True)
    leftovers = [".result-3.txt.abc123.tmp", ".status-3.txt.x_y.tmp", "status-3.txt"]
    kept = ["result-3.txt", "clip-4.tmp", "notes.txt"]  # an answer, the script's, not ours
    for name in leftovers + kept:
        (folder / name).write_text("x")
    (folder / "status-9.txt").mkdir()  # not a regular file: left alone
    with ReaperSpool(folder, session, start=False):
        assert sorted(p.name for p in folder.iterdir()) == sorted([*kept, "status-9.txt"])


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_answers_follow_the_umask(folder: Path, session: FakeSession, umask: int) -> None:
    before = os.umask(umask)
    try:
        with ReaperSpool(folder, session, start=False) as spool:
            put(folder, "clip-1.txt", "garbage\n")
            spool.poll_once()
            put(folder, "clip-2.txt", clip_text(2))
            spool.poll_once()
    finally:
        os.umask(before)
    for path in (folder / result_file_name(2), folder / "rejected" / "clip-1.txt.reason"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


def test_content_names_are_data(folder: Path, session: FakeSession, spool: ReaperSpool) -> None:
    clip = melody(name="../../../etc/passwd")
    put(folder, "clip-40.txt", format_clip(40, clip, {"path": "../../x"}))
    spool.poll_once()
    assert session.submitted[0][2].name == "../../../etc/passwd"
    assert sorted(p.name for p in folder.iterdir()) == ["result-40.txt"]


def test_a_refusing_session_or_unwritable_result_becomes_an_error_answer(folder: Path) -> None:
    with ReaperSpool(folder, FakeSession(refuse=RuntimeError("session is closed")),
                     start=False) as spool:
        put(folder, "clip-1.txt", clip_text(1))
        spool.poll_once()
        assert read_answer(folder, 1) == SpoolError(1, 3, "could not queue: session is closed")

    session = FakeSession(hold=True)
    with ReaperSpool(folder, session, start=False) as spool:
        put(folder, "clip-2.txt", clip_text(2))
        spool.poll_once()
        session.callbacks["reaper-2"]("result", GenerateResult("reaper-2", "reaper",
                                                               {"drums": ()}))
        spool.poll_once()
        answer = read_answer(folder, 2)
        assert isinstance(answer, SpoolError) and answer.code == ErrorCode.ENGINE_ERROR
        assert "drums" in answer.message


def test_a_vanished_folder_is_created_again(folder: Path, session: FakeSession,
                                            spool: ReaperSpool) -> None:
    folder.rmdir()
    spool.poll_once()
    assert folder.is_dir()
    put(folder, "clip-1.txt", clip_text(1))
    spool.poll_once()
    assert len(session.submitted) == 1


def test_close_is_idempotent_and_stops_polling(folder: Path, session: FakeSession) -> None:
    spool = ReaperSpool(folder, session, start=False)
    spool.close()
    spool.close()
    put(folder, "clip-1.txt", clip_text(1))
    spool.poll_once()
    assert session.submitted == []


def test_the_thread_with_a_real_session(tmp_path: Path, folder: Path) -> None:
    def generate(clip: Clip, options: Mapping[str, Any], context: JobContext) -> GenerateResult:
        context.progress(0.5, "halfway")
        return accompaniment(context.request_id, clip)

    answered = threading.Event()
    activity: list[tuple[str, int]] = []

    def on_activity(what: str, seq: int) -> None:
        activity.append((what, seq))
        if what == "result":
            answered.set()

    session = Session(generate, ClipStore(tmp_path / "store"))
    try:
        spool = ReaperSpool(folder, session, poll_s=0.01, on_activity=on_activity)
        put(folder, "clip-77.txt", clip_text(77))
        assert answered.wait(WAIT_S)
        spool.close()
        spool.close()
    finally:
        session.close()
    assert activity == [("clip", 77), ("result", 77)]
    answer = read_answer(folder, 77)
    assert isinstance(answer, SpoolResult) and answer.result.request_id == "reaper-77"
    stored = session.last("reaper")
    assert stored is not None and stored.clip == melody()
    assert stored.result == answer.result  # the clip and its own result, one pair


def answered_by_the_engine(tmp_path: Path, folder: Path, seq: int, text: str) -> SpoolError:
    """`text` as clip `seq` through the spool's thread, the real session and the engine's
    generate; its answer, which must be an error."""
    from ui.engine_link import generate

    answered = threading.Event()
    session = Session(generate, ClipStore(tmp_path / "store"))
    try:
        with ReaperSpool(folder, session, poll_s=0.01,
                         on_activity=lambda what, _: what == "error" and answered.set()):
            put(folder, clip_file_name(seq), text)
            assert answered.wait(WAIT_S)
    finally:
        session.close()
    answer = read_answer(folder, seq)
    assert isinstance(answer, SpoolError)
    return answer


@pytest.mark.parametrize("take", ["untitled MIDI item", ""])
def test_an_error_names_the_items_real_track_and_bar(tmp_path: Path, folder: Path,
                                                      take: str) -> None:
    """Issue 14: a one-note drum item was reported as "melody has 1 note (track 'Melody')"."""
    drums = melody(1, take)
    answer = answered_by_the_engine(tmp_path, folder, 3,
                                    format_clip(3, drums, track="Drums", bar=5))
    assert answer.code == ErrorCode.BAD_INPUT
    assert answer.message == ("track 'Drums', item at bar 5: melody has 1 note; at least 4 "
                              "are needed")


def test_a_clip_from_an_older_script_keeps_the_engines_words(tmp_path: Path,
                                                             folder: Path) -> None:
    answer = answered_by_the_engine(tmp_path, folder, 4, format_clip(4, melody(1, "Hook")))
    assert answer.message == "melody has 1 note; at least 4 are needed (track 'Hook')"


def job_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == spool_module.__name__ and " in, " in r.getMessage()]


def test_one_log_line_per_job(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 14: successful jobs logged nothing."""
    caplog.set_level("INFO", logger=spool_module.__name__)
    session, clock = FakeSession(hold=True), FakeClock()
    with ReaperSpool(folder, session, start=False, clock=clock) as spool:
        put(folder, "clip-5.txt", format_clip(5, melody(8), track="Lead", bar=3))
        spool.poll_once()
        clock.now += 0.75
        send = session.callbacks["reaper-5"]
        send("status", ("running", 0.5, "harmonizing"))
        send("result", accompaniment("reaper-5", melody(8)))
        send("status", ("done", 1.0, "done"))
        put(folder, "clip-6.txt", clip_text(6))  # from a script that sends no track
        put(folder, "clip-7.txt", format_clip(7, melody(1), track="Drums", bar=9))
        spool.poll_once()  # 6 is superseded within the scan: never a job
        put(folder, "clip-8.txt", format_clip(8, melody(2, "Bass")))
        spool.poll_once()
        clock.now += 0.25
        session.callbacks["reaper-7"]("status", ("superseded", 0.0, "superseded by reaper-8"))
        session.callbacks["reaper-8"]("error", (2, "melody has 2 notes; at least 4 are "
                                                   "needed (track 'Bass')"))
        session.callbacks["reaper-8"]("status", ("failed", 0.0, "melody has 2 notes"))
        spool.poll_once()
    assert job_lines(caplog) == [
        "reaper spool: reaper clip 5 from track 'Lead', item at bar 3: 8 notes in, "
        "16 notes out (chords 8, piano 8), 0.75 s",
        "reaper spool: reaper clip 7 from track 'Drums', item at bar 9: 1 note in, "
        "superseded: 'superseded by reaper-8', 0.25 s",
        "reaper spool: reaper clip 8 from take 'Bass': 2 notes in, error 2: \"melody has 2 "
        "notes; at least 4 are needed (track 'Bass')\", 0.25 s",
    ]


def test_a_clip_the_session_refuses_is_logged_once(folder: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger=spool_module.__name__)
    refusing = FakeSession(refuse=RuntimeError("session is closed"))
    with ReaperSpool(folder, refusing, start=False) as spool:
        put(folder, "clip-1.txt", format_clip(1, melody(), track="Lead", bar=1))
        spool.poll_once()
    assert read_answer(folder, 1) == SpoolError(
        1, 3, "track 'Lead', item at bar 1: could not queue: session is closed")
    assert job_lines(caplog) == [
        "reaper spool: reaper clip 1 from track 'Lead', item at bar 1: 8 notes in, "
        "not queued: 'session is closed', 0.00 s",
    ]


# ---- fuzz -------------------------------------------------------------------------------

FUZZ_FILES = 10_000
FUZZ_BATCH = 250
EDGE_TOKENS = ["nan", "inf", "-inf", "1e999", "-1", "0", "128", "17", "0x10", "1_0", "+1", "",
               "9" * 30, "0.0", "-0", "1e-400", "99999999999999999999", "é", "{", "[]", "end",
               "\t", "\x00", "\r"]
JUNK_LINES = ["", " ", "end", "note", "note 60 0 1 90 1", "seq 1", "kind clip", "kind result",
              "name", "ts 4 4", "options {}", "options " + "[" * 3000 + "]" * 3000,
              "part chords 2", "chord 0 1 C", HEADER, "ACCOBRIDGE-SPOOL 9", "x" * 80_000]


def _mutate(rng: random.Random, text: str) -> bytes:
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(9)
        at = rng.randrange(len(lines)) if lines else 0
        if op == 0 and lines:  # a field gets an edge value
            words = lines[at].split(" ")
            words[rng.randrange(len(words))] = rng.choice(EDGE_TOKENS)
            lines[at] = " ".join(words)
        elif op == 1 and lines:
            del lines[at]
        elif op == 2:
            lines.insert(at, rng.choice(JUNK_LINES))
        elif op == 3 and len(lines) > 1:
            other = rng.randrange(len(lines))
            lines[at], lines[other] = lines[other], lines[at]
        elif op == 4 and lines:
            lines.insert(at, lines[at])
        elif op == 5:
            lines = lines[:at]
        elif op == 6 and lines:
            lines[at] = lines[at].replace(" ", rng.choice(["  ", "\t", "", " \r"]), 1)
        else:  # raw bytes: flips, inserts, invalid UTF-8
            data = bytearray("\n".join(lines).encode("utf-8"))
            for _ in range(rng.randint(1, 4)):
                pos = rng.randrange(len(data) + 1)
                data[pos:pos] = rng.choice([rng.randbytes(rng.randint(1, 8)), b"\xff", b"\xc3",
                                            b"\n", b"\r\n", b"\x00"])
            return bytes(data)
    return "\n".join(lines).encode("utf-8")


def _bad_name(rng: random.Random) -> str:
    alphabet = "clip-resultstatu.txtmp0123456789٣_ ~ABC"
    while True:
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20)))
        if (parse_file_name(name) is None and not is_temporary_name(name)
                and name not in ("rejected", ".", "..") and name.strip() == name):
            return name


def test_fuzz_every_bad_spool_file_is_counted(folder: Path, session: FakeSession) -> None:
    rng = random.Random(0xACC0)
    seeds = [clip_text(0, melody(n, name, key), options)
             for n, name, key, options in ((0, "", None, None), (5, "Verse é", "C major", None),
                                           (40, "Long", None, {"style": "pop", "seed": 1}))]
    seeds += [format_result(0, accompaniment("r", melody(4))), format_error(0, 1, "x"),
              format_status(0, "running", 0.5, "x")]
    bad_contents = good_contents = 0
    bad_names: set[str] = set()
    seq = 0
    with ReaperSpool(folder, session, start=False) as spool:
        for _ in range(FUZZ_FILES // FUZZ_BATCH):
            for _ in range(FUZZ_BATCH):
                seq += rng.randint(1, 3)
                seed = rng.choice(seeds).replace("\nseq 0\n", f"\nseq {seq}\n", 1)
                data = _mutate(rng, seed) if rng.random() < 0.9 else seed.encode("utf-8")
                try:
                    parse_clip(data, seq=seq)  # anything but our two errors fails the test
                except (BadMessageError, ClipTooLargeError):
                    bad_contents += 1
                else:
                    good_contents += 1
                (folder / clip_file_name(seq)).write_bytes(data)
                if rng.random() < 0.05:
                    name = _bad_name(rng)
                    if name not in bad_names:
                        (folder / name).write_bytes(data)
                        bad_names.add(name)
            spool.poll_once()

        stats = spool.stats()
        assert bad_contents + good_contents == FUZZ_FILES
        assert bad_contents > FUZZ_FILES // 2 and good_contents > FUZZ_FILES // 20
        assert stats["rejected"] == bad_contents
        assert sum(v for k, v in stats.items() if k.startswith("rejected_")) == bad_contents
        assert stats["clips_received"] + stats["clips_superseded"] == good_contents
        assert stats["ignored"] == len(bad_names)
        assert stats["internal_errors"] == 0 and stats["read_errors"] == 0
        assert not list(folder.glob("clip-*.txt"))  # every clip file was consumed

        # Still healthy: the next good clip is answered.
        submitted = len(session.submitted)
        seq += 1
        put(folder, clip_file_name(seq), clip_text(seq, melody(6)))
        spool.poll_once()
        assert len(session.submitted) == submitted + 1
        answer = read_answer(folder, seq)
        assert isinstance(answer, SpoolResult)
        assert answer.result.summary["key"] == "C major"
