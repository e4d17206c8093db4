"""The engine's single worker thread and its job queue: latest request per source wins.

Every adapter (OSC, Ableton, REAPER, MIDI) hands clips to one `Session`; the session runs one
job at a time and reports back through the job's `on_event(kind, payload)` — always on the
worker thread. It keeps each source's last request in its `ClipStore`: the clip when its job
starts, the clip and result as one pair when it is done; a job that fails, is cancelled or
superseded leaves the pair before it (refused clips are not kept), one the process did not
survive leaves its clip as "not generated". `close()` keeps the running job's clip too.

Events, per request, in this order:

- ``("status", ("queued", 0.0, msg))`` — once, when the worker has noted the request;
- ``("status", ("running", progress, msg))`` — when it starts, then for every progress report;
- exactly one ending:
  - ``("result", GenerateResult)`` then ``("status", ("done", 1.0, msg))``;
  - ``("error", (code, message))`` then ``("status", ("failed", progress, message))``;
    a ValueError from the engine is code 1 BAD_INPUT with its message, anything else is code 3
    ENGINE_ERROR (logged with its traceback);
  - ``("status", ("superseded", progress, "superseded by <id>"))`` — a newer request for the
    same source replaced it, queued or running. A status, not an error: nothing went wrong,
    and the newer request reports for the source from now on;
  - ``("status", ("cancelled", progress, msg))`` — `cancel()` or `close()` stopped it.

A running job that is superseded or cancelled sees `JobContext.is_cancelled()` turn True; if it
returns a result anyway, that result is dropped (never delivered, never stored). Python cannot
stop a thread, so a generate function that never checks runs to its end, then is dropped.

Events for requests that are not running ("queued", and "superseded"/"cancelled" of queued
ones) are delivered by the worker between jobs and whenever the running job reports progress
or asks `is_cancelled()` — so `on_event` never runs on the caller's (MIDI/OSC/GUI) thread.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from bridge.adapter import EventCallback, call_guarded
from bridge.errors import ErrorCode
from bridge.store import ClipStore, StoredSession
from bridge.types import Cancelled, Clip, Generate, GenerateResult, JobContext

logger = logging.getLogger(__name__)

QUEUED, RUNNING, DONE = "queued", "running", "done"
CANCELLED, SUPERSEDED, FAILED = "cancelled", "superseded", "failed"
SESSION_CLOSED = "session closed"


class _Job:
    """One request's bookkeeping. Never leaves the session; its mutable fields are written
    under `Session._lock` (`stop`, read without it, only ever goes from None to a value)."""

    __slots__ = ("clip", "on_event", "options", "progress", "request_id", "source", "stop")

    def __init__(
        self, source: str, request_id: str, clip: Clip, options: Mapping[str, Any],
        on_event: EventCallback,
    ) -> None:
        self.source = source
        self.request_id = request_id
        self.clip = clip
        self.options = options
        self.on_event = on_event
        self.progress = 0.0
        self.stop: tuple[str, str] | None = None  # (ending state, message) once unwanted


class Session:
    """Runs `generate` on one worker thread, latest request per source wins.

    `store` defaults to `ClipStore()` in the user data directory: persistence is what makes a
    crash lose nothing, so opting out takes an explicit store (tests pass a temporary folder).
    """

    def __init__(self, generate: Generate, store: ClipStore | None = None) -> None:
        self._generate = generate
        self._store = store if store is not None else ClipStore()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: dict[str, _Job] = {}  # source -> its one waiting job, in submission order
        self._running: _Job | None = None
        # Events the worker still has to send. They hold the callback, not the job, so a
        # superseded clip is freed at once even while a long job runs.
        self._notices: deque[tuple[EventCallback, str, str, object]] = deque()
        self._closing = False
        self._worker = threading.Thread(target=self._work, name="accobridge-session", daemon=True)
        self._worker.start()

    @property
    def store(self) -> ClipStore:
        return self._store

    # ---- any thread ---------------------------------------------------------------------

    def submit(
        self, source: str, request_id: str, clip: Clip, options: Mapping[str, Any],
        on_event: EventCallback,
    ) -> None:
        """Queue `clip`, replacing the source's queued job and cancelling its running one. Does
        not wait for the engine or the disk. Raises RuntimeError after `close()`."""
        job = _Job(source, request_id, clip, MappingProxyType(dict(options)), on_event)
        with self._lock:
            if self._closing:
                raise RuntimeError("session is closed")
            reason = f"superseded by {request_id}"
            replaced = self._queue.pop(source, None)
            if replaced is not None:
                self._notice(replaced, "status", (SUPERSEDED, 0.0, reason))
            running = self._running
            if running is not None and running.source == source and running.stop is None:
                running.stop = (SUPERSEDED, reason)
            self._queue[source] = job
            self._notice(job, "status", (QUEUED, 0.0, QUEUED))
            self._wake.notify()

    def cancel(self, request_id: str, source: str | None = None) -> bool:
        """Cancel the queued or running job(s) with this id (only `source`'s, if given).
        Returns whether any was found; the job's own events report the cancellation."""
        found = False
        with self._lock:
            for job in [j for j in self._queue.values() if self._matches(j, request_id, source)]:
                del self._queue[job.source]
                self._notice(job, "status", (CANCELLED, 0.0, CANCELLED))
                found = True
            running = self._running
            if running is not None and self._matches(running, request_id, source):
                if running.stop is None:
                    running.stop = (CANCELLED, CANCELLED)
                found = True
            self._wake.notify()
        return found

    @staticmethod
    def _matches(job: _Job, request_id: str, source: str | None) -> bool:
        return job.request_id == request_id and (source is None or job.source == source)

    def queue_length(self) -> int:
        """Jobs waiting (not counting the running one); at most one per source."""
        with self._lock:
            return len(self._queue)

    def last(self, source: str) -> StoredSession | None:
        """`source`'s last request from the store (it survives a restart): a clip with its own
        result, or a clip marked not generated (`result` None); None when nothing is stored."""
        return self._store.load(source)

    def close(self, timeout: float | None = 5.0) -> bool:
        """Cancel queued jobs, ask the running one to stop, let the worker deliver their endings
        and exit. Idempotent. Returns whether the worker has stopped (False if the running job
        ignored its cancellation for longer than `timeout`, or when called from `on_event`)."""
        with self._lock:
            if not self._closing:
                self._closing = True
                for job in self._queue.values():
                    self._notice(job, "status", (CANCELLED, 0.0, SESSION_CLOSED))
                self._queue.clear()
                if self._running is not None and self._running.stop is None:
                    self._running.stop = (CANCELLED, SESSION_CLOSED)
                self._wake.notify()
        if threading.current_thread() is self._worker:
            return False  # cannot join ourselves; the worker exits after this event
        self._worker.join(timeout)
        return not self._worker.is_alive()

    def _stored(self, what: str, save: Callable[[], None]) -> str | None:
        # A full disk must not stop music: log with traceback, go on, and say so in the status.
        try:
            save()
        except (OSError, TypeError, ValueError) as err:
            logger.exception("could not store %s", what)
            return str(err)
        return None

    # ---- worker thread ------------------------------------------------------------------

    def _work(self) -> None:
        self._stored("the store's clean-up", self._store.sweep)  # at start, off callers' threads
        while True:
            self._deliver_notices()
            with self._lock:
                while not self._queue and not self._notices and not self._closing:
                    self._wake.wait()
                if self._notices:
                    continue  # deliver them first: "queued" before "running"
                if not self._queue:  # closing, nothing left
                    return
                source = next(iter(self._queue))
                job = self._running = self._queue.pop(source)
            self._run(job)

    def _run(self, job: _Job) -> None:
        problem = self._stored(f"the clip of {job.request_id}",
                               lambda: self._store.save_clip(job.source, job.request_id, job.clip))
        message = "started" if problem is None else f"started; clip not saved: {problem}"
        self._send(job, "status", (RUNNING, 0.0, message))
        context = JobContext(
            request_id=job.request_id,
            source=job.source,
            progress=lambda fraction, message: self._progress(job, fraction, message),
            is_cancelled=lambda: self._is_cancelled(job),
        )
        result: GenerateResult | None = None
        error: Exception | None = None
        try:
            result = self._generate(job.clip, job.options, context)
        except Exception as err:  # Cancelled included
            error = err
        with self._lock:  # the job's fate is decided here, atomically with submit/cancel
            self._running = None
            stop = job.stop
        self._deliver_notices()  # whatever was announced before this ending goes first
        if stop is None and isinstance(error, Cancelled):
            stop = (CANCELLED, "cancelled by the engine")
        delivered = stop is None and error is None and isinstance(result, GenerateResult)
        if not delivered and stop != (CANCELLED, SESSION_CLOSED):
            # Refused, failed, or the user went on: its clip is not kept. (Stopped by close()
            # it stays, "not generated", for the next start to offer.)
            self._stored(f"the end of {job.request_id}",
                         lambda: self._store.discard(job.source, job.request_id))
        if stop is not None:
            if error is not None and not isinstance(error, Cancelled):
                logger.warning("request %s failed after it was stopped", job.request_id,
                               exc_info=error)
            elif result is not None:
                logger.debug("dropping the result of stopped request %s", job.request_id)
            self._send(job, "status", (stop[0], job.progress, stop[1]))
        elif error is not None:
            self._fail(job, error)
        elif not isinstance(result, GenerateResult):
            self._fail(job, TypeError(f"generate returned {type(result).__name__}"))
        else:
            self._deliver(job, result)

    def _deliver(self, job: _Job, result: GenerateResult) -> None:
        problem = self._stored(f"the result of {job.request_id}",
                               lambda: self._store.save_pair(job.source, job.clip, result))
        message = DONE if problem is None else f"done; result not saved: {problem}"
        self._send(job, "result", result)
        self._send(job, "status", (DONE, 1.0, message))

    def _fail(self, job: _Job, err: Exception) -> None:
        if isinstance(err, ValueError):
            code, message = ErrorCode.BAD_INPUT, str(err)
            logger.warning("request %s: bad input: %s", job.request_id, message)
        else:
            code, message = ErrorCode.ENGINE_ERROR, f"{type(err).__name__}: {err}"
            logger.error("request %s: engine error", job.request_id, exc_info=err)
        self._send(job, "error", (int(code), message))
        self._send(job, "status", (FAILED, job.progress, message))

    # The two JobContext callbacks. The engine may call them from its own helper threads;
    # events then travel through the notices, so on_event still runs on the worker.

    def _progress(self, job: _Job, fraction: float, message: str) -> None:
        on_worker = threading.current_thread() is self._worker
        with self._lock:
            if job.stop is not None or self._running is not job:
                return  # nobody wants this job's progress any more
            if math.isfinite(fraction):  # a NaN from the engine keeps the last progress
                job.progress = min(max(float(fraction), 0.0), 1.0)
            payload = (RUNNING, job.progress, message)
            if not on_worker:
                self._notice(job, "status", payload)
                return
        self._deliver_notices()
        self._send(job, "status", payload)

    def _is_cancelled(self, job: _Job) -> bool:
        if self._notices and threading.current_thread() is self._worker:
            self._deliver_notices()
        return job.stop is not None

    def _notice(self, job: _Job, kind: str, payload: object) -> None:
        """Queue an event for the worker to send (call with `_lock` held)."""
        self._notices.append((job.on_event, job.request_id, kind, payload))

    def _deliver_notices(self) -> None:
        while True:
            with self._lock:
                if not self._notices:
                    return
                notice = self._notices.popleft()
            self._emit(*notice)

    def _send(self, job: _Job, kind: str, payload: object) -> None:
        self._emit(job.on_event, job.request_id, kind, payload)

    @staticmethod
    def _emit(on_event: EventCallback, request_id: str, kind: str, payload: object) -> None:
        call_guarded(logger, f"on_event for request {request_id} on {kind!r}", on_event, kind,
                     payload)
