"""Drawing the piano roll's picture, off the GUI thread: the lanes and their geometry, bar and
beat lines, phrase boundaries and labels, chord symbols shortened by rule to fit their span
(in a smaller font where more of the symbol fits), the voicing lane and the notes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PyQt6.QtCore import QLineF, QRectF, Qt
from PyQt6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QImage, QPainter, QPen

from ui.panel.rollview import RollNote, RollPhrase, RollView, fit_text, symbol_forms
from ui.panel.theme import Theme

GUTTER = 58  # px for the lane names
CHORD_LANE = 28
PHRASE_LANE = 20
RIGHT_MARGIN = 12
# Fitting the clip to the window goes down to this many px a beat (64 bars of 4/4 fit in the
# roll of a 1280 px wide window); zooming out stops there too.
MIN_BEAT_PX = 4.0
MIN_GRID_BEAT_PX = 6.0  # narrower beats get no beat lines (bar lines only)
MIN_NUMBER_PX = 22.0  # bar numbers at least this far apart (else every 2nd, 4th… bar)
# PyQt holds the GIL through every Qt call: one drawRects/drawLines of hundreds of shapes held
# it for 4-10 ms, and the GUI thread waited that long for its next Python slot. Shapes go to
# Qt in batches this large (each call well under 1 ms), so the GIL changes hands in between.
DRAW_BATCH = 48
FILL_BAND = 64  # px rows the background is filled in per call, for the same reason
SMALL_CHORD_SCALE = 0.85  # the smaller chord font's size, of the roll's font
VOICING_COLOURS = {"dark": "#c9a0ff", "light": "#7b4cc4"}  # the voicing lane's notes


def fit_beat_px(width: float, length_beats: float) -> float:
    """Px per beat that fit `length_beats` into a roll `width` px wide (not under the floor)."""
    return max(MIN_BEAT_PX, (width - GUTTER - RIGHT_MARGIN) / max(length_beats, 1.0))


def roll_width(beat_px: float, length_beats: float) -> int:
    return int(GUTTER + length_beats * beat_px + RIGHT_MARGIN)


@dataclass(frozen=True)
class Lanes:
    """Where each lane lies (top, height) in a roll of a given height."""

    melody: tuple[int, int]
    voicings: tuple[int, int] | None  # None: the lane is hidden
    piano: tuple[int, int]

    @classmethod
    def of(cls, height: int, voicings: bool) -> Lanes:
        top = CHORD_LANE + PHRASE_LANE
        free = height - top - 4
        melody_h = int(free * (0.36 if voicings else 0.48))
        voicing_h = int(free * 0.22) if voicings else 0
        voicing_top = top + melody_h + 8
        piano_top = voicing_top + (voicing_h + 8 if voicings else 0)
        return cls((top, melody_h), (voicing_top, voicing_h) if voicings else None,
                   (piano_top, height - piano_top - 4))


class Backgrounds:
    """The last roll background drawn (one: the clip on show), kept by the drawing thread."""

    def __init__(self) -> None:
        self._key: object = None
        self._image: QImage | None = None

    def get(self, key: object) -> QImage | None:
        return self._image if key == self._key else None

    def put(self, key: object, image: QImage) -> None:
        self._key, self._image = key, image


class RollPainter:
    """Draws a `RollView` onto an image of a given size: no widget involved, so it may run
    on a background thread (Qt allows painting on a QImage off the GUI thread). `beat_px`:
    the zoom (None: fit the clip to the width); `voicings`: show the voicing lane."""

    def __init__(self, view: RollView, theme: Theme, width: int, height: int,
                 font: QFont, beat_px: float | None = None, voicings: bool = False) -> None:
        self.view, self.theme, self.font = view, theme, font
        self.w, self.h = width, height
        self.zoom = beat_px
        self.voicings = voicings
        self.lanes = Lanes.of(height, voicings)

    def beat_px(self) -> float:
        return self.zoom if self.zoom is not None else fit_beat_px(self.w, self.view.length_beats)

    def x_of(self, beats: float) -> float:
        return GUTTER + beats * self.beat_px()

    def render(self, ratio: float = 1.0, backgrounds: Backgrounds | None = None) -> QImage:
        """The picture at `ratio` device pixels per pixel. `backgrounds`: where the part that
        only depends on the clip's length, meter, size, zoom, lanes and theme (fill, beat and
        bar lines, bar numbers, lane names; half the drawing of a long clip) is kept between
        results."""
        w, h = self.w, self.h
        image = QImage(max(1, round(w * ratio)), max(1, round(h * ratio)),
                       QImage.Format.Format_ARGB32_Premultiplied)
        key = (self.view.length_beats, self.view.bar_beats, self.view.first_bar_beats,
               self.theme, w, h, ratio, self.font.toString(), self.beat_px(), self.voicings)
        background = backgrounds.get(key) if backgrounds is not None else None
        if background is None:
            background = self._background(ratio)
            if backgrounds is not None:
                backgrounds.put(key, background)
        painter = QPainter(image)  # copied in bands: one call for all of it held the GIL
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        for y in range(0, image.height(), FILL_BAND):
            band = QRectF(0, y, image.width(), min(FILL_BAND, image.height() - y))
            painter.drawImage(band, background, band)
        painter.end()
        image.setDevicePixelRatio(ratio)
        t, lanes = self.theme, self.lanes
        painter = QPainter(image)
        painter.setFont(self.font)
        painter.setClipRect(QRectF(GUTTER - 4, 0, w - GUTTER + 4, h))  # the lane names stay
        self._paint_phrases(painter, h)
        self._paint_chords(painter)
        melody_top, melody_h = lanes.melody
        self._paint_notes(painter, self.view.melody, melody_top + 2, melody_h - 4,
                          QColor(t.melody))
        if lanes.voicings is not None:
            top, height = lanes.voicings
            self._paint_separator(painter, top)
            self._paint_notes(painter, self.view.voicings, top, height,
                              QColor(VOICING_COLOURS.get(t.name, t.chord_text)))
        piano_top, piano_h = lanes.piano
        self._paint_separator(painter, piano_top)
        self._paint_notes(painter, self.view.piano, piano_top, piano_h, QColor(t.piano))
        if not self.view.melody:
            painter.setClipping(False)  # a narrow roll's hint runs over the lane names
            painter.setFont(self._small_font())
            painter.setPen(QColor(t.muted))
            painter.drawText(QRectF(GUTTER, melody_top, w - GUTTER, h - melody_top - 4),
                             Qt.AlignmentFlag.AlignCenter,
                             "Open a MIDI or MusicXML file, drop one here, or play a clip in "
                             "your DAW")
        painter.end()
        return image

    def _paint_separator(self, painter: QPainter, lane_top: int) -> None:
        painter.setPen(QPen(QColor(self.theme.bar), 1))
        painter.drawLine(0, lane_top - 4, self.w, lane_top - 4)

    def _small_font(self) -> QFont:
        """The lane names' (and the empty roll's hint's) font."""
        font = QFont(self.font)
        font.setPointSizeF(max(8.0, font.pointSizeF() * 0.9))
        return font

    def _background(self, ratio: float) -> QImage:
        """Fill, beat and bar lines, bar numbers and the lane names over the gutter, at device
        pixel ratio 1 (the bands are copied pixel for pixel)."""
        w, h, t = self.w, self.h, self.theme
        image = QImage(max(1, round(w * ratio)), max(1, round(h * ratio)),
                       QImage.Format.Format_ARGB32_Premultiplied)
        image.setDevicePixelRatio(ratio)
        painter = QPainter(image)
        painter.setFont(self.font)
        base = QColor(t.base)
        for y in range(0, h, FILL_BAND):  # not image.fill(): one call, ms with page faults
            painter.fillRect(QRectF(0, y, w, min(FILL_BAND, h - y)), base)
        lanes = self.lanes
        self._paint_grid(painter, lanes.melody[0], h)
        painter.fillRect(QRectF(0, 0, GUTTER - 4, h), QColor(t.panel))
        painter.setPen(QColor(t.muted))
        painter.setFont(self._small_font())
        names = [("Chords", 0, CHORD_LANE), ("Phrases", CHORD_LANE, PHRASE_LANE),
                 ("Melody", *lanes.melody)]
        if lanes.voicings is not None:
            names.append(("Voicings", *lanes.voicings))
        names.append(("Piano", *lanes.piano))
        for text, y, lane_h in names:
            painter.drawText(QRectF(4, y, GUTTER - 10, lane_h),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        painter.end()
        image.setDevicePixelRatio(1.0)
        return image

    def _paint_grid(self, painter: QPainter, top: int, h: int) -> None:
        t, v = self.theme, self.view
        beat_px = self.beat_px()
        if beat_px >= MIN_GRID_BEAT_PX:
            painter.setPen(QPen(QColor(t.grid), 1))
            lines = [QLineF(self.x_of(b), top, self.x_of(b), h)
                     for b in range(int(v.length_beats) + 1)]
            for i in range(0, len(lines), DRAW_BATCH):
                painter.drawLines(*lines[i:i + DRAW_BATCH])
        if v.bar_beats <= 0:
            return
        bar_line = v.first_bar_beats % v.bar_beats
        number = 1 - int(v.first_bar_beats // v.bar_beats)
        bar_px = beat_px * v.bar_beats
        every = next((n for n in (1, 2, 4, 8, 16, 32) if n * bar_px >= MIN_NUMBER_PX), 64)
        while bar_line <= v.length_beats + 1e-6:
            x = self.x_of(bar_line)
            painter.setPen(QPen(QColor(t.bar), 1))
            painter.drawLine(int(x), CHORD_LANE, int(x), h)
            at_end = bar_line > v.length_beats - 1e-6
            if number >= 1 and not at_end and (number - 1) % every == 0:
                painter.setPen(QColor(t.muted))
                painter.drawText(QRectF(x + 2, CHORD_LANE + PHRASE_LANE, 30, 14),
                                 Qt.AlignmentFlag.AlignLeft, str(number))
            bar_line += v.bar_beats
            number += 1

    def _paint_phrases(self, painter: QPainter, h: int) -> None:
        """Boundaries and labels; a locked phrase is tinted amber over all its lanes, with a
        striped label lane (it stays as it is through every generation)."""
        t = self.theme
        metrics = QFontMetricsF(self.font)
        for phrase in self.view.phrases:
            x0, x1 = self.x_of(phrase.start_beats), self.x_of(phrase.end_beats)
            colour = QColor(t.locked if phrase.locked else t.phrase)
            if phrase.locked:
                tint = QColor(t.locked)
                tint.setAlpha(22)
                painter.fillRect(QRectF(x0, CHORD_LANE, x1 - x0, h - CHORD_LANE), tint)
                tint.setAlpha(70)
                painter.fillRect(QRectF(x0, CHORD_LANE + 2, x1 - x0, PHRASE_LANE - 4),
                                 QBrush(tint, Qt.BrushStyle.BDiagPattern))
            painter.setPen(QPen(colour, 2))
            painter.drawLine(int(x0), CHORD_LANE, int(x0), h)
            label = fit_text(phrase_label_forms(phrase), x1 - x0 - 8, metrics.horizontalAdvance)
            painter.setPen(colour)
            painter.drawText(QRectF(x0 + 4, CHORD_LANE, max(10.0, x1 - x0 - 6), PHRASE_LANE),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, label)
        if self.view.phrases:
            x = self.x_of(self.view.phrases[-1].end_beats)
            painter.setPen(QPen(QColor(t.phrase), 2))
            painter.drawLine(int(x), CHORD_LANE, int(x), h)

    def chord_fonts(self) -> tuple[QFont, QFont]:
        """The chord symbols' font, and the smaller one a symbol takes when more of it fits."""
        bold = QFont(self.font)
        bold.setBold(True)
        small = QFont(self.font)
        small.setPointSizeF(max(7.0, self.font.pointSizeF() * SMALL_CHORD_SCALE))
        return bold, small

    def chord_labels(self) -> list[ChordLabel]:
        """Each chord's box and the form of its symbol drawn in it (see `symbol_forms`): the
        longest that fits in the bold font, or in the smaller one if more of it fits there;
        never wider than the box less its padding."""
        bold, small = (QFontMetricsF(font) for font in self.chord_fonts())
        labels = []
        for chord in self.view.chords:
            width = chord.length_beats * self.beat_px() - 2
            rect = QRectF(self.x_of(chord.start_beats) + 1, 3, max(2.0, width), CHORD_LANE - 6)
            forms = symbol_forms(chord.symbol)
            text = fit_text(forms, rect.width() - 4, bold.horizontalAdvance)
            smaller = fit_text(forms, rect.width() - 4, small.horizontalAdvance) \
                if text != forms[0] else ""
            if smaller and (not text or forms.index(smaller) < forms.index(text)):
                labels.append(ChordLabel(rect, smaller, True))
            else:
                labels.append(ChordLabel(rect, text, False))
        return labels

    def _paint_chords(self, painter: QPainter) -> None:
        t = self.theme
        fonts = self.chord_fonts()
        for label in self.chord_labels():
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(t.chord_fill))
            painter.drawRoundedRect(label.rect, 3, 3)
            if label.text:
                painter.setFont(fonts[label.small])
                painter.setPen(QColor(t.chord_text))
                painter.drawText(label.rect.adjusted(2, 0, 0, 0),
                                 Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                                 label.text)
        painter.setFont(self.font)

    def _paint_notes(self, painter: QPainter, notes: Sequence[RollNote], top: float,
                     height: float, colour: QColor) -> None:
        if not notes or height <= 4:
            return
        lo = min(n.pitch for n in notes) - 1
        hi = max(n.pitch for n in notes) + 1
        row = height / (hi - lo + 1)
        painter.setPen(QPen(colour.darker(160), 1))
        painter.setBrush(colour)
        beat = self.beat_px()
        rects = [
            QRectF(GUTTER + n.start_beats * beat, top + (hi - n.pitch) * row,
                   max(2.0, n.length_beats * beat - 1), max(2.0, row - 1))
            for n in notes
        ]
        for i in range(0, len(rects), DRAW_BATCH):
            painter.drawRects(*rects[i:i + DRAW_BATCH])


@dataclass(frozen=True)
class ChordLabel:
    rect: QRectF  # the chord's box
    text: str  # the form of its symbol shown ("" when not even the root fits)
    small: bool  # in the smaller font


def phrase_label_forms(phrase: RollPhrase) -> tuple[str, ...]:
    """A phrase's label, longest first ("A · 8 bars · locked", "A · locked", "A")."""
    name = f"{phrase.label} · {phrase.bars} bars"
    if phrase.locked:
        return (f"{name} · locked", f"{phrase.label} · locked", phrase.label)
    return (name, phrase.label)
