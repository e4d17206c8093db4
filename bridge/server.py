"""The bridge side of our OSC API: uploads, generate/cancel/status and results, over OscServer.

Independent of the engine: requests go to a `Session` (see `bridge.session`), whose events come
back on its worker thread and are queued here. One loop thread owns all protocol state; the
socket thread only decodes and enqueues. Time is injectable (`clock`) so tests can expire
uploads without sleeping.
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
from typing import Self, TypeVar

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
    MAX_MISSING_PER_NACK,
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
    Status,
    StatusGet,
    encode,
    result_messages,
)
from bridge.protocol.fields import json_object
from bridge.tally import Tally
from bridge.types import Clip, GenerateResult

logger = logging.getLogger(__name__)

BRIDGE_VERSION = "0.1.0"
MAX_INBOX = 10_000  # packets waiting for the loop; beyond this they are dropped and counted
MAX_UPLOADS = 64  # partial uploads at once (oldest dropped)
MAX_REMEMBERED = 256  # peers, routes, statuses, finished uploads
MAX_RESULTS = 16  # encoded results kept for /acco/result/get
MAX_MESSAGE_BYTES = 1_000  # status and error texts are cut to this


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


@dataclass
class _Upload:
    upload: ClipUpload
    source: str
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


def _cut(text: str, max_bytes: int = MAX_MESSAGE_BYTES) -> str:
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore").replace("\x00", "")


class BridgeServer:
    """Our OSC API on `host:port` (127.0.0.1:17000 by default; port 0 picks a free one).

    Starts at once; `close()` (or leaving a `with` block) stops it. `stats()` merges the
    socket's packet counters with the protocol's own (rejected_<reason>, uploads_expired …).
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
    ) -> None:
        self._session = session
        self._upload_timeout_s = upload_timeout_s
        self._clock = clock
        self._tick_s = max(0.01, min(tick_s, upload_timeout_s / 4))
        self._inbox: queue.Queue[object] = queue.Queue()
        self._lock = threading.Lock()
        self._log = Tally("acco-bridge", logger)
        for key in ("rejected", "inbox_dropped", "uploads_expired", "clips_expired",
                    "nacks_sent", "internal_errors"):
            self._log.count(key, 0)
        self._closed = False
        # Loop-thread state.
        self._peers: OrderedDict[Address, int] = OrderedDict()  # sender -> reply port
        self._host_ports: OrderedDict[str, int] = OrderedDict()  # host -> latest reply port
        self._clients: OrderedDict[Address, str] = OrderedDict()  # sender -> client name
        self._protos: OrderedDict[Address, int] = OrderedDict()  # reply address -> protocol
        self._routes: OrderedDict[str, Address] = OrderedDict()  # request -> reply address
        self._uploads: OrderedDict[str, _Upload] = OrderedDict()
        self._ready: OrderedDict[str, _ReadyClip] = OrderedDict()
        self._acked: OrderedDict[str, None] = OrderedDict()
        self._submitted: OrderedDict[str, None] = OrderedDict()
        self._statuses: OrderedDict[str, Status] = OrderedDict()
        self._results: OrderedDict[str, list[bytes]] = OrderedDict()
        self._osc = OscServer(self._on_packet, host, port, codec=CODEC, name="acco-osc")
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
        return {**self._osc.stats(), **self._log.snapshot(), "uploads_active": len(self._uploads)}

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
            self._count("inbox_dropped")
            logger.warning("bridge busy: dropped %s from %s", type(message).__name__, sender)
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
        host = sender[0]
        port = self._peers.get(sender) or self._host_ports.get(host) or sender[1]
        return host, port

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
        match message:
            case Hello():
                self._hello(message, sender)
            case Ping():
                self._send(self._reply_address(sender),
                           Pong(message.token, self._session.queue_length()))
            case ClipBegin():
                self._clip_begin(message, sender)
            case ClipNotes():
                self._clip_notes(message, sender)
            case ClipEnd():
                self._clip_end(message, sender)
            case Generate():
                self._generate(message, sender)
            case Cancel():
                self._cancel(message, sender)
            case StatusGet():
                self._status_get(message.request_id, sender)
            case ResultGet():
                self._result_get(message, sender)
            case _:
                self._reject("direction", message, sender, "a bridge-to-client message")

    def _hello(self, message: Hello, sender: Address) -> None:
        _remember(self._peers, sender, message.reply_port, MAX_REMEMBERED)
        _remember(self._host_ports, sender[0], message.reply_port, MAX_REMEMBERED)
        _remember(self._clients, sender, message.client, MAX_REMEMBERED)
        address = self._reply_address(sender)
        logger.info("bridge: hello from %r (%s) at %s, replies to port %d", message.client,
                    message.daw, sender, message.reply_port)
        proto = min(message.proto, PROTOCOL_VERSION)  # the client may speak down to ours
        _remember(self._protos, address, proto, MAX_REMEMBERED)
        self._send(address, HelloOk(BRIDGE_VERSION, max(proto, OLDEST_PROTOCOL)))
        if message.proto < OLDEST_PROTOCOL:
            self._error(address, "", ErrorCode.BAD_INPUT,
                        f"protocol version {message.proto} is not supported; this bridge "
                        f"speaks versions {OLDEST_PROTOCOL}..{PROTOCOL_VERSION}")

    def _route(self, request_id: str, sender: Address) -> Address:
        address = self._reply_address(sender)
        _remember(self._routes, request_id, address, MAX_REMEMBERED)
        return address

    def _clip_begin(self, message: ClipBegin, sender: Address) -> None:
        rid = message.request_id
        address = self._route(rid, sender)
        client = self._clients.get(sender, sender[0])
        try:
            upload = ClipUpload(message)
        except (BadMessageError, ClipTooLargeError) as err:
            self._reject("clip", message, sender, str(err))
            self._error(address, rid, err.code, str(err))
            return
        self._uploads.pop(rid, None)
        self._acked.pop(rid, None)
        source = f"osc:{client}:{message.source}" if message.source else f"osc:{client}"
        _remember(self._uploads, rid, _Upload(upload, source, self._clock()), MAX_UPLOADS)

    def _clip_notes(self, message: ClipNotes, sender: Address) -> None:
        pending = self._uploads.get(message.request_id)
        if pending is None:
            self._reject("unknown_upload", message, sender, f"no upload {message.request_id}")
            return
        pending.touched_s = self._clock()
        try:
            pending.upload.add(message)
        except BadMessageError as err:
            self._uploads.pop(message.request_id)
            self._reject("clip", message, sender, str(err))
            self._error(self._route(message.request_id, sender), message.request_id, err.code,
                        str(err))

    def _clip_end(self, message: ClipEnd, sender: Address) -> None:
        rid = message.request_id
        address = self._route(rid, sender)
        if rid in self._acked:
            self._send(address, Ack(rid))  # our ack was lost: say it again
            return
        pending = self._uploads.get(rid)
        if pending is None:
            self._count("nacks_sent")
            self._send(address, Nack(rid, ()))  # unknown: start again with clip/begin
            return
        pending.touched_s = self._clock()
        missing = pending.upload.missing()
        if missing:
            self._count("nacks_sent")
            self._send(address, Nack(rid, missing[:MAX_MISSING_PER_NACK]))
            return
        del self._uploads[rid]
        try:
            clip = pending.upload.finish(message, pending.source)
        except (BadMessageError, ClipTooLargeError) as err:
            self._reject("clip", message, sender, str(err))
            self._error(address, rid, err.code, str(err))
            return
        _remember(self._ready, rid, _ReadyClip(clip, self._clock()), MAX_UPLOADS)
        _remember(self._acked, rid, None, MAX_REMEMBERED)
        self._send(address, Ack(rid))

    def _generate(self, message: Generate, sender: Address) -> None:
        rid = message.request_id
        address = self._route(rid, sender)
        if rid in self._submitted:
            self._status_get(rid, sender)  # a repeated generate: the client missed our answer
            return
        ready = self._ready.pop(rid, None)
        if ready is None:
            self._error(address, rid, ErrorCode.BAD_INPUT,
                        f"no uploaded clip for request {rid}: upload it (clip/begin … "
                        "clip/end) and wait for /acco/ack first")
            return
        try:
            options = json_object(message.params_json or "{}", "params_json")
        except BadMessageError as err:
            self._error(address, rid, ErrorCode.BAD_INPUT, str(err))
            return
        _remember(self._submitted, rid, None, MAX_REMEMBERED)
        try:
            submit_clip(self._session, ready.clip.source, rid, ready.clip, options,
                        self._event_callback(rid))
        except BridgeError as err:
            self._error(address, rid, err.code, str(err))
        except Exception as err:  # the session refused (e.g. closing): tell the client
            logger.exception("bridge: session did not take request %s", rid)
            self._error(address, rid, ErrorCode.ENGINE_ERROR, f"could not queue: {err}")

    def _cancel(self, message: Cancel, sender: Address) -> None:
        rid = message.request_id
        self._route(rid, sender)
        self._uploads.pop(rid, None)
        self._ready.pop(rid, None)
        if rid in self._submitted:
            self._session.cancel(rid)

    def _status_get(self, request_id: str, sender: Address) -> None:
        status = self._statuses.get(request_id)
        if status is None:
            state = ("submitted" if request_id in self._submitted
                     else "uploading" if request_id in self._uploads
                     else "uploaded" if request_id in self._ready
                     else "unknown")
            status = Status(request_id, state, 0.0, "")
        self._send(self._route(request_id, sender), status)

    def _result_get(self, message: ResultGet, sender: Address) -> None:
        rid = message.request_id
        address = self._route(rid, sender)
        datagrams = self._results.get(rid)
        if datagrams is not None:
            self._send_datagrams(address, datagrams)
        elif rid in self._statuses:
            self._send(address, self._statuses[rid])
        else:
            self._error(address, rid, ErrorCode.BAD_INPUT, f"no result stored for {rid}")

    def _handle_event(self, event: _Event) -> None:
        rid = event.request_id
        address = self._routes.get(rid)
        if address is None:
            logger.warning("bridge: %s event for %s, whose client is forgotten", event.kind, rid)
            return
        match read_event(event.kind, event.payload):
            case StatusEvent() as news:
                status = Status(rid, news.state, news.progress, _cut(news.message))
                _remember(self._statuses, rid, status, MAX_REMEMBERED)
                self._send(address, status)
            case ResultEvent() as news:
                self._send_result(address, rid, news.result)
            case ErrorEvent() as news:
                self._error(address, rid, news.code, news.message)
            case _:
                self._count("internal_errors")
                logger.error("bridge: malformed session event %r for %s: %r", event.kind, rid,
                             event.payload)

    def _send_result(self, address: Address, request_id: str, result: GenerateResult) -> None:
        try:
            proto = self._protos.get(address, OLDEST_PROTOCOL)
            datagrams = [encode(m) for m in result_messages(result, proto)]
        except BridgeError as err:  # the engine made something we cannot send
            logger.error("bridge: cannot send the result of %s: %s", request_id, err)
            self._error(address, request_id, ErrorCode.ENGINE_ERROR,
                        f"the result cannot be sent: {err}")
            return
        _remember(self._results, request_id, datagrams, MAX_RESULTS)
        self._send_datagrams(address, datagrams)

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
                address = self._routes.get(rid)
                if address is not None:
                    self._error(address, rid, ErrorCode.TIMEOUT, text + "; start again")
        for rid, ready in list(self._ready.items()):
            if now - ready.ready_s > timeout:
                del self._ready[rid]
                self._count("clips_expired")
                logger.warning("bridge: clip %s dropped: no generate within %g s", rid, timeout)
