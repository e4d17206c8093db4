"""The history presenter: every result the panel showed for the open clip, with undo/redo and
A/B compare, so a progression you liked is never lost after Regenerate.

The history is a tree, not a stack: each result remembers the one it was made from. Undo goes
back to that one, redo to the newest result made from the one shown; a result made after an
undo starts a new branch and the old branch stays (redo-able from where it began, and
reachable by A/B compare). Each entry keeps the phrase locks and styles of its moment, so undo
restores exactly what was shown — a chord edit's lock included.

For the menus (Edit → Undo / Redo, Ctrl+Z / Ctrl+Shift+Z): `undo()`, `redo()`, `can_undo()`,
`can_redo()`; `compare()` toggles A/B and `mark()` makes the shown result the B side;
`add_listener(callback)` is called whenever any of these may have changed (enable the actions
there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from engine import ProgressionChoice
from ui.panel.document import PanelDocument
from ui.panel.jobs import PanelOutcome
from ui.panel.presenters import StatusView
from ui.panel.presenters.generation import GenerationPresenter

HISTORY_LIMIT = 200  # results kept per clip (the oldest go first; each is a few hundred kB)


class HistoryView(StatusView, Protocol):
    def show_result(self, outcome: PanelOutcome) -> None:
        """The document's arrangement (from `outcome`) on screen."""

    def end_progress(self) -> None: ...


@dataclass(frozen=True)
class HistoryEntry:
    outcome: PanelOutcome
    parent: int | None  # the entry shown when this one was asked for
    locked: dict[int, ProgressionChoice] = field(default_factory=dict)
    phrase_styles: dict[int, str] = field(default_factory=dict)


class HistoryPresenter:
    def __init__(self, document: PanelDocument, generation: GenerationPresenter,
                 view: HistoryView) -> None:
        self.document = document
        self.generation = generation
        self._view = view
        self.entries: list[HistoryEntry] = []
        self.index: int | None = None  # the entry on screen
        self.marked: int | None = None  # B of A/B compare (None: the previous result)
        self._compare_from: int | None = None  # A while B is shown
        self._listeners: list[Callable[[], None]] = []
        generation.on_taken.append(self.record)

    def add_listener(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    # ---- recording ----------------------------------------------------------------------

    def record(self, outcome: PanelOutcome) -> None:
        """A new result is on screen (called by the generation presenter): the history of
        another clip is dropped; this one is remembered with the locks it came with."""
        if self.entries and self.entries[-1].outcome.clip.notes != outcome.clip.notes:
            self.entries, self.index, self.marked = [], None, None
        self.entries.append(HistoryEntry(outcome, self.index, dict(self.document.locked),
                                         dict(self.document.phrase_styles)))
        if len(self.entries) > HISTORY_LIMIT:
            self._drop_oldest()
        self.index = len(self.entries) - 1
        self._compare_from = None
        self._changed()

    def _drop_oldest(self) -> None:
        def moved(i: int | None) -> int | None:
            return None if i is None or i == 0 else i - 1

        self.entries = [HistoryEntry(e.outcome, moved(e.parent), e.locked, e.phrase_styles)
                        for e in self.entries[1:]]
        self.index, self.marked = moved(self.index), moved(self.marked)

    # ---- undo / redo --------------------------------------------------------------------

    def can_undo(self) -> bool:
        return self.index is not None and self.entries[self.index].parent is not None

    def can_redo(self) -> bool:
        return self._child() is not None

    def undo(self) -> None:
        """Back to the result this one was made from."""
        if self.index is not None and self.can_undo():
            self._compare_from = None
            self._show(self.entries[self.index].parent)

    def redo(self) -> None:
        """Forward to the newest result made from the one shown."""
        child = self._child()
        if child is not None:
            self._compare_from = None
            self._show(child)

    def _child(self) -> int | None:
        children = [i for i, e in enumerate(self.entries) if e.parent == self.index]
        return children[-1] if children and self.index is not None else None

    # ---- A/B compare --------------------------------------------------------------------

    def mark(self) -> None:
        """The shown result becomes B: compare() toggles between it and what is made next."""
        self.marked = self.index
        self._changed()

    def can_compare(self) -> bool:
        return self._compare_from is not None or self._other() is not None

    @property
    def comparing(self) -> bool:
        """B is on screen (compare() again goes back to A)."""
        return self._compare_from is not None

    def compare(self) -> None:
        """Toggle between the shown result (A) and B: the marked result, else the one A was
        made from. Nothing is lost either way; a result made while B shows starts from B."""
        if self._compare_from is not None:
            back, self._compare_from = self._compare_from, None
            self._show(back)
            return
        other = self._other()
        if other is not None:
            self._compare_from = self.index
            self._show(other)

    def _other(self) -> int | None:
        if self.index is None:
            return None
        if self.marked is not None and self.marked != self.index:
            return self.marked
        return self.entries[self.index].parent

    # ---- showing ------------------------------------------------------------------------

    def _show(self, index: int | None) -> None:
        if index is None:
            return
        entry = self.entries[index]
        doc = self.document
        self.generation.latest_request = None  # a result still on its way would undo this
        self._view.end_progress()
        doc.arrangement, doc.view, doc.restored = (entry.outcome.arrangement, entry.outcome.view,
                                                   None)
        doc.locked.clear()
        doc.locked.update(entry.locked)
        doc.phrase_styles.clear()
        doc.phrase_styles.update(entry.phrase_styles)
        self.index = index
        self._view.show_status(f"Result {index + 1} of {len(self.entries)}"
                               + (" (B)" if self.comparing else ""))
        self._view.show_result(entry.outcome)
        self._changed()

    def _changed(self) -> None:
        for callback in self._listeners:
            callback()


__all__ = ["HISTORY_LIMIT", "HistoryEntry", "HistoryPresenter", "HistoryView"]
