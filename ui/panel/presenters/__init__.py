"""The panel window's logic, one presenter per job (presets, settings, files, DAW, requests to
the engine). Presenters are plain objects: they read and change the `PanelDocument` and reach
the window only through a small view protocol each, so a test can drive one with a fake view."""

from __future__ import annotations

from typing import Protocol


class StatusView(Protocol):
    """What every presenter may tell the user: a status line, or an error (non-modal)."""

    def show_status(self, text: str) -> None: ...

    def report_error(self, message: str, err: BaseException | None,
                     details: str = "") -> None: ...
