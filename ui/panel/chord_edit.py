"""Changing a result by hand: a clicked chord replaced (a typed symbol or one of the engine's
suggestions for its span) and a phrase's texture picked from the arranger's candidates.

`PhraseEditor` opens the `PhraseEditDialog` for a chord clicked on the roll (or for a phrase's
texture), asks the engine for its lists on the background thread, and hands the choice to the
generation presenter, which re-arranges the phrase on the engine's worker and keeps a chord
edit as a lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine import BadInputError, Key
from ui.panel.background import RunInBackground
from ui.panel.document import PanelDocument
from ui.panel.presenters.generation import GenerationPresenter

ERROR_COLOUR = "#d9534f"  # readable on both themes' window colours


class PhraseEditDialog(QDialog):
    """One chord of a phrase (type a symbol, or click a suggestion) and the phrase's texture
    (click one of the arranger's candidates). Non-modal; a choice closes it."""

    chord_chosen = pyqtSignal(object)  # engine.Chord
    texture_chosen = pyqtSignal(object)  # engine.TextureChoice

    def __init__(self, heading: str, key: Key, current_symbol: str | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit phrase")
        self.key = key
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(heading))
        self.symbol = QLineEdit(current_symbol or "")
        self.symbol.setPlaceholderText("a chord symbol, e.g. Am7, F/A, Bbmaj7, Dsus4")
        self.symbol.setToolTip("Type a chord and press Enter: it replaces the clicked chord, "
                               "the piano is re-arranged around it and the phrase is locked")
        self.apply = QPushButton("Use this chord")
        self.error = QLabel()
        self.error.setObjectName("chordError")
        self.error.setStyleSheet(f"QLabel#chordError {{ color: {ERROR_COLOUR}; }}")
        self.error.setWordWrap(True)
        self.error.hide()
        self.suggestions = QListWidget()
        self.suggestions.setToolTip("The chords that fit the melody over this span best (the "
                                    "harmonizer's own scores); click one to use it")
        self.textures = QListWidget()
        self.textures.setToolTip("The arranger's textures for this phrase, best fit first; "
                                 "click one to re-arrange the phrase with it")
        self.chord_part = QWidget()
        chord_layout = QVBoxLayout(self.chord_part)
        chord_layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.symbol, 1)
        row.addWidget(self.apply)
        chord_layout.addLayout(row)
        chord_layout.addWidget(self.error)
        chord_layout.addWidget(QLabel("Chords that fit here"))
        chord_layout.addWidget(self.suggestions)
        layout.addWidget(self.chord_part)
        self.chord_part.setVisible(current_symbol is not None)
        layout.addWidget(QLabel("Texture of the phrase"))
        layout.addWidget(self.textures)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._placeholder(self.suggestions, "Finding chords that fit…")
        self._placeholder(self.textures, "Finding textures…")
        self.symbol.returnPressed.connect(self.use_typed)
        self.apply.clicked.connect(self.use_typed)
        self.symbol.textEdited.connect(lambda _text: self.error.hide())
        self.suggestions.itemClicked.connect(self._picked)
        self.textures.itemClicked.connect(self._picked)

    @staticmethod
    def _placeholder(box: QListWidget, text: str) -> None:
        box.clear()
        item = QListWidgetItem(text)
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        box.addItem(item)

    def use_typed(self) -> None:
        """The typed symbol, if it reads as a chord; otherwise say why, inline."""
        from engine import parse_chord_symbol

        try:
            chord = parse_chord_symbol(self.symbol.text())
        except BadInputError as err:
            self.error.setText(str(err))
            self.error.show()
            return
        self.chord_chosen.emit(chord)
        self.accept()

    def show_suggestions(self, suggestions: Sequence[Any]) -> None:
        self.suggestions.clear()
        best = max((s.score for s in suggestions), default=1.0) or 1.0
        for s in suggestions:
            item = QListWidgetItem(f"{s.chord.symbol(self.key):<10} {_bar(s.score / best)}")
            item.setData(Qt.ItemDataRole.UserRole, s.chord)
            item.setToolTip(f"fit {s.score:.2f} (the best here {best:.2f})")
            self.suggestions.addItem(item)

    def show_textures(self, textures: Sequence[Any], playing: str) -> None:
        self.textures.clear()
        for t in textures:
            levels = f"density {t.density_level}, voices {t.polyphony_level}"
            label = f"{t.name} ({levels})" + (" · playing now" if t.name == playing else "")
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, t)
            self.textures.addItem(item)
            if t.name == playing:
                self.textures.setCurrentItem(item)

    def show_problem(self, box: QListWidget, text: str) -> None:
        self._placeholder(box, text)

    def _picked(self, item: QListWidgetItem) -> None:
        value = item.data(Qt.ItemDataRole.UserRole)
        if value is None:
            return
        if item.listWidget() is self.textures:
            self.texture_chosen.emit(value)
        else:
            self.chord_chosen.emit(value)
        self.accept()


def _bar(fraction: float) -> str:
    return "▮" * max(1, round(8 * max(0.0, min(fraction, 1.0))))


class PhraseEditor:
    """Opens the edit dialog for a clicked chord or a phrase's texture and carries out the
    choice through the generation presenter."""

    def __init__(self, parent: QWidget, document: PanelDocument,
                 generation: GenerationPresenter, run: RunInBackground) -> None:
        self._parent = parent
        self.document = document
        self.generation = generation
        self._run = run
        self.dialog: PhraseEditDialog | None = None

    def chord_clicked(self, index: int) -> None:
        """`index` counts the song's chords in order (the roll's `view.chords`)."""
        arrangement = self.document.arrangement
        if arrangement is None:
            return
        for phrase, harmony in enumerate(arrangement.harmonization.phrases):
            if index < len(harmony.chosen.chords):
                self.edit_chord(phrase, index)
                return
            index -= len(harmony.chosen.chords)

    def edit_chord(self, phrase: int, event: int) -> None:
        arrangement = self.document.arrangement
        if arrangement is None:
            return
        harmonization = arrangement.harmonization
        key = harmonization.analysis.key
        chord = harmonization.phrases[phrase].chosen.chords[event].chord
        dialog = self._open(f"Phrase {phrase + 1}, chord {event + 1}: {chord.symbol(key)}",
                            phrase, chord.symbol(key))
        dialog.chord_chosen.connect(
            lambda new: self.generation.replace_chord(phrase, event, new))
        self._ask(self.generation.chord_suggestions(phrase, event), dialog,
                  dialog.show_suggestions, dialog.suggestions)

    def edit_texture(self, phrase: int) -> None:
        """The texture list alone (for a menu action or a phrase card)."""
        if self.document.arrangement is None:
            return
        self._open(f"Phrase {phrase + 1}: texture", phrase, None)

    def _open(self, heading: str, phrase: int, symbol: str | None) -> PhraseEditDialog:
        arrangement = self.document.arrangement
        assert arrangement is not None
        if self.dialog is not None:
            self.dialog.close()
        dialog = PhraseEditDialog(heading, arrangement.harmonization.analysis.key, symbol,
                                  self._parent)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.texture_chosen.connect(
            lambda texture: self.generation.choose_texture(phrase, texture))
        playing = arrangement.textures[phrase].name
        self._ask(self.generation.texture_candidates(phrase), dialog,
                  lambda textures: dialog.show_textures(textures, playing), dialog.textures)
        self.dialog = dialog
        dialog.finished.connect(lambda _result: self._closed(dialog))
        dialog.show()
        if symbol is not None:
            dialog.symbol.setFocus()
            dialog.symbol.selectAll()
        return dialog

    def _closed(self, dialog: PhraseEditDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None

    def _ask(self, work: Callable[[], Any], dialog: PhraseEditDialog,
             show: Callable[[Any], None], box: QListWidget) -> None:
        """Run `work` off the GUI thread; its list goes to `dialog` if that is still open."""
        def done(value: Any) -> None:
            if self.dialog is dialog:
                show(value)

        def failed(err: Exception) -> None:
            if self.dialog is dialog:
                dialog.show_problem(box, f"Could not list them: {err}")

        self._run(work, done, failed)


__all__ = ["PhraseEditDialog", "PhraseEditor"]
