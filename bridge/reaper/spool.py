"""The bridge side of the REAPER file spool: reads the companion script's clips, hands them to
the session, writes results back. One thread polls the folder (portable, no inotify); this
module scans it and keeps the seq rules, `spool_folder` does every file operation (link-safe)
and `spool_jobs` submits clips and writes their answers.

The exchange (format and names in `bridge.reaper.spool_format`):

- The script writes ``clip-<seq>.tmp`` and renames it to ``clip-<seq>.txt``, with ``seq``
  rising (the script takes its clock in milliseconds, or one more than its last). Each scan
  takes the new final names (``*.tmp`` is never read) in seq order: every one is checked, only
  the newest is submitted (source "reaper", request id ``reaper-<seq>``); older ones are
  superseded. A name with a seq at or below the highest seen is a stale or duplicate copy:
  deleted unread. A seq more than MAX_SEQ_LEAD_S ahead of the clock is not the script's (one
  such file would make every later clip "stale"): it is rejected and moves nothing.
  Consumed clip files are deleted.
- A bad clip file is counted (``rejected_<reason>``) and logged, LOG_BURST per reason per
  LOG_WINDOW_S; each one logged is also moved to ``rejected/`` with a ``.reason`` file beside
  it (the newest MAX_REJECTED_KEPT are kept, for debugging the script), the rest are deleted.
  A ``rejected/`` that is a symbolic link or not a folder is refused (counted as
  ``unsafe_rejected_folder`` and logged): the file is deleted instead. If it was the newest
  clip, the script gets an error file for its seq.
- Each job gets one log line when it ends: its item (track and bar, when the script sends
  them), notes in and out and the time taken, or the error or what stopped it. An error answer
  starts with the item's track and bar, so the producer knows which item it is about.
- The session's ending goes to ``result-<seq>.txt`` (kind result or error), its progress to
  ``status-<seq>.txt``; both written atomically (temporary file + ``os.replace``, with the
  user's umask) and only for the newest seq. The status file goes once the ending is written
  (and on close); files of older seqs are deleted: the script only waits for its newest.
- At start, what an earlier bridge left is cleared: its temporary files and status files.
- Anything else in the folder is left alone, counted once per name and logged. Every path is
  built from an int seq and a fixed pattern; nothing in a file's content names a file, and
  nothing in it is executed. Symbolic links and other non-regular files are never read,
  written through or moved into (lstat / O_NOFOLLOW; writes make a new file and rename it).

Session events arrive on the session's thread and are only queued there; the spool thread
writes them. Tests pass ``start=False`` and call `poll_once()`; time is injectable (`clock`).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from bridge.adapter import EventCallback, SessionLike, call_guarded
from bridge.errors import BadMessageError, ClipTooLargeError
from bridge.reaper.spool_folder import REJECTED_DIR, SpoolFolder, read_clip_file
from bridge.reaper.spool_format import is_temporary_name, parse_clip, parse_file_name
from bridge.reaper.spool_jobs import SpoolJobs
from bridge.tally import Tally

logger = logging.getLogger(__name__)

REAPER_SOURCE = "reaper"
ABANDONED_TMP_S = 60.0  # a temporary file older than this was left by a crash: deleted
# How far a clip's seq may run ahead of the clock (in ms, as the script numbers them): the
# script's seq is its clock, or one more than its last, so only a clock set back goes beyond.
MAX_SEQ_LEAD_S = 3600.0
LOG_BURST = 10  # warnings per reason per LOG_WINDOW_S, then a count of the rest
LOG_WINDOW_S = 10.0

Activity = Callable[[str, int], None]


@dataclass(frozen=True)
class _Event:
    seq: int
    kind: str
    payload: object


class ReaperSpool:
    """Exchanges clips and results with AccoBridge.lua through `folder` (created if missing).

    Starts its polling thread at once unless `start` is False (then call `poll_once()`).
    `on_activity(what, seq)`, if given, runs on the polling thread after each clip taken
    ("clip"), rejected ("rejected") and each result or error file written ("result",
    "error"). `close()` (or leaving a `with` block) stops it; it does not close the session.
    """

    def __init__(
        self,
        folder: Path,
        session: SessionLike,
        poll_s: float = 0.1,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        start: bool = True,
        on_activity: Activity | None = None,
        source: str = REAPER_SOURCE,
    ) -> None:
        self.folder = Path(folder)
        self._poll_s = max(0.005, poll_s)
        self._clock = clock
        self._wall_clock = wall_clock
        self._on_activity = on_activity
        self._source = source
        self._tally = Tally("reaper spool", logger, noun="files", burst=LOG_BURST,
                            window_s=LOG_WINDOW_S, clock=clock)
        for key in ("clips_received", "clips_superseded", "clips_stale", "rejected", "ignored",
                    "tmp_abandoned", "results_written", "errors_written", "status_written",
                    "results_dropped", "read_errors", "write_errors", "internal_errors",
                    "unsafe"):
            self._tally.count(key, 0)
        self._events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._poll_lock = threading.Lock()  # one scan at a time: the thread's or a test's
        self._close_lock = threading.Lock()
        self._closed = False
        # State below is only touched with _poll_lock held.
        self._files = SpoolFolder(self.folder, self._tally)
        self._jobs = SpoolJobs(self._files, session, source, self._tally, clock, self._notify,
                               self._event_callback)
        self._highest_seq = -1  # highest clip seq taken (bad or good); -1: none yet
        self._tmp_seen: dict[str, float] = {}  # temporary file -> when first seen
        self._ignored: set[str] = set()  # names counted as ignored (while they stay)
        self._files.clear_leftovers()
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(target=self._run, name="acco-reaper-spool",
                                            daemon=True)
            self._thread.start()

    # ---- any thread -------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counters (clips_received, rejected, rejected_<reason>, ignored, ignored_<reason>,
        results_written …) and highest_seq (-1 before the first clip)."""
        return {**self._tally.snapshot(), "highest_seq": self._highest_seq}

    def close(self) -> None:
        """Stop polling, write what the session already reported, join the thread.
        Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._poll_lock:
            self._drain_events()
            self._jobs.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def poll_once(self) -> None:
        """One scan of the folder, then write whatever the session reported since: what the
        thread does every `poll_s` (tests call it directly). Does nothing after `close()`."""
        with self._poll_lock:
            if self._closed:
                return
            try:
                self._scan()
            except Exception:  # one bad moment must not stop the spool: count and log
                self._tally.count("internal_errors")
                logger.exception("reaper spool: scan of %s failed", self.folder)
            self._drain_events()

    def _event_callback(self, seq: int) -> EventCallback:
        def on_event(kind: str, payload: object) -> None:  # session thread: only enqueue
            self._events.put(_Event(seq, kind, payload))
            self._wake.set()

        return on_event

    # ---- the polling thread -----------------------------------------------------------

    def _run(self) -> None:
        while not self._closed:
            self.poll_once()
            self._wake.wait(self._poll_s)
            self._wake.clear()  # anything queued after this is drained by the next poll

    def _scan(self) -> None:
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            logger.warning("reaper spool: folder %s vanished; creating it again", self.folder)
            self.folder.mkdir(parents=True, exist_ok=True)
            return
        now = self._clock()
        names = {entry.name for entry in entries}
        self._ignored &= names
        self._tmp_seen = {name: t for name, t in self._tmp_seen.items() if name in names}
        fresh: list[tuple[int, str]] = []
        for entry in entries:
            try:
                clip_seq = self._classify(entry, now)
            except OSError as err:
                self._tally.count("read_errors")
                logger.warning("reaper spool: cannot look at %s: %s", entry.name, err)
                continue
            if clip_seq is not None:
                fresh.append((clip_seq, entry.name))
        fresh.sort()
        limit = self._seq_limit()
        while fresh and fresh[-1][0] > limit:  # not the script's: must not supersede its clip
            self._refuse_ahead(*fresh.pop(), limit)
        for i, (seq, name) in enumerate(fresh):
            self._take(seq, name, newest=i == len(fresh) - 1)

    def _seq_limit(self) -> int:
        return int((self._wall_clock() + MAX_SEQ_LEAD_S) * 1000)

    def _refuse_ahead(self, seq: int, name: str, limit: int) -> None:
        """A seq the script cannot have made: rejected, and it moves neither the highest seq
        nor the one the script waits for, so the next real clip is taken as usual."""
        ahead_s = (seq - limit) / 1000 + MAX_SEQ_LEAD_S
        self._reject(seq, name, BadMessageError(
            f"seq {seq} is {ahead_s:.0f} s ahead of this computer's clock; the script's seq "
            f"is its clock in ms (at most {MAX_SEQ_LEAD_S:.0f} s ahead is taken)", "seq_ahead"))

    def _classify(self, entry: os.DirEntry[str], now: float) -> int | None:
        """Deal with one directory entry; returns the seq of a new clip file to read."""
        name = entry.name
        if name in self._ignored:
            return None
        parsed = parse_file_name(name)
        if parsed is None:
            if is_temporary_name(name):
                first_seen = self._tmp_seen.setdefault(name, now)
                if now - first_seen >= ABANDONED_TMP_S:
                    self._files.remove(name)
                    self._tally.count("tmp_abandoned")
                    logger.info("reaper spool: deleted abandoned temporary file %s", name)
            elif name != REJECTED_DIR:
                self._ignore(name, "name", "not a spool file name")
            return None
        kind, seq = parsed
        if kind != "clip":  # our own result/status files: those of older seqs are unwanted
            if seq < self._jobs.current_seq:
                self._files.remove(name)
            return None
        if not entry.is_file(follow_symlinks=False):
            self._ignore(name, "not_regular", "a clip name that is not a regular file")
            return None
        if seq <= self._highest_seq:
            self._tally.count("clips_stale")
            logger.info("reaper spool: %s is not newer than seq %d; deleted", name,
                        self._highest_seq)
            if not self._files.remove(name):
                self._ignore(name, "undeletable", "stale clip file that cannot be deleted")
            return None
        return seq

    def _ignore(self, name: str, reason: str, detail: str) -> None:
        self._ignored.add(name)
        self._tally.refuse("ignored", reason, name, detail)

    def _take(self, seq: int, name: str, newest: bool) -> None:
        """Read, check and consume one new clip file; submit it if it is the newest."""
        try:
            data = read_clip_file(self._files.path(name))
            document = parse_clip(data, source=self._source, seq=seq)
        except FileNotFoundError:
            return  # the script (or a user) took it back
        except (BadMessageError, ClipTooLargeError) as err:
            self._highest_seq = seq
            self._reject(seq, name, err)
            if newest:
                self._jobs.make_current(seq)
                self._jobs.write_error(seq, int(err.code), f"{name}: {err}")
            return
        except OSError as err:
            self._tally.count("read_errors")
            self._ignore(name, "unreadable", str(err))
            return
        self._highest_seq = seq
        if not self._files.remove(name):
            self._ignore(name, "undeletable", "consumed clip file that cannot be deleted")
        if not newest:
            self._tally.count("clips_superseded")
            logger.info("reaper spool: %s superseded by a newer clip in the same scan", name)
            return
        self._jobs.make_current(seq)
        self._tally.count("clips_received")
        self._jobs.submit(seq, document)
        self._notify("clip", seq)

    def _reject(self, seq: int, name: str, err: BadMessageError | ClipTooLargeError) -> None:
        """Count and log a bad clip file; one logged is kept in rejected/ (a flood's are only
        counted: keeping every file would only cost time), the rest deleted."""
        reason = err.reason if isinstance(err, BadMessageError) else "too_large"
        logged = self._tally.refuse("rejected", reason, name, str(err))
        self._notify("rejected", seq)
        kept = logged and self._files.keep_rejected(
            name, f"{type(err).__name__} ({reason}): {err}\n")
        if not kept and not self._files.remove(name):
            self._ignore(name, "undeletable", "rejected clip file that cannot be deleted")

    # ---- session events -> SpoolJobs ---------------------------------------------------

    def _drain_events(self) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            try:
                self._jobs.handle(event.seq, event.kind, event.payload)
            except Exception:
                self._tally.count("internal_errors")
                logger.exception("reaper spool: failed to handle %r", event)

    def _notify(self, what: str, seq: int) -> None:
        call_guarded(logger, f"reaper spool: on_activity({what!r}, {seq})", self._on_activity,
                     what, seq, tally=self._tally)
