"""The OSC server's results: each one encoded once and kept (the newest MAX_RESULTS) so that
result/get sends it again; older ones come from the store (`StoredResults`), to the client
whose name made the request's source, even after a restart.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from bridge.errors import BridgeError, ErrorCode
from bridge.osc import Address
from bridge.peers import Begin, Peers, Request, made_by, remember
from bridge.protocol import ResultGet, Status, encode, result_messages
from bridge.replies import Replies, cut
from bridge.types import GenerateResult

logger = logging.getLogger("bridge.server")  # the server's part: its lines say so

MAX_RESULTS = 16  # encoded results kept for /acco/result/get


class StoredResults(Protocol):
    """Where results of earlier runs are found (`bridge.store.ClipStore`)."""

    def stored_result(self, request_id: str, source_ok: Callable[[str], bool] | None = None
                      ) -> GenerateResult | None: ...


class Results:
    """Encoded results by request id (loop thread only). `begin` starts a request for a stored
    result asked by a client that does not hold it (the server's)."""

    def __init__(self, peers: Peers, replies: Replies, begin: Begin,
                 store: StoredResults | None) -> None:
        self._peers = peers
        self._replies = replies
        self._begin = begin
        self._store = store
        self._results: OrderedDict[str, list[bytes]] = OrderedDict()

    def forget(self, request_id: str) -> None:
        self._results.pop(request_id, None)

    def send(self, request: Request, request_id: str, result: GenerateResult) -> None:
        """Encode `result` in the request's protocol, keep it and send it."""
        try:
            datagrams = [encode(m) for m in result_messages(result, request.proto)]
        except BridgeError as err:  # the engine made something we cannot send
            logger.error("bridge: cannot send the result of %s: %s", request_id, err)
            self._replies.error(request.route, request_id, ErrorCode.ENGINE_ERROR,
                                f"the result cannot be sent: {err}")
            return
        remember(self._results, request_id, datagrams, MAX_RESULTS)
        self._replies.send_datagrams(request.route, datagrams)

    def result_get(self, message: ResultGet, request: Request | None, sender: Address) -> None:
        rid = message.request_id
        if request is None:
            self._from_store(rid, sender)
            return
        datagrams = self._results.get(rid)
        if datagrams is not None:
            self._replies.send_datagrams(request.route, datagrams)
            return
        done = request.status is not None and request.status.state == "done"
        source = request.source
        stored = (self._store.stored_result(rid, lambda s: s == source)
                  if done and self._store is not None else None)
        if stored is not None:  # done, but no longer among the results kept in memory
            self.send(request, rid, stored)
        elif request.status is not None:
            self._replies.send(request.route, request.status)
        else:
            self._replies.error(request.route, rid, ErrorCode.BAD_INPUT,
                                f"no result stored for {rid}")

    def _from_store(self, request_id: str, sender: Address) -> None:
        """A request this run does not hold: the store's result, when the asker's client name
        (its hello's, else its host) made the stored request's source. The asker owns the
        request from now on."""
        client = self._peers.client(sender)
        stored = (None if self._store is None
                  else self._store.stored_result(request_id, lambda s: made_by(s, client)))
        request = None if stored is None else self._begin(request_id, sender, stored.source)
        if stored is None or request is None:
            self._replies.error(self._peers.reply_address(sender), request_id,
                                ErrorCode.BAD_INPUT, f"no result stored for {request_id} from "
                                f"client '{cut(client, 64)}'")
            return
        request.acked = request.submitted = True
        request.status = Status(request_id, "done", 1.0, "stored")
        self.send(request, request_id, stored)
