"""The values Live's calls return, as the bridge uses them: notes as Live stores them, the song
(tempo, meter, scale, selection), clip slots and clips (kind, length, the region that plays)."""

from __future__ import annotations

from dataclasses import dataclass

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class LiveNote:
    """A note as Live stores it: times in beats from the clip start, velocity a float."""

    pitch: int
    start_beats: float
    duration_beats: float
    velocity: float = 100.0
    mute: bool = False


@dataclass(frozen=True)
class SongInfo:
    """Tempo, meter and Live 12's scale; with `selection`, the Session view's selected slot."""

    tempo_bpm: float
    ts_num: int
    ts_den: int
    root_note: int | None  # 0 = C … 11 = B; None where Live/AbletonOSC has no scale
    scale_name: str | None
    selected_track: int | None = None
    selected_scene: int | None = None

    @property
    def key_hint(self) -> str | None:
        if self.root_note is None or not self.scale_name:
            return None
        return f"{NOTE_NAMES[self.root_note % 12]} {self.scale_name}"


@dataclass(frozen=True)
class NoteRead:
    """The notes of one clip to read in a burst: its span (length, or the end of its region if
    later) places the windows, `expected` (a known note count, 0 if none) sizes them."""

    track: int
    scene: int
    span_beats: float
    expected: int = 0


@dataclass(frozen=True)
class WatchedClip:
    """What live mode polls, from one burst: the song (with the selection, None where the
    master or a return track is selected), the watched slot's track name, and — when the slot
    still holds a MIDI clip — the clip and its notes."""

    song: SongInfo
    track_name: str
    info: ClipInfo | None  # None: the slot is empty (the clip was deleted)
    notes: tuple[LiveNote, ...]


@dataclass(frozen=True)
class SlotStatus:
    track_name: str
    has_clip: bool


@dataclass(frozen=True)
class ClipInfo:
    """A clip's length and the region that plays: the loop when looping, else the markers."""

    is_midi: bool
    name: str
    length_beats: float
    looping: bool
    region_start_beats: float
    region_end_beats: float

    @property
    def span_beats(self) -> float:
        """Where its notes can lie: the clip, or the region where that ends later."""
        return max(self.length_beats, self.region_end_beats)


@dataclass(frozen=True)
class SlotRef:
    """A Session-view clip slot by AbletonOSC's 0-based indices."""

    track: int
    scene: int

    def __str__(self) -> str:  # Live's own numbering, for messages
        return f"track {self.track + 1}, scene {self.scene + 1}"
