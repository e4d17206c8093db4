"""Who the OSC server talks to: the peers that said hello, the requests each began (the owner,
and the route and protocol fixed when it began), and the bounded tables that hold both.

A request belongs to the sender address that began it; a peer with a request in flight is never
evicted. Sources name the client that made them (`source_of`), so that a request the server no
longer holds can be answered from the store for the client that made it (`made_by`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from bridge.osc import Address
from bridge.protocol import MAX_PEERS, MAX_REQUESTS, OLDEST_PROTOCOL, Status


@dataclass(frozen=True)
class Peer:
    """A sender that said hello."""

    reply_port: int
    client: str
    proto: int  # what we speak with it: the lower of its version and ours


@dataclass
class Request:
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


InFlight = Callable[[str, Request], bool]  # (request id, request): work still pending for it
Begin = Callable[[str, Address, str], Request | None]  # (request id, sender, source)

K = TypeVar("K")
V = TypeVar("V")


def remember(store: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    """Put `key` last (the newest), dropping the oldest entries beyond `limit`."""
    store[key] = value
    store.move_to_end(key)
    while len(store) > limit:
        store.popitem(last=False)


def make_room(table: OrderedDict[K, V], limit: int, keep: Callable[[K, V], bool]) -> bool:
    """Drop the oldest entries `keep` lets go until one more fits; False when all must stay."""
    while len(table) >= limit:
        oldest = next((key for key, value in table.items() if not keep(key, value)), None)
        if oldest is None:
            return False
        del table[oldest]
    return True


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


class Peers:
    """The peer table (least recently heard first) and the requests they began. Used by the
    server's loop thread only; `len()` of either table may be read from any thread."""

    def __init__(self) -> None:
        self.peers: OrderedDict[Address, Peer] = OrderedDict()
        self.requests: OrderedDict[str, Request] = OrderedDict()

    def heard(self, sender: Address) -> None:
        """`sender` spoke: a known peer becomes the last to be evicted."""
        if sender in self.peers:
            self.peers.move_to_end(sender)

    def reply_address(self, sender: Address) -> Address:
        """The sender's host at the reply_port of its own hello, else the sender itself."""
        peer = self.peers.get(sender)
        return sender if peer is None else (sender[0], peer.reply_port)

    def client(self, sender: Address) -> str:
        """The sender's client name: its hello's, else its host."""
        peer = self.peers.get(sender)
        return sender[0] if peer is None else peer.client

    def make_room_for_a_peer(self, sender: Address, in_flight: InFlight) -> bool:
        """Whether `sender` may be (or already is) in the table, evicting the least recently
        heard peer that owns no request in flight to make room."""
        if sender in self.peers or len(self.peers) < MAX_PEERS:
            return True
        working = {request.owner for rid, request in self.requests.items()
                   if in_flight(rid, request)}
        return make_room(self.peers, MAX_PEERS, lambda peer, _: peer in working)

    def add(self, sender: Address, peer: Peer) -> None:
        remember(self.peers, sender, peer, MAX_PEERS)

    def begin(self, request_id: str, sender: Address, source: str,
              in_flight: InFlight) -> Request | None:
        """A new request of `sender` (replacing its own of that id), with the route and
        protocol of its hello; None when too many requests are in flight to remember one more."""
        if request_id not in self.requests and not make_room(self.requests, MAX_REQUESTS,
                                                             in_flight):
            return None
        peer = self.peers.get(sender)
        request = Request(sender, self.reply_address(sender),
                          OLDEST_PROTOCOL if peer is None else peer.proto, source)
        remember(self.requests, request_id, request, MAX_REQUESTS)
        return request
