"""The piano roll widget: the melody with bar lines and phrase boundaries, chord symbols over
it, and the piano part below, drawn off the GUI thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence

from PyQt6.QtCore import QLineF, QObject, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent, QPen, QResizeEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget

from ui.panel.rollview import RollNote, RollView
from ui.panel.theme import DARK, Theme

GUTTER = 58  # px for the lane names
CHORD_LANE = 28
PHRASE_LANE = 20
MIN_BEAT_PX = 12.0
# PyQt holds the GIL through every Qt call: one drawRects/drawLines of hundreds of shapes held
# it for 4-10 ms, and the GUI thread waited that long for its next Python slot. Shapes go to
# Qt in batches this large (each call well under 1 ms), so the GIL changes hands in between.
DRAW_BATCH = 48
FILL_BAND = 64  # px rows the background is filled in per call, for the same reason


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
    on a background thread (Qt allows painting on a QImage off the GUI thread)."""

    def __init__(self, view: RollView, theme: Theme, width: int, height: int,
                 font: QFont) -> None:
        self.view, self.theme, self.font = view, theme, font
        self.w, self.h = width, height

    def beat_px(self) -> float:
        return max(MIN_BEAT_PX, (self.w - GUTTER - 12) / max(self.view.length_beats, 1.0))

    def x_of(self, beats: float) -> float:
        return GUTTER + beats * self.beat_px()

    def render(self, ratio: float = 1.0, backgrounds: Backgrounds | None = None) -> QImage:
        """The picture at `ratio` device pixels per pixel. `backgrounds`: where the part that
        only depends on the clip's length, meter, size and theme (fill, beat and bar lines,
        bar numbers, lane names; half the drawing of a long clip) is kept between results."""
        w, h = self.w, self.h
        image = QImage(max(1, round(w * ratio)), max(1, round(h * ratio)),
                       QImage.Format.Format_ARGB32_Premultiplied)
        key = (self.view.length_beats, self.view.bar_beats, self.view.first_bar_beats,
               self.theme, w, h, ratio, self.font.toString())
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
        t = self.theme
        painter = QPainter(image)
        painter.setFont(self.font)
        painter.setClipRect(QRectF(GUTTER - 4, 0, w - GUTTER + 4, h))  # the lane names stay
        top, melody_h, piano_top, piano_h = self._lanes()
        self._paint_phrases(painter, h)
        self._paint_chords(painter)
        self._paint_notes(painter, self.view.melody, top + 2, melody_h - 4, QColor(t.melody))
        painter.setPen(QPen(QColor(t.bar), 1))
        painter.drawLine(0, piano_top - 4, w, piano_top - 4)
        self._paint_notes(painter, self.view.piano, piano_top, piano_h, QColor(t.piano))
        if not self.view.melody:
            painter.setClipping(False)  # a narrow roll's hint runs over the lane names
            painter.setFont(self._small_font())
            painter.setPen(QColor(t.muted))
            painter.drawText(QRectF(GUTTER, top, w - GUTTER, h - top - 4),
                             Qt.AlignmentFlag.AlignCenter,
                             "Open a MIDI or MusicXML file, drop one here, or play a clip in "
                             "your DAW")
        painter.end()
        return image

    def _lanes(self) -> tuple[int, int, int, int]:
        """(top of the melody lane, its height, top of the piano lane, its height)."""
        top = CHORD_LANE + PHRASE_LANE
        melody_h = int((self.h - top - 4) * 0.48)
        piano_top = top + melody_h + 8
        return top, melody_h, piano_top, self.h - piano_top - 4

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
        top, melody_h, piano_top, piano_h = self._lanes()
        self._paint_grid(painter, top, h)
        painter.fillRect(QRectF(0, 0, GUTTER - 4, h), QColor(t.panel))
        painter.setPen(QColor(t.muted))
        painter.setFont(self._small_font())
        for text, y, lane_h in (("Chords", 0, CHORD_LANE), ("Phrases", CHORD_LANE, PHRASE_LANE),
                                ("Melody", top, melody_h), ("Piano", piano_top, piano_h)):
            painter.drawText(QRectF(4, y, GUTTER - 10, lane_h),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        painter.end()
        image.setDevicePixelRatio(1.0)
        return image

    def _paint_grid(self, painter: QPainter, top: int, h: int) -> None:
        t, v = self.theme, self.view
        beat = 0.0
        painter.setPen(QPen(QColor(t.grid), 1))
        lines = []
        while beat <= v.length_beats:
            x = self.x_of(beat)
            lines.append(QLineF(x, top, x, h))
            beat += 1.0
        for i in range(0, len(lines), DRAW_BATCH):
            painter.drawLines(*lines[i:i + DRAW_BATCH])
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
            text = f"{phrase.label} · {phrase.bars} bars" + ("  · locked" if phrase.locked else "")
            painter.setPen(colour)
            painter.drawText(QRectF(x0 + 4, CHORD_LANE, max(10.0, x1 - x0 - 6), PHRASE_LANE),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        if self.view.phrases:
            x = self.x_of(self.view.phrases[-1].end_beats)
            painter.setPen(QPen(QColor(t.phrase), 2))
            painter.drawLine(int(x), CHORD_LANE, int(x), h)

    def _paint_chords(self, painter: QPainter) -> None:
        t = self.theme
        font = QFont(self.font)
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


class _Renderer(QObject):
    """One long-lived thread that draws roll pictures, newest request first (older ones
    waiting are skipped). Starting a thread per picture would make the GUI thread wait for
    the new thread to start, which on a loaded machine took tens of ms."""

    image_ready = pyqtSignal(object)  # ((generation, width, height), QImage)

    def __init__(self) -> None:
        super().__init__()
        self._jobs: queue.SimpleQueue[tuple[tuple[int, int, int], RollPainter, float] | None] = \
            queue.SimpleQueue()
        self._backgrounds = Backgrounds()  # used on the drawing thread only
        self._thread = threading.Thread(target=self._run, name="accobridge-roll", daemon=True)
        self._thread.start()

    def request(self, key: tuple[int, int, int], painter: RollPainter, ratio: float) -> None:
        self._jobs.put((key, painter, ratio))

    def close(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            while job is not None and not self._jobs.empty():  # only the newest matters
                job = self._jobs.get()
            if job is None:
                return
            key, painter, ratio = job
            self.image_ready.emit((key, painter.render(ratio, self._backgrounds)))


class PianoRoll(QWidget):
    """Shows a `RollView`, fitted to its width but never narrower than 12 px a beat (the scroll
    area around it scrolls then). The picture is drawn on a background thread (latest view
    wins) and only copied on the GUI thread, so a result never stalls the event loop;
    `rendered` fires when the picture on screen matches the current view and size."""

    rendered = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = RollView()
        self.theme: Theme = DARK
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(260)
        self._image: QImage | None = None
        self._image_key: tuple[int, int, int] | None = None  # (generation, width, height)
        self._requested: tuple[int, int, int] | None = None
        self._generation = 0
        self._renderer = _Renderer()
        self._renderer.image_ready.connect(self._on_image)
        self.destroyed.connect(self._renderer.close)

    def set_view(self, view: RollView) -> None:
        self.view = view
        width = int(GUTTER + view.length_beats * MIN_BEAT_PX + 12)
        if width != self.minimumWidth():
            self.setMinimumWidth(width)
        self._invalidate()

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self._invalidate()

    def pending(self) -> bool:
        """Whether the picture on screen is older than the current view or size."""
        return self._image_key != (self._generation, self.width(), self.height())

    def close_renderer(self) -> None:
        self._renderer.close()

    def sizeHint(self) -> QSize:  # noqa: N802  # Qt's name
        return QSize(900, 380)

    def _invalidate(self) -> None:
        self._generation += 1
        self._request()

    def _request(self) -> None:
        key = (self._generation, self.width(), self.height())
        if key in (self._image_key, self._requested):
            return
        self._requested = key
        painter = RollPainter(self.view, self.theme, key[1], key[2], QFont(self.font()))
        self._renderer.request(key, painter, self.devicePixelRatioF())

    def _on_image(self, payload: tuple[tuple[int, int, int], QImage]) -> None:
        key, image = payload
        if key[0] == self._generation:
            self._image, self._image_key = image, key
            self.update()
        if not self.pending():
            self.rendered.emit()

    def resizeEvent(self, event: QResizeEvent | None) -> None:  # noqa: N802  # Qt's name
        super().resizeEvent(event)
        self._request()

    def paintEvent(self, event: QPaintEvent | None) -> None:  # noqa: N802  # Qt's name
        painter = QPainter(self)
        if self._image is None:
            painter.fillRect(self.rect(), QColor(self.theme.base))
        else:  # until the new picture arrives, the last one (scaled if the size changed)
            painter.drawImage(QRectF(0, 0, self.width(), self.height()), self._image)
        painter.end()
