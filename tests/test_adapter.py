"""bridge.adapter and bridge.tally: what the four DAW adapters share — typed session events, the
clip check before submitting, guarded callbacks, and counted, rate-limited refusals."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest

from bridge.adapter import (
    ErrorEvent,
    EventCallback,
    ResultEvent,
    StatusEvent,
    call_guarded,
    read_event,
    submit_clip,
)
from bridge.errors import BadMessageError, ClipTooLargeError, ErrorCode
from bridge.tally import Tally
from bridge.types import MAX_CLIP_BARS, MAX_CLIP_NOTES, Clip, ClipNote, GenerateResult

RESULT = GenerateResult("r1", "osc:test", {"chords": ()})


@pytest.mark.parametrize(("kind", "payload", "event"), [
    ("status", ("running", 0.25, "harmonizing"), StatusEvent("running", 0.25, "harmonizing")),
    ("status", ("running", 7, "x"), StatusEvent("running", 1.0, "x")),
    ("status", ("running", -1.0, "x"), StatusEvent("running", 0.0, "x")),
    ("status", ("running", float("nan"), "x"), StatusEvent("running", 0.0, "x")),
    ("result", RESULT, ResultEvent(RESULT)),
    ("error", (2, "too big"), ErrorEvent(ErrorCode.TOO_LARGE, "too big")),
    ("error", (42, "odd"), ErrorEvent(ErrorCode.ENGINE_ERROR, "odd")),
    ("status", ("running", "half", "x"), None),
    ("result", {"chords": ()}, None),
    ("error", ("2", "x"), None),
    ("written", (), None),
])
def test_session_events_are_read_once_into_typed_events(kind, payload, event) -> None:
    assert read_event(kind, payload) == event


class RecordingSession:
    def __init__(self) -> None:
        self.submitted: list[str] = []

    def submit(self, source: str, request_id: str, clip: Clip, options: Mapping[str, Any],
               on_event: EventCallback) -> None:
        self.submitted.append(request_id)

    def cancel(self, request_id: str) -> bool:
        return False

    def queue_length(self) -> int:
        return 0


def clip(n_notes: int = 4, length_beats: float = 16.0, ts_den: int = 4) -> Clip:
    notes = tuple(ClipNote(60, i * 0.5, 0.5) for i in range(n_notes))
    return Clip("test", "tune", length_beats, 120.0, 4, ts_den, notes)


def test_submit_clip_checks_the_clip_before_the_session_sees_it() -> None:
    session = RecordingSession()
    submit_clip(session, "test", "ok", clip(), {}, lambda kind, payload: None)
    with pytest.raises(ClipTooLargeError, match=f"at most {MAX_CLIP_NOTES}"):
        submit_clip(session, "test", "notes", clip(n_notes=MAX_CLIP_NOTES + 1), {},
                    lambda kind, payload: None)
    with pytest.raises(ClipTooLargeError, match=f"at most {MAX_CLIP_BARS}"):
        submit_clip(session, "test", "bars", clip(length_beats=4.0 * (MAX_CLIP_BARS + 1)), {},
                    lambda kind, payload: None)
    with pytest.raises(BadMessageError, match="ts_den"):
        submit_clip(session, "test", "meter", clip(ts_den=3), {}, lambda kind, payload: None)
    assert session.submitted == ["ok"]


def test_a_failing_callback_is_logged_counted_and_never_raised(caplog) -> None:
    log = logging.getLogger("tests.adapter")
    tally = Tally("test", log)
    seen: list[tuple[object, ...]] = []
    assert call_guarded(log, "listener", lambda *args: seen.append(args), "status", 1)
    assert call_guarded(log, "nobody", None, "status")

    def broken(*args: object) -> None:
        raise RuntimeError("listener bug")

    with caplog.at_level(logging.ERROR, logger="tests.adapter"):
        assert not call_guarded(log, "the GUI listener", broken, "result", tally=tally)
    assert seen == [("status", 1)]
    assert tally.snapshot() == {"callback_failed": 1}
    [record] = caplog.records
    assert "the GUI listener raised" in record.getMessage() and record.exc_info is not None


def test_refusals_are_counted_by_reason_and_the_log_is_rate_limited(caplog) -> None:
    now = [0.0]
    tally = Tally("spool", logging.getLogger("tests.tally"), noun="files", burst=2,
                  window_s=10.0, clock=lambda: now[0])
    tally.count("received", 0)
    with caplog.at_level(logging.WARNING, logger="tests.tally"):
        logged = [tally.refuse("rejected", "crc", f"clip-{i}.txt", "bad CRC") for i in range(5)]
        now[0] = 11.0
        assert tally.refuse("rejected", "crc", "clip-9.txt", "bad CRC")
    assert logged == [True, True, False, False, False]
    assert tally.snapshot() == {"received": 0, "rejected": 6, "rejected_crc": 6}
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "spool: rejected clip-0.txt (crc): bad CRC"
    assert "spool: 3 more rejected files (crc) not logged" in lines
    assert len(lines) == 4
