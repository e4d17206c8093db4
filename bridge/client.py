"""The client side of our OSC API, as the CLI uses it: hello, upload, generate, collect.

`send_clip_and_wait` is the one call; `BridgeClient` holds the steps, re-sends what the bridge
reports missing (nack), re-asks for lost result pieces, and turns error replies and silence
into `BridgeError`s with messages a user can act on.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Self

from bridge.errors import (
    BadMessageError,
    BridgeError,
    ClipTooLargeError,
    ErrorCode,
    ReplyTimeoutError,
    UploadTimeoutError,
)
from bridge.osc import DEFAULT_HOST, DEFAULT_PORT, OscClient
from bridge.protocol import (
    CODEC,
    OLDEST_PROTOCOL,
    PROTOCOL_VERSION,
    Ack,
    Cancel,
    Chords,
    ClipNotes,
    ErrorReply,
    Generate,
    Hello,
    HelloOk,
    Message,
    Nack,
    PartBegin,
    PartControls,
    PartEnd,
    PartNotes,
    Ping,
    Pong,
    ResultAssembly,
    ResultBegin,
    ResultGet,
    Status,
    StatusGet,
    Summary,
    clip_messages,
)
from bridge.types import Clip, GenerateResult

logger = logging.getLogger(__name__)

ROUND_TIMEOUT_S = 0.5  # silence after which a request is repeated
ENDING_STATES = {"superseded", "cancelled"}  # the job ended without a result or an error


def error_from_reply(reply: ErrorReply) -> BridgeError:
    """The BridgeError subclass for an /acco/error reply (its code kept)."""
    text = (f"the bridge reports error {reply.code} for request {reply.request_id or '-'}: "
            f"{reply.message}")
    classes: dict[int, type[BridgeError]] = {
        ErrorCode.BAD_INPUT: BadMessageError,
        ErrorCode.TOO_LARGE: ClipTooLargeError,
        ErrorCode.TIMEOUT: UploadTimeoutError,
    }
    error = classes.get(reply.code, BridgeError)(text)
    if type(error) is BridgeError and reply.code in set(ErrorCode):
        error.code = ErrorCode(reply.code)
    return error


class BridgeClient:
    """One conversation with a bridge: its own socket, whose port is the reply_port."""

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        client_name: str = "accobridge-cli",
        round_timeout_s: float = ROUND_TIMEOUT_S,
    ) -> None:
        self.host = host
        self.port = port
        self.client_name = client_name
        self.round_timeout_s = round_timeout_s
        self.proto = PROTOCOL_VERSION  # what the bridge speaks with us, from its hello/ok
        try:
            self._osc: OscClient[Message] = OscClient(host, port, codec=CODEC)
        except OSError as err:
            raise BridgeError(f"cannot reach the bridge at {host}:{port}: {err}") from err

    def close(self) -> None:
        self._osc.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def reply_port(self) -> int:
        return self._osc.reply_port

    def stats(self) -> dict[str, int]:
        return self._osc.stats()

    # ---- hooks (tests override these to lose packets) ------------------------------------

    def _send_chunk(self, chunk: ClipNotes, attempt: int) -> None:
        """Send one upload chunk; `attempt` counts from 0 for each chunk."""
        self._osc.send(chunk)

    def _receive(self, timeout_s: float) -> Message | None:
        return self._osc.receive(timeout_s)

    # ---- steps --------------------------------------------------------------------------

    def run(self, clip: Clip, options: Mapping[str, Any], timeout_s: float) -> GenerateResult:
        """Hello, upload `clip`, generate with `options`, and wait for the whole result."""
        deadline = time.monotonic() + timeout_s
        request_id = uuid.uuid4().hex
        try:
            self.hello(deadline)
            self.upload(request_id, clip, deadline)
            return self.generate(request_id, clip.source, options, deadline)
        except OSError as err:
            if isinstance(err, BridgeError):  # UploadTimeoutError and co. are OSErrors too
                raise
            raise BridgeError(f"network error talking to the bridge at {self.host}:"
                              f"{self.port}: {err}") from err

    def hello(self, deadline: float) -> HelloOk:
        hello = Hello(self.client_name, "cli", PROTOCOL_VERSION, self.reply_port)
        while True:
            self._osc.send(hello)
            reply = self._wait(deadline, lambda m: isinstance(m, HelloOk | ErrorReply))
            if isinstance(reply, HelloOk):
                if not OLDEST_PROTOCOL <= reply.proto <= PROTOCOL_VERSION:
                    raise BadMessageError(
                        f"the bridge at {self.host}:{self.port} speaks protocol {reply.proto}, "
                        f"this client {OLDEST_PROTOCOL}..{PROTOCOL_VERSION}; update one of "
                        "them", "proto"
                    )
                self.proto = reply.proto
                return reply
            if isinstance(reply, ErrorReply):
                raise error_from_reply(reply)
            if time.monotonic() >= deadline:
                raise ReplyTimeoutError(
                    f"no answer from an AccoBridge OSC server at {self.host}:{self.port} "
                    "(is the bridge running, and is that its OSC port?)"
                )

    def ping(self, token: str, timeout_s: float) -> Pong:
        deadline = time.monotonic() + timeout_s
        self._osc.send(Ping(token))
        reply = self._wait(deadline, lambda m: isinstance(m, Pong) and m.token == token,
                           round_s=timeout_s)
        if not isinstance(reply, Pong):
            raise ReplyTimeoutError(f"no pong from {self.host}:{self.port} in {timeout_s:g} s")
        return reply

    def upload(self, request_id: str, clip: Clip, deadline: float) -> None:
        """Upload `clip`; re-send the chunks a nack lists, start over on an empty nack."""
        begin, chunks, end = clip_messages(request_id, clip)
        attempts = [0] * len(chunks)

        def send_chunks(indices: tuple[int, ...] | range) -> None:
            for i in indices:
                if 0 <= i < len(chunks):
                    self._send_chunk(chunks[i], attempts[i])
                    attempts[i] += 1

        self._osc.send(begin)
        send_chunks(range(len(chunks)))
        while True:
            self._osc.send(end)
            reply = self._wait(deadline, lambda m: _for(m, request_id)
                               and isinstance(m, Ack | Nack | ErrorReply))
            match reply:
                case Ack():
                    return
                case Nack(missing=()):
                    logger.info("bridge forgot upload %s; starting it again", request_id)
                    self._osc.send(begin)
                    send_chunks(range(len(chunks)))
                case Nack(missing=missing):
                    logger.info("re-sending %d chunk(s) of %s", len(missing), request_id)
                    send_chunks(missing)
                case ErrorReply():
                    raise error_from_reply(reply)
                case None if time.monotonic() >= deadline:
                    unsent = sum(1 for a in attempts if a == 0)
                    raise UploadTimeoutError(
                        f"uploading {len(chunks)} chunk(s) of clip {clip.name!r} to "
                        f"{self.host}:{self.port} timed out ({unsent} never sent)"
                        if unsent else
                        f"no acknowledgement for clip {clip.name!r} from {self.host}:"
                        f"{self.port} before the deadline"
                    )
            # silence: the loop sends clip/end again

    def request(self, request_id: str, options: Mapping[str, Any]) -> None:
        """Ask for generation of an uploaded clip without waiting (live edits: the bridge keeps
        only the latest request per source; `generate` collects a result)."""
        self._osc.send(Generate(request_id, json.dumps(dict(options), separators=(",", ":"))))

    def generate(self, request_id: str, source: str, options: Mapping[str, Any],
                 deadline: float) -> GenerateResult:
        """Ask for generation and collect the result (re-asking for lost pieces)."""
        try:
            params = json.dumps(dict(options), separators=(",", ":"))
        except (TypeError, ValueError) as err:
            raise BadMessageError(f"options are not JSON: {err}", "value") from err
        assembly = ResultAssembly(request_id, self.proto)
        last_status: Status | None = None
        self._osc.send(Generate(request_id, params))
        while True:
            reply = self._wait(deadline, lambda m: _for(m, request_id))
            match reply:
                case None:
                    if time.monotonic() >= deadline:
                        self._osc.send(Cancel(request_id))
                        state = (f"last status: {last_status.state} "
                                 f"{last_status.progress:.0%} {last_status.message}"
                                 if last_status else "no status received")
                        raise ReplyTimeoutError(
                            f"no complete result for request {request_id} from {self.host}:"
                            f"{self.port} before the deadline ({state}; "
                            f"{assembly.describe_missing()})"
                        )
                    # silence: repeat whatever we are waiting for
                    if assembly.started or (last_status and last_status.state == "done"):
                        self._osc.send(ResultGet(request_id))
                    elif last_status is None:
                        self._osc.send(Generate(request_id, params))
                    else:
                        self._osc.send(StatusGet(request_id))
                case ErrorReply():
                    raise error_from_reply(reply)
                case Status():
                    last_status = reply
                    if reply.state in ENDING_STATES:
                        raise BridgeError(
                            f"request {request_id} was {reply.state}: {reply.message}"
                        )
                    if reply.state == "done" and not assembly.complete:
                        self._osc.send(ResultGet(request_id))
                case (ResultBegin() | PartBegin() | PartNotes() | PartControls() | PartEnd()
                      | Chords() | Summary()):
                    assembly.add(reply)
                    if assembly.complete:
                        return assembly.result(source)
                case _:
                    logger.debug("ignored %r while waiting for %s", reply, request_id)

    def _wait(self, deadline: float, wanted: Callable[[Message], bool],
              round_s: float | None = None) -> Message | None:
        """The next message `wanted` accepts, or None after a round (or the deadline) of
        silence. Other messages (stale requests, strays) are skipped."""
        until = min(deadline, time.monotonic() + (round_s or self.round_timeout_s))
        while (remaining := until - time.monotonic()) > 0:
            message = self._receive(remaining)
            if message is None:
                return None
            if wanted(message):
                return message
            logger.debug("skipped %r", message)
        return None


def _for(message: Message, request_id: str) -> bool:
    return getattr(message, "request_id", None) == request_id


def send_clip_and_wait(host: str, port: int, clip: Clip, options: Mapping[str, Any],
                       timeout_s: float) -> GenerateResult:
    """Send `clip` to the bridge at host:port, generate with `options`, return the result.
    Raises BridgeError subclasses: ReplyTimeoutError / UploadTimeoutError on silence,
    ClipTooLargeError, BadMessageError or BridgeError (with the code) for error replies."""
    with BridgeClient(host, port) as client:
        return client.run(clip, options, timeout_s)
