"""The piano roll's picture: drawn off the GUI thread in small Qt calls, with the background
kept between results — the kept background must not change a single pixel."""

from __future__ import annotations

import pytest

pytest.importorskip("PyQt6")

from PyQt6.QtGui import QFont, QImage  # noqa: E402

from ui.panel.roll import Backgrounds, RollPainter  # noqa: E402
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
