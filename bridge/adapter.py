"""What every DAW adapter (OSC server, Ableton, REAPER spool, MIDI ports) shares: the session it
hands clips to, the events that come back, the clip check, and the guarded call of an outside
callback (counters: `bridge.tally`).

The session reports each request through `on_event(kind, payload)` (see `bridge.session`);
`read_event` turns that into one of three typed events, so no adapter re-parses the tuples.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bridge.errors import ErrorCode
from bridge.protocol import check_clip_size
from bridge.tally import Tally
from bridge.types import Clip, GenerateResult

EventCallback = Callable[[str, object], None]  # (kind, payload): "status", "result", "error"


class SessionLike(Protocol):
    """What an adapter needs from `bridge.session.Session` (the panel's gate stands in for it)."""

    def submit(self, source: str, request_id: str, clip: Clip, options: Mapping[str, Any],
               on_event: EventCallback) -> object: ...

    def cancel(self, request_id: str) -> object: ...

    def queue_length(self) -> int: ...


@dataclass(frozen=True)
class StatusEvent:
    state: str  # queued, running, done, failed, superseded, cancelled
    progress: float  # 0..1
    message: str


@dataclass(frozen=True)
class ResultEvent:
    result: GenerateResult


@dataclass(frozen=True)
class ErrorEvent:
    code: ErrorCode
    message: str


SessionEvent = StatusEvent | ResultEvent | ErrorEvent


def read_event(kind: str, payload: object) -> SessionEvent | None:
    """The session's `(kind, payload)` as a typed event; None when it is malformed (the caller
    counts and logs it). Progress is clamped to 0..1 (NaN: 0); an unknown error code is
    ENGINE_ERROR."""
    match kind, payload:
        case "status", (str() as state, int() | float() as progress, str() as message):
            number = float(progress)
            return StatusEvent(state, 0.0 if math.isnan(number) else min(max(number, 0.0), 1.0),
                               message)
        case "result", GenerateResult() as result:
            return ResultEvent(result)
        case "error", (int() as code, str() as message):
            known = code in set(ErrorCode)
            return ErrorEvent(ErrorCode(code) if known else ErrorCode.ENGINE_ERROR, message)
    return None


def submit_clip(session: SessionLike, source: str, request_id: str, clip: Clip,
                options: Mapping[str, Any], on_event: EventCallback) -> None:
    """Check `clip` against the size limits every way in shares (ClipTooLargeError, code 2;
    BadMessageError for an impossible meter), then queue it on `session`."""
    check_clip_size(clip)
    session.submit(source, request_id, clip, options, on_event)


def call_guarded(log: logging.Logger, what: str, callback: Callable[..., object] | None,
                 *args: object, tally: Tally | None = None) -> bool:
    """Call an outside callback (a listener, the GUI); one that raises is logged with its
    traceback and counted as "callback_failed" in `tally`, never re-raised: it must not stop
    the adapter thread that called it. Returns whether it ran without raising (True when
    there is none)."""
    if callback is None:
        return True
    try:
        callback(*args)
    except Exception:
        log.exception("%s raised", what)
        if tally is not None:
            tally.count("callback_failed")
        return False
    return True
