"""The piano roll widget: the melody with bar lines and phrase boundaries, chord symbols over
it (shortened by rule to fit their span), the Chords track's voicings (a lane that can be
hidden) and the piano part below, drawn off the GUI thread; horizontal zoom, a playhead and
the loop range drawn over the picture."""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from PyQt6.QtCore import QEvent, QLineF, QObject, QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QHelpEvent,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QShowEvent,
    QWheelEvent,
)
from PyQt6.QtWidgets import QScrollArea, QScrollBar, QSizePolicy, QToolTip, QWidget

from ui.panel.rollview import (
    RollChord,
    RollNote,
    RollPhrase,
    RollView,
    fit_text,
    symbol_forms,
)
from ui.panel.theme import DARK, Theme

GUTTER = 58  # px for the lane names
CHORD_LANE = 28
PHRASE_LANE = 20
RIGHT_MARGIN = 12
# Fitting the clip to the window goes down to this many px a beat (64 bars of 4/4 fit in the
# roll of a 1280 px wide window); zooming out stops there too.
MIN_BEAT_PX = 4.0
MAX_BEAT_PX = 96.0
MAX_ROLL_PX = 12_000  # the widest picture drawn (zooming in on a long clip stops there)
ZOOM_STEP = 1.25  # per wheel notch
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
    """Shows a `RollView`, fitted to the scroll area's width (down to `MIN_BEAT_PX` a beat;
    the area scrolls then) or at a zoom (Ctrl+wheel; `fit` goes back). The picture is drawn
    on a background thread (latest view wins) and only copied on the GUI thread, so a result
    never stalls the event loop; `rendered` fires when the picture on screen matches the
    current view and size. The playhead and the loop range are drawn over the picture.

    Clicks are intents: `chord_clicked(index into view.chords)`, `phrase_clicked(phrase
    index)` on the phrase lane, `seek(beats)` on the note lanes."""

    rendered = pyqtSignal()
    zoom_changed = pyqtSignal()
    chord_clicked = pyqtSignal(int)
    phrase_clicked = pyqtSignal(int)
    seek = pyqtSignal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = RollView()
        self.theme: Theme = DARK
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(200)  # every lane still readable (a window of 800×500)
        self._zoom: float | None = None  # px per beat; None: fit the width
        self._voicings = False
        self._playhead: float | None = None
        self._loop: tuple[float, float] | None = None
        self._anchor: tuple[float, float] | None = None  # (beat, viewport x) kept by a zoom
        self._follows_scrolling = False
        self._image: QImage | None = None
        self._image_key: tuple[int, int, int] | None = None  # (generation, width, height)
        self._requested: tuple[int, int, int] | None = None
        self._generation = 0
        self._renderer = _Renderer()
        self._renderer.image_ready.connect(self._on_image)
        self.destroyed.connect(self._renderer.close)

    # ---- what is shown ------------------------------------------------------------------

    def set_view(self, view: RollView) -> None:
        self.view = view
        self._zoom = None if self._zoom is None else min(self._zoom, self._max_beat_px())
        self._apply_width()
        self._invalidate()

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self._invalidate()

    def set_voicings(self, shown: bool) -> None:
        """Show or hide the voicing lane (the Chords track's notes)."""
        if shown != self._voicings:
            self._voicings = shown
            self._invalidate()

    @property
    def voicings_shown(self) -> bool:
        return self._voicings

    def set_playhead(self, beats: float | None) -> None:
        """Where playback is (None: no playhead); repaints only the strips it left and
        entered."""
        old, self._playhead = self._playhead, beats
        for at in (old, beats):
            if at is not None:
                self.update(int(self.x_of(at)) - 2, 0, 5, self.height())

    @property
    def playhead(self) -> float | None:
        return self._playhead

    def set_loop(self, span: tuple[float, float] | None) -> None:
        """The loop range marked over the phrase lane (None: none)."""
        if span != self._loop:
            self._loop = span
            self.update()

    # ---- geometry and zoom --------------------------------------------------------------

    def beat_px(self) -> float:
        return self._zoom if self._zoom is not None else fit_beat_px(self.width(),
                                                                     self.view.length_beats)

    @property
    def fitted(self) -> bool:
        """Whether the clip is fitted to the width (no zoom of its own)."""
        return self._zoom is None

    def x_of(self, beats: float) -> float:
        return GUTTER + beats * self.beat_px()

    def beats_at(self, x: float) -> float:
        return (x - GUTTER) / self.beat_px()

    def zoom_by(self, factor: float, anchor_x: float | None = None) -> None:
        """Zoom by `factor`, keeping the beat under `anchor_x` (widget px; default: the
        visible middle) where it is on screen. Zooming out past the fitted width fits."""
        old = self.beat_px()
        bar, viewport_w = self._scrolling()
        scrolled = bar.value() if bar is not None else 0
        if anchor_x is None:
            anchor_x = scrolled + viewport_w / 2
        new = min(max(old * factor, MIN_BEAT_PX), self._max_beat_px())
        if abs(new - old) < 1e-9:
            return
        self._anchor = (self.beats_at(anchor_x), anchor_x - scrolled)
        self._zoom = None if new <= fit_beat_px(viewport_w, self.view.length_beats) else new
        self._apply_width()
        self._invalidate()
        self.zoom_changed.emit()

    def fit(self) -> None:
        """Fit the whole clip to the width again."""
        if self._zoom is not None:
            self._zoom = None
            self._apply_width()
            self._invalidate()
            self.zoom_changed.emit()

    def scroll_area(self) -> QScrollArea | None:
        """The scroll area the roll sits in, if any."""
        parent = self.parentWidget()
        while parent is not None and not isinstance(parent, QScrollArea):
            parent = parent.parentWidget()
        return parent

    def _scrolling(self) -> tuple[QScrollBar | None, int]:
        """The scroll area's horizontal bar (None outside one) and the width it shows."""
        area = self.scroll_area()
        bar = area.horizontalScrollBar() if area is not None else None
        viewport = area.viewport() if area is not None else None
        return bar, viewport.width() if viewport is not None else self.width()

    def visible_beats(self) -> tuple[float, float]:
        """The beats at the left and the right edge of what the scroll area shows."""
        bar, viewport_w = self._scrolling()
        left = bar.value() if bar is not None else 0
        return self.beats_at(max(left, GUTTER)), self.beats_at(left + viewport_w)

    def scroll_to_beat(self, beats: float, where: float = 0.5) -> None:
        """Scroll so that `beats` is at `where` (0 left … 1 right) of the visible roll."""
        bar, viewport_w = self._scrolling()
        if bar is not None:
            bar.setValue(round(self.x_of(beats) - where * viewport_w))

    def _max_beat_px(self) -> float:
        return max(MIN_BEAT_PX, min(MAX_BEAT_PX, (MAX_ROLL_PX - GUTTER - RIGHT_MARGIN)
                                    / max(self.view.length_beats, 1.0)))

    def _apply_width(self) -> None:
        width = roll_width(self._zoom or MIN_BEAT_PX, self.view.length_beats)
        if width != self.minimumWidth():
            self.setMinimumWidth(width)
        area = self.scroll_area()
        if area is not None and area.widgetResizable():  # what the area would do, but now
            target = max(width, self._scrolling()[1])
            if target != self.width():
                self.resize(target, self.height())

    # ---- the picture --------------------------------------------------------------------

    def pending(self) -> bool:
        """Whether the picture on screen is older than the current view or size."""
        return self._image_key != (self._generation, self.width(), self.height())

    def painter(self) -> RollPainter:
        """A painter for the current view, size and zoom (what the drawing thread runs)."""
        return RollPainter(self.view, self.theme, self.width(), self.height(),
                           QFont(self.font()), self._zoom, self._voicings)

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
        self._renderer.request(key, self.painter(), self.devicePixelRatioF())

    def _on_image(self, payload: tuple[tuple[int, int, int], QImage]) -> None:
        key, image = payload
        if key[0] == self._generation:
            self._image, self._image_key = image, key
            self.update()
        if not self.pending():
            self.rendered.emit()

    # ---- Qt's events --------------------------------------------------------------------

    def resizeEvent(self, event: QResizeEvent | None) -> None:  # noqa: N802  # Qt's name
        super().resizeEvent(event)
        anchor, self._anchor = self._anchor, None
        bar = self._scrolling()[0]
        if anchor is not None and bar is not None:  # the zoomed beat stays under the mouse
            beat, viewport_x = anchor
            bar.setValue(round(self.x_of(beat) - viewport_x))
        self._request()

    def paintEvent(self, event: QPaintEvent | None) -> None:  # noqa: N802  # Qt's name
        painter = QPainter(self)
        if self._image is None:
            painter.fillRect(self.rect(), QColor(self.theme.base))
        else:  # until the new picture arrives, the last one (scaled if the size changed)
            painter.drawImage(QRectF(0, 0, self.width(), self.height()), self._image)
        if self._loop is not None:
            x0, x1 = self.x_of(self._loop[0]), self.x_of(self._loop[1])
            colour = QColor(self.theme.accent)
            colour.setAlpha(90)
            painter.fillRect(QRectF(x0, CHORD_LANE, x1 - x0, 3), colour)
            painter.fillRect(QRectF(x0, CHORD_LANE + PHRASE_LANE - 3, x1 - x0, 3), colour)
        if self._playhead is not None:
            x = self.x_of(self._playhead)
            painter.setPen(QPen(QColor(self.theme.accent), 2))
            painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        bar = self._scrolling()[0]
        left = bar.value() if bar is not None else 0
        if left > 0 and self._image is not None:  # the lane names stay in view
            ratio = self._image.devicePixelRatio()
            painter.drawImage(QRectF(left, 0, GUTTER - 4, self.height()), self._image,
                              QRectF(0, 0, (GUTTER - 4) * ratio, self._image.height()))
        painter.end()

    def showEvent(self, event: QShowEvent | None) -> None:  # noqa: N802  # Qt's name
        super().showEvent(event)
        bar = self._scrolling()[0]
        if bar is not None and not self._follows_scrolling:
            # Scrolling moves the painted pixels along: the lane names drawn at the left edge
            # would move with them, so the visible part is painted again.
            self._follows_scrolling = True
            bar.valueChanged.connect(lambda _value: self.update())

    def wheelEvent(self, event: QWheelEvent | None) -> None:  # noqa: N802  # Qt's name
        if event is None:
            return
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            notches = event.angleDelta().y() / 120
            if notches:
                self.zoom_by(ZOOM_STEP ** notches, event.position().x())
            event.accept()
        else:
            event.ignore()  # the scroll area scrolls

    def mousePressEvent(self, event: QMouseEvent | None) -> None:  # noqa: N802  # Qt's name
        if event is None or event.button() != Qt.MouseButton.LeftButton:
            return
        x, y = event.position().x(), event.position().y()
        if x < GUTTER:
            return
        if y < CHORD_LANE:
            index = _index_at(self.view.chords, self.beats_at(x))
            if index is not None:
                self.chord_clicked.emit(index)
        elif y < CHORD_LANE + PHRASE_LANE:
            index = _index_at(self.view.phrases, self.beats_at(x))
            if index is not None:
                self.phrase_clicked.emit(index)
        else:
            self.seek.emit(max(0.0, min(self.beats_at(x), self.view.length_beats)))

    def event(self, event: QEvent | None) -> bool:
        if event is not None and event.type() == QEvent.Type.ToolTip:
            assert isinstance(event, QHelpEvent)
            text = self.tooltip_at(event.pos().x(), event.pos().y())
            if text:
                QToolTip.showText(event.globalPos(), text, self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    def tooltip_at(self, x: float, y: float) -> str:
        """The full chord symbol (and where it is) over the chord lane; the phrase over the
        phrase lane."""
        beats = self.beats_at(x)
        if x < GUTTER:
            return ""
        if y < CHORD_LANE:
            index = _index_at(self.view.chords, beats)
            if index is None:
                return ""
            chord = self.view.chords[index]
            return f"{chord.symbol} — {self._where(chord.start_beats)}"
        if y < CHORD_LANE + PHRASE_LANE:
            index = _index_at(self.view.phrases, beats)
            if index is None:
                return ""
            return phrase_label_forms(self.view.phrases[index])[0] + \
                " — click to choose it for the loop"
        return ""

    def _where(self, beats: float) -> str:
        v = self.view
        if v.bar_beats <= 0:
            return f"beat {beats + 1:g}"
        bars = (beats - v.first_bar_beats) / v.bar_beats
        bar = int(bars // 1)
        beat = (beats - v.first_bar_beats - bar * v.bar_beats) + 1
        return f"bar {bar + 1}, beat {beat:g}"


def _index_at(spans: Sequence[RollChord | RollPhrase], beats: float) -> int | None:
    """The index of the chord or phrase whose span holds `beats`."""
    for i, span in enumerate(spans):
        start = span.start_beats
        end = start + span.length_beats if isinstance(span, RollChord) else span.end_beats
        if start <= beats < end:
            return i
    return None
