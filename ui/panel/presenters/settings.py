"""The panel's settings presenter: holds the settings and writes every change off the GUI thread
(an atomic write with fsync takes tens of ms on a busy disk); the newest snapshot wins."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ui.panel.background import RunInBackground

logger = logging.getLogger("accobridge.panel")


class SettingsPresenter:
    def __init__(self, settings: Any, path: Path | None, run: RunInBackground,
                 on_saved: Callable[[], None]) -> None:
        """`path`: the settings file (None: the user's); `on_saved` when a write is done."""
        self.settings = settings
        self.path = path
        self._run = run
        self._on_saved = on_saved
        self._lock = threading.Lock()  # one write at a time
        self._to_write: Any = None  # the newest snapshot to write

    def replace(self, settings: Any) -> None:
        """New settings as a whole (the dialog's), saved."""
        self.settings = settings
        self.save()

    def save(self, wait: bool = False, **changes: Any) -> None:
        """Apply `changes` and write the file; `wait`: write now, on this thread (closing)."""
        from ui.settings import save_settings

        if self.settings is None:
            return
        try:
            if changes:
                self.settings = replace(self.settings, **changes)
        except (TypeError, ValueError) as err:  # SettingsError: a value out of range
            logger.warning("settings not changed: %s", err)
            return
        snapshot, path = self.settings, self.path
        self._to_write = snapshot

        def write() -> bool:
            with self._lock:
                if self._to_write is not snapshot:
                    return False  # a newer snapshot is on its way
                save_settings(snapshot, path)
                return True

        if wait:
            try:
                write()
            except (OSError, TypeError, ValueError) as err:
                _not_saved(err)
            return
        self._run(write, lambda wrote: self._on_saved() if wrote else None, _not_saved)


def _not_saved(err: Exception) -> None:
    logger.warning("settings not saved: %s", err)
