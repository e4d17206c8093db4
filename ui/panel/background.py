"""The panel's I/O thread: short blocking calls (file read/write, settings, imports) run off the
GUI thread and hand their value or error back on it."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import QObject, pyqtSignal

# What presenters are given instead of a `Background`: run(work, on_done, on_error).
RunInBackground = Callable[[Callable[[], Any], Callable[[Any], None], Callable[[Exception], None]],
                           object]


class Background(QObject):
    """Runs short blocking calls (file read/write, settings, imports) off the GUI thread, one
    after another on one long-lived thread, and hands each value or error back on the GUI
    thread. (Starting a thread per call made the GUI thread wait for it to start: tens of ms
    on a loaded machine.)"""

    done = pyqtSignal(int, object)
    failed = pyqtSignal(int, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._next = 0
        self._handlers: dict[int, tuple[Callable[[Any], None], Callable[[Exception], None]]] = {}
        self._calls: queue.SimpleQueue[tuple[int, Callable[[], Any]] | None] = \
            queue.SimpleQueue()
        self.done.connect(self._on_done)
        self.failed.connect(self._on_failed)
        self._thread = threading.Thread(target=self._run, name="accobridge-panel-io",
                                        daemon=True)
        self._thread.start()

    def run(self, work: Callable[[], Any], on_done: Callable[[Any], None],
            on_error: Callable[[Exception], None]) -> int:
        self._next += 1
        token = self._next
        self._handlers[token] = (on_done, on_error)
        self._calls.put((token, work))
        return token

    def close(self) -> None:
        self._calls.put(None)

    def _run(self) -> None:
        while True:
            call = self._calls.get()
            if call is None:
                return
            token, work = call
            try:
                value = work()
            except Exception as err:  # handed to the GUI thread, shown in the banner
                self.failed.emit(token, err)
            else:
                self.done.emit(token, value)

    def _on_done(self, token: int, value: object) -> None:
        handlers = self._handlers.pop(token, None)
        if handlers is not None:
            handlers[0](value)

    def _on_failed(self, token: int, error: object) -> None:
        handlers = self._handlers.pop(token, None)
        if handlers is not None and isinstance(error, Exception):
            handlers[1](error)
