"""Counters for the bridge's adapters, and the rate-limited warning every refused input gets:
bad input is counted and logged, never silent, and a flood cannot fill the log."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class Tally:
    """Named counters, and `refuse()`: counts `prefix` and `<prefix>_<reason>` and logs a
    warning, at most `burst` per reason per `window_s`, then one line saying how many more
    were not logged. Thread-safe."""

    def __init__(self, what: str, log: logging.Logger, *, noun: str = "packets",
                 burst: int = 10, window_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._what = what  # who refuses, first on every line
        self._log = log
        self._noun = noun  # what is refused, plural: "packets", "files"
        self._burst = burst
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window start, logged)
        self._suppressed: dict[str, int] = {}

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + n

    def refuse(self, prefix: str, reason: str, subject: str, detail: str) -> bool:
        """Count and (rate-limited) log one refusal of `subject` ("packet from …", a file
        name). Returns whether it was logged."""
        key = f"{prefix}_{reason}"
        now = self._clock()
        with self._lock:
            self._counts[prefix] = self._counts.get(prefix, 0) + 1
            self._counts[key] = self._counts.get(key, 0) + 1
            start, logged = self._windows.get(key, (now, 0))
            if now - start >= self._window_s:
                suppressed = self._suppressed.pop(key, 0)
                if suppressed:
                    self._log.warning("%s: %d more %s %s (%s) not logged", self._what,
                                      suppressed, prefix, self._noun, reason)
                start, logged = now, 0
            if logged < self._burst:
                self._windows[key] = (start, logged + 1)
                self._log.warning("%s: %s %s (%s): %s", self._what, prefix, subject, reason,
                                  detail)
                return True
            self._windows[key] = (start, logged)
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
