"""Plain values the bridge moves between DAWs and the engine: clips, notes, requests, results.

Times are float beats (quarter notes) from the clip start, as DAWs and our OSC API use them.
The bridge never imports torch or Qt; the engine is reached only through an injected
`Generate` function (see `bridge.session`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_CLIP_NOTES = 10_000
MAX_CLIP_BARS = 512
PARTS = ("chords", "piano")  # generated parts, in channel order 2, 3
PART_CHANNELS = {"melody": 1, "chords": 2, "piano": 3}  # user-facing MIDI channels


@dataclass(frozen=True)
class ClipNote:
    pitch: int
    start_beats: float
    duration_beats: float
    velocity: int = 100
    channel: int = 1  # 1-16, user-facing numbering


@dataclass(frozen=True)
class ClipControl:
    """A MIDI control change in a part, e.g. the piano's sustain pedal (CC 64)."""

    start_beats: float
    controller: int  # 0-127
    value: int  # 0-127
    channel: int = 1  # 1-16, user-facing numbering


SUSTAIN_PEDAL = 64


@dataclass(frozen=True)
class Clip:
    """A melody clip as a DAW sent it."""

    source: str  # who sent it: "osc:<client>", "ableton", "reaper", "midi" …
    name: str
    length_beats: float
    tempo_bpm: float
    ts_num: int
    ts_den: int
    notes: tuple[ClipNote, ...]
    key_hint: str | None = None  # e.g. Live 12's root note + scale name


@dataclass(frozen=True)
class ChordSymbol:
    start_beats: float
    duration_beats: float
    symbol: str


@dataclass(frozen=True)
class GenerateResult:
    """What the engine made for one clip: parts by name (see PARTS) and the chord chart."""

    request_id: str
    source: str
    parts: Mapping[str, tuple[ClipNote, ...]]
    chords: tuple[ChordSymbol, ...] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)  # key, meter, phrases, textures
    # control changes by part name (the piano's sustain pedal), beats like the notes
    controls: Mapping[str, tuple[ClipControl, ...]] = field(default_factory=dict)


class Cancelled(Exception):
    """Raised inside a generate function when its request was superseded or cancelled."""


@dataclass(frozen=True)
class JobContext:
    """Handed to the generate function: where to report progress and how to notice that the
    job is no longer wanted (latest request per source wins)."""

    request_id: str
    source: str
    progress: Callable[[float, str], None]
    is_cancelled: Callable[[], bool]

    def check(self) -> None:
        if self.is_cancelled():
            raise Cancelled(self.request_id)


# The engine, injected: (clip, options as plain JSON-like mapping, context) -> result.
Generate = Callable[[Clip, Mapping[str, Any], JobContext], GenerateResult]
