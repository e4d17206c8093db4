"""The spool's jobs: the newest clip handed to the session, the session's ending written to
``result-<seq>.txt`` (kind result or error) and its progress to ``status-<seq>.txt`` — only for
the seq the script waits for — and one log line per job when it ends (its item, notes in and
out and the time taken, or the error or what stopped it; an error answer starts with the item).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from bridge.adapter import (
    ErrorEvent,
    EventCallback,
    ResultEvent,
    SessionEvent,
    SessionLike,
    StatusEvent,
    read_event,
    submit_clip,
)
from bridge.errors import BadMessageError, BridgeError, ErrorCode
from bridge.reaper.spool_folder import SpoolFolder
from bridge.reaper.spool_format import (
    SpoolClip,
    format_error,
    format_result,
    format_status,
    result_file_name,
    status_file_name,
)
from bridge.session import CANCELLED, SUPERSEDED
from bridge.tally import Tally

logger = logging.getLogger("bridge.reaper.spool")  # the spool's part: its lines say so

STATUS_INTERVAL_S = 0.25  # progress of one state is written at most this often
MAX_JOBS_TRACKED = 64  # jobs awaiting their log line (a session ends each one; this is a bound)

Notify = Callable[[str, int], None]  # (what, seq): the spool's on_activity


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


class SpoolJobs:
    """Submits clips to `session` as `source` and writes the answers into `folder`; events
    come back through `event_callback(seq)` (the spool's queue) to `handle`. Not thread-safe:
    the spool calls it with its poll lock held."""

    def __init__(self, folder: SpoolFolder, session: SessionLike, source: str, tally: Tally,
                 clock: Callable[[], float], notify: Notify,
                 event_callback: Callable[[int], EventCallback]) -> None:
        self._folder = folder
        self._session = session
        self._source = source
        self._tally = tally
        self._clock = clock
        self._notify = notify
        self._event_callback = event_callback
        self.current_seq = -1  # the seq the script waits for; events of others are dropped
        self._last_status: tuple[str, float] | None = None  # current seq's (state, written at)
        self._answered = False  # the current seq's ending is written: no more status
        self._jobs: dict[int, _Job] = {}  # submitted, not yet logged as ended (oldest first)

    def make_current(self, seq: int) -> None:
        """From now on the script waits for `seq`: the previous seq's answers go."""
        previous = self.current_seq
        if previous >= 0:
            self._folder.remove(result_file_name(previous))
            self._folder.remove(status_file_name(previous))
        self.current_seq = seq
        self._last_status = None
        self._answered = False

    def close(self) -> None:
        """The current seq's status file goes: nobody will bring it up to date any more."""
        if self.current_seq >= 0:
            self._folder.remove(status_file_name(self.current_seq))

    def submit(self, seq: int, document: SpoolClip) -> None:
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
            self.write_error(seq, int(err.code), str(err))
            self._log_end(seq, f"error {int(err.code)}", str(err))
        except Exception as err:  # the session refused (e.g. closing): tell the script
            logger.exception("reaper spool: the session did not take clip %d", seq)
            self.write_error(seq, int(ErrorCode.ENGINE_ERROR), f"could not queue: {err}")
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

    # ---- session events -> files ---------------------------------------------------------

    def handle(self, seq: int, kind: str, payload: object) -> None:
        """One session event of `seq`: its answer written, and its log line at its ending."""
        session_event = read_event(kind, payload)
        try:
            self._answer(seq, kind, payload, session_event)
        finally:
            self._log_ending(seq, session_event)

    def _answer(self, seq: int, kind: str, payload: object,
                session_event: SessionEvent | None) -> None:
        if seq != self.current_seq:  # the script has moved on to a newer clip
            if kind in ("result", "error"):
                self._tally.count("results_dropped")
                logger.debug("reaper spool: dropped the %s of seq %d", kind, seq)
            return
        match session_event:
            case ResultEvent(result=result):
                try:
                    text = format_result(seq, result)
                except BadMessageError as err:  # the engine made something we cannot write
                    logger.error("reaper spool: cannot write the result of seq %d: %s", seq, err)
                    self.write_error(seq, int(ErrorCode.ENGINE_ERROR),
                                     f"the result cannot be written: {err}")
                    return
                if self._folder.write(result_file_name(seq), text):
                    self._tally.count("results_written")
                    self._answer_written(seq)
                    self._notify("result", seq)
            case ErrorEvent(code=code, message=message):
                self.write_error(seq, int(code), message)
            case StatusEvent(state=state, progress=progress, message=message):
                if not self._answered:  # after the ending nobody waits for progress
                    self._write_status(seq, state, progress, message)
            case _:
                self._tally.count("internal_errors")
                logger.error("reaper spool: malformed session event %r for seq %d: %r",
                             kind, seq, payload)

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

    def write_error(self, seq: int, code: int, message: str) -> None:
        """The error answer of `seq`, its item first where known."""
        job = self._jobs.get(seq)
        if job is not None:
            message = job.locate(message)
        if self._folder.write(result_file_name(seq), format_error(seq, code, message)):
            self._tally.count("errors_written")
            self._answer_written(seq)
            self._notify("error", seq)

    def _answer_written(self, seq: int) -> None:
        """The exchange of `seq` is over: its status file goes (the script reads the answer)."""
        if seq == self.current_seq:
            self._answered = True
            self._folder.remove(status_file_name(seq))

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
        if self._folder.write(status_file_name(seq), text):
            self._last_status = (state, now)
            self._tally.count("status_written")
