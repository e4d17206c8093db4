"""The piano roll widget: shows a `RollView` (the melody with bar lines and phrase boundaries,
chord symbols over it, the Chords track's voicings in a lane that can be hidden, the piano part
below) drawn off the GUI thread by `ui.panel.rollpaint`; horizontal zoom and scrolling, a
playhead and the loop range drawn over the picture, clicks and tooltips."""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence

from PyQt6.QtCore import QEvent, QObject, QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import (
    QColor,
    QFont,
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

from ui.panel.rollpaint import (
    CHORD_LANE,
    GUTTER,
    MIN_BEAT_PX,
    PHRASE_LANE,
    RIGHT_MARGIN,
    Backgrounds,
    RollPainter,
    fit_beat_px,
    phrase_label_forms,
    roll_width,
)
from ui.panel.rollview import RollChord, RollPhrase, RollView
from ui.panel.theme import DARK, Theme

# Zooming in stops at this many px a beat, or where the picture would grow wider than this
MAX_BEAT_PX = 96.0
MAX_ROLL_PX = 12_000
ZOOM_STEP = 1.25  # per wheel notch


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
