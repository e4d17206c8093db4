"""Ableton Live as a bridge client: read the selected Session clip, hand it to the `Session`,
write the generated parts into bridge-owned clips (`tracks`), and (live mode) follow the clip's
notes.

Threads: `generate_now`, `fetch_selected_clip` and `poll_once` read Live on the caller's
thread. Session events only enqueue (they arrive on the engine's worker); one adapter thread
writes results to Live and, in live mode, polls the watched clip every `poll_s` (by `clock`).
Adapter events go to `on_event(request_id, kind, payload)` on that thread: the session's
"status"/"error" events, then, once the parts are in Live, "result" (GenerateResult), "written"
(tuple of WrittenPart) and a final ("status", ("done", 1.0, message)); a failed write is
("error", (4, message)) and ("status", ("failed", …)). Live-mode poll failures come with an
empty request id.
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
from bridge.ableton.live_api import LiveApi, SlotRef, SongInfo
from bridge.ableton.notes import SOURCE, clip_from_live, notes_digest
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
from bridge.errors import BridgeError, ErrorCode
from bridge.pedal import sustain_into_durations
from bridge.types import PARTS, Clip, GenerateResult

logger = logging.getLogger(__name__)

ENDINGS = frozenset({"failed", "cancelled", "superseded"})

# The adapter's own listener: the session's events with the request id in front, plus
# "written" (see the module docstring).
AdapterEventCallback = Callable[[str, str, object], None]  # (request_id, kind, payload)


@dataclass(frozen=True)
class _Target:
    slot: SlotRef
    length_beats: float


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
        poll_s: float = 1.0,
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
        self._watched: SlotRef | None = None
        self._watched_span = 0.0
        self._watched_digest: str | None = None
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
            return self._watched

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
        slot, clip, digest, span = self._read_selected()
        return self._submit(slot, clip, digest, span, options)

    def start_live(self, options: Mapping[str, Any] | None = None) -> str:
        """`generate_now`, then poll the watched clip every `poll_s` and re-generate whenever
        its notes change."""
        request_id = self.generate_now(options)
        with self._lock:
            self._live = True
            self._next_poll = self._clock() + self._poll_s
        self._inbox.put(_WAKE)
        return request_id

    def stop_live(self) -> None:
        with self._lock:
            self._live = False
        self._inbox.put(_WAKE)

    def poll_once(self) -> str | None:
        """Follow the selection to another MIDI clip (when `follow_selection`), else read the
        watched clip's notes; when they changed since the last request, read the whole clip
        again and queue it. Returns the new request id, or None."""
        with self._poll_lock:
            with self._lock:
                slot, span, digest = self._watched, self._watched_span, self._watched_digest
            if slot is None:
                return None
            if self._follow_selection:
                followed = self._follow(slot)
                if followed is not None:
                    return followed
            status = self._api.slot_status(slot.track, slot.scene)
            if not status.has_clip:
                raise ClipReadError(f"the watched clip ({slot}) is gone")
            try:
                notes = self._api.clip_notes(slot.track, slot.scene, span_beats=span)
            except AbletonError as err:
                # The clip may have gone between the two reads: ask again before judging.
                if not self._api.slot_status(slot.track, slot.scene).has_clip:
                    raise ClipReadError(f"the watched clip ({slot}) is gone") from err
                if self._api.is_midi_clip(slot.track, slot.scene):
                    raise
                raise ClipReadError(f"the watched clip ({slot}) is now an audio clip") from err
            if notes_digest(notes) == digest:
                return None
            song = self._api.song_info()
            clip, new_digest, new_span = self._read_clip(slot, song)
            logger.info("ableton: the notes of %s changed; generating again", slot)
            return self._submit(slot, clip, new_digest, new_span, None)

    def _follow(self, watched: SlotRef) -> str | None:
        """When the user selected another slot holding a MIDI clip they own, watch that one
        from now on and generate for it. Selecting an empty slot, an audio clip, a bridge track
        or the master (to look at something) keeps the watched clip."""
        try:
            selected = SlotRef(self._api.selected_track(), self._api.selected_scene())
        except AbletonError:
            return None  # e.g. the master or a return track is selected
        if selected == watched:
            return None
        try:
            song = self._api.song_info()
            clip, digest, span = self._read_clip(selected, song)
        except (ClipReadError, AbletonError) as err:
            logger.debug("ableton: selection %s not followed: %s", selected, err)
            return None
        if not clip.notes:
            return None  # an empty clip, maybe just created: nothing to harmonize yet
        logger.info("ableton: following the selection from %s to %s", watched, selected)
        return self._submit(selected, clip, digest, span, None)

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

    def _read_selected(self) -> tuple[SlotRef, Clip, str, float]:
        try:
            song = self._api.song_info(selection=True)
        except AbletonError as err:
            raise ClipReadError(f"cannot read Live's selection: select a clip on a MIDI track "
                                f"in Session view, not the master or a return track ({err})") \
                from err
        assert song.selected_track is not None and song.selected_scene is not None
        slot = SlotRef(song.selected_track, song.selected_scene)
        return (slot, *self._read_clip(slot, song))

    def _read_clip(self, slot: SlotRef, song: SongInfo) -> tuple[Clip, str, float]:
        """The clip at `slot`, the digest of its raw notes (for live mode) and its span."""
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
        span = max(info.length_beats, info.region_end_beats)
        raw = self._api.clip_notes(slot.track, slot.scene, span_beats=span)
        clip = clip_from_live(info, song, raw, default_name=status.track_name)
        return clip, notes_digest(raw), span

    def _submit(self, slot: SlotRef, clip: Clip, digest: str, span: float,
                options: Mapping[str, Any] | None) -> str:
        request_id = f"{SOURCE}-{next(self._ids)}"
        with self._lock:
            if self._closed:
                raise RuntimeError("the Ableton adapter is closed")
            if options is not None:
                self._options = MappingProxyType(dict(options))
            chosen = self._options
            self._watched, self._watched_span, self._watched_digest = slot, span, digest
            self._latest = request_id
            self._targets[request_id] = _Target(slot, clip.length_beats)
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
        except (BridgeError, OSError) as err:
            if isinstance(err, ClipReadError):
                with self._lock:
                    self._live = False  # nothing left to follow
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
        self._emit(request_id, "result", result)
        self._emit(request_id, "written", written)
        parts = " and ".join(f"{w.part} ({w.notes} notes)" for w in written) or "nothing"
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
        return tuple(self._bridge_tracks.write_part(
            part, sustain_into_durations(result.parts[part], result.controls.get(part, ())),
            scene, length_beats) for part in PARTS if part in result.parts)
