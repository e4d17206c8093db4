"""Our OSC API as data: one table of addresses and argument types, and pure functions on it.

| Address | Direction | Arguments | Meaning |
|---|---|---|---|
| `/acco/hello` | → bridge | `s:client s:daw i:proto i:reply_port` | introduce the client; answers go to its reply_port |
| `/acco/hello/ok` | → client | `s:version i:proto` | bridge version and protocol version |
| `/acco/ping` | → bridge | `s:token` | liveness check |
| `/acco/pong` | → client | `s:token i:queue_length` | the ping's token and the number of queued jobs |
| `/acco/clip/begin` | → bridge | `s:request_id s:name f:length_beats f:tempo_bpm i:ts_num i:ts_den i:n_notes i:n_chunks s:source s:key_hint` | start a clip upload (key_hint may be empty) |
| `/acco/clip/notes` | → bridge | `s:request_id i:chunk (i:pitch f:start_beats f:duration_beats i:velocity i:channel)×1..256` | one chunk of the clip's notes |
| `/acco/clip/end` | → bridge | `s:request_id s:crc32` | end of upload, CRC of all notes |
| `/acco/ack` | → client | `s:request_id` | upload complete and verified |
| `/acco/nack` | → client | `s:request_id (i:chunk)×0..256` | chunks still missing; none listed: unknown upload, start again |
| `/acco/generate` | → bridge | `s:request_id s:params_json` | generate for the uploaded clip; options as a JSON object |
| `/acco/cancel` | → bridge | `s:request_id` | cancel a queued or running request |
| `/acco/status/get` | → bridge | `s:request_id` | ask for the latest status |
| `/acco/status` | → client | `s:request_id s:state f:progress s:message` | job state, progress 0..1 and a message |
| `/acco/result/begin` | → client | `s:request_id i:n_parts i:n_chord_chunks i:n_summary_chunks` | a result follows: how many parts, chord and summary chunks |
| `/acco/part/begin` | → client | `s:request_id s:part s:track i:channel i:n_notes i:n_chunks` | one generated part (chords: channel 2, piano: 3) |
| `/acco/part/notes` | → client | `s:request_id s:part i:chunk (i:pitch f:start_beats f:duration_beats i:velocity i:channel)×1..256` | one chunk of a part's notes |
| `/acco/part/end` | → client | `s:request_id s:part s:crc32` | end of a part, CRC of its notes |
| `/acco/chords` | → client | `s:request_id i:chunk i:n_chunks (f:start_beats f:duration_beats s:symbol)×0..128` | one chunk of the chord chart |
| `/acco/summary` | → client | `s:request_id i:chunk i:n_chunks s:text` | one piece of the result summary JSON (key, meter, phrases, textures) |
| `/acco/result/get` | → bridge | `s:request_id` | send the whole result again |
| `/acco/error` | → client | `s:request_id i:code s:message` | error for a request (empty id: for none); codes below |

Value limits (checked by `encode` and `decode` alike; a violation is a `BadMessageError`):

| Argument | Type | Allowed |
|---|---|---|
| client | s | 1..64 bytes UTF-8 |
| daw | s | 0..64 bytes UTF-8 |
| proto | i | 1..65535 |
| reply_port | i | 1..65535 |
| version | s | 1..32 bytes UTF-8 |
| token | s | 0..64 bytes UTF-8 |
| queue_length | i | 0..2³¹−1 |
| request_id (elsewhere) | s | 1..64 bytes UTF-8, [A-Za-z0-9._:-]+ |
| name | s | 0..256 bytes UTF-8 |
| length_beats | f | > 0 |
| tempo_bpm | f | ≥ 1 and ≤ 1000 |
| ts_num | i | 1..99 |
| ts_den | i | 1, 2, 4, 8, 16, 32, 64 |
| n_notes | i | 0..2³¹−1 |
| n_chunks (elsewhere) | i | 0..2³¹−1 |
| source | s | 0..128 bytes UTF-8 |
| key_hint | s | 0..64 bytes UTF-8 |
| chunk | i | 0..2³¹−1 |
| pitch | i | 0..127 |
| start_beats | f | ≥ 0 |
| duration_beats | f | > 0 |
| velocity | i | 1..127 |
| channel | i | 1..16 |
| crc32 | s | 8 bytes UTF-8, [0-9a-f]{8} |
| params_json | s | 0..8000 bytes UTF-8 |
| state | s | 1..32 bytes UTF-8, [a-z_]+ |
| progress | f | ≥ 0 and ≤ 1 |
| message | s | 0..1024 bytes UTF-8 |
| n_parts | i | 0..16 |
| n_chord_chunks | i | 1..2³¹−1 |
| n_summary_chunks | i | 1..2³¹−1 |
| part | s | 1..32 bytes UTF-8, [a-z0-9_]+ |
| track | s | 0..128 bytes UTF-8 |
| n_chunks (in `/acco/chords`, `/acco/summary`) | i | 1..2³¹−1 |
| symbol | s | 1..32 bytes UTF-8 |
| text | s | 0..4096 bytes UTF-8 |
| request_id (in `/acco/error`) | s | 0..64 bytes UTF-8, [A-Za-z0-9._:-]* |
| code | i | 1..99 |

Rules:

- UDP, one OSC message per datagram (no bundles), every datagram at most 9,216 bytes (macOS's
  default UDP limit): a worst case of every message fits, see `tests/test_protocol.py`.
- Times are float32 beats (quarter notes) from the clip start; a note is the group
  `(i:pitch f:start_beats f:duration_beats i:velocity i:channel)`, channels numbered 1-16.
- Replies go to the sender's host at the `reply_port` of its `/acco/hello` (matched by sender
  address, else the host's latest hello, else the sender's own address).
- Clip upload: `clip/begin`, then `clip/notes` chunks (≤ 256 notes, any order, duplicates
  ignored), then `clip/end` with the CRC. The bridge answers `ack`, or `nack` listing missing
  chunk indices (at most 256 per nack; re-send them and `clip/end` again). An empty `nack`
  means "no such upload": start again with `clip/begin`. An upload idle for longer than the
  server's upload timeout is dropped with `/acco/error … 5`. Clips of more than
  `MAX_CLIP_NOTES` notes or `MAX_CLIP_BARS` bars are refused with code 2.
- `generate` must follow the `ack` (the uploaded clip waits the same timeout); `params_json` is
  a JSON object of options. The bridge answers `status` (queued, running, done, failed,
  superseded, cancelled) and, on success, the result: `result/begin`, per part `part/begin`,
  `part/notes` chunks, `part/end`, then `chords` and `summary` chunks (the summary pieces
  concatenate to one JSON object). `result/get` asks for the whole result again; clients
  ignore duplicates. A repeated `generate` or `clip/end` is answered again, not re-run.
- CRC: `crc32_of_notes` — zlib CRC-32 of the notes in upload order, each as the 11 bytes
  `struct.pack(">BffBB", pitch, start_beats, duration_beats, velocity, channel)` (the float32
  values that travel), as 8 lowercase hex digits.
- Error codes (`bridge.errors.ErrorCode`): 1 bad input, 2 too large, 3 engine error,
  4 DAW write failed, 5 timeout.
"""  # noqa: E501 - Markdown table rows cannot wrap (the README copies them)

from __future__ import annotations

import json
import math
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from bridge.errors import BadMessageError, BridgeError, ClipTooLargeError
from bridge.osc import Codec, WireMessage, WireValue, build_datagram, parse_datagram
from bridge.types import (
    MAX_CLIP_BARS,
    MAX_CLIP_NOTES,
    PART_CHANNELS,
    PARTS,
    ChordSymbol,
    Clip,
    ClipNote,
    GenerateResult,
)

PROTOCOL_VERSION = 1
MAX_PACKET_BYTES = 9_216
MAX_NOTES_PER_CHUNK = 256
MAX_CHORDS_PER_CHUNK = 128
MAX_MISSING_PER_NACK = 256
MAX_SUMMARY_PIECE_BYTES = 4_096
MAX_SUMMARY_BYTES = 64 * 1024
MAX_PARAMS_BYTES = 8_000
MAX_PARTS = 16
MAX_PART_NOTES = 200_000
INT32_MAX = 2**31 - 1
FLOAT32_MAX = 3.4028234663852886e38

TO_BRIDGE = "→ bridge"
TO_CLIENT = "→ client"


# ---- argument validators: one table of them, errors name the allowed range ---------------


class _Invalid(ValueError):
    """A value outside its field's range; the caller names the field (labels are built only
    on failure: validation runs for every note of every chunk)."""


@dataclass(frozen=True)
class Int:
    """An OSC int32 in lo..hi (or one of `choices`)."""

    lo: int
    hi: int = INT32_MAX
    choices: tuple[int, ...] = ()
    tag: ClassVar[str] = "i"

    def check(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"must be an integer, got {value!r}")
        if self.choices and value not in self.choices:
            raise _Invalid(f"must be one of {self.describe()}, got {value}")
        if not self.lo <= value <= self.hi:
            raise _Invalid(f"must be in {self.describe()}, got {value}")
        return value

    def describe(self) -> str:
        if self.choices:
            return ", ".join(map(str, self.choices))
        return f"{self.lo}..{'2³¹−1' if self.hi == INT32_MAX else self.hi}"


@dataclass(frozen=True)
class Float:
    """An OSC float32, finite, in lo..hi (lo excluded when `lo_open`)."""

    lo: float
    hi: float = FLOAT32_MAX
    lo_open: bool = False
    tag: ClassVar[str] = "f"

    def check(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid(f"must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise _Invalid(f"must be a finite number, got {number}")
        too_low = number <= self.lo if self.lo_open else number < self.lo
        if too_low or number > self.hi:
            raise _Invalid(f"must be {self.describe()}, got {number:g}")
        return number

    def describe(self) -> str:
        low = f"> {self.lo:g}" if self.lo_open else f"≥ {self.lo:g}"
        return low if self.hi == FLOAT32_MAX else f"{low} and ≤ {self.hi:g}"


@dataclass(frozen=True)
class Text:
    """An OSC string of min_bytes..max_bytes UTF-8 bytes, optionally matching `pattern`."""

    max_bytes: int
    min_bytes: int = 0
    pattern: str | None = None
    tag: ClassVar[str] = "s"

    def check(self, value: object) -> str:
        if not isinstance(value, str):
            raise _Invalid(f"must be a string, got {value!r}")
        if "\x00" in value:
            raise _Invalid("must not contain NUL characters")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError as err:
            raise _Invalid(f"is not valid Unicode text: {err}") from err
        if not self.min_bytes <= size <= self.max_bytes:
            raise _Invalid(f"must be {self.describe()}, got {size} bytes")
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            raise _Invalid(f"must match {self.pattern}, got {value[:40]!r}")
        return value

    def describe(self) -> str:
        size = (f"{self.min_bytes}" if self.min_bytes == self.max_bytes
                else f"{self.min_bytes}..{self.max_bytes}")
        text = f"{size} bytes UTF-8"
        return text if self.pattern is None else f"{text}, {self.pattern}"


Field = Int | Float | Text
Args = tuple[tuple[str, Field], ...]


def check_values(args: Args, values: Sequence[object], where: str) -> list[WireValue]:
    """`values` checked against `args`; BadMessageError naming `where` and the field."""
    checked: list[WireValue] = []
    for (name, field), value in zip(args, values, strict=True):
        try:
            checked.append(field.check(value))
        except _Invalid as err:
            raise BadMessageError(f"{where} {name} {err}", "value") from err
    return checked

REQUEST_ID = Text(64, 1, r"[A-Za-z0-9._:-]+")
CHUNK = Int(0)
COUNT = Int(0)
CRC32 = Text(8, 8, r"[0-9a-f]{8}")
NOTE_ARGS: Args = (
    ("pitch", Int(0, 127)),
    ("start_beats", Float(0.0)),
    ("duration_beats", Float(0.0, lo_open=True)),
    ("velocity", Int(1, 127)),
    ("channel", Int(1, 16)),
)
CHORD_ARGS: Args = (
    ("start_beats", Float(0.0)),
    ("duration_beats", Float(0.0, lo_open=True)),
    ("symbol", Text(32, 1)),
)


@dataclass(frozen=True)
class Group:
    """A repeated group of arguments at the end of a message, held as a tuple of objects."""

    field: str  # the message attribute holding the items
    item: str  # what one item is called in errors and docs
    args: Args
    min_items: int
    max_items: int
    make: Callable[..., Any]
    split: Callable[[Any], tuple[Any, ...]]

    @property
    def tags(self) -> str:
        return "".join(f.tag for _, f in self.args)


def _note_values(note: ClipNote) -> tuple[Any, ...]:
    return (note.pitch, note.start_beats, note.duration_beats, note.velocity, note.channel)


def _chord_values(chord: ChordSymbol) -> tuple[Any, ...]:
    return (chord.start_beats, chord.duration_beats, chord.symbol)


NOTES = Group("notes", "note", NOTE_ARGS, 1, MAX_NOTES_PER_CHUNK, ClipNote, _note_values)
CHORDS = Group("chords", "chord", CHORD_ARGS, 0, MAX_CHORDS_PER_CHUNK, ChordSymbol,
               _chord_values)
MISSING = Group("missing", "chunk", (("chunk", CHUNK),), 0, MAX_MISSING_PER_NACK, int,
                lambda chunk: (chunk,))


# ---- the messages ------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    client: str
    daw: str
    proto: int
    reply_port: int


@dataclass(frozen=True)
class HelloOk:
    version: str
    proto: int


@dataclass(frozen=True)
class Ping:
    token: str


@dataclass(frozen=True)
class Pong:
    token: str
    queue_length: int


@dataclass(frozen=True)
class ClipBegin:
    request_id: str
    name: str
    length_beats: float
    tempo_bpm: float
    ts_num: int
    ts_den: int
    n_notes: int
    n_chunks: int
    source: str
    key_hint: str


@dataclass(frozen=True)
class ClipNotes:
    request_id: str
    chunk: int
    notes: tuple[ClipNote, ...]


@dataclass(frozen=True)
class ClipEnd:
    request_id: str
    crc32: str


@dataclass(frozen=True)
class Ack:
    request_id: str


@dataclass(frozen=True)
class Nack:
    request_id: str
    missing: tuple[int, ...]


@dataclass(frozen=True)
class Generate:
    request_id: str
    params_json: str


@dataclass(frozen=True)
class Cancel:
    request_id: str


@dataclass(frozen=True)
class StatusGet:
    request_id: str


@dataclass(frozen=True)
class Status:
    request_id: str
    state: str
    progress: float
    message: str


@dataclass(frozen=True)
class ResultBegin:
    request_id: str
    n_parts: int
    n_chord_chunks: int
    n_summary_chunks: int


@dataclass(frozen=True)
class PartBegin:
    request_id: str
    part: str
    track: str
    channel: int
    n_notes: int
    n_chunks: int


@dataclass(frozen=True)
class PartNotes:
    request_id: str
    part: str
    chunk: int
    notes: tuple[ClipNote, ...]


@dataclass(frozen=True)
class PartEnd:
    request_id: str
    part: str
    crc32: str


@dataclass(frozen=True)
class Chords:
    request_id: str
    chunk: int
    n_chunks: int
    chords: tuple[ChordSymbol, ...]


@dataclass(frozen=True)
class Summary:
    request_id: str
    chunk: int
    n_chunks: int
    text: str


@dataclass(frozen=True)
class ResultGet:
    request_id: str


@dataclass(frozen=True)
class ErrorReply:
    request_id: str  # empty when the error belongs to no request
    code: int
    message: str


Message = (
    Hello | HelloOk | Ping | Pong | ClipBegin | ClipNotes | ClipEnd | Ack | Nack | Generate
    | Cancel | StatusGet | Status | ResultBegin | PartBegin | PartNotes | PartEnd | Chords
    | Summary | ResultGet | ErrorReply
)
ResultMessage = ResultBegin | PartBegin | PartNotes | PartEnd | Chords | Summary


@dataclass(frozen=True)
class MessageSpec:
    address: str
    type: type[Any]
    direction: str
    args: Args
    group: Group | None
    doc: str

    @property
    def tags(self) -> str:
        """Type tags without the repeated group, e.g. 'si' for clip/notes."""
        return "".join(f.tag for _, f in self.args)

    def signature(self) -> str:
        parts = [f"{f.tag}:{name}" for name, f in self.args]
        if self.group is not None:
            inner = " ".join(f"{f.tag}:{name}" for name, f in self.group.args)
            parts.append(f"({inner})×{self.group.min_items}..{self.group.max_items}")
        return " ".join(parts)

    def tags_pattern(self) -> str:
        return f",{self.tags}" + (f"({self.group.tags})*" if self.group else "")


def _spec(address: str, type_: type[Any], direction: str, args: Args, doc: str,
          group: Group | None = None) -> MessageSpec:
    return MessageSpec(address, type_, direction, args, group, doc)


RID = ("request_id", REQUEST_ID)
PART = ("part", Text(32, 1, r"[a-z0-9_]+"))

# The one table. Field names are the dataclass attribute names.
MESSAGES: tuple[MessageSpec, ...] = (
    _spec("/acco/hello", Hello, TO_BRIDGE,
          (("client", Text(64, 1)), ("daw", Text(64)), ("proto", Int(1, 65_535)),
           ("reply_port", Int(1, 65_535))),
          "introduce the client; answers go to its reply_port"),
    _spec("/acco/hello/ok", HelloOk, TO_CLIENT,
          (("version", Text(32, 1)), ("proto", Int(1, 65_535))),
          "bridge version and protocol version"),
    _spec("/acco/ping", Ping, TO_BRIDGE, (("token", Text(64)),), "liveness check"),
    _spec("/acco/pong", Pong, TO_CLIENT, (("token", Text(64)), ("queue_length", COUNT)),
          "the ping's token and the number of queued jobs"),
    _spec("/acco/clip/begin", ClipBegin, TO_BRIDGE,
          (RID, ("name", Text(256)), ("length_beats", Float(0.0, lo_open=True)),
           ("tempo_bpm", Float(1.0, 1000.0)), ("ts_num", Int(1, 99)),
           ("ts_den", Int(1, 64, (1, 2, 4, 8, 16, 32, 64))), ("n_notes", COUNT),
           ("n_chunks", COUNT), ("source", Text(128)), ("key_hint", Text(64))),
          "start a clip upload (key_hint may be empty)"),
    _spec("/acco/clip/notes", ClipNotes, TO_BRIDGE, (RID, ("chunk", CHUNK)),
          "one chunk of the clip's notes", NOTES),
    _spec("/acco/clip/end", ClipEnd, TO_BRIDGE, (RID, ("crc32", CRC32)),
          "end of upload, CRC of all notes"),
    _spec("/acco/ack", Ack, TO_CLIENT, (RID,), "upload complete and verified"),
    _spec("/acco/nack", Nack, TO_CLIENT, (RID,),
          "chunks still missing; none listed: unknown upload, start again", MISSING),
    _spec("/acco/generate", Generate, TO_BRIDGE,
          (RID, ("params_json", Text(MAX_PARAMS_BYTES))),
          "generate for the uploaded clip; options as a JSON object"),
    _spec("/acco/cancel", Cancel, TO_BRIDGE, (RID,), "cancel a queued or running request"),
    _spec("/acco/status/get", StatusGet, TO_BRIDGE, (RID,), "ask for the latest status"),
    _spec("/acco/status", Status, TO_CLIENT,
          (RID, ("state", Text(32, 1, r"[a-z_]+")), ("progress", Float(0.0, 1.0)),
           ("message", Text(1024))),
          "job state, progress 0..1 and a message"),
    _spec("/acco/result/begin", ResultBegin, TO_CLIENT,
          (RID, ("n_parts", Int(0, MAX_PARTS)), ("n_chord_chunks", Int(1)),
           ("n_summary_chunks", Int(1))),
          "a result follows: how many parts, chord and summary chunks"),
    _spec("/acco/part/begin", PartBegin, TO_CLIENT,
          (RID, PART, ("track", Text(128)), ("channel", Int(1, 16)), ("n_notes", COUNT),
           ("n_chunks", COUNT)),
          "one generated part (chords: channel 2, piano: 3)"),
    _spec("/acco/part/notes", PartNotes, TO_CLIENT, (RID, PART, ("chunk", CHUNK)),
          "one chunk of a part's notes", NOTES),
    _spec("/acco/part/end", PartEnd, TO_CLIENT, (RID, PART, ("crc32", CRC32)),
          "end of a part, CRC of its notes"),
    _spec("/acco/chords", Chords, TO_CLIENT, (RID, ("chunk", CHUNK), ("n_chunks", Int(1))),
          "one chunk of the chord chart", CHORDS),
    _spec("/acco/summary", Summary, TO_CLIENT,
          (RID, ("chunk", CHUNK), ("n_chunks", Int(1)),
           ("text", Text(MAX_SUMMARY_PIECE_BYTES))),
          "one piece of the result summary JSON (key, meter, phrases, textures)"),
    _spec("/acco/result/get", ResultGet, TO_BRIDGE, (RID,), "send the whole result again"),
    _spec("/acco/error", ErrorReply, TO_CLIENT,
          (("request_id", Text(64, 0, r"[A-Za-z0-9._:-]*")), ("code", Int(1, 99)),
           ("message", Text(1024))),
          "error for a request (empty id: for none); codes below"),
)

BY_ADDRESS: dict[str, MessageSpec] = {spec.address: spec for spec in MESSAGES}
BY_TYPE: dict[type[Any], MessageSpec] = {spec.type: spec for spec in MESSAGES}


# ---- codec -------------------------------------------------------------------------------


def encode(message: Message) -> bytes:
    """The datagram for `message`, validated against the table (BadMessageError if not)."""
    spec = BY_TYPE.get(type(message))
    if spec is None:
        raise BadMessageError(f"not a protocol message: {message!r}", "build")
    address = spec.address
    args = check_values(spec.args, [getattr(message, name) for name, _ in spec.args], address)
    tags = spec.tags
    if spec.group is not None:
        group = spec.group
        items = getattr(message, group.field)
        _check_item_count(address, group, len(items))
        for index, item in enumerate(items):
            args += check_values(group.args, group.split(item), f"{address} {group.item} {index}")
        tags += group.tags * len(items)
    dgram = build_datagram(WireMessage(address, tags, tuple(args)))
    if len(dgram) > MAX_PACKET_BYTES:
        raise BadMessageError(
            f"{address}: encoded packet is {len(dgram)} bytes; at most {MAX_PACKET_BYTES}",
            "oversize",
        )
    return dgram


def decode(dgram: bytes) -> Message:
    """The typed message in `dgram`, or BadMessageError with a reason: oversize, bundle,
    parse, type_tags, unknown_address, arg_count or value."""
    if len(dgram) > MAX_PACKET_BYTES:
        raise BadMessageError(
            f"packet of {len(dgram)} bytes; at most {MAX_PACKET_BYTES}", "oversize"
        )
    wire = parse_datagram(dgram)
    spec = BY_ADDRESS.get(wire.address)
    if spec is None:
        raise BadMessageError(f"unknown address {wire.address[:60]!r}", "unknown_address")
    address, tags = spec.address, wire.tags
    fixed = len(spec.args)
    group = spec.group
    if group is None:
        if len(tags) != fixed:
            raise BadMessageError(
                f"{address}: expected {fixed} arguments ({spec.tags_pattern()}), "
                f"got {len(tags)} (,{tags})", "arg_count",
            )
        n_items = 0
    else:
        width = len(group.tags)
        if len(tags) < fixed or (len(tags) - fixed) % width:
            raise BadMessageError(
                f"{address}: expected {spec.tags_pattern()}, got {len(tags)} arguments "
                f"(,{tags[:40]})", "arg_count",
            )
        n_items = (len(tags) - fixed) // width
    expected = spec.tags + (group.tags * n_items if group is not None else "")
    if tags != expected:
        raise BadMessageError(
            f"{address}: expected type tags {spec.tags_pattern()}, got ,{tags[:40]}",
            "type_tags",
        )
    checked = check_values(spec.args, wire.args[:fixed], address)
    values: dict[str, Any] = {name: value for (name, _), value in zip(spec.args, checked,
                                                                     strict=True)}
    if group is not None:
        _check_item_count(address, group, n_items)
        width = len(group.args)
        values[group.field] = tuple(
            group.make(*check_values(group.args, wire.args[start:start + width],
                                     f"{address} {group.item} {index}"))
            for index, start in enumerate(range(fixed, fixed + n_items * width, width))
        )
    message: Message = spec.type(**values)
    return message


def _check_item_count(address: str, group: Group, count: int) -> None:
    if not group.min_items <= count <= group.max_items:
        raise BadMessageError(
            f"{address}: {count} {group.item}s; must be {group.min_items}..{group.max_items}",
            "arg_count",
        )


CODEC: Codec[Message] = Codec(encode, decode)


# ---- notes: chunks and CRC ---------------------------------------------------------------

_NOTE_STRUCT = struct.Struct(">BffBB")


def chunk_notes(
    notes: Sequence[ClipNote], max_per_chunk: int = MAX_NOTES_PER_CHUNK
) -> list[tuple[ClipNote, ...]]:
    """`notes` in order, cut into chunks of at most `max_per_chunk` (no chunks for none)."""
    if not 1 <= max_per_chunk <= MAX_NOTES_PER_CHUNK:
        raise ValueError(f"max_per_chunk must be in 1..{MAX_NOTES_PER_CHUNK}, got {max_per_chunk}")
    return [tuple(notes[i:i + max_per_chunk]) for i in range(0, len(notes), max_per_chunk)]


def crc32_of_notes(notes: Iterable[ClipNote]) -> str:
    """CRC-32 of the notes' canonical bytes, as 8 lowercase hex digits.

    Canonical form: for each note in order, `struct.pack(">BffBB", pitch, start_beats,
    duration_beats, velocity, channel)` — big-endian, times as the float32 values OSC carries,
    so sender and receiver agree bit for bit. Notes are validated first (BadMessageError).
    """
    crc = 0
    for index, note in enumerate(notes):
        values = check_values(NOTE_ARGS, _note_values(note), f"note {index}")
        crc = zlib.crc32(_NOTE_STRUCT.pack(*values), crc)
    return f"{crc:08x}"


class NoteChunks:
    """Notes announced as n_notes in n_chunks, arriving in any order; duplicates ignored."""

    def __init__(self, what: str, n_notes: int, n_chunks: int) -> None:
        least = -(-n_notes // MAX_NOTES_PER_CHUNK)
        if not least <= n_chunks <= n_notes:
            raise BadMessageError(
                f"{what}: {n_notes} notes cannot come in {n_chunks} chunks "
                f"(need {least}..{n_notes} chunks of 1..{MAX_NOTES_PER_CHUNK} notes)", "value",
            )
        self.what = what
        self.n_notes = n_notes
        self.n_chunks = n_chunks
        self._chunks: dict[int, tuple[ClipNote, ...]] = {}
        self._received = 0

    def add(self, chunk: int, notes: tuple[ClipNote, ...]) -> bool:
        """Store one chunk; False for a duplicate (ignored, the first copy wins)."""
        if not 0 <= chunk < self.n_chunks:
            raise BadMessageError(
                f"{self.what}: chunk {chunk} is out of range 0..{self.n_chunks - 1}", "value"
            )
        if chunk in self._chunks:
            return False
        if self._received + len(notes) > self.n_notes:
            raise BadMessageError(
                f"{self.what}: more notes than the {self.n_notes} announced", "value"
            )
        self._chunks[chunk] = notes
        self._received += len(notes)
        return True

    def missing(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.n_chunks) if i not in self._chunks)

    @property
    def complete(self) -> bool:
        return len(self._chunks) == self.n_chunks

    def finish(self, crc32: str) -> tuple[ClipNote, ...]:
        """All notes in chunk order, once every chunk is here and the CRC matches."""
        missing = self.missing()
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
            raise BadMessageError(
                f"{self.what}: {len(missing)} of {self.n_chunks} chunks missing ({shown})",
                "incomplete",
            )
        notes = tuple(note for i in range(self.n_chunks) for note in self._chunks[i])
        if len(notes) != self.n_notes:
            raise BadMessageError(
                f"{self.what}: {len(notes)} notes arrived, {self.n_notes} were announced",
                "value",
            )
        actual = crc32_of_notes(notes)
        if actual != crc32:
            raise BadMessageError(
                f"{self.what}: CRC mismatch: announced {crc32}, the notes give {actual}", "crc"
            )
        return notes


# ---- clips ------------------------------------------------------------------------------


def _check_clip_size(what: str, n_notes: int, end_beats: float, ts_num: int,
                     ts_den: int) -> None:
    if n_notes > MAX_CLIP_NOTES:
        raise ClipTooLargeError(
            f"{what} has {n_notes} notes; at most {MAX_CLIP_NOTES} are accepted"
        )
    bars = end_beats / (ts_num * 4 / ts_den)
    if bars > MAX_CLIP_BARS:
        raise ClipTooLargeError(
            f"{what} is {math.ceil(bars)} bars long; at most {MAX_CLIP_BARS} are accepted"
        )


def check_clip_size(clip: Clip) -> None:
    """ClipTooLargeError (code 2) for more than MAX_CLIP_NOTES notes or MAX_CLIP_BARS bars
    (clip length or last note end); BadMessageError for an impossible meter."""
    fields = dict(BY_TYPE[ClipBegin].args)
    meter = (("ts_num", fields["ts_num"]), ("ts_den", fields["ts_den"]))
    check_values(meter, (clip.ts_num, clip.ts_den), f"clip {clip.name!r}")
    end = max([clip.length_beats] + [n.start_beats + n.duration_beats for n in clip.notes])
    _check_clip_size(f"clip {clip.name!r}", len(clip.notes), end, clip.ts_num, clip.ts_den)


def _fit(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` UTF-8 bytes, on a character boundary."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def clip_messages(
    request_id: str, clip: Clip
) -> tuple[ClipBegin, tuple[ClipNotes, ...], ClipEnd]:
    """The upload of `clip`: begin, the note chunks, end (names cut to fit the limits)."""
    check_clip_size(clip)
    chunks = chunk_notes(clip.notes)
    begin = ClipBegin(
        request_id, _fit(clip.name, 256), clip.length_beats, clip.tempo_bpm, clip.ts_num,
        clip.ts_den, len(clip.notes), len(chunks), _fit(clip.source, 128),
        _fit(clip.key_hint or "", 64),
    )
    notes = tuple(ClipNotes(request_id, i, chunk) for i, chunk in enumerate(chunks))
    return begin, notes, ClipEnd(request_id, crc32_of_notes(clip.notes))


class ClipUpload:
    """One clip upload on the bridge side: begin → chunks in any order → end with CRC."""

    def __init__(self, begin: ClipBegin) -> None:
        what = f"clip {begin.request_id}"
        _check_clip_size(what, begin.n_notes, begin.length_beats, begin.ts_num, begin.ts_den)
        self.begin = begin
        self._notes = NoteChunks(what, begin.n_notes, begin.n_chunks)

    @property
    def request_id(self) -> str:
        return self.begin.request_id

    def add(self, message: ClipNotes) -> bool:
        """Store a chunk; False if it is a duplicate."""
        self._check_request(message.request_id)
        return self._notes.add(message.chunk, message.notes)

    def missing(self) -> tuple[int, ...]:
        return self._notes.missing()

    @property
    def complete(self) -> bool:
        return self._notes.complete

    def finish(self, end: ClipEnd, source: str) -> Clip:
        """The clip, once complete and verified (BadMessageError / ClipTooLargeError if not)."""
        self._check_request(end.request_id)
        notes = self._notes.finish(end.crc32)
        b = self.begin
        last_end = max((n.start_beats + n.duration_beats for n in notes), default=0.0)
        _check_clip_size(f"clip {b.request_id}", len(notes), last_end, b.ts_num, b.ts_den)
        return Clip(source, b.name, b.length_beats, b.tempo_bpm, b.ts_num, b.ts_den, notes,
                    b.key_hint or None)

    def _check_request(self, request_id: str) -> None:
        if request_id != self.request_id:
            raise BadMessageError(
                f"message for {request_id} given to the upload of {self.request_id}", "value"
            )


# ---- results ----------------------------------------------------------------------------


def part_order(parts: Iterable[str]) -> list[str]:
    """Known parts in channel order (PARTS), then any others by name."""
    names = set(parts)
    return [p for p in PARTS if p in names] + sorted(names - set(PARTS))


def _summary_pieces(summary: Mapping[str, Any]) -> list[str]:
    try:
        text = json.dumps(dict(summary), ensure_ascii=True, separators=(",", ":"),
                          allow_nan=False, default=str)
    except (TypeError, ValueError) as err:
        text = json.dumps({"truncated": True, "error": f"summary not JSON: {err}"[:200]})
    if len(text) > MAX_SUMMARY_BYTES:
        scalars = {k: v for k, v in summary.items()
                   if isinstance(v, str | int | float | bool) and len(str(v)) < 200}
        text = json.dumps({**scalars, "truncated": True}, ensure_ascii=True, default=str)
    step = MAX_SUMMARY_PIECE_BYTES  # ASCII only: characters are bytes
    return [text[i:i + step] for i in range(0, len(text), step)]


def result_messages(result: GenerateResult) -> list[ResultMessage]:
    """The messages that carry `result` to a client, in sending order. Each part's notes go
    out on its channel from PART_CHANNELS (an unknown part is a BridgeError, code 3)."""
    rid = result.request_id
    names = part_order(result.parts)
    chord_chunks = [tuple(result.chords[i:i + MAX_CHORDS_PER_CHUNK])
                    for i in range(0, len(result.chords), MAX_CHORDS_PER_CHUNK)] or [()]
    pieces = _summary_pieces(result.summary)
    messages: list[ResultMessage] = [ResultBegin(rid, len(names), len(chord_chunks), len(pieces))]
    for name in names:
        channel = PART_CHANNELS.get(name)
        if channel is None:
            raise BridgeError(
                f"result part {name!r} has no MIDI channel (known: {', '.join(PART_CHANNELS)})"
            )
        notes = tuple(n if n.channel == channel else replace(n, channel=channel)
                      for n in result.parts[name])
        chunks = chunk_notes(notes)
        messages.append(PartBegin(rid, name, name.capitalize(), channel, len(notes),
                                  len(chunks)))
        messages.extend(PartNotes(rid, name, i, chunk) for i, chunk in enumerate(chunks))
        messages.append(PartEnd(rid, name, crc32_of_notes(notes)))
    messages.extend(Chords(rid, i, len(chord_chunks), chunk)
                    for i, chunk in enumerate(chord_chunks))
    messages.extend(Summary(rid, i, len(pieces), piece) for i, piece in enumerate(pieces))
    return messages


class _Part:
    """A part being received: its begin may come after some of its chunks."""

    def __init__(self) -> None:
        self.begin: PartBegin | None = None
        self.chunks: NoteChunks | None = None
        self.early: dict[int, tuple[ClipNote, ...]] = {}
        self.crc32: str | None = None
        self.notes: tuple[ClipNote, ...] | None = None


class _Pieces:
    """Numbered chunks of something announced with its chunk count."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.n_chunks: int | None = None
        self.items: dict[int, Any] = {}

    def add(self, chunk: int, n_chunks: int, item: Any) -> bool:
        if self.n_chunks is None:
            self.n_chunks = n_chunks
        if n_chunks != self.n_chunks or chunk >= n_chunks:
            raise BadMessageError(
                f"{self.what}: chunk {chunk} of {n_chunks} does not fit the announced "
                f"{self.n_chunks}", "value",
            )
        if chunk in self.items:
            return False
        self.items[chunk] = item
        return True

    @property
    def complete(self) -> bool:
        return self.n_chunks is not None and len(self.items) == self.n_chunks

    def ordered(self) -> list[Any]:
        return [self.items[i] for i in range(self.n_chunks or 0)]


class ResultAssembly:
    """One result on the client side, from messages in any order, duplicates ignored.
    Each part's CRC is checked as soon as the part is complete (BadMessageError, "crc")."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self._header: ResultBegin | None = None
        self._parts: dict[str, _Part] = {}
        self._chords = _Pieces(f"result {request_id} chords")
        self._summary = _Pieces(f"result {request_id} summary")

    @property
    def started(self) -> bool:
        return bool(self._header or self._parts or self._chords.items or self._summary.items)

    def add(self, message: ResultMessage) -> bool:
        """Take one message; False if it brought nothing new."""
        if message.request_id != self.request_id:
            raise BadMessageError(
                f"message for {message.request_id} given to the result of {self.request_id}",
                "value",
            )
        match message:
            case ResultBegin():
                if self._header is not None:
                    return False
                self._header = message
                self._check_part_count()
                return True
            case Chords():
                return self._chords.add(message.chunk, message.n_chunks, message.chords)
            case Summary():
                return self._summary.add(message.chunk, message.n_chunks, message.text)
            case PartBegin() | PartNotes() | PartEnd():
                return self._add_part(message)
        raise BadMessageError(f"not a result message: {message!r}", "value")

    def _add_part(self, message: PartBegin | PartNotes | PartEnd) -> bool:
        part = self._parts.get(message.part)
        if part is None:
            part = self._parts[message.part] = _Part()
            self._check_part_count()
        if part.notes is not None:
            return False  # complete and verified already
        what = f"result {self.request_id} part {message.part}"
        new = False
        match message:
            case PartBegin():
                if part.begin is None:
                    if message.n_notes > MAX_PART_NOTES:
                        raise ClipTooLargeError(
                            f"{what}: {message.n_notes} notes; at most {MAX_PART_NOTES}"
                        )
                    part.begin = message
                    part.chunks = NoteChunks(what, message.n_notes, message.n_chunks)
                    for chunk, notes in sorted(part.early.items()):
                        part.chunks.add(chunk, notes)
                    part.early.clear()
                    new = True
            case PartNotes():
                if part.chunks is not None:
                    new = part.chunks.add(message.chunk, message.notes)
                elif message.chunk not in part.early:
                    if message.chunk >= MAX_PART_NOTES:
                        raise BadMessageError(f"{what}: chunk {message.chunk} out of range",
                                              "value")
                    part.early[message.chunk] = message.notes
                    new = True
            case PartEnd():
                if part.crc32 is None:
                    part.crc32 = message.crc32
                    new = True
        if part.chunks is not None and part.crc32 is not None and part.chunks.complete:
            part.notes = part.chunks.finish(part.crc32)
        return new

    def _check_part_count(self) -> None:
        limit = self._header.n_parts if self._header is not None else MAX_PARTS
        if len(self._parts) > limit:
            raise BadMessageError(
                f"result {self.request_id}: {len(self._parts)} parts; {limit} announced",
                "value",
            )

    @property
    def complete(self) -> bool:
        return (
            self._header is not None
            and len(self._parts) == self._header.n_parts
            and all(p.notes is not None for p in self._parts.values())
            and self._chords.complete and self._chords.n_chunks == self._header.n_chord_chunks
            and self._summary.complete
            and self._summary.n_chunks == self._header.n_summary_chunks
        )

    def describe_missing(self) -> str:
        """What is still missing, for timeout messages."""
        if self._header is None:
            return "no result yet" if not self.started else "result header missing"
        gaps = [f"part {name}" for name, p in self._parts.items() if p.notes is None]
        if len(self._parts) < self._header.n_parts:
            gaps.append(f"{self._header.n_parts - len(self._parts)} part(s) not begun")
        if not self._chords.complete:
            gaps.append("chord chunks")
        if not self._summary.complete:
            gaps.append("summary chunks")
        return "missing " + ", ".join(gaps) if gaps else "complete"

    def result(self, source: str) -> GenerateResult:
        """The assembled result (BadMessageError while incomplete or for a bad summary)."""
        if not self.complete:
            raise BadMessageError(
                f"result {self.request_id} is incomplete: {self.describe_missing()}",
                "incomplete",
            )
        text = "".join(self._summary.ordered())
        try:
            summary = json.loads(text)
        except json.JSONDecodeError as err:
            raise BadMessageError(f"result {self.request_id}: summary is not JSON: {err}",
                                  "value") from err
        if not isinstance(summary, dict):
            raise BadMessageError(f"result {self.request_id}: summary is not a JSON object",
                                  "value")
        parts = {name: self._parts[name].notes or () for name in part_order(self._parts)}
        chords = tuple(c for chunk in self._chords.ordered() for c in chunk)
        return GenerateResult(self.request_id, source, parts, chords, summary)


# ---- the table as documentation ----------------------------------------------------------


def protocol_table() -> str:
    """The message table in Markdown (kept in the module docstring; a test checks it)."""
    rows = ["| Address | Direction | Arguments | Meaning |", "|---|---|---|---|"]
    rows += [f"| `{s.address}` | {s.direction} | `{s.signature()}` | {s.doc} |"
             for s in MESSAGES]
    return "\n".join(rows)


def value_table() -> str:
    """Every argument name with its OSC type and allowed values, in Markdown."""
    seen: dict[tuple[str, str], list[str]] = {}
    kinds: dict[str, set[str]] = {}
    for spec in MESSAGES:
        fields = list(spec.args) + (list(spec.group.args) if spec.group else [])
        for name, field in fields:
            key = (name, f"{field.tag} | {field.describe()}")
            seen.setdefault(key, []).append(spec.address)
            kinds.setdefault(name, set()).add(key[1])
    rows = ["| Argument | Type | Allowed |", "|---|---|---|"]
    for (name, kind), addresses in seen.items():
        variants = [seen[(name, k)] for k in sorted(kinds[name])]
        where = ""
        if len(variants) > 1:  # the common variant says "elsewhere", the others say where
            common = max(variants, key=len)
            where = (" (elsewhere)" if addresses is common
                     else f" (in {', '.join(f'`{a}`' for a in addresses)})")
        rows.append(f"| {name}{where} | {kind} |")
    return "\n".join(rows)
