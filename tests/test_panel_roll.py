"""The piano roll's picture: drawn off the GUI thread in small Qt calls, with the background
kept between results — the kept background must not change a single pixel."""

from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip("PyQt6")

from PyQt6.QtGui import QFont, QImage  # noqa: E402

from ui.panel.rollpaint import Backgrounds, RollPainter  # noqa: E402
from ui.panel.rollview import RollChord, RollNote, RollPhrase, RollView  # noqa: E402
from ui.panel.theme import DARK, LIGHT  # noqa: E402


def _view(shift: int = 0) -> RollView:
    melody = tuple(RollNote(60 + (i * 5 + shift) % 12, i * 0.5, 0.5) for i in range(64))
    piano = tuple(RollNote(36 + (i * 7 + shift) % 24, i * 0.25, 0.25) for i in range(300))
    chords = tuple(RollChord(b * 4.0, 4.0, ("C", "F", "G", "Am")[(b + shift) % 4])
                   for b in range(8))
    phrases = (RollPhrase("A", 0.0, 16.0, 4), RollPhrase("B", 16.0, 32.0, 4, locked=True))
    return RollView(melody, piano, chords, phrases, 4.0, 0.0, 32.0)


def _pixels(image: QImage) -> bytes:
    image = image.convertToFormat(QImage.Format.Format_ARGB32)
    bits = image.constBits()
    assert bits is not None
    return bytes(bits.asstring(image.sizeInBytes()))


@pytest.mark.parametrize("theme", [DARK, LIGHT])
@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_a_kept_background_draws_the_same_picture(qapp: object, theme: object,
                                                  ratio: float) -> None:
    font = QFont()
    backgrounds = Backgrounds()
    for shift in (0, 3):  # the second result reuses the first one's background
        view = _view(shift)
        fresh = RollPainter(view, theme, 1100, 420, font).render(ratio)
        kept = RollPainter(view, theme, 1100, 420, font).render(ratio, backgrounds)
        assert kept.size() == fresh.size()
        assert _pixels(kept) == _pixels(fresh)
    # the notes, chords and phrases are on it: a view without them draws another picture
    bare = RollView(bar_beats=4.0, length_beats=32.0)
    assert _pixels(RollPainter(bare, theme, 1100, 420, font).render(ratio)) != _pixels(fresh)


def test_phrase_cards_are_kept_and_reused_across_songs(qtbot: object) -> None:
    """A song with fewer phrases hides the extra cards; the next longer song shows the same
    card objects again (card i is phrase i), and their intents carry the phrase index."""
    from ui.panel.phrases import PhraseStrip

    strip = PhraseStrip()
    qtbot.addWidget(strip)
    strip.show()
    assert strip.prepare(2) and strip.prepare(2) and not strip.prepare(2)  # one per call
    strip.show_cards(4)
    four = list(strip.cards)
    assert len(four) == 4 and all(c.isVisible() for c in four)
    assert not strip.placeholder.isVisible()
    strip.show_cards(2)
    assert strip.cards == four[:2]
    assert [c.isVisible() for c in four] == [True, True, False, False]
    strip.clear("nothing yet")
    assert strip.cards == [] and strip.placeholder.isVisible()
    strip.show_cards(4)
    assert strip.cards == four  # the very same widgets, not new ones
    got: list[tuple[int, bool]] = []
    strip.lock_changed.connect(lambda index, locked: got.append((index, locked)))
    four[3].lock.setChecked(True)
    assert got == [(3, True)]


# ---- a readable roll: zoom, chord symbols that fit, voicings, locks, the linked strip --------

SYMBOLS = ("Cm(add9)/Eb", "Dsus4", "G7/B", "Bbm7b5", "F#maj9", "Am")


def _chords_view(beats_each: float = 2.0) -> RollView:
    chords = tuple(RollChord(i * beats_each, beats_each, s) for i, s in enumerate(SYMBOLS * 4))
    melody = tuple(RollNote(60 + i % 7, i * 1.0, 1.0) for i in range(len(chords) * 2))
    return RollView(melody=melody, chords=chords, length_beats=len(chords) * beats_each)


def test_chord_symbols_shorten_by_rule() -> None:
    from ui.panel.rollview import fit_symbol, symbol_forms

    assert symbol_forms("Cm(add9)/Eb") == ("Cm(add9)/Eb", "Cm(add9)", "Cm", "C")
    assert symbol_forms("Dsus4") == ("Dsus4", "Dsus", "D")
    assert symbol_forms("Bbm7b5") == ("Bbm7b5", "Bbø", "Bb")
    assert symbol_forms("F#maj9/A#") == ("F#maj9/A#", "F#maj9", "F#maj7", "F#")
    assert symbol_forms("F") == ("F",)
    assert fit_symbol("Dsus4", 4.0, len) == "Dsus"
    assert fit_symbol("Bbm7b5", 1.0, len) == ""  # not even the root: nothing, never "B"


@pytest.mark.parametrize("beat_px", [4.0, 6.0, 9.0, 14.0, 60.0])
def test_no_chord_label_is_wider_than_its_span(qapp: object, beat_px: float) -> None:
    from PyQt6.QtGui import QFontMetricsF

    from ui.panel.rollview import symbol_forms

    painter = RollPainter(_chords_view(), DARK, 1200, 420, QFont(), beat_px)
    metrics = [QFontMetricsF(font) for font in painter.chord_fonts()]
    labels = painter.chord_labels()
    for label, chord in zip(labels, painter.view.chords, strict=True):
        assert label.text == "" or label.text in symbol_forms(chord.symbol)
        assert metrics[label.small].horizontalAdvance(label.text) <= chord.length_beats * beat_px
        assert "…" not in label.text
    if beat_px >= 14.0:
        assert all(label.text for label in labels)  # at least the root of each chord


def test_zoom_changes_label_fitting(qtbot: object) -> None:
    """Narrow: the shortened forms; wide: every full symbol. Ctrl+wheel zooms, Fit goes back."""
    from PyQt6.QtCore import QPoint, QPointF, Qt
    from PyQt6.QtGui import QWheelEvent
    from PyQt6.QtWidgets import QApplication, QScrollArea

    from ui.panel.roll import MAX_BEAT_PX, PianoRoll
    from ui.panel.rollpaint import MIN_BEAT_PX
    from ui.panel.rollview import symbol_forms

    roll = PianoRoll()
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(roll)
    area.resize(700, 420)
    qtbot.addWidget(area)
    area.show()
    roll.set_view(_chords_view(1.0))  # 24 one-beat chords
    assert roll.fitted and roll.beat_px() < 30
    narrow = [label.text for label in roll.painter().chord_labels()]
    assert "Cm(add9)/Eb" not in narrow and "Bbm7b5" not in narrow
    assert set(narrow) - set(SYMBOLS) and set(narrow) <= {
        form for symbol in SYMBOLS for form in symbol_forms(symbol)} | {""}  # shortened

    def wheel(notches: int) -> None:
        pos = QPointF(300, 100)
        event = QWheelEvent(pos, roll.mapToGlobal(pos), QPoint(), QPoint(0, 120 * notches),
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier,
                            Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(roll, event)

    beat_under_mouse = roll.beats_at(300)
    wheel(8)
    assert not roll.fitted and roll.beat_px() == MAX_BEAT_PX
    assert roll.width() > area.viewport().width()
    assert roll.beats_at(300 + area.horizontalScrollBar().value()) == \
        pytest.approx(beat_under_mouse, abs=0.05)  # the zoom keeps the beat under the mouse
    wide = [label.text for label in roll.painter().chord_labels()]
    assert wide == [c.symbol for c in roll.view.chords]
    assert "Bbm7b5" in roll.tooltip_at(roll.x_of(3.5), 10)  # the full symbol on hover
    wheel(-30)
    assert roll.fitted  # zooming out past the window's width fits again
    roll.zoom_by(3.0)
    roll.fit()
    assert roll.fitted and roll.width() == area.viewport().width()
    long = RollView(length_beats=256.0)  # 64 bars fit in a 1280 px wide roll
    roll.set_view(long)
    area.resize(1290, 420)
    qtbot.waitUntil(lambda: roll.width() <= area.viewport().width())
    assert roll.beat_px() >= MIN_BEAT_PX


def _count(image: QImage, colour: str, rect: tuple[int, int, int, int]) -> int:
    from PyQt6.QtGui import QColor

    want = QColor(colour).rgb()
    x0, y0, w, h = rect
    return sum(1 for x in range(x0, x0 + w, 2) for y in range(y0, y0 + h, 2)
               if image.pixel(x, y) == want)


def test_the_voicing_lane_shows_the_chord_notes(qapp: object) -> None:
    from engine import arrange
    from engine.demo import demo_melody
    from ui.panel.rollpaint import VOICING_COLOURS, Lanes
    from ui.panel.rollview import view_of_arrangement

    arrangement = arrange(demo_melody())
    view = view_of_arrangement(arrangement)
    tpb = arrangement.harmonization.melody.ticks_per_beat
    assert [(n.pitch, n.start_beats) for n in view.voicings] == \
        [(n.pitch, n.start_tick / tpb) for n in arrangement.harmonization.chord_notes]
    lanes = Lanes.of(420, True)
    assert lanes.voicings is not None
    top, height = lanes.voicings
    lane = (100, top, 1000, height)
    shown = RollPainter(view, DARK, 1200, 420, QFont(), voicings=True).render()
    hidden = RollPainter(view, DARK, 1200, 420, QFont()).render()
    colour = VOICING_COLOURS["dark"]
    assert _count(shown, colour, lane) > 100
    assert _count(hidden, colour, (100, 0, 1000, 420)) == 0
    assert Lanes.of(420, False).voicings is None


def test_locked_phrases_look_different(qapp: object) -> None:
    from ui.panel.rollpaint import CHORD_LANE, PHRASE_LANE

    view = _view()
    free = replace(view, phrases=tuple(replace(p, locked=False) for p in view.phrases))
    locked = RollPainter(view, DARK, 1100, 420, QFont()).render()
    unlocked = RollPainter(free, DARK, 1100, 420, QFont()).render()
    painter = RollPainter(view, DARK, 1100, 420, QFont())
    x0, x1 = int(painter.x_of(16.0)), int(painter.x_of(32.0))  # phrase B is the locked one
    y = CHORD_LANE + PHRASE_LANE // 2
    changed = sum(1 for x in range(x0 + 90, x1 - 4) if locked.pixel(x, y) != unlocked.pixel(x, y))
    assert changed > (x1 - x0 - 94) // 3  # the striped label lane, not just a label
    a0 = int(painter.x_of(0.0))
    assert all(locked.pixel(x, y) == unlocked.pixel(x, y) for x in range(a0 + 90, x0 - 4))


def test_the_phrase_strip_scrolls_with_the_roll(qtbot: object) -> None:
    from PyQt6.QtCore import Qt
    from PyQt6.QtWidgets import QScrollArea, QSplitter, QVBoxLayout, QWidget

    from ui.panel.phrases import PhraseStrip
    from ui.panel.roll import PianoRoll

    box = QWidget()
    layout = QVBoxLayout(box)
    split = QSplitter()
    layout.addWidget(split)
    roll = PianoRoll()
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(roll)
    strip = PhraseStrip()
    split.setOrientation(Qt.Orientation.Vertical)
    split.addWidget(area)
    split.addWidget(strip)
    box.resize(700, 700)
    qtbot.addWidget(box)
    box.show()
    phrases = tuple(RollPhrase(label, i * 32.0, (i + 1) * 32.0, 8)
                    for i, label in enumerate("ABCD"))
    roll.set_view(RollView(phrases=phrases, length_beats=128.0))
    strip.show_cards(4)
    strip.follow(roll)
    roll.zoom_by(6.0)
    qtbot.waitUntil(lambda: area.horizontalScrollBar().maximum() > 0)
    qtbot.waitUntil(lambda: strip.horizontalScrollBar().maximum() > 0)
    area.horizontalScrollBar().setValue(area.horizontalScrollBar().maximum())
    strip_bar = strip.horizontalScrollBar()
    assert strip_bar.value() > strip_bar.maximum() * 0.7  # the last phrases' cards
    middle = (roll.visible_beats()[0] + roll.visible_beats()[1]) / 2
    assert middle >= 96.0 - 1e-6 or strip_bar.value() == strip_bar.maximum()
    area.horizontalScrollBar().setValue(0)
    assert strip_bar.value() < strip_bar.maximum() * 0.3
    strip_bar.setValue(strip_bar.maximum() // 2)  # and the other way round
    first, last = roll.visible_beats()
    assert 32.0 <= (first + last) / 2 <= 96.0
