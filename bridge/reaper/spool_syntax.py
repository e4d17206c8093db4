"""The spool's line syntax (see `bridge.reaper.spool_format` for the format): the value fields
and limits, writing values (numbers, one-line text, JSON, notes) and reading lines back with
errors that name the line. Shared by the clip and the result formats."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from bridge.errors import BadMessageError
from bridge.protocol import (
    MAX_PARAMS_BYTES,
    MAX_PART_CONTROLS,
    MAX_PART_NOTES,
    MAX_PARTS,
    MAX_SUMMARY_BYTES,
    Float,
    Int,
    Text,
)
from bridge.types import MAX_CLIP_NOTES, ClipNote

MAGIC: Final = "ACCOBRIDGE-SPOOL"
FORMAT_VERSION: Final = 1
HEADER: Final = f"{MAGIC} {FORMAT_VERSION}"
KINDS: Final = ("clip", "result", "error", "status")
MAX_SEQ: Final = 2**53 - 1  # exact in a double: Lua 5.3/5.4 and JSON readers agree on it
MAX_CLIP_FILE_BYTES: Final = 2 * 1024 * 1024
MAX_CLIP_LINES: Final = 2 * MAX_CLIP_NOTES + 64  # room for too many notes to be "too large"
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
MAX_RESULT_CHORDS: Final = 100_000
MAX_OTHER_LINES: Final = (MAX_PARTS * (MAX_PART_NOTES + MAX_PART_CONTROLS + 1)
                          + MAX_RESULT_CHORDS + 16)
MAX_LINE_CHARS: Final = 70_000  # the longest field, a summary, is 64 KiB
MAX_MESSAGE_BYTES: Final = 1_024

_KEY = re.compile(r"[a-z_]{1,32}")
_INT = re.compile(r"-?[0-9]{1,19}")
_DECIMAL = re.compile(r"-?[0-9]{1,40}(?:\.[0-9]{1,40})?(?:[eE][-+]?[0-9]{1,4})?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

SEQ_FIELD: Final = Int(0, MAX_SEQ)
NAME: Final = Text(256)
LENGTH_BEATS: Final = Float(0.0, lo_open=True)
TEMPO_BPM: Final = Float(1.0, 1000.0)
TS_NUM: Final = Int(1, 99)
TS_DEN: Final = Int(1, 64, (1, 2, 4, 8, 16, 32, 64))
KEY_HINT: Final = Text(64)
TRACK: Final = Text(256)
BAR: Final = Int(-1_000_000, 1_000_000)  # as REAPER numbers measures (a project may start below 1)
OPTIONS: Final = Text(MAX_PARAMS_BYTES)
SOURCE: Final = Text(128)
SUMMARY: Final = Text(MAX_SUMMARY_BYTES)
PART_NAME: Final = Text(32, 1, r"[a-z0-9_]+")
CHANNEL: Final = Int(1, 16)
PITCH: Final = Int(0, 127)
START_BEATS: Final = Float(0.0)
DURATION_BEATS: Final = Float(0.0, lo_open=True)
VELOCITY: Final = Int(1, 127)
SYMBOL: Final = Text(32, 1)
CONTROLLER: Final = Int(0, 127)
CONTROL_VALUE: Final = Int(0, 127)
CODE: Final = Int(1, 99)
STATE: Final = Text(32, 1, r"[a-z_]+")
PROGRESS: Final = Float(0.0, 1.0)
MESSAGE: Final = Text(MAX_MESSAGE_BYTES)

T_co = TypeVar("T_co", covariant=True)


class Validator(Protocol[T_co]):
    """A validator from `bridge.protocol` (Int, Float, Text): `check` raises ValueError."""

    def check(self, value: object) -> T_co: ...


def checked_seq(seq: int) -> int:
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise BadMessageError(f"seq must be an integer in 0..{MAX_SEQ}, got {seq!r}", "seq")
    return seq



# ---- writing -------------------------------------------------------------------------------


def one_line(text: str, max_bytes: int) -> str:
    """`text` made fit for a text field: control characters become spaces, unencodable
    characters '?', then cut to `max_bytes` UTF-8 bytes on a character boundary."""
    data = _CONTROL.sub(" ", text).encode("utf-8", errors="replace")
    return data[:max_bytes].decode("utf-8", errors="ignore")


def check_value(field_: Validator[Any], value: object, what: str) -> None:
    try:
        field_.check(value)
    except ValueError as err:
        raise BadMessageError(f"{what} {err}", "value") from err


def number(value: float) -> str:
    return repr(float(value))  # shortest exact form: "0.5", "1e-05", "120.0"


def json_line(value: Mapping[str, Any], field_: Text, what: str) -> str:
    try:
        text = json.dumps(dict(value), ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise BadMessageError(f"{what} cannot be written as JSON: {err}", "json") from err
    check_value(field_, text, what)
    return text


def note_line(note: ClipNote, what: str, channel: int | None = None) -> str:
    ch = note.channel if channel is None else channel
    for name, field_, value in (("pitch", PITCH, note.pitch),
                                ("start_beats", START_BEATS, note.start_beats),
                                ("duration_beats", DURATION_BEATS, note.duration_beats),
                                ("velocity", VELOCITY, note.velocity), ("channel", CHANNEL, ch)):
        check_value(field_, value, f"{what} {name}")
    return (f"note {note.pitch} {number(note.start_beats)} {number(note.duration_beats)} "
            f"{note.velocity} {ch}")


def file_text(seq: int, kind: str, body: Iterable[str]) -> str:
    """A whole spool file: header, seq and kind lines, `body`, the end line."""
    return "\n".join([HEADER, f"seq {checked_seq(seq)}", f"kind {kind}", *body, "end", ""])


# ---- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    number: int  # 1-based
    value: str  # the text after "<key> "


class LineReader:
    """The lines of one file, read front to back; errors name the line."""

    def __init__(self, data: bytes | str, max_bytes: int, max_lines: int) -> None:
        size = len(data.encode("utf-8", errors="replace") if isinstance(data, str) else data)
        if size > max_bytes:
            raise BadMessageError(f"file is {size} bytes; at most {max_bytes} are accepted",
                                  "size")
        if isinstance(data, bytes):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as err:
                line = data[:err.start].count(b"\n") + 1
                raise BadMessageError(f"line {line}: not UTF-8 text: {err.reason}",
                                      "utf8") from err
        else:
            text = data
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the final newline
        if len(lines) > max_lines:
            raise BadMessageError(f"file has {len(lines)} lines; at most {max_lines} are accepted",
                                  "size")
        self._lines = lines
        self.number = 0  # the line last read, 1-based

    def fail(self, message: str, reason: str) -> BadMessageError:
        return BadMessageError(f"line {self.number}: {message}", reason)

    def raw(self) -> str:
        """The next line as it is (without its line end), checked for size and controls."""
        if self.number >= len(self._lines):
            raise BadMessageError(
                f"line {self.number + 1}: the file ends before its 'end' line (incomplete)",
                "incomplete",
            )
        line = self._lines[self.number]
        self.number += 1
        if line.endswith("\r"):
            line = line[:-1]
        if len(line) > MAX_LINE_CHARS:
            raise self.fail(f"line is longer than {MAX_LINE_CHARS} characters", "size")
        control = _CONTROL.search(line)
        if control is not None:
            raise self.fail(f"control character {control[0]!r} at column {control.start() + 1}",
                            "parse")
        return line

    def next(self) -> tuple[str, str]:
        """(key, rest) of the next line."""
        key, _, rest = self.raw().partition(" ")
        if _KEY.fullmatch(key) is None:
            raise self.fail(f"expected a lower-case key at the start, got {key[:40]!r}", "parse")
        return key, rest

    def expect(self, key: str) -> str:
        found, rest = self.next()
        if found != key:
            raise self.fail(f"expected {key!r}, got {found!r}", "order")
        return rest

    def fields(self, allowed: Iterable[str],
               stop: Iterable[str]) -> tuple[dict[str, Line], str, str]:
        """Read `key value` lines (each key at most once) until a key in `stop`; returns them,
        and the stop line's key and rest (that line is consumed)."""
        allowed_keys, stop_keys = set(allowed), set(stop)
        found: dict[str, Line] = {}
        while True:
            key, rest = self.next()
            if key in stop_keys:
                return found, key, rest
            if key not in allowed_keys:
                raise self.fail(f"unknown or misplaced field {key!r}", "order")
            if key in found:
                raise self.fail(f"{key!r} given twice (first on line {found[key].number})",
                                "duplicate")
            found[key] = Line(self.number, rest)

    def finish(self) -> None:
        if self.number != len(self._lines):
            self.number += 1
            raise self.fail("text after the 'end' line", "parse")


T = TypeVar("T")


def check_field(field_: Validator[T], value: object, line: int, what: str) -> T:
    try:
        return field_.check(value)
    except ValueError as err:
        raise BadMessageError(f"line {line}: {what} {err}", "value") from err


def read_int(text: str, field_: Validator[int], line: int, what: str) -> int:
    if _INT.fullmatch(text) is None:
        raise BadMessageError(f"line {line}: {what} must be an integer, got {text[:40]!r}",
                              "value")
    return check_field(field_, int(text), line, what)


def read_float(text: str, field_: Validator[float], line: int, what: str) -> float:
    if _DECIMAL.fullmatch(text) is None:
        raise BadMessageError(f"line {line}: {what} must be a decimal number, got {text[:40]!r}",
                              "value")
    return check_field(field_, float(text), line, what)


def read_json_object(text: str, field_: Text, line: int, what: str) -> dict[str, Any]:
    check_field(field_, text, line, what)

    def refuse_constant(name: str) -> None:
        raise ValueError(f"{name} is not a JSON number")

    try:
        value = json.loads(text, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as err:  # RecursionError: absurdly deep nesting
        raise BadMessageError(f"line {line}: {what} is not JSON: {err}", "json") from err
    if not isinstance(value, dict):
        raise BadMessageError(
            f"line {line}: {what} must be a JSON object, got {type(value).__name__}", "json"
        )
    return value


def split_values(text: str, n: int, line: int, what: str) -> list[str]:
    parts = text.split(" ")
    if len(parts) != n:
        raise BadMessageError(
            f"line {line}: {what} needs {n} values separated by single spaces, got {text[:60]!r}",
            "parse",
        )
    return parts


def require_fields(found: Mapping[str, Line], keys: Iterable[str], reader: LineReader) -> None:
    missing = [key for key in keys if key not in found]
    if missing:
        raise reader.fail(f"missing field(s) {', '.join(missing)} before this line", "missing")


def read_note(text: str, line: int) -> ClipNote:
    pitch, start, duration, velocity, channel = split_values(text, 5, line, "note")
    return ClipNote(
        read_int(pitch, PITCH, line, "note pitch"),
        read_float(start, START_BEATS, line, "note start_beats"),
        read_float(duration, DURATION_BEATS, line, "note duration_beats"),
        read_int(velocity, VELOCITY, line, "note velocity"),
        read_int(channel, CHANNEL, line, "note channel"),
    )


def read_text(found: Mapping[str, Line], key: str, field_: Validator[str]) -> str:
    line = found[key]
    return check_field(field_, line.value, line.number, key)
