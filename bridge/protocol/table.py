"""The one table of our OSC API: every address with its direction, arguments and meaning.
Codec, limits checks and docs/osc-api.md are all read from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.protocol.fields import Args, Float, Group, Int, Text
from bridge.protocol.messages import (
    Ack,
    Cancel,
    Chords,
    ClipBegin,
    ClipEnd,
    ClipNotes,
    ErrorReply,
    Generate,
    Hello,
    HelloOk,
    Nack,
    PartBegin,
    PartControls,
    PartEnd,
    PartNotes,
    Ping,
    Pong,
    ResultBegin,
    ResultGet,
    Stats,
    StatsGet,
    Status,
    StatusGet,
    Summary,
)
from bridge.types import ChordSymbol, ClipControl, ClipNote

# 2 added /acco/part/controls. A bridge answers a hello with the lower of the two versions and
# sends controls only to clients that speak 2; a client takes either answer.
PROTOCOL_VERSION = 2
OLDEST_PROTOCOL = 1
CONTROLS_SINCE = 2
MAX_PACKET_BYTES = 9_216
MAX_NOTES_PER_CHUNK = 256
MAX_CHORDS_PER_CHUNK = 128
MAX_CONTROLS_PER_CHUNK = 256
MAX_MISSING_PER_NACK = 256
MAX_SUMMARY_PIECE_BYTES = 4_096
MAX_SUMMARY_BYTES = 64 * 1024
MAX_PARAMS_BYTES = 8_000
MAX_PARTS = 16
MAX_PART_NOTES = 200_000
MAX_PART_CONTROLS = 200_000
MAX_STATS_COUNTERS = 128
MAX_PEERS = 256  # senders a bridge remembers the hello of
MAX_REQUESTS = 256  # request ids a bridge remembers

TO_BRIDGE = "→ bridge"
TO_CLIENT = "→ client"

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
CONTROL_ARGS: Args = (
    ("start_beats", Float(0.0)),
    ("controller", Int(0, 127)),
    ("value", Int(0, 127)),
    ("channel", Int(1, 16)),
)

def note_values(note: ClipNote) -> tuple[Any, ...]:
    return (note.pitch, note.start_beats, note.duration_beats, note.velocity, note.channel)


def chord_values(chord: ChordSymbol) -> tuple[Any, ...]:
    return (chord.start_beats, chord.duration_beats, chord.symbol)


def control_values(control: ClipControl) -> tuple[Any, ...]:
    return (control.start_beats, control.controller, control.value, control.channel)


NOTES = Group("notes", "note", NOTE_ARGS, 1, MAX_NOTES_PER_CHUNK, ClipNote, note_values)
CHORDS = Group("chords", "chord", CHORD_ARGS, 0, MAX_CHORDS_PER_CHUNK, ChordSymbol,
               chord_values)
CONTROLS = Group("controls", "control", CONTROL_ARGS, 0, MAX_CONTROLS_PER_CHUNK, ClipControl,
                 control_values)
COUNTERS = Group("counters", "counter",
                 (("counter", Text(48, 1, r"[a-z0-9_]+")), ("count", Int(0))), 0,
                 MAX_STATS_COUNTERS, lambda counter, count: (counter, count),
                 lambda pair: pair)
MISSING = Group("missing", "chunk", (("chunk", CHUNK),), 0, MAX_MISSING_PER_NACK, int,
                lambda chunk: (chunk,))


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
    _spec("/acco/part/controls", PartControls, TO_CLIENT,
          (RID, PART, ("chunk", CHUNK), ("n_chunks", Int(1)), ("n_controls", COUNT),
           ("crc32", CRC32)),
          "one chunk of a part's control changes (the piano's sustain pedal, CC 64), with "
          "the part's totals and CRC; protocol 2 and later, one empty chunk for none", CONTROLS),
    _spec("/acco/part/end", PartEnd, TO_CLIENT, (RID, PART, ("crc32", CRC32)),
          "end of a part, CRC of its notes"),
    _spec("/acco/chords", Chords, TO_CLIENT, (RID, ("chunk", CHUNK), ("n_chunks", Int(1))),
          "one chunk of the chord chart", CHORDS),
    _spec("/acco/summary", Summary, TO_CLIENT,
          (RID, ("chunk", CHUNK), ("n_chunks", Int(1)),
           ("text", Text(MAX_SUMMARY_PIECE_BYTES))),
          "one piece of the result summary JSON (key, meter, phrases, textures)"),
    _spec("/acco/result/get", ResultGet, TO_BRIDGE, (RID,),
          "send the whole result again (only to the client whose request it is, see below)"),
    _spec("/acco/stats/get", StatsGet, TO_BRIDGE, (("token", Text(64)),),
          "ask for the bridge's counters"),
    _spec("/acco/stats", Stats, TO_CLIENT, (("token", Text(64)),),
          "the stats/get's token and the non-zero counters since the bridge started (packets "
          "received, bad ones by reason, refused requests by reason …), sorted by name; a "
          "count past 2³¹−1 is sent as 2³¹−1", COUNTERS),
    _spec("/acco/error", ErrorReply, TO_CLIENT,
          (("request_id", Text(64, 0, r"[A-Za-z0-9._:-]*")), ("code", Int(1, 99)),
           ("message", Text(1024))),
          "error for a request (empty id: for none); codes below"),
)

BY_ADDRESS: dict[str, MessageSpec] = {spec.address: spec for spec in MESSAGES}
BY_TYPE: dict[type[Any], MessageSpec] = {spec.type: spec for spec in MESSAGES}
