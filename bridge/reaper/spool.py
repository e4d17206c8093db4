"""The bridge side of the REAPER file spool: reads the companion script's clips, hands them to
the session, writes results back. One thread polls the folder (portable, no inotify).

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

import contextlib
import errno
import logging
import os
import queue
import stat
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Self

from bridge.adapter import (
    ErrorEvent,
    EventCallback,
    ResultEvent,
    SessionEvent,
    SessionLike,
    StatusEvent,
    call_guarded,
    read_event,
    submit_clip,
)
from bridge.errors import BadMessageError, BridgeError, ClipTooLargeError, ErrorCode
from bridge.jsonfile import atomic_write_text
from bridge.reaper.spool_format import (
    MAX_CLIP_FILE_BYTES,
    SpoolClip,
    format_error,
    format_result,
    format_status,
    is_temporary_name,
    parse_clip,
    parse_file_name,
    result_file_name,
    status_file_name,
)
from bridge.session import CANCELLED, SUPERSEDED
from bridge.tally import Tally

logger = logging.getLogger(__name__)

REAPER_SOURCE = "reaper"
REJECTED_DIR = "rejected"
MAX_REJECTED_KEPT = 32  # bad clip files kept in rejected/ (oldest deleted first)
STATUS_INTERVAL_S = 0.25  # progress of one state is written at most this often
ABANDONED_TMP_S = 60.0  # a temporary file older than this was left by a crash: deleted
# How far a clip's seq may run ahead of the clock (in ms, as the script numbers them): the
# script's seq is its clock, or one more than its last, so only a clock set back goes beyond.
MAX_SEQ_LEAD_S = 3600.0
LOG_BURST = 10  # warnings per reason per LOG_WINDOW_S, then a count of the rest
LOG_WINDOW_S = 10.0
MAX_JOBS_TRACKED = 64  # jobs awaiting their log line (a session ends each one; this is a bound)

Activity = Callable[[str, int], None]


def reaper_resource_path() -> Path:
    """REAPER's default resource folder (``reaper.GetResourcePath()`` of a normal install;
    portable installs differ: pass the spool folder explicitly then)."""
    if sys.platform.startswith("win"):
        return Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming") / "REAPER"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "REAPER"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "REAPER"


def default_spool_folder() -> Path:
    """``<ResourcePath>/AccoBridge/spool``: where AccoBridge.lua exchanges files by default."""
    return reaper_resource_path() / "AccoBridge" / "spool"


@dataclass(frozen=True)
class _Event:
    seq: int
    kind: str
    payload: object


@dataclass(frozen=True)
class _Job:
    """A submitted clip, until its ending is logged."""

    name: str  # what the engine calls the melody's track: the clip's name
    item: str  # "track 'Bass', item at bar 5"; "" from a script that does not say
    notes_in: int
    started: float  # clock()

    def plain(self, message: str) -> str:
        """The engine names a clip as if it were the track ("… (track 'Lead')"); a REAPER
        clip's name is its take's, so where the real track is known that mention goes."""
        return message.removesuffix(f" (track {self.name!r})") if self.item else message

    def locate(self, message: str) -> str:
        """`message` about this clip, for the producer: the item first."""
        return f"{self.item}: {self.plain(message)}" if self.item else message


def _item_of(document: SpoolClip) -> str:
    where = [] if document.track is None else [f"track {document.track!r}"]
    if document.bar is not None:
        where.append(f"item at bar {document.bar}")
    return ", ".join(where)


def _notes(n: int) -> str:
    return f"{n} note" if n == 1 else f"{n} notes"


def _read_clip_file(path: str) -> bytes:
    """The file's bytes; never follows a symbolic link (where the OS can refuse to) and never
    reads more than the size limit."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise BadMessageError("is a symbolic link", "not_regular") from err
        raise
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise BadMessageError("is not a regular file", "not_regular")
        if info.st_size > MAX_CLIP_FILE_BYTES:
            raise BadMessageError(
                f"file is {info.st_size} bytes; at most {MAX_CLIP_FILE_BYTES} are accepted", "size"
            )
        return file.read(MAX_CLIP_FILE_BYTES + 1)


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
        self.folder.mkdir(parents=True, exist_ok=True)
        self._session = session
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
        self._highest_seq = -1  # highest clip seq taken (bad or good); -1: none yet
        self._current_seq = -1  # the seq the script waits for; events of others are dropped
        self._last_status: tuple[str, float] | None = None  # current seq's (state, written at)
        self._answered = False  # the current seq's ending is written: no more status
        self._jobs: dict[int, _Job] = {}  # submitted, not yet logged as ended (oldest first)
        self._tmp_seen: dict[str, float] = {}  # temporary file -> when first seen
        self._ignored: set[str] = set()  # names counted as ignored (while they stay)
        self._kept_rejected: deque[str] = deque(self._existing_rejected())
        self._clear_leftovers()
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
            if self._current_seq >= 0:  # nobody will bring it up to date any more
                self._remove(status_file_name(self._current_seq))

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

    def _path(self, name: str) -> str:
        # Plain string join of a name that matched a spool pattern (or was built from an int).
        return os.path.join(self.folder, name)

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
                    self._remove(name)
                    self._tally.count("tmp_abandoned")
                    logger.info("reaper spool: deleted abandoned temporary file %s", name)
            elif name != REJECTED_DIR:
                self._ignore(name, "name", "not a spool file name")
            return None
        kind, seq = parsed
        if kind != "clip":  # our own result/status files: those of older seqs are unwanted
            if seq < self._current_seq:
                self._remove(name)
            return None
        if not entry.is_file(follow_symlinks=False):
            self._ignore(name, "not_regular", "a clip name that is not a regular file")
            return None
        if seq <= self._highest_seq:
            self._tally.count("clips_stale")
            logger.info("reaper spool: %s is not newer than seq %d; deleted", name,
                        self._highest_seq)
            if not self._remove(name):
                self._ignore(name, "undeletable", "stale clip file that cannot be deleted")
            return None
        return seq

    def _ignore(self, name: str, reason: str, detail: str) -> None:
        self._ignored.add(name)
        self._tally.refuse("ignored", reason, name, detail)

    def _remove(self, name: str) -> bool:
        try:
            os.unlink(self._path(name))
        except FileNotFoundError:
            return True
        except OSError as err:
            logger.warning("reaper spool: cannot delete %s: %s", name, err)
            return False
        return True

    def _take(self, seq: int, name: str, newest: bool) -> None:
        """Read, check and consume one new clip file; submit it if it is the newest."""
        try:
            data = _read_clip_file(self._path(name))
            document = parse_clip(data, source=self._source, seq=seq)
        except FileNotFoundError:
            return  # the script (or a user) took it back
        except (BadMessageError, ClipTooLargeError) as err:
            self._highest_seq = seq
            self._reject(seq, name, err)
            if newest:
                self._make_current(seq)
                self._write_error(seq, int(err.code), f"{name}: {err}")
            return
        except OSError as err:
            self._tally.count("read_errors")
            self._ignore(name, "unreadable", str(err))
            return
        self._highest_seq = seq
        if not self._remove(name):
            self._ignore(name, "undeletable", "consumed clip file that cannot be deleted")
        if not newest:
            self._tally.count("clips_superseded")
            logger.info("reaper spool: %s superseded by a newer clip in the same scan", name)
            return
        self._make_current(seq)
        self._tally.count("clips_received")
        self._submit(seq, document)
        self._notify("clip", seq)

    def _make_current(self, seq: int) -> None:
        """From now on the script waits for `seq`: the previous seq's answers go."""
        previous = self._current_seq
        if previous >= 0:
            self._remove(result_file_name(previous))
            self._remove(status_file_name(previous))
        self._current_seq = seq
        self._last_status = None
        self._answered = False

    def _submit(self, seq: int, document: SpoolClip) -> None:
        clip = document.clip
        if not clip.name and document.track:  # an unnamed take goes by its track's name
            clip = replace(clip, name=document.track)
        self._jobs[seq] = _Job(clip.name, _item_of(document), len(clip.notes), self._clock())
        while len(self._jobs) > MAX_JOBS_TRACKED:
            del self._jobs[next(iter(self._jobs))]
        try:
            submit_clip(self._session, self._source, f"reaper-{seq}", clip,
                        document.options, self._event_callback(seq))
        except BridgeError as err:
            self._write_error(seq, int(err.code), str(err))
            self._log_end(seq, f"error {int(err.code)}", str(err))
        except Exception as err:  # the session refused (e.g. closing): tell the script
            logger.exception("reaper spool: the session did not take clip %d", seq)
            self._write_error(seq, int(ErrorCode.ENGINE_ERROR), f"could not queue: {err}")
            self._log_end(seq, "not queued", str(err))

    def _log_end(self, seq: int, outcome: str, message: str | None = None) -> None:
        """The job's one log line, at its first ending (a session's later events for it are
        follow-up statuses): its item, notes in, and notes out or what went wrong."""
        job = self._jobs.pop(seq, None)
        if job is None:
            return
        if message is not None:
            outcome = f"{outcome}: {job.plain(message)!r}"
        logger.info("reaper spool: %s clip %d from %s: %s in, %s, %.2f s", self._source, seq,
                    job.item or f"take {job.name!r}", _notes(job.notes_in), outcome,
                    self._clock() - job.started)

    def _reject(self, seq: int, name: str, err: BadMessageError | ClipTooLargeError) -> None:
        reason = err.reason if isinstance(err, BadMessageError) else "too_large"
        logged = self._tally.refuse("rejected", reason, name, str(err))
        self._notify("rejected", seq)
        if not logged:  # a flood: keeping every file would only cost time; the count says it
            if not self._remove(name):
                self._ignore(name, "undeletable", "rejected clip file that cannot be deleted")
            return
        folder = self._rejected_folder()
        if folder is None:
            if not self._remove(name):
                self._ignore(name, "undeletable", "rejected clip file that cannot be deleted")
            return
        try:
            # A rename moves the clip itself, and replaces (never follows) a link at its new
            # name; the reason is written to a new file renamed into place the same way.
            os.replace(self._path(name), os.path.join(folder, name))
            atomic_write_text(os.path.join(folder, name + ".reason"),
                              f"{type(err).__name__} ({reason}): {err}\n", durable=False)
        except OSError as move_error:
            logger.warning("reaper spool: cannot keep %s in %s: %s", name, folder, move_error)
            if not self._remove(name):
                self._ignore(name, "undeletable", "rejected clip file that cannot be deleted")
            return
        with contextlib.suppress(ValueError):
            self._kept_rejected.remove(name)
        self._kept_rejected.append(name)
        while len(self._kept_rejected) > MAX_REJECTED_KEPT:
            old = self._kept_rejected.popleft()
            for stale in (old, old + ".reason"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, stale))

    def _rejected_folder(self) -> str | None:
        """``rejected/``, made if missing; None (counted, logged) when it is a symbolic link or
        not a folder: bad files then are not kept. (Checked just before each use; someone able
        to swap it for a link between the check and the rename could as well write the spool.)"""
        folder = os.path.join(self.folder, REJECTED_DIR)
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder)
            mode = os.lstat(folder).st_mode
        except OSError as err:
            self._tally.refuse("unsafe", "rejected_folder", REJECTED_DIR, str(err))
            return None
        if not stat.S_ISDIR(mode):
            what = "a symbolic link" if stat.S_ISLNK(mode) else "not a folder"
            self._tally.refuse("unsafe", "rejected_folder", REJECTED_DIR,
                               f"is {what}: rejected files are deleted instead of kept there")
            return None
        return folder

    def _existing_rejected(self) -> list[str]:
        """Clip files kept in rejected/ by earlier runs, oldest seq first (trimmed later)."""
        folder = os.path.join(self.folder, REJECTED_DIR)
        try:
            if not stat.S_ISDIR(os.lstat(folder).st_mode):  # a link or a file: never listed
                return []
            names = os.listdir(folder)
        except OSError:
            return []
        kept = [(parsed[1], name) for name in names
                if (parsed := parse_file_name(name)) is not None and parsed[0] == "clip"]
        return [name for _, name in sorted(kept)]

    def _clear_leftovers(self) -> None:
        """At start: an earlier bridge's temporary files (ours begin with a dot) and status
        files (no job of this run has a status yet) go; its answers stay for the script."""
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return
        for entry in entries:
            parsed = parse_file_name(entry.name)
            ours = ((is_temporary_name(entry.name) and entry.name.startswith("."))
                    or (parsed is not None and parsed[0] == "status"))
            if ours and entry.is_file(follow_symlinks=False) and self._remove(entry.name):
                logger.info("reaper spool: deleted %s, left by an earlier run", entry.name)

    # ---- session events -> files ---------------------------------------------------------

    def _drain_events(self) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            try:
                self._handle_event(event)
            except Exception:
                self._tally.count("internal_errors")
                logger.exception("reaper spool: failed to handle %r", event)

    def _handle_event(self, event: _Event) -> None:
        session_event = read_event(event.kind, event.payload)
        try:
            self._answer(event, session_event)
        finally:
            self._log_ending(event.seq, session_event)

    def _answer(self, event: _Event, session_event: SessionEvent | None) -> None:
        seq = event.seq
        if seq != self._current_seq:  # the script has moved on to a newer clip
            if event.kind in ("result", "error"):
                self._tally.count("results_dropped")
                logger.debug("reaper spool: dropped the %s of seq %d", event.kind, seq)
            return
        match session_event:
            case ResultEvent(result=result):
                try:
                    text = format_result(seq, result)
                except BadMessageError as err:  # the engine made something we cannot write
                    logger.error("reaper spool: cannot write the result of seq %d: %s", seq, err)
                    self._write_error(seq, int(ErrorCode.ENGINE_ERROR),
                                      f"the result cannot be written: {err}")
                    return
                if self._write(result_file_name(seq), text):
                    self._tally.count("results_written")
                    self._answer_written(seq)
                    self._notify("result", seq)
            case ErrorEvent(code=code, message=message):
                self._write_error(seq, int(code), message)
            case StatusEvent(state=state, progress=progress, message=message):
                if not self._answered:  # after the ending nobody waits for progress
                    self._write_status(seq, state, progress, message)
            case _:
                self._tally.count("internal_errors")
                logger.error("reaper spool: malformed session event %r for seq %d: %r",
                             event.kind, seq, event.payload)

    def _log_ending(self, seq: int, session_event: SessionEvent | None) -> None:
        match session_event:
            case ResultEvent(result=result):
                parts = {name: len(notes) for name, notes in result.parts.items()}
                detail = ", ".join(f"{name} {n}" for name, n in parts.items())
                self._log_end(seq, f"{_notes(sum(parts.values()))} out ({detail})")
            case ErrorEvent(code=code, message=message):
                self._log_end(seq, f"error {int(code)}", message)
            case StatusEvent(state=state, message=message) if state in (SUPERSEDED, CANCELLED):
                self._log_end(seq, state, message)

    def _write_error(self, seq: int, code: int, message: str) -> None:
        job = self._jobs.get(seq)
        if job is not None:
            message = job.locate(message)
        if self._write(result_file_name(seq), format_error(seq, code, message)):
            self._tally.count("errors_written")
            self._answer_written(seq)
            self._notify("error", seq)

    def _answer_written(self, seq: int) -> None:
        """The exchange of `seq` is over: its status file goes (the script reads the answer)."""
        if seq == self._current_seq:
            self._answered = True
            self._remove(status_file_name(seq))

    def _write_status(self, seq: int, state: str, progress: float, message: str) -> None:
        now = self._clock()
        last = self._last_status
        if last is not None and last[0] == state and now - last[1] < STATUS_INTERVAL_S:
            return  # progress within one state: at most every STATUS_INTERVAL_S
        try:
            text = format_status(seq, state, progress, message)
        except BadMessageError as err:
            self._tally.count("internal_errors")
            logger.error("reaper spool: cannot write status %r of seq %d: %s", state, seq, err)
            return
        if self._write(status_file_name(seq), text):
            self._last_status = (state, now)
            self._tally.count("status_written")

    def _write(self, name: str, text: str) -> bool:
        """Write `name` atomically: a temporary file in the folder, then `os.replace`. Not
        durable (no fsync): the file is read within moments, and after a crash the script's
        next clip asks again."""
        try:
            atomic_write_text(self._path(name), text, durable=False)
        except OSError as err:
            self._tally.count("write_errors")
            logger.error("reaper spool: cannot write %s: %s", name, err)
            return False
        return True

    def _notify(self, what: str, seq: int) -> None:
        call_guarded(logger, f"reaper spool: on_activity({what!r}, {seq})", self._on_activity,
                     what, seq, tally=self._tally)
