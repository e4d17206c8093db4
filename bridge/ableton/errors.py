"""What goes wrong with Live: AbletonOSC's refusals and unreadable answers, a taken reply port,
a selection we cannot read, and notes that did not arrive as written."""

from __future__ import annotations

from bridge.errors import BridgeError, ErrorCode


class AbletonError(BridgeError, RuntimeError):
    """AbletonOSC refused a request (`/live/error`) or answered something unreadable.

    Code 4 (DAW_WRITE_FAILED) unless the cause is the user's selection (code 1, BAD_INPUT)."""

    code = ErrorCode.DAW_WRITE_FAILED

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class AbletonPortError(BridgeError, OSError):
    """The reply port (11001) is taken: only one AbletonOSC client per host can own it."""

    code = ErrorCode.DAW_WRITE_FAILED


class ClipReadError(BridgeError, ValueError):
    """The selection holds nothing we can read: no regular track, an empty slot, an audio
    clip, an AccoBridge part, a clip with no length."""

    code = ErrorCode.BAD_INPUT


class WriteVerifyError(AbletonError):
    """The notes read back from Live differ from the notes written (a lost chunk)."""
