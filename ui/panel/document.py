"""The panel's document: the open clip, where it came from and what was made for it (an
arrangement, or a result restored from the store), with the user's phrase locks and styles.
Qt-free; the presenters share one on the GUI thread."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from bridge.types import Clip, GenerateResult
from engine import Arrangement, Melody, Meter, ProgressionChoice
from ui.engine_link import clip_melody
from ui.panel.jobs import PANEL_SOURCE
from ui.panel.rollview import RollView

# (melody, [(track name, channel, notes)], {track name: [(tick, controller, value)]})
SongTracks = tuple[Melody, list[tuple[str, int, Any]], dict[str, Any]]


@dataclass(frozen=True)
class AnalysisEdits:
    """The analysis editor's values; None leaves that value to the analysis."""

    key: str | None = None  # "F major"
    meter: tuple[int, int] = (4, 4)
    pickup_16th: int | None = None
    phrases: str | None = None  # "A8A8B8B8"


@dataclass(eq=False)
class PanelDocument:
    source: str = PANEL_SOURCE
    clip: Clip | None = None
    melody: Melody | None = None  # the clip as read from a file (None: build it from the clip)
    arrangement: Arrangement | None = None
    view: RollView | None = None  # the arrangement's roll view (without lock marks)
    restored: GenerateResult | None = None
    locked: dict[int, ProgressionChoice] = field(default_factory=dict)
    phrase_styles: dict[int, str] = field(default_factory=dict)

    def open(self, source: str, clip: Clip, melody: Melody | None) -> None:
        """A new clip: nothing made for it yet, no locks."""
        self.source, self.clip, self.melody = source, clip, melody
        self.arrangement = self.restored = self.view = None
        self.release_phrases()

    def release_phrases(self) -> None:
        self.locked.clear()
        self.phrase_styles.clear()

    @property
    def has_result(self) -> bool:
        return self.arrangement is not None or self.restored is not None

    @property
    def from_daw(self) -> bool:
        return self.source != PANEL_SOURCE

    def song_tracks(self) -> SongTracks | None:
        """What `engine.midi_io.write_song` writes for what is on screen (None: nothing yet)."""
        from engine import Note

        arrangement = self.arrangement
        if arrangement is not None:
            harmonization = arrangement.harmonization
            pedal = [(round(p.tick), 64, 127 if p.down else 0) for p in arrangement.pedal]
            return (harmonization.melody,
                    [("Chords", 2, harmonization.chord_notes),
                     ("Piano", 3, arrangement.piano_notes)], {"Piano": pedal})
        if self.restored is not None and self.clip is not None:
            melody = self.melody or clip_melody(self.clip)
            tpb = melody.ticks_per_beat
            tracks = [
                (name.capitalize(), channel, [
                    Note(n.pitch, round(n.start_beats * tpb), max(1, round(n.duration_beats * tpb)),
                         n.velocity) for n in self.restored.parts.get(name, ())])
                for name, channel in (("chords", 2), ("piano", 3))
            ]
            return melody, tracks, {}
        return None

    def request_melody(self, meter: tuple[int, int]) -> Melody | None:
        """The melody in `meter` (the analysis editor's); None: the engine reads the clip."""
        num, den = meter
        melody = self.melody
        if melody is None:
            clip = self.clip
            if clip is None or (clip.ts_num, clip.ts_den) == (num, den):
                return None
            melody = clip_melody(clip)
        if (melody.meter.numerator, melody.meter.denominator) != (num, den):
            melody = replace(melody, meter=Meter(num, den))
        return melody
