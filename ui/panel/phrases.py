"""The per-phrase strip: one card per phrase with its style override, top-k alternatives, regenerate
and lock. Cards show state and emit intents (with the phrase index); the window decides what to
run."""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from typing import Any

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from engine import STYLES, Harmonization, Key, PhraseHarmony
from ui.panel.roll import PianoRoll
from ui.panel.theme import Theme, tinted

STYLE_NAMES = {"pop_standard": "Pop standard", "pop_complex": "Pop complex", "dark": "Dark",
               "rnb": "R&B"}


class PhraseCard(QFrame):
    """One phrase: style override, top-k alternatives with scores (click one to choose it),
    regenerate this phrase only, lock. `show_harmony` refills it in place after each result."""

    style_changed = pyqtSignal(int, object)  # phrase index, style or None
    alternative_chosen = pyqtSignal(int, int)  # phrase index, alternative index
    regenerate = pyqtSignal(int)
    lock_changed = pyqtSignal(int, bool)

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.setObjectName("phraseCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumWidth(280)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        head = QHBoxLayout()
        self.title = QLabel()
        self.lock = QCheckBox("Lock")
        self.lock.setToolTip("Keep this phrase's chords when everything is generated again")
        head.addWidget(self.title, 1)
        head.addWidget(self.lock)
        layout.addLayout(head)
        row = QHBoxLayout()
        self.style_box = QComboBox()
        self.style_box.addItem("Preset style", None)
        for s in STYLES:
            self.style_box.addItem(STYLE_NAMES[s], s)
        self.regen = QPushButton("Regenerate")
        self.regen.setToolTip("New chords for this phrase only (the others stay)")
        self.style_box.setToolTip("Chord style for this phrase (overrides the preset's)")
        row.addWidget(self.style_box, 1)
        row.addWidget(self.regen)
        layout.addLayout(row)
        self.alternatives = QListWidget()
        self.alternatives.setMinimumHeight(96)
        self.alternatives.setTextElideMode(Qt.TextElideMode.ElideRight)  # whole one on hover
        self.alternatives.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.alternatives.setToolTip("Progressions for this phrase, ranked by how well they fit "
                                     "the whole song (■ bar). Click one, or Up/Down and Enter, "
                                     "to use it")
        layout.addWidget(self.alternatives, 1)
        self.lock.toggled.connect(lambda on: self.lock_changed.emit(self.index, on))
        self.regen.clicked.connect(lambda: self.regenerate.emit(self.index))
        self.style_box.currentIndexChanged.connect(
            lambda _: self.style_changed.emit(self.index, self.style_box.currentData()))
        self.alternatives.itemClicked.connect(self._clicked)
        self.alternatives.itemActivated.connect(self._clicked)  # Enter on the current row
        self._tint: tuple[str, bool] | None = None

    def show_harmony(self, harmony: PhraseHarmony, key: Key, style_override: str | None,
                     locked: bool, theme: Theme, path_score: float) -> None:
        """`path_score`: the whole path's score (eq. 5) with the chosen progressions, the
        measure each alternative's score is given in (that path with it swapped in)."""
        for widget in (self.lock, self.style_box):
            widget.blockSignals(True)
        # Only what changed is touched: each setter relayouts or repaints, and a palette
        # change travels to every child widget.
        p = harmony.phrase
        _set_text(self.title, f"<b>Phrase {p.label}</b> · bars {p.start_bar + 1}–{p.end_bar}"
                  + (" · <b>locked</b>" if locked else ""))
        chosen_style = STYLE_NAMES.get(harmony.chosen.style, harmony.chosen.style)
        if locked:  # the locked chords keep their own style, whatever the preset says now
            first = f"{chosen_style} (locked chords)"
        else:
            first = ("Preset's style" if style_override is not None else
                     f"{STYLE_NAMES.get(harmony.style, harmony.style)} (preset)")
        if self.style_box.itemText(0) != first:
            self.style_box.setItemText(0, first)
        self.lock.setChecked(locked)
        index = max(0, self.style_box.findData(style_override)) \
            if style_override and not locked else 0
        if self.style_box.currentIndex() != index:
            self.style_box.setCurrentIndex(index)
        scores = [path_score] + [alt.path_score for alt in harmony.alternatives]
        rows = []
        for i, (choice, score) in enumerate(zip((harmony.chosen, *harmony.alternatives), scores,
                                                strict=True)):
            chords = _progression(choice.chords, key)
            rank, bar = _fit(score, scores)
            what = "in use" if i == 0 else "Click or Enter to use it"
            rows.append((f"{'●' if i == 0 else ' '} #{rank} {bar}  {chords}",
                         f"{chords}\n#{rank} of {len(scores)} for the whole song "
                         f"(score {score:.3f}); {STYLE_NAMES.get(choice.style, choice.style)}. "
                         f"{what}"))
        if self.alternatives.count() != len(rows):  # else relabel: no items made or deleted
            self.alternatives.clear()
            for i in range(len(rows)):
                fresh = QListWidgetItem()
                fresh.setData(Qt.ItemDataRole.UserRole, i - 1)  # -1: the chosen one
                self.alternatives.addItem(fresh)
        for i, (text, tip) in enumerate(rows):
            row = self.alternatives.item(i)
            if row is not None and row.text() != text:
                row.setText(text)
                row.setToolTip(tip)
        if self.alternatives.currentRow() != 0:  # the highlight follows the chosen one (row 0)
            self.alternatives.setCurrentRow(0)
        self.style_box.setEnabled(not locked)
        self.alternatives.setEnabled(not locked)
        self.regen.setEnabled(not locked)
        if self._tint != (theme.name, locked):
            self._tint = (theme.name, locked)
            tinted(self, theme, locked)
        for widget in (self.lock, self.style_box):
            widget.blockSignals(False)

    def _clicked(self, item: QListWidgetItem) -> None:
        alternative = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(alternative, int) and alternative >= 0:
            self.alternative_chosen.emit(self.index, alternative)


def _set_text(label: QLabel, text: str) -> None:
    if label.text() != text:
        label.setText(text)


def _progression(chords: Sequence[Any], key: Key) -> str:
    symbols: list[str] = []
    for ev in chords:
        symbol = ev.chord.symbol(key)
        if not symbols or symbols[-1] != symbol:
            symbols.append(symbol)
    return " ".join(symbols)  # whole: the list elides what does not fit, the tooltip has all


FIT_STEPS = 5


def _fit(score: float, scores: Sequence[float]) -> tuple[int, str]:
    """(rank among `scores`, 1 = best; a ■□ bar of how close it comes to the best). The raw
    eq. 5 score means little to a producer; its place among the shown ones does."""
    best, worst = max(scores), min(scores)
    rank = 1 + sum(other > score for other in scores)
    share = 1.0 if best == worst else (score - worst) / (best - worst)
    filled = 1 + round(share * (FIT_STEPS - 1))
    return rank, "■" * filled + "□" * (FIT_STEPS - filled)


class PhraseStrip(QScrollArea):
    """The phrase cards side by side (scrolls sideways for long songs). Card `i` always shows
    phrase `i`, and cards are kept, hidden, when a song has fewer phrases: a card's creation and
    first show are the costliest GUI-thread work in the panel (8-13 ms each), so they happen
    once per card, ahead of time where possible (`prepare`), never again for each result. The
    cards' intents are re-emitted by the strip with the phrase index."""

    style_changed = pyqtSignal(int, object)  # phrase index, style or None
    alternative_chosen = pyqtSignal(int, int)  # phrase index, alternative index
    regenerate = pyqtSignal(int)
    lock_changed = pyqtSignal(int, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.cards: list[PhraseCard] = []  # the cards on show, card i = phrase i
        self._made: list[PhraseCard] = []  # every card made so far, shown or not
        self._inner = QWidget()
        self._layout = QHBoxLayout(self._inner)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.placeholder = QLabel("Phrases appear here after the first result.")
        self.placeholder.setObjectName("muted")
        self._layout.addWidget(self.placeholder)
        self.setWidget(self._inner)
        self._prepare_timer = QTimer(self)
        self._fill_generation = 0  # the latest show_phrases; older refills stop
        self._roll: PianoRoll | None = None  # the roll it scrolls with (`follow`)
        self._linking = False

    def follow(self, roll: PianoRoll) -> None:
        """Scroll with `roll`, and it with the strip: the phrase in the middle of the visible
        roll is in the middle of the strip, as far into its card as the middle is into the
        phrase (and the other way round)."""
        area = roll.scroll_area()
        roll_bar = area.horizontalScrollBar() if area is not None else None
        bar = self.horizontalScrollBar()
        if roll_bar is None or bar is None:
            return
        self._roll = roll
        roll_bar.valueChanged.connect(self._roll_scrolled)
        bar.valueChanged.connect(self._strip_scrolled)

    def _spans(self) -> list[tuple[float, float]]:
        """Each phrase's beats on the roll, when the cards on show are its phrases."""
        roll = self._roll
        if roll is None or len(roll.view.phrases) != len(self.cards):
            return []
        return [(p.start_beats, p.end_beats) for p in roll.view.phrases]

    def _roll_scrolled(self) -> None:
        spans, roll = self._spans(), self._roll
        if not spans or roll is None or self._linking:
            return
        first, last = roll.visible_beats()
        middle = (first + last) / 2
        i = next((i for i, (_s, end) in enumerate(spans) if middle < end), len(spans) - 1)
        start, end = spans[i]
        card = self.cards[i]
        into = min(max((middle - start) / max(end - start, 1e-9), 0.0), 1.0)
        bar = self.horizontalScrollBar()
        if bar is not None:
            self._linked(bar.setValue,
                         round(card.x() + into * card.width() - self._shown_width() / 2))

    def _strip_scrolled(self, value: int) -> None:
        spans, roll = self._spans(), self._roll
        if not spans or roll is None or self._linking:
            return
        middle = value + self._shown_width() / 2
        i = next((i for i, card in enumerate(self.cards) if middle < card.x() + card.width()),
                 len(self.cards) - 1)
        card = self.cards[i]
        into = min(max((middle - card.x()) / max(card.width(), 1), 0.0), 1.0)
        start, end = spans[i]
        self._linked(lambda beats: roll.scroll_to_beat(beats, 0.5),
                     start + into * (end - start))

    def _shown_width(self) -> int:
        viewport = self.viewport()
        return viewport.width() if viewport is not None else self.width()

    def _linked(self, scroll: Callable[[Any], None], to: Any) -> None:
        """Scroll the other one without its answer scrolling this one back."""
        self._linking = True
        try:
            scroll(to)
        finally:
            self._linking = False

    def prepare_ahead(self, count: int, every_ms: int) -> None:
        """Make hidden cards up to `count`, one per idle turn, so that the first results only
        fill and show cards (making one and its first show took 8-13 ms of the GUI thread)."""
        self._prepare_timer.setInterval(every_ms)
        def one_more() -> None:
            if not self.prepare(count):
                self._prepare_timer.stop()

        self._prepare_timer.timeout.connect(one_more)
        self._prepare_timer.start()

    def stop_preparing(self) -> None:
        self._prepare_timer.stop()

    def prepare(self, count: int) -> bool:
        """Make one more hidden card if fewer than `count` exist; False when there are enough.
        Called from idle timer turns, one card per turn."""
        if len(self._made) >= count:
            return False
        self._make()
        return True

    def card(self, index: int) -> PhraseCard:
        """Phrase `index`'s card (made now if it does not exist yet), shown or not."""
        while len(self._made) <= index:
            self._make()
        return self._made[index]

    def lay_out(self, card: PhraseCard) -> None:
        """Do a hidden card's layout for its new content now (shown and hidden again in the
        same turn, so nothing is painted): showing it later is then cheap. (Showing 8 freshly
        filled cards at once took 10-20 ms of the GUI thread in one turn.)"""
        if card.isHidden():
            card.show()
            card.hide()

    def show_cards(self, count: int) -> None:
        """Show the first `count` cards together: one layout and one paint of the strip (one
        card at a time relaid and repainted the strip for each, 5-6 ms a card)."""
        while len(self._made) < count:
            self._make()
        self.setUpdatesEnabled(False)
        for card in self._made[len(self.cards):count]:
            card.show()
        for card in self._made[count:len(self.cards)]:
            card.hide()
        self.cards = self._made[:count]
        self.placeholder.setVisible(not self.cards)
        self.setUpdatesEnabled(True)

    def show_phrases(self, harmonization: Harmonization, styles: Mapping[int, str],
                     locked: Container[int], theme: Theme,
                     then: Callable[[], None] | None = None) -> None:
        """Cards for `harmonization`'s phrases, then `then()`. They are refilled in place one
        per event-loop turn (a newer call abandons the rest), so the loop never waits for all
        of them at once; for a new phrase structure they are filled hidden, then shown
        together. `styles` and `locked` are read as each card is filled."""
        key = harmonization.analysis.key
        self._fill_generation += 1
        generation = self._fill_generation
        fresh = len(self.cards) != len(harmonization.phrases)
        if fresh:
            self.clear()
        todo = list(enumerate(harmonization.phrases))

        def fill_next() -> None:
            if generation != self._fill_generation:
                return  # a newer result is being shown
            if todo:
                i, harmony = todo.pop(0)
                card = self.card(i)
                card.show_harmony(harmony, key, styles.get(i), i in locked, theme,
                                  harmonization.score)
                if fresh:
                    self.lay_out(card)
                QTimer.singleShot(0, fill_next)
                return
            if fresh:
                self.show_cards(len(harmonization.phrases))
            if then is not None:
                then()

        fill_next()

    def clear(self, placeholder: str = "") -> None:
        """Hide every card (they wait for the next song) and show the placeholder."""
        for card in self.cards:
            card.hide()
        self.cards = []
        self.placeholder.show()
        if placeholder:
            self.placeholder.setText(placeholder)

    def _make(self) -> None:
        index = len(self._made)
        card = PhraseCard(index)
        card.style_box.view()  # Qt makes the popup's view on first use: now, not on show
        self._layout.addWidget(card, 1)
        # A widget's first show (polish, fonts, layout set-up) costs far more than any later
        # one: pay it here, hidden again in the same turn so nothing is painted.
        card.show()
        card.hide()
        card.style_changed.connect(self.style_changed)
        card.alternative_chosen.connect(self.alternative_chosen)
        card.regenerate.connect(self.regenerate)
        card.lock_changed.connect(self.lock_changed)
        self._made.append(card)

