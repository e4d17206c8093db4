"""The OSC server's uploads: clip/begin, clip/notes and clip/end assemble a verified clip
(acked, or nacked with the chunks missing) that then waits for its generate. A partial upload
untouched for the timeout is dropped and its owner told; so is a clip no generate came for.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from bridge.errors import BadMessageError, ClipTooLargeError, ErrorCode
from bridge.osc import Address
from bridge.peers import Begin, Peers, Request, remember, source_of
from bridge.protocol import (
    MAX_MISSING_PER_NACK,
    MAX_REQUESTS,
    Ack,
    ClipBegin,
    ClipEnd,
    ClipNotes,
    ClipUpload,
    Nack,
)
from bridge.replies import Replies
from bridge.types import Clip

logger = logging.getLogger("bridge.server")  # the server's part: its lines say so

MAX_UPLOADS = 64  # partial uploads at once (oldest dropped)


@dataclass
class _Upload:
    upload: ClipUpload
    touched_s: float


@dataclass(frozen=True)
class _ReadyClip:
    clip: Clip
    ready_s: float


class Uploads:
    """Partial uploads and uploaded clips by request id (loop thread only; `len(pending)` may
    be read from any thread). `begin` starts a request for a clip/begin (the server's)."""

    def __init__(self, peers: Peers, replies: Replies, begin: Begin,
                 clock: Callable[[], float], timeout_s: float) -> None:
        self._peers = peers
        self._replies = replies
        self._begin = begin
        self._clock = clock
        self._timeout_s = timeout_s
        self.pending: OrderedDict[str, _Upload] = OrderedDict()
        self._ready: OrderedDict[str, _ReadyClip] = OrderedDict()

    def holds(self, request_id: str) -> bool:
        """Whether an upload or an uploaded clip of `request_id` is waiting."""
        return request_id in self.pending or request_id in self._ready

    def state(self, request_id: str) -> str | None:
        """"uploading", "uploaded" (waiting for its generate), or None."""
        return ("uploading" if request_id in self.pending
                else "uploaded" if request_id in self._ready
                else None)

    def forget(self, request_id: str) -> None:
        self.pending.pop(request_id, None)
        self._ready.pop(request_id, None)

    def take_ready(self, request_id: str) -> Clip | None:
        """The uploaded clip of `request_id` for its generate, or None."""
        ready = self._ready.pop(request_id, None)
        return None if ready is None else ready.clip

    def clip_begin(self, message: ClipBegin, sender: Address) -> None:
        rid = message.request_id
        address = self._peers.reply_address(sender)
        try:
            upload = ClipUpload(message)
        except (BadMessageError, ClipTooLargeError) as err:
            self._replies.reject("clip", message, sender, str(err))
            self._replies.error(address, rid, err.code, str(err))
            return
        if self._begin(rid, sender, source_of(self._peers.client(sender),
                                              message.source)) is None:
            self._replies.reject("busy", message, sender, f"{MAX_REQUESTS} requests in flight")
            self._replies.error(address, rid, ErrorCode.BAD_INPUT,
                                f"{MAX_REQUESTS} requests are in flight; try again when one "
                                "has finished")
            return
        remember(self.pending, rid, _Upload(upload, self._clock()), MAX_UPLOADS)

    def clip_notes(self, message: ClipNotes, request: Request | None, sender: Address) -> None:
        rid = message.request_id
        pending = self.pending.get(rid)
        if request is None or pending is None:
            self._replies.reject("unknown_upload", message, sender, f"no upload {rid}")
            return
        pending.touched_s = self._clock()
        try:
            pending.upload.add(message)
        except BadMessageError as err:
            self.pending.pop(rid)
            self._replies.reject("clip", message, sender, str(err))
            self._replies.error(request.route, rid, err.code, str(err))

    def clip_end(self, message: ClipEnd, request: Request | None, sender: Address) -> None:
        rid = message.request_id
        if request is None:
            self._replies.tally.count("nacks_sent")
            self._replies.send(self._peers.reply_address(sender), Nack(rid, ()))  # start again
            return
        if request.acked:
            self._replies.send(request.route, Ack(rid))  # our ack was lost: say it again
            return
        pending = self.pending.get(rid)
        if pending is None:
            self._replies.tally.count("nacks_sent")
            self._replies.send(request.route, Nack(rid, ()))  # dropped: start with clip/begin
            return
        pending.touched_s = self._clock()
        missing = pending.upload.missing()
        if missing:
            self._replies.tally.count("nacks_sent")
            self._replies.send(request.route, Nack(rid, missing[:MAX_MISSING_PER_NACK]))
            return
        del self.pending[rid]
        try:
            clip = pending.upload.finish(message, request.source)
        except (BadMessageError, ClipTooLargeError) as err:
            self._replies.reject("clip", message, sender, str(err))
            self._replies.error(request.route, rid, err.code, str(err))
            return
        remember(self._ready, rid, _ReadyClip(clip, self._clock()), MAX_UPLOADS)
        request.acked = True
        self._replies.send(request.route, Ack(rid))

    def expire(self, now: float) -> None:
        """Drop the uploads and clips that waited longer than the timeout."""
        timeout = self._timeout_s
        for rid, pending in list(self.pending.items()):
            if now - pending.touched_s > timeout:
                del self.pending[rid]
                self._replies.tally.count("uploads_expired")
                missing = pending.upload.missing()
                text = (f"upload {rid} timed out after {timeout:g} s with {len(missing)} of "
                        f"{pending.upload.begin.n_chunks} chunks missing")
                logger.warning("bridge: %s", text)
                request = self._peers.requests.get(rid)
                if request is not None:
                    self._replies.error(request.route, rid, ErrorCode.TIMEOUT,
                                        text + "; start again")
        for rid, ready in list(self._ready.items()):
            if now - ready.ready_s > timeout:
                del self._ready[rid]
                self._replies.tally.count("clips_expired")
                logger.warning("bridge: clip %s dropped: no generate within %g s", rid, timeout)
