"""Ableton Live as a bridge client: read the selected Session clip, hand it to the `Session`,
write the generated parts into bridge-owned clips (`tracks`), and (live mode) follow the clip.

Threads: `generate_now`, `fetch_selected_clip`, `start_live` and `poll_once` read Live on the
caller's thread. Session events only enqueue (they arrive on the engine's worker); one adapter
thread writes results to Live and, in live mode, polls every `poll_s` (by `clock`).
Adapter events go to `on_event(request_id, kind, payload)` on that thread: the session's
"status"/"error" events, then, once the parts are in Live, "result" (GenerateResult), "written"
(tuple of WrittenPart) and a final ("status", ("done", 1.0, message)); a failed write is
("error", (4, message)) and ("status", ("failed", …)). Live mode's own news comes with an empty
request id: ("status", ("waiting", 0.0, "waiting for …")) when it waits for Live or for a
clip, ("status", ("watching", 1.0, …)) when it picks one up, ("error", (code, message)) when a
poll fails.

Live mode is a small state machine: *waiting* (no clip: Live not answering, nothing usable
selected, the watched clip deleted) reads the selection on every poll and picks up the selected
MIDI clip once it holds notes; *watching* polls the clip in one burst per poll (its notes, loop
and markers, the meter, the selection) and generates again when its fingerprint changes, or
follows the selection to another MIDI clip; a deleted clip goes back to waiting.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from bridge.ableton.errors import AbletonError, ClipReadError
from bridge.ableton.live_api import LiveApi
from bridge.ableton.live_values import ClipInfo, LiveNote, SlotRef, SongInfo
from bridge.ableton.notes import SOURCE, clip_fingerprint, clip_from_live
from bridge.ableton.tracks import BRIDGE_TRACK_NAMES, BridgeTracks, WrittenPart
from bridge.adapter import (
    EventCallback,
    ResultEvent,
    SessionLike,
    StatusEvent,
    call_guarded,
    read_event,
    submit_clip,
)
from bridge.errors import BridgeError, ErrorCode, ReplyTimeoutError
from bridge.pedal import sustain_into_durations
from bridge.types import PARTS, Clip, GenerateResult

logger = logging.getLogger(__name__)

ENDINGS = frozenset({"failed", "cancelled", "superseded"})
DEFAULT_POLL_S = 0.1  # AbletonOSC answers once per 100 ms tick: one poll burst per tick

# The adapter's own listener: the session's events with the request id in front, plus
# "written" (see the module docstring).
AdapterEventCallback = Callable[[str, str, object], None]  # (request_id, kind, payload)


@dataclass(frozen=True)
class _Target:
    slot: SlotRef
    length_beats: float
    notes: int
    submitted_s: float  # by the adapter's clock, for the job's log line


@dataclass(frozen=True)
class _Watch:
    """The clip live mode watches and what it looked like when last generated for."""

    slot: SlotRef
    track_name: str
    span_beats: float
    notes: int  # raw notes last read: sizes the next read's windows
    fingerprint: str


@dataclass(frozen=True)
class _SessionEvent:
    request_id: str
    kind: str
    payload: object


_STOP = object()
_WAKE = object()


class AbletonAdapter:
    """Reads from and writes to Live through `live_api`, runs the engine through `session`.

    Does not own `live_api` or `session`: `close()` stops the adapter's thread only."""

    def __init__(
        self,
        live_api: LiveApi,
        session: SessionLike,
        poll_s: float = DEFAULT_POLL_S,
        clock: Callable[[], float] = time.monotonic,
        *,
        on_event: AdapterEventCallback | None = None,
        follow_selection: bool = True,
    ) -> None:
        self._api = live_api
        self._follow_selection = follow_selection
        self._session = session
        self._poll_s = poll_s
        self._clock = clock
        self._on_event = on_event
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # guards the fields up to _closed
        self._watch: _Watch | None = None
        self._waiting_for: str | None = None
        self._options: Mapping[str, Any] = MappingProxyType({})
        self._latest: str | None = None
        self._targets: dict[str, _Target] = {}
        self._live = False
        self._next_poll = 0.0
        self._closed = False
        self._poll_lock = threading.Lock()  # one poll at a time (thread or test)
        self._bridge_tracks = BridgeTracks(live_api)  # adapter thread only
        self._last_poll_error: str | None = None  # adapter thread only
        self._inbox: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="ableton-adapter", daemon=True)
        self._thread.start()

    @property
    def watched(self) -> SlotRef | None:
        with self._lock:
            return None if self._watch is None else self._watch.slot

    @property
    def waiting_for(self) -> str | None:
        """What live mode waits for ("Live …", "a MIDI clip …"), None while it watches a clip."""
        with self._lock:
            return self._waiting_for

    @property
    def live(self) -> bool:
        with self._lock:
            return self._live

    # ---- any thread ------------------------------------------------------------------------

    def fetch_selected_clip(self) -> Clip:
        """The clip in the selected track's slot of the selected scene (source "ableton")."""
        return self._read_selected()[1]

    def generate_now(self, options: Mapping[str, Any] | None = None) -> str:
        """Read the selected clip, watch it, and queue it for the engine; returns the request
        id. `options` (the OSC API's JSON options) default to the last ones given."""
        slot, song = self._read_selection()
        return self._submit(*self._read_clip(slot, song), options)

    def start_live(self, options: Mapping[str, Any] | None = None) -> str | None:
        """Live mode: pick up the selected clip now (the request id) or, when Live does not
        answer yet or nothing usable is selected, wait for it (None; `waiting_for` says what
        for); then poll every `poll_s`, generate again whenever the clip changes and follow
        the selection (see the module docstring)."""
        with self._lock:
            if options is not None:
                self._options = MappingProxyType(dict(options))
            self._live = True
            self._watch = None
        with self._poll_lock:
            request_id = self._pick_up()
        with self._lock:
            self._next_poll = self._clock() + self._poll_s
        self._inbox.put(_WAKE)
        return request_id

    def stop_live(self) -> None:
        with self._lock:
            self._live = False
        self._inbox.put(_WAKE)

    def poll_once(self) -> str | None:
        """One live-mode poll: while waiting, read the selection and pick up a MIDI clip;
        while watching, read the watched clip and Live's selection in one burst, then follow
        the selection to another MIDI clip (when `follow_selection`), or generate again when
        the clip's notes, loop, markers or the meter changed. Returns the new request id, or
        None. A deleted clip (or one turned audio) puts live mode back to waiting."""
        with self._poll_lock:
            with self._lock:
                watch = self._watch
            if watch is None:
                return self._pick_up()
            state = self._api.watch(watch.slot, watch.span_beats, watch.notes)
            selected = _selected(state.song)
            if (self._follow_selection and selected is not None and selected != watch.slot):
                followed = self._follow(watch.slot, selected, state.song)
                if followed is not None:
                    return followed
            if state.info is None or not state.info.is_midi:
                what = "deleted" if state.info is None else "replaced by an audio clip"
                with self._lock:
                    self._watch = None
                self._wait(f"a MIDI clip to be selected (the watched clip, {watch.slot}, was "
                           f"{what})")
                return None
            fingerprint = clip_fingerprint(state.info, state.song, state.notes)
            if fingerprint == watch.fingerprint:
                return None
            logger.debug("ableton: %s changed; generating again", watch.slot)
            try:
                clip = clip_from_live(state.info, state.song, state.notes,
                                      default_name=state.track_name)
                return self._submit(watch.slot, clip, state.track_name, state.info,
                                    state.notes, fingerprint, None)
            except ClipReadError as err:  # e.g. its loop has no length any more
                with self._lock:
                    self._watch = None
                self._wait(f"a MIDI clip to be selected ({err})")
                return None

    def _pick_up(self) -> str | None:
        """Waiting: generate for the selected clip when it is a MIDI clip with notes, else say
        what live mode waits for. Never raises for Live's or the user's state."""
        try:
            slot, song = self._read_selection()
            read = self._read_clip(slot, song)
            if not read[1].notes:
                self._wait(f"notes in the selected clip ({slot})")
                return None
            request_id = self._submit(*read, None)
        except ReplyTimeoutError:
            host, port = self._api.target
            self._wait(f"Live: AbletonOSC does not answer on {host}:{port} (start Live with "
                       "AbletonOSC chosen as a Control Surface)")
            return None
        except (BridgeError, OSError) as err:
            self._wait(f"a MIDI clip to be selected ({err})")
            return None
        logger.info("ableton: watching %s", slot)
        self._emit("", "status", ("watching", 1.0, f"watching the clip at {slot}"))
        return request_id

    def _wait(self, what: str) -> None:
        with self._lock:
            changed, self._waiting_for = what != self._waiting_for, what
        if changed:
            logger.info("ableton: waiting for %s", what)
            self._emit("", "status", ("waiting", 0.0, f"waiting for {what}"))

    def _follow(self, watched: SlotRef, selected: SlotRef, song: SongInfo) -> str | None:
        """When the user selected another slot holding a MIDI clip they own, watch that one
        from now on and generate for it. Selecting an empty slot, an audio clip, a bridge track
        or the master (to look at something) keeps the watched clip."""
        try:
            read = self._read_clip(selected, song)
        except (ClipReadError, AbletonError) as err:
            logger.debug("ableton: selection %s not followed: %s", selected, err)
            return None
        if not read[1].notes:
            return None  # an empty clip, maybe just created: nothing to harmonize yet
        logger.info("ableton: following the selection from %s to %s", watched, selected)
        return self._submit(*read, None)

    def close(self) -> None:
        """Stop live mode and the adapter thread (pending writes are abandoned). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._live = False
        self._inbox.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def __enter__(self) -> AbletonAdapter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- reading -------------------------------------------------------------------------

    def _read_selected(self) -> tuple[SlotRef, Clip]:
        slot, song = self._read_selection()
        return slot, self._read_clip(slot, song)[1]

    def _read_selection(self) -> tuple[SlotRef, SongInfo]:
        try:
            song = self._api.song_info(selection=True)
        except AbletonError as err:
            raise ClipReadError(f"cannot read Live's selection: select a clip on a MIDI track "
                                f"in Session view, not the master or a return track ({err})") \
                from err
        assert song.selected_track is not None and song.selected_scene is not None
        return SlotRef(song.selected_track, song.selected_scene), song

    def _read_clip(self, slot: SlotRef, song: SongInfo
                   ) -> tuple[SlotRef, Clip, str, ClipInfo, tuple[LiveNote, ...], str]:
        """The clip at `slot` as read (slot, Clip, track name, ClipInfo, raw notes) and the
        fingerprint live mode compares."""
        status = self._api.slot_status(slot.track, slot.scene)
        if status.track_name in BRIDGE_TRACK_NAMES.values():
            raise ClipReadError(f"{slot} is on {status.track_name!r}, which AccoBridge writes: "
                                "select your melody clip")
        if not status.has_clip:
            raise ClipReadError(f"no clip in the selected slot ({slot}, track "
                                f"{status.track_name!r}): select a MIDI clip in Session view")
        info = self._api.clip_info(slot.track, slot.scene)
        if not info.is_midi:
            raise ClipReadError(f"the selected clip ({slot}) is an audio clip: select a MIDI "
                                "clip")
        raw = self._api.clip_notes(slot.track, slot.scene, span_beats=info.span_beats)
        clip = clip_from_live(info, song, raw, default_name=status.track_name)
        return slot, clip, status.track_name, info, raw, clip_fingerprint(info, song, raw)

    def _submit(self, slot: SlotRef, clip: Clip, track_name: str, info: ClipInfo,
                raw: tuple[LiveNote, ...], fingerprint: str,
                options: Mapping[str, Any] | None) -> str:
        request_id = f"{SOURCE}-{next(self._ids)}"
        with self._lock:
            if self._closed:
                raise RuntimeError("the Ableton adapter is closed")
            if options is not None:
                self._options = MappingProxyType(dict(options))
            chosen = self._options
            self._watch = _Watch(slot, track_name, info.span_beats, len(raw), fingerprint)
            self._waiting_for = None
            self._latest = request_id
            self._targets[request_id] = _Target(slot, clip.length_beats, len(clip.notes),
                                                self._clock())
        try:
            submit_clip(self._session, SOURCE, request_id, clip, chosen,
                        self._session_callback(request_id))
        except Exception:
            with self._lock:
                self._targets.pop(request_id, None)
            raise
        return request_id

    def _session_callback(self, request_id: str) -> EventCallback:
        def on_event(kind: str, payload: object) -> None:  # the session's worker: enqueue only
            self._inbox.put(_SessionEvent(request_id, kind, payload))

        return on_event

    # ---- the adapter thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                item = self._inbox.get(timeout=self._wait_s())
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            try:
                if isinstance(item, _SessionEvent):
                    self._handle_session_event(item)
                self._poll_if_due()
            except Exception:  # one bad event must not stop the adapter: log and go on
                logger.exception("ableton adapter: failed to handle %r", item)

    def _wait_s(self) -> float | None:
        with self._lock:
            if not self._live:
                return None
            return min(self._poll_s, max(0.0, self._next_poll - self._clock()))

    def _poll_if_due(self) -> None:
        with self._lock:
            if not self._live or self._clock() < self._next_poll:
                return
            self._next_poll = self._clock() + self._poll_s
        try:
            self.poll_once()
        except (BridgeError, OSError) as err:  # Live closed, a refusal: keep polling
            if str(err) != self._last_poll_error:  # a closed Live must not flood the UI
                code = err.code if isinstance(err, BridgeError) else ErrorCode.DAW_WRITE_FAILED
                logger.warning("ableton: live mode: %s", err)
                self._emit("", "error", (int(code), str(err)))
            self._last_poll_error = str(err)
        else:
            self._last_poll_error = None

    def _handle_session_event(self, event: _SessionEvent) -> None:
        rid, kind, payload = event.request_id, event.kind, event.payload
        news = read_event(kind, payload)
        if isinstance(news, ResultEvent):
            self._write(rid, news.result)
            return
        if isinstance(news, StatusEvent):
            if news.state == "done":
                return  # the adapter says "done" once the parts are in Live
            if news.state in ENDINGS:
                with self._lock:
                    self._targets.pop(rid, None)
        self._emit(rid, kind, payload)

    def _write(self, request_id: str, result: GenerateResult) -> None:
        with self._lock:
            target = self._targets.pop(request_id, None)
            latest = self._latest
        if target is None or request_id != latest:
            logger.info("ableton: dropping the result of %s, superseded by %s", request_id,
                        latest)
            self._emit(request_id, "status", ("superseded", 1.0, f"superseded by {latest}"))
            return
        try:
            written = self.write_result(result, target.slot.scene, target.length_beats)
        except Exception as err:  # every request gets its ending, whatever went wrong
            code = err.code if isinstance(err, BridgeError) else ErrorCode.DAW_WRITE_FAILED
            if isinstance(err, BridgeError | OSError):
                logger.warning("ableton: writing %s failed: %s", request_id, err)
            else:
                logger.exception("ableton: writing %s failed", request_id)
            self._emit(request_id, "error", (int(code), str(err)))
            self._emit(request_id, "status", ("failed", 1.0, str(err)))
            return
        parts = " and ".join(f"{w.part} ({w.notes} notes)" for w in written) or "nothing"
        # The job's one log line (the result itself is far too long for a log).
        logger.info("ableton: %s: %d melody notes from %s -> wrote %s in %.2f s", request_id,
                    target.notes, target.slot, parts, self._clock() - target.submitted_s)
        self._emit(request_id, "result", result)
        self._emit(request_id, "written", written)
        self._emit(request_id, "status", ("done", 1.0, f"wrote {parts} to Live, scene "
                                                       f"{target.slot.scene + 1}"))

    def _emit(self, request_id: str, kind: str, payload: object) -> None:
        call_guarded(logger, f"ableton: on_event on {kind!r} for {request_id}", self._on_event,
                     request_id, kind, payload)

    # ---- writing (adapter thread) ----------------------------------------------------------

    def write_result(self, result: GenerateResult, scene: int,
                     length_beats: float) -> tuple[WrittenPart, ...]:
        """Write each generated part into its bridge-owned track's clip in `scene`, then read
        it back. Runs on the adapter thread (public for tools that replay a stored result)."""
        unknown = set(result.parts) - set(BRIDGE_TRACK_NAMES)
        if unknown:
            logger.warning("ableton: no track for part(s) %s; not written", sorted(unknown))
        # AbletonOSC cannot write CC: the piano's sustain pedal goes into its note lengths.
        return self._bridge_tracks.write_parts(
            {part: sustain_into_durations(result.parts[part], result.controls.get(part, ()))
             for part in PARTS if part in result.parts}, scene, length_beats)


def _selected(song: SongInfo) -> SlotRef | None:
    if song.selected_track is None or song.selected_scene is None:
        return None
    return SlotRef(song.selected_track, song.selected_scene)
