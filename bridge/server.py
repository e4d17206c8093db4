"""The bridge side of our OSC API: peers, uploads, generate/cancel/status, results and counters,
over OscServer.

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

import contextlib
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

from bridge.adapter import (
    ErrorEvent,
    EventCallback,
    ResultEvent,
    SessionLike,
    StatusEvent,
    read_event,
    submit_clip,
)
from bridge.errors import BadMessageError, BridgeError, ClipTooLargeError, ErrorCode
from bridge.osc import DEFAULT_HOST, DEFAULT_PORT, Address, OscServer
from bridge.protocol import (
    CODEC,
    INT32_MAX,
    MAX_MISSING_PER_NACK,
    MAX_PEERS,
    MAX_REQUESTS,
    MAX_STATS_COUNTERS,
    OLDEST_PROTOCOL,
    PROTOCOL_VERSION,
    Ack,
    Cancel,
    ClipBegin,
    ClipEnd,
    ClipNotes,
    ClipUpload,
    ErrorReply,
    Generate,
    Hello,
    HelloOk,
    Message,
    Nack,
    Ping,
    Pong,
    ResultGet,
    Stats,
    StatsGet,
    Status,
    StatusGet,
    encode,
    result_messages,
)
from bridge.protocol.fields import json_object
from bridge.tally import Tally, printable
from bridge.types import Clip, GenerateResult

logger = logging.getLogger(__name__)

BRIDGE_VERSION = "0.1.0"
MAX_INBOX = 10_000  # packets waiting for the loop; beyond this they are dropped and counted
MAX_UPLOADS = 64  # partial uploads at once (oldest dropped)
MAX_RESULTS = 16  # encoded results kept for /acco/result/get
MAX_MESSAGE_BYTES = 1_000  # status and error texts are cut to this
ENDING_STATES = frozenset({"done", "failed", "superseded", "cancelled"})


class StoredResults(Protocol):
    """Where results of earlier runs are found (`bridge.store.ClipStore`)."""

    def stored_result(self, request_id: str, source_ok: Callable[[str], bool] | None = None
                      ) -> GenerateResult | None: ...


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


@dataclass(frozen=True)
class _Peer:
    """A sender that said hello."""

    reply_port: int
    client: str
    proto: int  # what we speak with it: the lower of its version and ours


@dataclass
class _Request:
    """One request id. Only `owner` may ask about it; `route` and `proto` are fixed when it
    begins, so a later hello from anyone cannot send its replies elsewhere."""

    owner: Address  # the sender that began it
    route: Address  # where its replies go
    proto: int
    source: str
    acked: bool = False  # its upload is complete and verified
    submitted: bool = False  # given to the session (a repeated generate is not re-run)
    running: bool = False  # submitted and not ended: no result, error or ending status yet
    status: Status | None = None


@dataclass
class _Upload:
    upload: ClipUpload
    touched_s: float


@dataclass(frozen=True)
class _ReadyClip:
    clip: Clip
    ready_s: float


K = TypeVar("K")
V = TypeVar("V")


def _remember(store: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > limit:
        store.popitem(last=False)


def _make_room(table: OrderedDict[K, V], limit: int, keep: Callable[[K, V], bool]) -> bool:
    """Drop the oldest entries `keep` lets go until one more fits; False when all must stay."""
    while len(table) >= limit:
        oldest = next((key for key, value in table.items() if not keep(key, value)), None)
        if oldest is None:
            return False
        del table[oldest]
    return True


def _cut(text: str, max_bytes: int = MAX_MESSAGE_BYTES) -> str:
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore").replace("\x00", "")


def _client_part(client: str) -> str:
    """`osc:` and the client name, with `%` and `:` escaped so a name cannot pose as a prefix of
    another's ("a" of "a:b")."""
    return "osc:" + client.replace("%", "%25").replace(":", "%3A")


def source_of(client: str, clip_source: str) -> str:
    """The session source of a clip uploaded over OSC: the client's name (its hello's, else its
    host) and the clip's own source, so two clients never supersede each other."""
    return f"{_client_part(client)}:{clip_source}" if clip_source else _client_part(client)


def made_by(source: str, client: str) -> bool:
    """Whether `source` (see `source_of`) is of a clip that `client` uploaded."""
    own = _client_part(client)
    return source == own or source.startswith(own + ":")


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
        self._store = store if store is not None else getattr(session, "store", None)
        self._upload_timeout_s = upload_timeout_s
        self._clock = clock
        self._tick_s = max(0.01, min(tick_s, upload_timeout_s / 4))
        self._inbox: queue.Queue[object] = queue.Queue()
        self._lock = threading.Lock()
        self._log = Tally("acco-bridge", logger, clock=clock)
        for key in ("hellos", "rejected", "inbox_dropped", "uploads_expired", "clips_expired",
                    "nacks_sent", "internal_errors"):
            self._log.count(key, 0)
        self._closed = False
        # Loop-thread state.
        self._peers: OrderedDict[Address, _Peer] = OrderedDict()  # least recently heard first
        self._requests: OrderedDict[str, _Request] = OrderedDict()
        self._uploads: OrderedDict[str, _Upload] = OrderedDict()
        self._ready: OrderedDict[str, _ReadyClip] = OrderedDict()
        self._results: OrderedDict[str, list[bytes]] = OrderedDict()
        self._osc = OscServer(self._on_packet, host, port, codec=CODEC, name="acco-osc",
                              clock=clock)
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
        return {**self._osc.stats(), **self._log.snapshot(), "uploads_active": len(self._uploads),
                "peers": len(self._peers)}

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
                self._expire(self._clock())
                self._osc.report()
                self._log.report()
                if item is _STOP:
                    return
                if isinstance(item, _Packet):
                    self._handle(item.message, item.sender)
                elif isinstance(item, _Event):
                    self._handle_event(item)
            except Exception:  # one bad request must not stop the bridge: count and log
                self._count("internal_errors")
                logger.exception("bridge: failed to handle %r", item)

    def _count(self, key: str) -> None:
        self._log.count(key)

    def _reject(self, reason: str, message: Message, sender: Address, detail: str) -> None:
        """A well-formed packet that makes no sense here: counted and logged like bad ones."""
        self._log.refuse("rejected", reason, f"packet from {sender}",
                         f"{type(message).__name__}: {detail}")

    def _reply_address(self, sender: Address) -> Address:
        """The sender's host at the reply_port of its own hello, else the sender itself."""
        peer = self._peers.get(sender)
        return sender if peer is None else (sender[0], peer.reply_port)

    def _send(self, address: Address, message: Message) -> None:
        self._send_datagrams(address, [encode(message)])

    def _send_datagrams(self, address: Address, datagrams: list[bytes]) -> None:
        # OscServer counts and logs send failures; a vanished client must not stop the loop.
        with contextlib.suppress(OSError):
            for data in datagrams:
                self._osc.send_datagram(address, data)

    def _error(self, address: Address, request_id: str, code: int, message: str) -> None:
        self._send(address, ErrorReply(request_id, code, _cut(message)))

    def _handle(self, message: Message, sender: Address) -> None:
        if sender in self._peers:
            self._peers.move_to_end(sender)  # heard from: the last to be evicted
        match message:
            case Hello():
                self._hello(message, sender)
            case Ping():
                self._send(self._reply_address(sender),
                           Pong(message.token, self._session.queue_length()))
            case StatsGet():
                self._stats(message, sender)
            case ClipBegin() | ClipNotes() | ClipEnd() | Generate() | Cancel() | StatusGet() \
                    | ResultGet():
                self._about_request(message, sender)
            case _:
                self._reject("direction", message, sender, "a bridge-to-client message")

    def _hello(self, message: Hello, sender: Address) -> None:
        proto = min(message.proto, PROTOCOL_VERSION)  # the client may speak down to ours
        if sender not in self._peers and not self._make_room_for_a_peer():
            self._reject("peers_full", message, sender, f"{MAX_PEERS} peers have work in flight")
            self._error(sender, "", ErrorCode.BAD_INPUT,  # to the sender, not a port it names
                        f"{MAX_PEERS} clients have requests in flight; say hello again when "
                        "one has finished")
            return
        _remember(self._peers, sender, _Peer(message.reply_port, message.client, proto),
                  MAX_PEERS)
        self._count("hellos")
        self._log.limited("hello", "hellos", logging.INFO,
                          "bridge: hello from '%s' (%s) at %s, replies to port %d",
                          printable(message.client), printable(message.daw), sender,
                          message.reply_port)
        address = self._reply_address(sender)
        self._send(address, HelloOk(BRIDGE_VERSION, max(proto, OLDEST_PROTOCOL)))
        if message.proto < OLDEST_PROTOCOL:
            self._error(address, "", ErrorCode.BAD_INPUT,
                        f"protocol version {message.proto} is not supported; this bridge "
                        f"speaks versions {OLDEST_PROTOCOL}..{PROTOCOL_VERSION}")

    def _make_room_for_a_peer(self) -> bool:
        """Evict the least recently heard peer that owns no request in flight."""
        if len(self._peers) < MAX_PEERS:
            return True
        working = {request.owner for rid, request in self._requests.items()
                   if self._in_flight(rid, request)}
        return _make_room(self._peers, MAX_PEERS, lambda sender, _: sender in working)

    def _in_flight(self, request_id: str, request: _Request) -> bool:
        return request.running or request_id in self._uploads or request_id in self._ready

    def _stats(self, message: StatsGet, sender: Address) -> None:
        counters = sorted((name, min(value, INT32_MAX))
                          for name, value in self.stats().items() if value > 0)
        self._send(self._reply_address(sender),
                   Stats(message.token, tuple(counters[:MAX_STATS_COUNTERS])))

    # ---- requests -----------------------------------------------------------------------

    def _about_request(self, message: ClipBegin | ClipNotes | ClipEnd | Generate | Cancel
                       | StatusGet | ResultGet, sender: Address) -> None:
        """Dispatch a message naming a request: the request's own (None: not known here), or a
        refusal when another sender began it."""
        rid = message.request_id
        request = self._requests.get(rid)
        if request is not None and request.owner != sender:
            self._reject("not_owner", message, sender, f"request {rid} belongs to another peer")
            if not isinstance(message, ClipNotes):  # chunks come by the hundred: no answers
                self._error(self._reply_address(sender), rid, ErrorCode.BAD_INPUT,
                            f"request {rid} was begun by another client; only it may ask "
                            "about it")
            return
        match message:
            case ClipBegin():
                self._clip_begin(message, sender)
            case ClipNotes():
                self._clip_notes(message, request, sender)
            case ClipEnd():
                self._clip_end(message, request, sender)
            case Generate():
                self._generate(message, request, sender)
            case Cancel():
                self._cancel(message, request)
            case StatusGet():
                self._status_get(message, request, sender)
            case ResultGet():
                self._result_get(message, request, sender)

    def _begin(self, request_id: str, sender: Address, source: str) -> _Request | None:
        """A new request of `sender` (replacing its own of that id), with the route and
        protocol of its hello; None when too many requests are in flight to remember one more."""
        if request_id not in self._requests and not _make_room(self._requests, MAX_REQUESTS,
                                                               self._in_flight):
            return None
        peer = self._peers.get(sender)
        request = _Request(sender, self._reply_address(sender),
                           OLDEST_PROTOCOL if peer is None else peer.proto, source)
        _remember(self._requests, request_id, request, MAX_REQUESTS)
        for table in (self._uploads, self._ready, self._results):
            table.pop(request_id, None)
        return request

    def _clip_begin(self, message: ClipBegin, sender: Address) -> None:
        rid = message.request_id
        address = self._reply_address(sender)
        try:
            upload = ClipUpload(message)
        except (BadMessageError, ClipTooLargeError) as err:
            self._reject("clip", message, sender, str(err))
            self._error(address, rid, err.code, str(err))
            return
        peer = self._peers.get(sender)
        if self._begin(rid, sender, source_of(sender[0] if peer is None else peer.client,
                                              message.source)) is None:
            self._reject("busy", message, sender, f"{MAX_REQUESTS} requests in flight")
            self._error(address, rid, ErrorCode.BAD_INPUT,
                        f"{MAX_REQUESTS} requests are in flight; try again when one has finished")
            return
        _remember(self._uploads, rid, _Upload(upload, self._clock()), MAX_UPLOADS)

    def _clip_notes(self, message: ClipNotes, request: _Request | None, sender: Address) -> None:
        rid = message.request_id
        pending = self._uploads.get(rid)
        if request is None or pending is None:
            self._reject("unknown_upload", message, sender, f"no upload {rid}")
            return
        pending.touched_s = self._clock()
        try:
            pending.upload.add(message)
        except BadMessageError as err:
            self._uploads.pop(rid)
            self._reject("clip", message, sender, str(err))
            self._error(request.route, rid, err.code, str(err))

    def _clip_end(self, message: ClipEnd, request: _Request | None, sender: Address) -> None:
        rid = message.request_id
        if request is None:
            self._count("nacks_sent")
            self._send(self._reply_address(sender), Nack(rid, ()))  # unknown: start again
            return
        if request.acked:
            self._send(request.route, Ack(rid))  # our ack was lost: say it again
            return
        pending = self._uploads.get(rid)
        if pending is None:
            self._count("nacks_sent")
            self._send(request.route, Nack(rid, ()))  # dropped: start again with clip/begin
            return
        pending.touched_s = self._clock()
        missing = pending.upload.missing()
        if missing:
            self._count("nacks_sent")
            self._send(request.route, Nack(rid, missing[:MAX_MISSING_PER_NACK]))
            return
        del self._uploads[rid]
        try:
            clip = pending.upload.finish(message, request.source)
        except (BadMessageError, ClipTooLargeError) as err:
            self._reject("clip", message, sender, str(err))
            self._error(request.route, rid, err.code, str(err))
            return
        _remember(self._ready, rid, _ReadyClip(clip, self._clock()), MAX_UPLOADS)
        request.acked = True
        self._send(request.route, Ack(rid))

    def _generate(self, message: Generate, request: _Request | None, sender: Address) -> None:
        rid = message.request_id
        if request is not None and request.submitted:
            self._status_get(StatusGet(rid), request, sender)  # the client missed our answer
            return
        ready = self._ready.pop(rid, None)
        if request is None or ready is None:
            self._error(self._reply_address(sender) if request is None else request.route, rid,
                        ErrorCode.BAD_INPUT, f"no uploaded clip for request {rid}: upload it "
                        "(clip/begin … clip/end) and wait for /acco/ack first")
            return
        try:
            options = json_object(message.params_json or "{}", "params_json")
        except BadMessageError as err:
            self._error(request.route, rid, ErrorCode.BAD_INPUT, str(err))
            return
        request.submitted = request.running = True
        try:
            submit_clip(self._session, ready.clip.source, rid, ready.clip, options,
                        self._event_callback(rid))
        except BridgeError as err:
            request.running = False
            self._error(request.route, rid, err.code, str(err))
        except Exception as err:  # the session refused (e.g. closing): tell the client
            request.running = False
            logger.exception("bridge: session did not take request %s", rid)
            self._error(request.route, rid, ErrorCode.ENGINE_ERROR, f"could not queue: {err}")

    def _cancel(self, message: Cancel, request: _Request | None) -> None:
        rid = message.request_id
        if request is None:
            return
        self._uploads.pop(rid, None)
        self._ready.pop(rid, None)
        if request.running:
            self._session.cancel(rid)

    def _status_get(self, message: StatusGet, request: _Request | None, sender: Address) -> None:
        rid = message.request_id
        if request is None:
            self._send(self._reply_address(sender), Status(rid, "unknown", 0.0, ""))
            return
        status = request.status
        if status is None:
            state = ("submitted" if request.submitted
                     else "uploading" if rid in self._uploads
                     else "uploaded" if rid in self._ready
                     else "unknown")
            status = Status(rid, state, 0.0, "")
        self._send(request.route, status)

    def _result_get(self, message: ResultGet, request: _Request | None, sender: Address) -> None:
        rid = message.request_id
        if request is None:
            self._result_from_store(rid, sender)
            return
        datagrams = self._results.get(rid)
        if datagrams is not None:
            self._send_datagrams(request.route, datagrams)
            return
        done = request.status is not None and request.status.state == "done"
        source = request.source
        stored = (self._store.stored_result(rid, lambda s: s == source)
                  if done and self._store is not None else None)
        if stored is not None:  # done, but no longer among the results kept in memory
            self._send_result(request, rid, stored)
        elif request.status is not None:
            self._send(request.route, request.status)
        else:
            self._error(request.route, rid, ErrorCode.BAD_INPUT, f"no result stored for {rid}")

    def _result_from_store(self, request_id: str, sender: Address) -> None:
        """A request this run does not hold: the store's result, when the asker's client name
        (its hello's, else its host) made the stored request's source. The asker owns the
        request from now on."""
        peer = self._peers.get(sender)
        client = sender[0] if peer is None else peer.client
        stored = (None if self._store is None
                  else self._store.stored_result(request_id, lambda s: made_by(s, client)))
        request = None if stored is None else self._begin(request_id, sender, stored.source)
        if stored is None or request is None:
            self._error(self._reply_address(sender), request_id, ErrorCode.BAD_INPUT,
                        f"no result stored for {request_id} from client '{_cut(client, 64)}'")
            return
        request.acked = request.submitted = True
        request.status = Status(request_id, "done", 1.0, "stored")
        self._send_result(request, request_id, stored)

    def _handle_event(self, event: _Event) -> None:
        rid = event.request_id
        request = self._requests.get(rid)
        if request is None:
            logger.warning("bridge: %s event for %s, whose client is forgotten", event.kind, rid)
            return
        match read_event(event.kind, event.payload):
            case StatusEvent() as news:
                status = Status(rid, news.state, news.progress, _cut(news.message))
                request.status = status
                if news.state in ENDING_STATES:
                    request.running = False
                self._send(request.route, status)
            case ResultEvent() as news:
                request.running = False
                self._send_result(request, rid, news.result)
            case ErrorEvent() as news:
                request.running = False
                self._error(request.route, rid, news.code, news.message)
            case _:
                self._count("internal_errors")
                logger.error("bridge: malformed session event %r for %s: %r", event.kind, rid,
                             event.payload)

    def _send_result(self, request: _Request, request_id: str, result: GenerateResult) -> None:
        try:
            datagrams = [encode(m) for m in result_messages(result, request.proto)]
        except BridgeError as err:  # the engine made something we cannot send
            logger.error("bridge: cannot send the result of %s: %s", request_id, err)
            self._error(request.route, request_id, ErrorCode.ENGINE_ERROR,
                        f"the result cannot be sent: {err}")
            return
        _remember(self._results, request_id, datagrams, MAX_RESULTS)
        self._send_datagrams(request.route, datagrams)

    def _expire(self, now: float) -> None:
        timeout = self._upload_timeout_s
        for rid, pending in list(self._uploads.items()):
            if now - pending.touched_s > timeout:
                del self._uploads[rid]
                self._count("uploads_expired")
                missing = pending.upload.missing()
                text = (f"upload {rid} timed out after {timeout:g} s with {len(missing)} of "
                        f"{pending.upload.begin.n_chunks} chunks missing")
                logger.warning("bridge: %s", text)
                request = self._requests.get(rid)
                if request is not None:
                    self._error(request.route, rid, ErrorCode.TIMEOUT, text + "; start again")
        for rid, ready in list(self._ready.items()):
            if now - ready.ready_s > timeout:
                del self._ready[rid]
                self._count("clips_expired")
                logger.warning("bridge: clip %s dropped: no generate within %g s", rid, timeout)
