"""Counters for the bridge's adapters, and the rate-limited warning every refused input gets:
bad input is counted and logged, never silent, and a flood cannot fill the log. Summary lines
make the counts visible while refusals go on (`Tally.report`) and at the end of a run
(`report_all`); `printable` escapes what a peer wrote before it reaches a log line."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable

REPORT_S = 10.0  # at most one periodic summary line per tally in this time


def printable(text: str) -> str:
    """`text` safe for one log line: control and other non-printable characters (newline,
    ANSI escape, bidi overrides) escaped as \\n, \\x1b, \\u202e, so a peer cannot forge lines."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


class Tally:
    """Named counters, and `refuse()`: counts `prefix` and `<prefix>_<reason>` and logs a
    warning, at most `burst` per reason per `window_s`, then one line saying how many more
    were not logged (`limited()` does the same for any other line). `report()` logs the
    counts as one line when refusals were counted since the last one. Thread-safe."""

    def __init__(self, what: str, log: logging.Logger, *, noun: str = "packets",
                 burst: int = 10, window_s: float = 10.0, report_s: float = REPORT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._what = what  # who refuses, first on every line
        self._log = log
        self._noun = noun  # what is refused, plural: "packets", "files"
        self._burst = burst
        self._window_s = window_s
        self._report_s = report_s
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window start, logged)
        self._suppressed: dict[str, tuple[str, int, int]] = {}  # key -> (what, level, how many)
        self._refusal_prefixes: dict[str, None] = {}  # the prefixes refuse() was given
        self._refused = 0  # refusals counted, all reasons
        self._reported = (clock(), 0)  # (when, refusals) of the last summary line
        with _LIVE_LOCK:
            _LIVE.add(self)

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + n

    def refuse(self, prefix: str, reason: str, subject: str, detail: str) -> bool:
        """Count and (rate-limited) log one refusal of `subject` ("packet from …", a file
        name). Returns whether it was logged."""
        key = f"{prefix}_{reason}"
        with self._lock:
            self._counts[prefix] = self._counts.get(prefix, 0) + 1
            self._counts[key] = self._counts.get(key, 0) + 1
            self._refusal_prefixes[prefix] = None
            self._refused += 1
        return self.limited(key, f"{prefix} {self._noun} ({reason})", logging.WARNING,
                            "%s: %s %s (%s): %s", self._what, prefix, printable(subject),
                            reason, printable(detail))

    def limited(self, key: str, plural: str, level: int, message: str, *args: object) -> bool:
        """Log `message % args` unless `key` has had `burst` lines in this window; the lines
        left out are announced later as "N more <plural> not logged". Returns whether it was
        logged. Escaping what a peer wrote is the caller's part (`printable`)."""
        now = self._clock()
        with self._lock:
            start, logged = self._windows.get(key, (now, 0))
            if now - start >= self._window_s:
                self._flush(key)
                start, logged = now, 0
            if logged < self._burst:
                self._windows[key] = (start, logged + 1)
                self._log.log(level, message, *args)
                return True
            self._windows[key] = (start, logged)
            suppressed = self._suppressed.get(key, (plural, level, 0))[2]
            self._suppressed[key] = (plural, level, suppressed + 1)
            return False

    def _flush(self, key: str) -> None:  # with the lock held
        plural, level, suppressed = self._suppressed.pop(key, ("", logging.INFO, 0))
        if suppressed:
            self._log.log(level, "%s: %d more %s not logged", self._what, suppressed, plural)

    def report(self, *, final: bool = False) -> bool:
        """Log the counts as one line (`summary()`): periodically — when refusals were counted
        since the last line and `report_s` has passed since it — or, `final`, once at the end
        of a run whatever happened. Lines left out by the rate limit whose window has ended
        are announced first. Returns whether the summary was logged."""
        now = self._clock()
        with self._lock:
            for key, (start, _) in list(self._windows.items()):
                if now - start >= self._window_s:
                    self._flush(key)
                    del self._windows[key]
            last_s, last_refused = self._reported
            if not final and (self._refused == last_refused or now - last_s < self._report_s):
                return False
            self._reported = (now, self._refused)
            line = self._summary()
        if final:
            self._log.info("%s: final counts: %s", self._what, line)
        else:
            self._log.warning("%s: counts so far: %s", self._what, line)
        return True

    def summary(self) -> str:
        """The non-zero counts as text, reasons grouped under their refusal:
        "received 1204, delivered 1180, bad 24 (oversize 4, parse 20)"."""
        with self._lock:
            return self._summary()

    def _summary(self) -> str:  # with the lock held
        reasons: dict[str, list[str]] = {}
        plain: list[str] = []
        for key, value in self._counts.items():
            prefix = next((p for p in self._refusal_prefixes if key.startswith(f"{p}_")), None)
            if not value:
                continue
            if prefix is None:
                plain.append(key)
            else:
                reasons.setdefault(prefix, []).append(f"{key[len(prefix) + 1:]} {value}")
        parts = [f"{key} {self._counts[key]}"
                 + (f" ({', '.join(sorted(reasons[key]))})" if key in reasons else "")
                 for key in plain]
        return ", ".join(parts) or "nothing counted"

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


# Every tally alive, so a long run can report them all without each adapter's help.
_LIVE: weakref.WeakSet[Tally] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


def live_tallies() -> list[Tally]:
    """The tallies alive now (held strongly by the list: report them after closing their
    owners)."""
    with _LIVE_LOCK:
        return list(_LIVE)


def report_all(*, final: bool = False) -> None:
    """`report()` every live tally: call it every second or so during a run (each tally logs at
    most every `report_s`), and with `final` at its end."""
    for tally in live_tallies():
        tally.report(final=final)
