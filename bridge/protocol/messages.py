"""The messages of our OSC API as frozen dataclasses, one per address (see `table`)."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.types import ChordSymbol, ClipControl, ClipNote


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
class PartControls:
    """One chunk of a part's control changes; every chunk repeats the totals and the CRC, so
    any one of them announces the lot (a part without controls sends one empty chunk)."""

    request_id: str
    part: str
    chunk: int
    n_chunks: int
    n_controls: int
    crc32: str
    controls: tuple[ClipControl, ...]


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
class StatsGet:
    token: str


@dataclass(frozen=True)
class Stats:
    """The bridge's counters, (name, value) pairs sorted by name."""

    token: str
    counters: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ErrorReply:
    request_id: str  # empty when the error belongs to no request
    code: int
    message: str


Message = (
    Hello | HelloOk | Ping | Pong | ClipBegin | ClipNotes | ClipEnd | Ack | Nack | Generate
    | Cancel | StatusGet | Status | ResultBegin | PartBegin | PartNotes | PartEnd | Chords
    | Summary | ResultGet | ErrorReply | PartControls | StatsGet | Stats
)
ResultMessage = (
    ResultBegin | PartBegin | PartNotes | PartControls | PartEnd | Chords | Summary
)
