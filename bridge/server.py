"""The bridge side of our OSC API over OscServer: the loop that dispatches each request to its
part — peers and ownership (`bridge.peers`), uploads (`bridge.uploads`), results
(`bridge.result_cache`) — and handles hello, ping, stats, generate, cancel and status itself.

Independent of the engine: requests go to a `Session` (see `bridge.session`), whose events come
back on its worker thread and are queued here. One loop thread owns all protocol state; the
socket thread only decodes and enqueues. Time is injectable (`clock`) so tests can expire
uploads and drive the counters' summary lines without sleeping.

Who is answered: a request belongs to the sender address that began it (`clip/begin`); its
replies go where that sender's replies went then, and messages about it from any other address
are refused with a short error. A peer with a request in flight is never evicted from the peer
table. A request the bridge no longer holds (after a restart, say) is answered from the store
when its recorded source was made from the asker's client name (`source_of`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from bridge.adapter import (
    ErrorEvent,
    EventCallback,
    ResultEvent,
    SessionLike,
    StatusEvent,
    read_event,
    submit_clip,
)
from bridge.errors import BadMessageError, BridgeError, ErrorCode
from bridge.osc import DEFAULT_HOST, DEFAULT_PORT, Address, OscServer
from bridge.peers import Peer, Peers, Request
from bridge.protocol import (
    CODEC,
    INT32_MAX,
    MAX_PEERS,
    MAX_STATS_COUNTERS,
    OLDEST_PROTOCOL,
    PROTOCOL_VERSION,
    Cancel,
    ClipBegin,
    ClipEnd,
    ClipNotes,
    Generate,
    Hello,
    HelloOk,
    Message,
    Ping,
    Pong,
    ResultGet,
    Stats,
    StatsGet,
    Status,
    StatusGet,
)
from bridge.protocol.fields import json_object
from bridge.replies import Replies, cut
from bridge.result_cache import Results, StoredResults
from bridge.tally import Tally, printable
from bridge.uploads import Uploads

logger = logging.getLogger(__name__)

BRIDGE_VERSION = "0.1.0"
MAX_INBOX = 10_000  # packets waiting for the loop; beyond this they are dropped and counted
ENDING_STATES = frozenset({"done", "failed", "superseded", "cancelled"})


@dataclass(frozen=True)
class _Packet:
    message: Message
    sender: Address


@dataclass(frozen=True)
class _Event:
    request_id: str
    kind: str
    payload: object


_STOP = object()


class BridgeServer:
    """Our OSC API on `host:port` (127.0.0.1:17000 by default; port 0 picks a free one).

    Starts at once; `close()` (or leaving a `with` block) stops it. `stats()` merges the
    socket's packet counters with the protocol's own (rejected_<reason>, uploads_expired …);
    while refusals go on, both log a summary line every `report_s` at most. `store` (default:
    the session's, when it has one) answers result/get for results of earlier runs.
    """

    def __init__(
        self,
        session: SessionLike,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        upload_timeout_s: float = 5.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        tick_s: float = 0.25,
        store: StoredResults | None = None,
    ) -> None:
        self._session = session
        self._clock = clock
        self._tick_s = max(0.01, min(tick_s, upload_timeout_s / 4))
        self._inbox: queue.Queue[object] = queue.Queue()
        self._lock = threading.Lock()
        self._log = Tally("acco-bridge", logger, clock=clock)
        for key in ("hellos", "rejected", "inbox_dropped", "uploads_expired", "clips_expired",
                    "nacks_sent", "internal_errors"):
            self._log.count(key, 0)
        self._closed = False
        self._osc = OscServer(self._on_packet, host, port, codec=CODEC, name="acco-osc",
                              clock=clock)
        # Loop-thread state.
        self._peers = Peers()
        self._replies = Replies(self._osc, self._log)
        self._uploads = Uploads(self._peers, self._replies, self._begin, clock, upload_timeout_s)
        self._results = Results(self._peers, self._replies, self._begin,
                                store if store is not None else getattr(session, "store", None))
        self._thread = threading.Thread(target=self._run, name="acco-bridge", daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return self._osc.host

    @property
    def port(self) -> int:
        return self._osc.port

    def stats(self) -> dict[str, int]:
        # len() of a dict the loop thread mutates is atomic; the count may be one step old.
        return {**self._osc.stats(), **self._log.snapshot(),
                "uploads_active": len(self._uploads.pending), "peers": len(self._peers.peers)}

    def close(self) -> None:
        """Stop receiving, finish the loop, join both threads. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._osc.close()
        self._inbox.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- other threads: only enqueue ----------------------------------------------------

    def _on_packet(self, message: Message, sender: Address) -> None:
        if self._inbox.qsize() >= MAX_INBOX:
            self._log.count("inbox_dropped")
            self._log.limited("inbox_dropped", "dropped packets", logging.WARNING,
                              "bridge busy: dropped %s from %s", type(message).__name__, sender)
            return
        self._inbox.put(_Packet(message, sender))

    def _event_callback(self, request_id: str) -> EventCallback:
        def on_event(kind: str, payload: object) -> None:
            self._inbox.put(_Event(request_id, kind, payload))

        return on_event

    # ---- the loop thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                item = self._inbox.get(timeout=self._tick_s)
            except queue.Empty:
                item = None
            try:
                self._uploads.expire(self._clock())
                self._osc.report()
                self._log.report()
                if item is _STOP:
                    return
                if isinstance(item, _Packet):
                    self._handle(item.message, item.sender)
                elif isinstance(item, _Event):
                    self._handle_event(item)
            except Exception:  # one bad request must not stop the bridge: count and log
                self._log.count("internal_errors")
                logger.exception("bridge: failed to handle %r", item)

    def _handle(self, message: Message, sender: Address) -> None:
        self._peers.heard(sender)
        match message:
            case Hello():
                self._hello(message, sender)
            case Ping():
                self._replies.send(self._peers.reply_address(sender),
                                   Pong(message.token, self._session.queue_length()))
            case StatsGet():
                self._stats(message, sender)
            case ClipBegin() | ClipNotes() | ClipEnd() | Generate() | Cancel() | StatusGet() \
                    | ResultGet():
                self._about_request(message, sender)
            case _:
                self._replies.reject("direction", message, sender, "a bridge-to-client message")

    def _hello(self, message: Hello, sender: Address) -> None:
        proto = min(message.proto, PROTOCOL_VERSION)  # the client may speak down to ours
        if not self._peers.make_room_for_a_peer(sender, self._in_flight):
            self._replies.reject("peers_full", message, sender,
                                 f"{MAX_PEERS} peers have work in flight")
            self._replies.error(sender, "", ErrorCode.BAD_INPUT,  # to the sender, not its port
                                f"{MAX_PEERS} clients have requests in flight; say hello again "
                                "when one has finished")
            return
        self._peers.add(sender, Peer(message.reply_port, message.client, proto))
        self._log.count("hellos")
        self._log.limited("hello", "hellos", logging.INFO,
                          "bridge: hello from '%s' (%s) at %s, replies to port %d",
                          printable(message.client), printable(message.daw), sender,
                          message.reply_port)
        address = self._peers.reply_address(sender)
        self._replies.send(address, HelloOk(BRIDGE_VERSION, max(proto, OLDEST_PROTOCOL)))
        if message.proto < OLDEST_PROTOCOL:
            self._replies.error(address, "", ErrorCode.BAD_INPUT,
                                f"protocol version {message.proto} is not supported; this "
                                f"bridge speaks versions {OLDEST_PROTOCOL}..{PROTOCOL_VERSION}")

    def _in_flight(self, request_id: str, request: Request) -> bool:
        return request.running or self._uploads.holds(request_id)

    def _stats(self, message: StatsGet, sender: Address) -> None:
        counters = sorted((name, min(value, INT32_MAX))
                          for name, value in self.stats().items() if value > 0)
        self._replies.send(self._peers.reply_address(sender),
                           Stats(message.token, tuple(counters[:MAX_STATS_COUNTERS])))

    # ---- requests -----------------------------------------------------------------------

    def _about_request(self, message: ClipBegin | ClipNotes | ClipEnd | Generate | Cancel
                       | StatusGet | ResultGet, sender: Address) -> None:
        """Dispatch a message naming a request: the request's own (None: not known here), or a
        refusal when another sender began it."""
        rid = message.request_id
        request = self._peers.requests.get(rid)
        if request is not None and request.owner != sender:
            self._replies.reject("not_owner", message, sender,
                                 f"request {rid} belongs to another peer")
            if not isinstance(message, ClipNotes):  # chunks come by the hundred: no answers
                self._replies.error(self._peers.reply_address(sender), rid,
                                    ErrorCode.BAD_INPUT, f"request {rid} was begun by another "
                                    "client; only it may ask about it")
            return
        match message:
            case ClipBegin():
                self._uploads.clip_begin(message, sender)
            case ClipNotes():
                self._uploads.clip_notes(message, request, sender)
            case ClipEnd():
                self._uploads.clip_end(message, request, sender)
            case Generate():
                self._generate(message, request, sender)
            case Cancel():
                self._cancel(message, request)
            case StatusGet():
                self._status_get(message, request, sender)
            case ResultGet():
                self._results.result_get(message, request, sender)

    def _begin(self, request_id: str, sender: Address, source: str) -> Request | None:
        """A new request of `sender` (see `Peers.begin`), nothing of an earlier one of that id
        kept; None when too many requests are in flight to remember one more."""
        request = self._peers.begin(request_id, sender, source, self._in_flight)
        if request is not None:
            self._uploads.forget(request_id)
            self._results.forget(request_id)
        return request

    def _generate(self, message: Generate, request: Request | None, sender: Address) -> None:
        rid = message.request_id
        if request is not None and request.submitted:
            self._status_get(StatusGet(rid), request, sender)  # the client missed our answer
            return
        clip = self._uploads.take_ready(rid)
        if request is None or clip is None:
            self._replies.error(self._peers.reply_address(sender) if request is None
                                else request.route, rid, ErrorCode.BAD_INPUT,
                                f"no uploaded clip for request {rid}: upload it (clip/begin … "
                                "clip/end) and wait for /acco/ack first")
            return
        try:
            options = json_object(message.params_json or "{}", "params_json")
        except BadMessageError as err:
            self._replies.error(request.route, rid, ErrorCode.BAD_INPUT, str(err))
            return
        request.submitted = request.running = True
        try:
            submit_clip(self._session, clip.source, rid, clip, options,
                        self._event_callback(rid))
        except BridgeError as err:
            request.running = False
            self._replies.error(request.route, rid, err.code, str(err))
        except Exception as err:  # the session refused (e.g. closing): tell the client
            request.running = False
            logger.exception("bridge: session did not take request %s", rid)
            self._replies.error(request.route, rid, ErrorCode.ENGINE_ERROR,
                                f"could not queue: {err}")

    def _cancel(self, message: Cancel, request: Request | None) -> None:
        rid = message.request_id
        if request is None:
            return
        self._uploads.forget(rid)
        if request.running:
            self._session.cancel(rid)

    def _status_get(self, message: StatusGet, request: Request | None, sender: Address) -> None:
        rid = message.request_id
        if request is None:
            self._replies.send(self._peers.reply_address(sender),
                               Status(rid, "unknown", 0.0, ""))
            return
        status = request.status
        if status is None:
            state = ("submitted" if request.submitted
                     else self._uploads.state(rid) or "unknown")
            status = Status(rid, state, 0.0, "")
        self._replies.send(request.route, status)

    def _handle_event(self, event: _Event) -> None:
        rid = event.request_id
        request = self._peers.requests.get(rid)
        if request is None:
            logger.warning("bridge: %s event for %s, whose client is forgotten", event.kind, rid)
            return
        match read_event(event.kind, event.payload):
            case StatusEvent() as news:
                status = Status(rid, news.state, news.progress, cut(news.message))
                request.status = status
                if news.state in ENDING_STATES:
                    request.running = False
                self._replies.send(request.route, status)
            case ResultEvent() as news:
                request.running = False
                self._results.send(request, rid, news.result)
            case ErrorEvent() as news:
                request.running = False
                self._replies.error(request.route, rid, news.code, news.message)
            case _:
                self._log.count("internal_errors")
                logger.error("bridge: malformed session event %r for %s: %r", event.kind, rid,
                             event.payload)
