"""The preset presenter: which presets the panel offers, which one is chosen, the panel's edits
to it (Complexity, Fullness, Register, Style, Colour from melody), and saving, renaming or
deleting the user's presets. Factory presets are read-only: edits to one are kept in the panel
until they are saved under a new name ("Save as…")."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from engine import ArrangeOptions, HarmonizeOptions
from ui.panel.presenters import StatusView

logger = logging.getLogger("accobridge.panel")


class PresetView(Protocol):
    def show_presets(self, presets: Sequence[Any], index: int) -> None:
        """The presets in the selector (`name`, `factory`, `description`; `index` chosen)."""

    def show_preset(self, preset: Any, index: int, modified: bool) -> None:
        """The chosen preset's values in the controls; `modified`: the panel's edits are not
        saved. Save applies to a modified user preset, Rename and Delete to a user preset."""

    def ask_preset_name(self, title: str, default: str = "") -> str | None: ...

    def confirm_delete(self, name: str) -> bool: ...


class PresetPresenter:
    def __init__(self, store: Any, view: PresetView, status: StatusView,
                 on_listed: Callable[[], None], on_chosen: Callable[[Any], None]) -> None:
        """`store`: a `ui.presets.PresetStore`. `on_listed` after the list is (re)read,
        `on_chosen(preset)` when the user picks one, edits it (or the chosen one is deleted)."""
        self.store = store
        self.presets: list[Any] = []
        self.index = 0
        self.edited: Any = None  # the chosen preset with the panel's unsaved edits
        self._view = view
        self._status = status
        self._on_listed = on_listed
        self._on_chosen = on_chosen

    @property
    def stored(self) -> Any:
        """The chosen preset as stored (without the panel's edits)."""
        return self.presets[self.index] if 0 <= self.index < len(self.presets) else None

    @property
    def current(self) -> Any:
        """The chosen preset as the panel uses it: with its unsaved edits."""
        return self.edited if self.edited is not None else self.stored

    @property
    def modified(self) -> bool:
        return self.edited is not None

    def load(self, wanted: str | None) -> None:
        """Read the presets again and choose `wanted` (the first one if it is gone)."""
        self.presets = list(self.store.presets())
        names = [preset.name for preset in self.presets]
        self.index = names.index(wanted) if wanted in names else 0
        self.edited = None
        self._view.show_presets(self.presets, self.index)
        self._show()
        for problem in getattr(self.store, "problems", ()):
            logger.warning("preset: %s", problem)
        self._on_listed()

    def choose(self, index: int) -> None:
        """Another preset (unsaved edits to the one before are dropped)."""
        self.index = index
        self.edited = None
        self._show()
        self._on_chosen(self.current)

    def edit(self, **changes: Any) -> None:
        """Change fields of the chosen preset in the panel (saved only on Save/Save as…)."""
        from ui.presets import PresetError

        current = self.current
        if current is None:
            return
        try:
            edited = replace(current, **changes)
        except (PresetError, TypeError, ValueError) as err:  # a value the schema refuses
            self._status.report_error("That preset value cannot be used", err)
            self._show()
            return
        if edited == current:
            return
        self.edited = None if edited == self.stored else edited
        self._show()
        self._on_chosen(self.current)

    def save(self) -> None:
        """Store the edits: in place for a user preset, under a new name for a factory one."""
        preset = self.current
        if preset is None or not self.modified:
            return
        if preset.factory:
            self.save_as()
            return
        self._store(lambda: self.store.save_as(preset, preset.name), preset.name, "save")

    def save_as(self, name: str | None = None) -> None:
        """The chosen preset, with its edits, under a new name (asked for when None); then
        chosen."""
        preset = self.current
        if preset is None:
            return
        if not name:
            name = self._view.ask_preset_name("Save preset as", f"{preset.name} (mine)"
                                              if preset.factory else preset.name)
            if not name:
                return
        self._store(lambda: self.store.save_as(preset, name), name, "save")

    def rename(self, name: str | None = None) -> None:
        """A user preset under a new name; unsaved edits stay unsaved."""
        stored, edited = self.stored, self.edited
        if stored is None or stored.factory:
            return
        if not name:
            name = self._view.ask_preset_name("Rename preset", stored.name)
            if not name or name == stored.name:
                return
        if self._store(lambda: self.store.rename(stored.name, name), name, "rename") \
                and edited is not None:
            self.edited = replace(edited, name=self.current.name)
            self._show()

    def _store(self, write: Callable[[], Any], name: str, verb: str) -> bool:
        from ui.presets import PresetError

        try:
            saved = write()
        except (PresetError, OSError) as err:
            self._status.report_error(f"Could not {verb} the preset “{name}”", err)
            return False
        self.load(getattr(saved, "name", name))
        logger.info("%s preset %s", "saved" if verb == "save" else "renamed", name)
        return True

    def delete(self, confirm: bool = True) -> None:
        """Delete the chosen user preset (factory presets stay); the first one is chosen."""
        from ui.presets import PresetError

        preset = self.stored
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
        """The chosen preset's options, with the panel's edits (the defaults without one)."""
        options = ArrangeOptions(HarmonizeOptions())
        preset = self.current
        return options if preset is None else preset.arrange_options(options)

    def send_parts(self) -> tuple[str, ...]:
        return tuple(getattr(self.current, "send_parts", ()) or ("chords", "piano"))

    def _show(self) -> None:
        if self.current is not None:
            self._view.show_preset(self.current, self.index, self.modified)
