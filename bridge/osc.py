"""The bridge's one front door to OSC: the wire codec (python-osc) and the UDP sockets.

This is the only module that imports `pythonosc`. It knows OSC, not our API: a `Codec` turns
datagrams into messages and back (`WIRE_CODEC` for raw `WireMessage`s, `bridge.protocol.CODEC`
for our typed API). `OscServer` runs its own `recvfrom` loop (python-osc's dispatcher would
swallow bad packets): its thread only decodes and hands each message to a callback that must
merely enqueue; every bad packet is counted by reason and logged (rate-limited), never fatal.
"""

from __future__ import annotations

import ipaddress
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message import ParseError as MessageParseError
from pythonosc.parsing import osc_types

from bridge.errors import BadMessageError
from bridge.tally import Tally

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 17000
RECV_BUFFER_BYTES = 65_536  # larger than any UDP datagram: an oversize packet arrives whole
SOCKET_BUFFER_BYTES = 4 << 20  # ask the kernel for room to absorb bursts (it may cap this)

# Flat OSC 1.0 argument types we read and write (AbletonOSC also sends T/F/N). Arrays and
# the exotic types are refused here, before python-osc, which would log and skip unknown tags.
WIRE_TAGS = frozenset("ifhdsbTFN")

Address = tuple[str, int]
WireValue = int | float | str | bytes | bool | None
M = TypeVar("M")

_WRITERS: dict[str, Callable[[Any], bytes]] = {
    "i": osc_types.write_int,
    "h": osc_types.write_int64,
    "f": osc_types.write_float,
    "d": osc_types.write_double,
    "s": osc_types.write_string,
    "b": osc_types.write_blob,
}


@dataclass(frozen=True)
class WireMessage:
    """An OSC message as it travels: address, type tags (no comma), one value per tag."""

    address: str
    tags: str
    args: tuple[WireValue, ...]


def build_datagram(message: WireMessage) -> bytes:
    """Encode `message` with python-osc's writers, using exactly the given type tags.

    (Not `OscMessageBuilder`: it concatenates bytes one argument at a time and re-parses every
    datagram it builds, which made a 256-note chunk cost milliseconds.)"""
    if len(message.tags) != len(message.args):
        raise BadMessageError(
            f"{message.address}: {len(message.tags)} type tags for {len(message.args)} values",
            "build",
        )
    try:
        parts = [osc_types.write_string(message.address),
                 osc_types.write_string("," + message.tags)]
        for tag, value in zip(message.tags, message.args, strict=True):
            writer = _WRITERS.get(tag)
            if writer is None:
                if tag not in "TFN":
                    raise BadMessageError(
                        f"{message.address}: unsupported type tag {tag!r}", "build"
                    )
                continue  # T, F and N carry no bytes
            parts.append(writer(value))
    except osc_types.BuildError as err:
        raise BadMessageError(f"{message.address}: cannot encode: {err}", "build") from err
    return b"".join(parts)


def parse_datagram(dgram: bytes) -> WireMessage:
    """Decode one datagram with python-osc's parser; any malformation is a BadMessageError."""
    if dgram.startswith(b"#bundle"):
        raise BadMessageError("OSC bundles are not supported; send plain messages", "bundle")
    if not dgram.startswith(b"/"):
        raise BadMessageError(
            f"not an OSC message (must start with '/'): {dgram[:16]!r}", "parse"
        )
    try:
        address, index = osc_types.get_string(dgram, 0)
        tags = ""
        if index < len(dgram):
            raw_tags, _ = osc_types.get_string(dgram, index)
            if not raw_tags.startswith(","):
                raise BadMessageError(
                    f"{address[:60]!r}: type tag string must start with ','", "parse"
                )
            tags = raw_tags[1:]
        unsupported = set(tags) - WIRE_TAGS
        if unsupported:
            raise BadMessageError(
                f"{address[:60]!r}: unsupported type tag(s) {''.join(sorted(unsupported))!r}",
                "type_tags",
            )
        args = tuple(OscMessage(dgram).params)
    except (osc_types.ParseError, MessageParseError, UnicodeDecodeError) as err:
        raise BadMessageError(f"malformed OSC packet: {err}", "parse") from err
    return WireMessage(address, tags, args)


@dataclass(frozen=True)
class Codec(Generic[M]):
    """How a transport turns datagrams into messages of type M and back. `decode` raises
    BadMessageError (with a `reason`) for anything it refuses."""

    encode: Callable[[M], bytes]
    decode: Callable[[bytes], M]


WIRE_CODEC: Codec[WireMessage] = Codec(build_datagram, parse_datagram)


def is_loopback_host(host: str) -> bool:
    """Whether binding `host` keeps a socket private to this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address_family(host: str) -> socket.AddressFamily:
    """IPv6 for an IPv6 address (`::1`), else IPv4 (a name resolves to IPv4 first, as before;
    a name with only IPv6 addresses gets IPv6)."""
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:
        try:
            socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)
        except socket.gaierror:
            return socket.AF_INET6
        return socket.AF_INET
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def _resolve(host: str, port: int) -> Address:
    infos = socket.getaddrinfo(host, port, address_family(host), socket.SOCK_DGRAM)
    ip, resolved_port = infos[0][4][:2]
    return str(ip), int(resolved_port)


class OscServer(Generic[M]):
    """A UDP socket and the thread that reads it.

    The thread decodes each datagram with `codec` and calls `handler(message, sender)`; the
    handler runs on that thread and must only enqueue (style rule 6). Binds 127.0.0.1 unless
    told otherwise; port 0 picks a free port (see `port`). Starts at once; `close()` stops it.
    """

    def __init__(
        self,
        handler: Callable[[M, Address], None],
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        codec: Codec[M],
        name: str = "osc-server",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._handler = handler
        self._codec = codec
        self._name = name
        self._log = Tally(name, logger, clock=clock)
        for key in ("received", "delivered", "bad", "send_failed", "handler_failed"):
            self._log.count(key, 0)
        if not is_loopback_host(host):
            logger.warning("%s: listening on %s:%d, reachable from other machines", name, host,
                           port)
        self._sock = socket.socket(address_family(host), socket.SOCK_DGRAM)
        try:
            _grow_receive_buffer(self._sock)
            self._sock.bind((host, port))
            self._sock.setblocking(False)
        except OSError:
            self._sock.close()
            raise
        self._wake_r, self._wake_w = socket.socketpair()
        self._close_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return str(self._sock.getsockname()[0])

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def send(self, address: Address, message: M) -> None:
        """Encode and send one message. Encoding errors raise (they are our bugs); socket
        errors are counted, logged and raised as OSError."""
        self.send_datagram(address, self._codec.encode(message))

    def send_datagram(self, address: Address, data: bytes) -> None:
        try:
            self._sock.sendto(data, address)
        except OSError as err:
            self._log.count("send_failed")
            logger.warning("%s: could not send %d bytes to %s: %s", self._name, len(data),
                           address, err)
            raise

    def stats(self) -> dict[str, int]:
        """Counters: received, delivered, bad (and bad_<reason> per reason), send_failed,
        handler_failed, icmp_errors."""
        return self._log.snapshot()

    def report(self, *, final: bool = False) -> bool:
        """Log the counters as one line when bad packets arrived (see `Tally.report`)."""
        return self._log.report(final=final)

    def close(self) -> None:
        """Stop the thread, then close the socket. Idempotent; safe from the handler."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._wake_w.send(b"x")
        except OSError:  # pragma: no cover - the pair is ours and still open
            logger.exception("%s: could not wake the receive thread", self._name)
        if threading.current_thread() is not self._thread:
            self._thread.join()
        self._sock.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                events = selector.select()
                if any(key.fileobj is self._wake_r for key, _ in events):
                    return
                self._drain()

    def _drain(self) -> None:
        while True:
            try:
                data, sender = self._sock.recvfrom(RECV_BUFFER_BYTES)
            except BlockingIOError:
                return
            except ConnectionError as err:
                # Windows reports an earlier send's ICMP "port unreachable" here.
                self._log.count("icmp_errors")
                logger.debug("%s: %s", self._name, err)
                continue
            self._deliver(data, (str(sender[0]), int(sender[1])))

    def _deliver(self, data: bytes, sender: Address) -> None:
        self._log.count("received")
        try:
            message = self._codec.decode(data)
        except BadMessageError as err:
            self._log.refuse("bad", err.reason, f"packet from {sender}", str(err))
            return
        except Exception:  # a codec bug must not kill the thread: count, log with traceback
            self._log.refuse("bad", "internal", f"packet from {sender}", "decoder raised")
            logger.exception("%s: decoder failed on %r", self._name, data[:64])
            return
        try:
            self._handler(message, sender)
        except Exception:
            self._log.count("handler_failed")
            logger.exception("%s: handler failed for %r", self._name, message)
            return
        self._log.count("delivered")


class OscClient(Generic[M]):
    """The client side: one socket that sends to a server and reads its replies (the socket's
    port is the client's reply_port). Packets from other addresses are counted and skipped."""

    def __init__(
        self, host: str, port: int, *, codec: Codec[M], bind_host: str | None = None
    ) -> None:
        self._codec = codec
        self._server = _resolve(host, port)
        family = address_family(self._server[0])
        if bind_host is None:
            loopback, anywhere = (("::1", "::") if family == socket.AF_INET6
                                  else (DEFAULT_HOST, "0.0.0.0"))
            bind_host = loopback if is_loopback_host(self._server[0]) else anywhere
        self._log = Tally(f"osc-client->{host}:{port}", logger)
        for key in ("received", "delivered", "bad", "foreign"):
            self._log.count(key, 0)
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            _grow_receive_buffer(self._sock)
            self._sock.bind((bind_host, 0))
        except OSError:
            self._sock.close()
            raise
        self._closed = False

    @property
    def server_address(self) -> Address:
        return self._server

    @property
    def reply_port(self) -> int:
        return int(self._sock.getsockname()[1])

    def send(self, message: M) -> None:
        self.send_datagram(self._codec.encode(message))

    def send_datagram(self, data: bytes) -> None:
        self._sock.sendto(data, self._server)

    def receive(self, timeout_s: float) -> M | None:
        """The next good message from the server, or None when `timeout_s` passes first."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._sock.settimeout(remaining)
            try:
                data, sender = self._sock.recvfrom(RECV_BUFFER_BYTES)
            except TimeoutError:
                return None
            except ConnectionError as err:  # Windows: ICMP for an earlier send
                logger.debug("osc client: %s", err)
                continue
            self._log.count("received")
            if (str(sender[0]), int(sender[1])) != self._server:
                self._log.count("foreign")
                logger.debug("osc client: ignored a packet from %s", sender)
                continue
            try:
                message = self._codec.decode(data)
            except BadMessageError as err:
                self._log.refuse("bad", err.reason, f"packet from {self._server}", str(err))
                continue
            self._log.count("delivered")
            return message

    def stats(self) -> dict[str, int]:
        return self._log.snapshot()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _grow_receive_buffer(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
    except OSError as err:  # the default still works; bursts just rely on nack/re-send more
        logger.debug("could not enlarge the socket receive buffer: %s", err)
