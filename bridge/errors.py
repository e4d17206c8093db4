"""The bridge's errors and the numeric codes our OSC API reports them with."""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    BAD_INPUT = 1
    TOO_LARGE = 2
    ENGINE_ERROR = 3
    DAW_WRITE_FAILED = 4
    TIMEOUT = 5


class BridgeError(Exception):
    code: ErrorCode = ErrorCode.ENGINE_ERROR


class BadMessageError(BridgeError, ValueError):
    """A packet or file that does not follow the protocol (counted and logged, never fatal)."""

    code = ErrorCode.BAD_INPUT

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        # A short machine-readable tag ("parse", "type_tags", "value", …): bad-packet counters
        # are kept per reason.
        self.reason = reason


class ClipTooLargeError(BridgeError, ValueError):
    code = ErrorCode.TOO_LARGE


class UploadTimeoutError(BridgeError, TimeoutError):
    code = ErrorCode.TIMEOUT


class ReplyTimeoutError(BridgeError, TimeoutError):
    """The other side of the bridge did not answer in time (not running, or stopped replying)."""

    code = ErrorCode.TIMEOUT


class StoredFileError(BridgeError, ValueError):
    """A stored JSON file (settings, preset, session) that cannot be used: unreadable, too big,
    not JSON, the wrong shape or an unknown version. The message names the field, not the file:
    the caller knows which file it asked for."""

    code = ErrorCode.BAD_INPUT


class NewerFileError(StoredFileError):
    """A file written by a newer AccoBridge (its version is above the one we read)."""

    def __init__(self, message: str, version: int) -> None:
        super().__init__(message)
        self.version = version
