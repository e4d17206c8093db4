"""How the OSC server's parts answer: messages and ready datagrams to an address, error replies
cut to size, and refusals of well-formed packets that make no sense here (counted and logged
like bad ones)."""

from __future__ import annotations

import contextlib

from bridge.osc import Address, OscServer
from bridge.protocol import ErrorReply, Message, encode
from bridge.tally import Tally

MAX_MESSAGE_BYTES = 1_000  # status and error texts are cut to this


def cut(text: str, max_bytes: int = MAX_MESSAGE_BYTES) -> str:
    """`text` in at most `max_bytes` of UTF-8 (whole characters), without NUL characters."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore").replace("\x00", "")


class Replies:
    """Sends through `osc` and counts through `tally` (the server's)."""

    def __init__(self, osc: OscServer[Message], tally: Tally) -> None:
        self._osc = osc
        self.tally = tally

    def send(self, address: Address, message: Message) -> None:
        self.send_datagrams(address, [encode(message)])

    def send_datagrams(self, address: Address, datagrams: list[bytes]) -> None:
        # OscServer counts and logs send failures; a vanished client must not stop the loop.
        with contextlib.suppress(OSError):
            for data in datagrams:
                self._osc.send_datagram(address, data)

    def error(self, address: Address, request_id: str, code: int, message: str) -> None:
        self.send(address, ErrorReply(request_id, code, cut(message)))

    def reject(self, reason: str, message: Message, sender: Address, detail: str) -> None:
        """A well-formed packet that makes no sense here: counted and logged like bad ones."""
        self.tally.refuse("rejected", reason, f"packet from {sender}",
                          f"{type(message).__name__}: {detail}")
