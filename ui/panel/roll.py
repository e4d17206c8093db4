"""The piano roll: the melody with bar lines and phrase boundaries, chord symbols over it, and
the piano part below. Everything is drawn in beats from the clip start."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PyQt6.QtCore import QRectF, QSize, Qt
from PyQt6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from bridge.types import Clip, GenerateResult
from engine.types import Arrangement, Melody, ProgressionChoice
from ui.panel.theme import DARK, Theme


@dataclass(frozen=True)
class RollNote:
    pitch: int
    start_beats: float
    length_beats: float


@dataclass(frozen=True)
class RollPhrase:
    label: str
    start_beats: float
    end_beats: float
    bars: int
    locked: bool = False


@dataclass(frozen=True)
class RollChord:
    start_beats: float
    length_beats: float
    symbol: str


@dataclass(frozen=True)
class RollView:
    """What the roll shows; built from whatever the panel has (clip, result, arrangement)."""

    melody: tuple[RollNote, ...] = ()
    piano: tuple[RollNote, ...] = ()
    chords: tuple[RollChord, ...] = ()
    phrases: tuple[RollPhrase, ...] = ()
    bar_beats: float = 4.0
    first_bar_beats: float = 0.0  # where a bar line falls (the phrase grid's downbeat)
    length_beats: float = 16.0


def _notes_from_ticks(notes: Sequence[object], ticks_per_beat: int) -> tuple[RollNote, ...]:
    return tuple(
        RollNote(n.pitch, n.start_tick / ticks_per_beat, n.duration_tick / ticks_per_beat)  # type: ignore[attr-defined]
        for n in notes
    )


def view_of_melody(melody: Melody) -> RollView:
    bar = melody.meter.numerator * 4 / melody.meter.denominator
    notes = _notes_from_ticks(melody.notes, melody.ticks_per_beat)
    end = max((n.start_beats + n.length_beats for n in notes), default=bar)
    return RollView(melody=notes, bar_beats=bar, length_beats=max(bar, end))


def view_of_arrangement(arrangement: Arrangement,
                        locked: Mapping[int, ProgressionChoice] | None = None) -> RollView:
    harmonization = arrangement.harmonization
    melody, analysis = harmonization.melody, harmonization.analysis
    tpb = melody.ticks_per_beat
    key = analysis.key
    phrases = tuple(
        RollPhrase(p.label, analysis.bar_start_16th(p.start_bar) / 4,
                   analysis.bar_start_16th(p.end_bar) / 4, p.bars, i in (locked or {}))
        for i, p in enumerate(analysis.phrases)
    )
    chords = tuple(RollChord(ev.start_16th / 4, ev.duration_16th / 4, ev.chord.symbol(key))
                   for ev in harmonization.chords)
    base = view_of_melody(melody)
    end = max([base.length_beats] + [p.end_beats for p in phrases])
    return RollView(
        melody=base.melody, piano=_notes_from_ticks(arrangement.piano_notes, tpb), chords=chords,
        phrases=phrases, bar_beats=analysis.meter.sixteenths_per_bar / 4,
        first_bar_beats=analysis.downbeat_16th / 4, length_beats=end,
    )


def view_of_clip(clip: Clip, result: GenerateResult | None = None) -> RollView:
    """A stored clip and its stored result (a restored session: no phrases known)."""
    bar = clip.ts_num * 4 / clip.ts_den
    melody = tuple(RollNote(n.pitch, n.start_beats, n.duration_beats) for n in clip.notes)
    piano: tuple[RollNote, ...] = ()
    chords: tuple[RollChord, ...] = ()
    if result is not None:
        piano = tuple(RollNote(n.pitch, n.start_beats, n.duration_beats)
                      for n in result.parts.get("piano", ()))
        chords = tuple(RollChord(c.start_beats, c.duration_beats, c.symbol) for c in result.chords)
    end = max([clip.length_beats, bar] + [n.start_beats + n.length_beats for n in melody])
    return RollView(melody=melody, piano=piano, chords=chords, bar_beats=bar, length_beats=end)


GUTTER = 58  # px for the lane names
CHORD_LANE = 28
PHRASE_LANE = 20
MIN_BEAT_PX = 12.0


class PianoRoll(QWidget):
    """Paints a `RollView`; fits the clip to its width, never narrower than 12 px a beat (the
    scroll area around it scrolls then)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = RollView()
        self.theme: Theme = DARK
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(260)

    def set_view(self, view: RollView) -> None:
        self.view = view
        self.setMinimumWidth(int(GUTTER + view.length_beats * MIN_BEAT_PX + 12))
        self.update()

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802  # Qt's name
        return QSize(900, 380)

    # -- geometry --

    def beat_px(self) -> float:
        return max(MIN_BEAT_PX, (self.width() - GUTTER - 12) / max(self.view.length_beats, 1.0))

    def x_of(self, beats: float) -> float:
        return GUTTER + beats * self.beat_px()

    # -- painting --

    def paintEvent(self, event: QPaintEvent | None) -> None:  # noqa: N802  # Qt's name
        t = self.theme
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.fillRect(self.rect(), QColor(t.base))
        w, h = self.width(), self.height()
        top = CHORD_LANE + PHRASE_LANE
        body = h - top - 4
        melody_h = int(body * 0.48)
        piano_top = top + melody_h + 8
        piano_h = h - piano_top - 4
        self._paint_grid(painter, top, h)
        self._paint_phrases(painter, h)
        self._paint_chords(painter)
        self._paint_notes(painter, self.view.melody, top + 2, melody_h - 4, QColor(t.melody))
        painter.setPen(QPen(QColor(t.bar), 1))
        painter.drawLine(0, piano_top - 4, w, piano_top - 4)
        self._paint_notes(painter, self.view.piano, piano_top, piano_h, QColor(t.piano))
        # lane names over a gutter background
        painter.fillRect(QRectF(0, 0, GUTTER - 4, h), QColor(t.panel))
        painter.setPen(QColor(t.muted))
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, font.pointSizeF() * 0.9))
        painter.setFont(font)
        for text, y, lane_h in (("Chords", 0, CHORD_LANE), ("Phrases", CHORD_LANE, PHRASE_LANE),
                                ("Melody", top, melody_h), ("Piano", piano_top, piano_h)):
            painter.drawText(QRectF(4, y, GUTTER - 10, lane_h),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        if not self.view.melody:
            painter.setPen(QColor(t.muted))
            painter.drawText(QRectF(GUTTER, top, w - GUTTER, body),
                             Qt.AlignmentFlag.AlignCenter,
                             "Open a MIDI or MusicXML file, drop one here, or play a clip in "
                             "your DAW")
        painter.end()

    def _paint_grid(self, painter: QPainter, top: int, h: int) -> None:
        t, v = self.theme, self.view
        beat = 0.0
        painter.setPen(QPen(QColor(t.grid), 1))
        while beat <= v.length_beats:
            x = self.x_of(beat)
            painter.drawLine(int(x), top, int(x), h)
            beat += 1.0
        bar_line = v.first_bar_beats % v.bar_beats if v.bar_beats > 0 else 0.0
        number = 1 - int(v.first_bar_beats // v.bar_beats) if v.bar_beats > 0 else 1
        painter.setPen(QPen(QColor(t.bar), 1))
        while v.bar_beats > 0 and bar_line <= v.length_beats + 1e-6:
            x = self.x_of(bar_line)
            painter.setPen(QPen(QColor(t.bar), 1))
            painter.drawLine(int(x), CHORD_LANE, int(x), h)
            at_end = bar_line > v.length_beats - 1e-6
            if number >= 1 and not at_end and self.beat_px() * v.bar_beats >= 18:
                painter.setPen(QColor(t.muted))
                painter.drawText(QRectF(x + 2, CHORD_LANE + PHRASE_LANE, 30, 14),
                                 Qt.AlignmentFlag.AlignLeft, str(number))
            bar_line += v.bar_beats
            number += 1

    def _paint_phrases(self, painter: QPainter, h: int) -> None:
        t = self.theme
        for phrase in self.view.phrases:
            x0, x1 = self.x_of(phrase.start_beats), self.x_of(phrase.end_beats)
            colour = QColor(t.locked if phrase.locked else t.phrase)
            painter.setPen(QPen(colour, 2))
            painter.drawLine(int(x0), CHORD_LANE, int(x0), h)
            text = f"{phrase.label} · {phrase.bars} bars" + ("  🔒 locked" if phrase.locked else "")
            painter.setPen(colour)
            painter.drawText(QRectF(x0 + 4, CHORD_LANE, max(10.0, x1 - x0 - 6), PHRASE_LANE),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        if self.view.phrases:
            x = self.x_of(self.view.phrases[-1].end_beats)
            painter.setPen(QPen(QColor(t.phrase), 2))
            painter.drawLine(int(x), CHORD_LANE, int(x), h)

    def _paint_chords(self, painter: QPainter) -> None:
        t = self.theme
        font = QFont(self.font())
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        for chord in self.view.chords:
            x0 = self.x_of(chord.start_beats)
            width = chord.length_beats * self.beat_px() - 2
            rect = QRectF(x0 + 1, 3, max(4.0, width), CHORD_LANE - 6)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(t.chord_fill))
            painter.drawRoundedRect(rect, 3, 3)
            painter.setPen(QColor(t.chord_text))
            text = metrics.elidedText(chord.symbol, Qt.TextElideMode.ElideRight,
                                      int(max(rect.width() - 4, 8)))
            painter.drawText(rect.adjusted(3, 0, -1, 0),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        painter.setFont(self.font())

    def _paint_notes(self, painter: QPainter, notes: Sequence[RollNote], top: float,
                     height: float, colour: QColor) -> None:
        if not notes or height <= 4:
            return
        lo = min(n.pitch for n in notes) - 1
        hi = max(n.pitch for n in notes) + 1
        row = height / (hi - lo + 1)
        painter.setPen(QPen(colour.darker(160), 1))
        painter.setBrush(colour)
        for n in notes:
            y = top + (hi - n.pitch) * row
            rect = QRectF(self.x_of(n.start_beats), y,
                          max(2.0, n.length_beats * self.beat_px() - 1), max(2.0, row - 1))
            painter.drawRect(rect)
