"""The transport to AbletonOSC (the Live 11+ Remote Script): bursts of requests, replies matched
to them, `/live/error`, Nil. `live_api` builds Live's calls on it.

AbletonOSC listens on UDP 11000 and answers on UDP 11001 of the sender's host, from its own
listening socket. It handles its socket once per Live "tick" (~100 ms): everything queued is
processed in order, a reply goes out on the query's own address with the query's indices first
(`/live/clip/get/notes t s` → `t, s, notes…`), and a failing handler is reported as
`/live/error "<text>"` — after which the rest of that tick's queue waits for the next tick.
So this client sends a whole page of requests in one burst, matches each reply to its request by
address + leading indices, and accounts for errors by count (an error names no request).
Writes have no reply; every write burst ends with a query that confirms it was processed.
Every datagram stays ≤ 9,216 bytes (macOS's default UDP limit).
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

from bridge.ableton.errors import AbletonError, AbletonPortError
from bridge.errors import ErrorCode, ReplyTimeoutError
from bridge.osc import (
    WIRE_CODEC,
    Address,
    OscServer,
    WireMessage,
    WireValue,
    build_datagram,
    is_loopback_host,
)

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_SEND_PORT = 11000  # AbletonOSC listens here
DEFAULT_REPLY_PORT = 11001  # …and answers here, on the sender's host: one client per host
MAX_PACKET_BYTES = 9_216  # macOS's default net.inet.udp.maxdgram; larger sends fail there
TICK_S = 0.1  # AbletonOSC handles its socket once per Live tick
ERROR_ADDRESS = "/live/error"
UNKNOWN_ADDRESS = "Unknown OSC address:"  # AbletonOSC's text for a handler it lacks


@dataclass(frozen=True)
class Request:
    """One OSC message to AbletonOSC. `echo`: how many leading arguments its reply repeats
    (song/view 0, track 1, clip_slot/clip 2). `reply`: False for writes, which get none.
    `optional`: a missing answer (older AbletonOSC, Live 11) is None instead of an error."""

    address: str
    args: tuple[WireValue, ...] = ()
    echo: int = 0
    reply: bool = True
    optional: bool = False


@dataclass(frozen=True)
class Outcome:
    """What a burst brought back: one entry per request (None: no reply, or a write)."""

    replies: tuple[tuple[WireValue, ...] | None, ...]
    errors: tuple[str, ...]
    missing: tuple[int, ...]  # indices of requests that expected a reply and got none
    # Arrival order: a reply as the index of the request it was matched to, an error as its
    # text. AbletonOSC handles a burst in order, so an error sits where its request was.
    arrivals: tuple[int | str, ...] = ()


def wire_tags(args: Sequence[WireValue]) -> str:
    """OSC type tags for plain Python values, as python-osc's builder infers them."""
    tags = []
    for value in args:
        if value is True:
            tags.append("T")
        elif value is False:
            tags.append("F")
        elif value is None:
            tags.append("N")
        elif isinstance(value, int):
            tags.append("i" if -(2**31) <= value < 2**31 else "h")
        elif isinstance(value, float):
            tags.append("f")
        elif isinstance(value, str):
            tags.append("s")
        else:
            tags.append("b")
    return "".join(tags)


def encode(address: str, args: Sequence[WireValue]) -> bytes:
    return build_datagram(WireMessage(address, wire_tags(args), tuple(args)))


class AbletonOscClient:
    """Bursts of requests to AbletonOSC over UDP: sends to `host:port` (127.0.0.1:11000),
    listens on `listen_port` (11001; 0 picks a free one, for tests). Thread-safe: one burst at
    a time.

    `timeout_s` bounds each burst; `tick_s` is AbletonOSC's processing period, used to wait a
    little for the replies that an error pushed to the next tick.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_SEND_PORT,
        listen_port: int = DEFAULT_REPLY_PORT,
        *,
        timeout_s: float = 2.0,
        tick_s: float = TICK_S,
        listen_host: str | None = None,
    ) -> None:
        self._target = _resolve_ipv4(host, port)
        self._timeout_s = timeout_s
        self._grace_s = 2 * tick_s + 0.05
        if listen_host is None:
            listen_host = DEFAULT_HOST if is_loopback_host(self._target[0]) else "0.0.0.0"
        self._inbox: queue.Queue[tuple[WireMessage, Address]] = queue.Queue()
        self._lock = threading.Lock()
        self._counts_lock = threading.Lock()
        self._counts = {"requests": 0, "replies": 0, "errors": 0, "stray": 0, "foreign": 0,
                        "timeouts": 0}
        self._unknown: set[str] = set()  # addresses this AbletonOSC version does not have
        try:
            self._server = OscServer(self._on_message, listen_host, listen_port,
                                     codec=WIRE_CODEC, name="abletonosc-client")
        except OSError as err:
            raise AbletonPortError(
                f"cannot listen on {listen_host}:{listen_port} for AbletonOSC's replies ({err}); "
                "only one AbletonOSC client per computer can own that port: close the other one"
            ) from err

    @property
    def listen_port(self) -> int:
        return self._server.port

    @property
    def target(self) -> Address:
        return self._target

    def stats(self) -> dict[str, int]:
        """requests, replies, errors (`/live/error`), stray (unmatched or late replies),
        foreign (packets from elsewhere), timeouts; plus the socket's own counters."""
        with self._counts_lock:
            own = dict(self._counts)
        return {**self._server.stats(), **own}

    def close(self) -> None:
        self._server.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- the socket thread: only enqueue -------------------------------------------------

    def _on_message(self, message: WireMessage, sender: Address) -> None:
        if sender != self._target:
            self._count("foreign")
            return
        self._inbox.put((message, sender))

    def _count(self, key: str, n: int = 1) -> None:
        with self._counts_lock:
            self._counts[key] += n

    # ---- bursts ----------------------------------------------------------------------------

    def exchange(self, requests: Sequence[Request], timeout_s: float | None = None) -> Outcome:
        """Send `requests` in one burst and collect their replies and any `/live/error`s.

        Returns when every expected reply has come; or when the errors could account for the
        replies still missing and nothing more has arrived for two ticks; or at the timeout.
        Replies are matched in request order among requests with the same address and echoed
        indices. Raises ValueError for a datagram over MAX_PACKET_BYTES (a bug of ours)."""
        datagrams = [encode(r.address, r.args) for r in requests]
        for request, data in zip(requests, datagrams, strict=True):
            if len(data) > MAX_PACKET_BYTES:
                raise ValueError(f"{request.address}: {len(data)} bytes is over AbletonOSC's "
                                 f"{MAX_PACKET_BYTES}-byte packet limit")
        with self._lock:  # the timeout runs from sending, not from waiting for another burst
            deadline = time.monotonic() + (self._timeout_s if timeout_s is None else timeout_s)
            self._drain_stale()
            for data in datagrams:
                self._server.send_datagram(self._target, data)
            self._count("requests", len(requests))
            pending = [i for i, r in enumerate(requests) if r.reply]
            replies: list[tuple[WireValue, ...] | None] = [None] * len(requests)
            errors: list[str] = []
            arrivals: list[int | str] = []
            last_heard = time.monotonic()
            while pending:
                until = deadline
                if len(errors) >= len(pending):
                    until = min(deadline, last_heard + self._grace_s)
                remaining = until - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    message, _ = self._inbox.get(timeout=remaining)
                except queue.Empty:
                    break
                last_heard = time.monotonic()
                if message.address == ERROR_ADDRESS:
                    text = " ".join(str(a) for a in message.args) or "(no message)"
                    logger.info("AbletonOSC error: %s", text)
                    self._count("errors")
                    errors.append(text)
                    arrivals.append(text)
                    continue
                index = _match(message, requests, pending)
                if index is None:
                    self._count("stray")
                    logger.debug("AbletonOSC: unmatched %s %r", message.address,
                                 message.args[:4])
                    continue
                pending.remove(index)
                replies[index] = message.args[requests[index].echo:]
                arrivals.append(index)
                self._count("replies")
            if pending and not errors:
                self._count("timeouts")
        return Outcome(tuple(replies), tuple(errors), tuple(pending), tuple(arrivals))

    def ask(self, requests: Sequence[Request], *, code: ErrorCode | None = None,
            timeout_s: float | None = None) -> list[tuple[WireValue, ...] | None]:
        """`exchange`, then the replies of the requests that expect one, in order (None for a
        missing optional one). Raises AbletonError when Live reported an error that no missing
        optional request accounts for, ReplyTimeoutError when a required reply never came."""
        with self._counts_lock:
            unknown = set(self._unknown)
        kept = [i for i, r in enumerate(requests) if not (r.optional and r.address in unknown)]
        sent = [requests[i] for i in kept]
        outcome = self.exchange(sent, timeout_s)
        self._remember_unknown(outcome)
        self._check(sent, outcome, code, timeout_s)
        answers = dict(zip(kept, outcome.replies, strict=True))
        return [answers.get(i) for i, r in enumerate(requests) if r.reply]

    def _remember_unknown(self, outcome: Outcome) -> None:
        """Addresses this AbletonOSC lacks: an optional query for one is not asked again."""
        for error in outcome.errors:
            if error.startswith(UNKNOWN_ADDRESS):
                with self._counts_lock:
                    self._unknown.add(error[len(UNKNOWN_ADDRESS):].strip())

    def _check(self, requests: Sequence[Request], outcome: Outcome, code: ErrorCode | None,
               timeout_s: float | None) -> None:
        missing_required = [i for i in outcome.missing if not requests[i].optional]
        missing_optional = len(outcome.missing) - len(missing_required)
        if outcome.errors and (missing_required or len(outcome.errors) > missing_optional):
            what = ", ".join(sorted({r.address for r in requests}))
            raise AbletonError(f"Live refused {what}: {'; '.join(outcome.errors)}", code)
        if missing_required:
            first = requests[missing_required[0]]
            raise ReplyTimeoutError(
                f"AbletonOSC did not answer {first.address} within "
                f"{self._timeout_s if timeout_s is None else timeout_s:g} s: is Live running with "
                f"AbletonOSC selected as a control surface (it listens on "
                f"{self._target[0]}:{self._target[1]} and answers on port {self.listen_port})?"
            )

    def _drain_stale(self) -> None:
        while True:
            try:
                message, _ = self._inbox.get_nowait()
            except queue.Empty:
                return
            self._count("stray")
            logger.debug("AbletonOSC: late %s dropped", message.address)


def _match(message: WireMessage, requests: Sequence[Request], pending: list[int]) -> int | None:
    for index in pending:
        request = requests[index]
        if request.address != message.address or len(message.args) < request.echo:
            continue
        if all(_same(a, b) for a, b in zip(message.args[:request.echo],
                                            request.args[:request.echo], strict=True)):
            return index
    return None


def _same(reply: WireValue, sent: WireValue) -> bool:
    # AbletonOSC echoes indices as int(param); a float index comes back as an int.
    if isinstance(reply, int | float) and isinstance(sent, int | float):
        return int(reply) == int(sent)
    return reply == sent


def _resolve_ipv4(host: str, port: int) -> Address:
    infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
    ip, resolved_port = infos[0][4][:2]
    return str(ip), int(resolved_port)
