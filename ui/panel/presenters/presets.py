"""The preset presenter: which presets the panel offers, which one is chosen, and saving the
chosen one under a new name or deleting a user's preset."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from engine import ArrangeOptions, HarmonizeOptions
from ui.panel.presenters import StatusView

logger = logging.getLogger("accobridge.panel")


class PresetView(Protocol):
    def show_presets(self, presets: Sequence[Any], index: int) -> None:
        """The presets in the selector (`label`, `description`, with `index` chosen)."""

    def show_deletable(self, deletable: bool) -> None: ...

    def ask_preset_name(self) -> str | None: ...

    def confirm_delete(self, name: str) -> bool: ...


class PresetPresenter:
    def __init__(self, store: Any, view: PresetView, status: StatusView,
                 on_listed: Callable[[], None], on_chosen: Callable[[Any], None]) -> None:
        """`store`: a `ui.presets.PresetStore`. `on_listed` after the list is (re)read,
        `on_chosen(preset)` when the user picks one (or the chosen one is deleted)."""
        self.store = store
        self.presets: list[Any] = []
        self.index = 0
        self._view = view
        self._status = status
        self._on_listed = on_listed
        self._on_chosen = on_chosen

    @property
    def current(self) -> Any:
        return self.presets[self.index] if 0 <= self.index < len(self.presets) else None

    def load(self, wanted: str | None) -> None:
        """Read the presets again and choose `wanted` (the first one if it is gone)."""
        self.presets = list(self.store.presets())
        names = [preset.name for preset in self.presets]
        self.index = names.index(wanted) if wanted in names else 0
        self._view.show_presets(self.presets, self.index)
        self._show_deletable()
        for problem in getattr(self.store, "problems", ()):
            logger.warning("preset: %s", problem)
        self._on_listed()

    def choose(self, index: int) -> None:
        self.index = index
        self._show_deletable()
        self._on_chosen(self.current)

    def save_as(self, name: str | None = None) -> None:
        """The chosen preset under a new name (asked for when None), then chosen."""
        from ui.presets import PresetError

        preset = self.current
        if preset is None:
            return
        if not name:
            name = self._view.ask_preset_name()
            if not name:
                return
        try:
            saved = self.store.save_as(preset, name)
        except (PresetError, OSError) as err:
            self._status.report_error(f"Could not save the preset “{name}”", err)
            return
        self.load(getattr(saved, "name", name))
        logger.info("saved preset %s", name)

    def delete(self, confirm: bool = True) -> None:
        """Delete the chosen user preset (factory presets stay); the first one is chosen."""
        from ui.presets import PresetError

        preset = self.current
        if preset is None or preset.factory:
            return
        if confirm and not self._view.confirm_delete(preset.name):
            return
        try:
            self.store.delete(preset.name)
        except (PresetError, OSError) as err:
            self._status.report_error(f"Could not delete the preset “{preset.name}”", err)
            return
        self.load(None)
        self.choose(self.index)

    def arrange_options(self) -> ArrangeOptions:
        """The chosen preset's options (the defaults without one)."""
        options = ArrangeOptions(HarmonizeOptions())
        preset = self.current
        return options if preset is None else preset.arrange_options(options)

    def send_parts(self) -> tuple[str, ...]:
        return tuple(getattr(self.current, "send_parts", ()) or ("chords", "piano"))

    def _show_deletable(self) -> None:
        preset = self.current
        self._view.show_deletable(preset is not None and not preset.factory)
