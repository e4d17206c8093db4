"""Our OSC API over real UDP sockets on 127.0.0.1 (ephemeral ports): hello/ping, upload and
generate through `send_clip_and_wait`, nack/re-send, upload expiry with an injected clock,
error replies, and a seeded fuzz run. Synchronisation waits on replies and queues, never sleeps.
"""

from __future__ import annotations

import logging
import queue
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import replace
from typing import Any

import pytest

from bridge import osc
from bridge import protocol as p
from bridge.client import BridgeClient, send_clip_and_wait
from bridge.errors import (
    BadMessageError,
    BridgeError,
    ClipTooLargeError,
    ErrorCode,
    ReplyTimeoutError,
)
from bridge.osc import OscClient, OscServer, WireMessage
from bridge.server import BRIDGE_VERSION, BridgeServer
from bridge.types import (
    MAX_CLIP_NOTES,
    ChordSymbol,
    Clip,
    ClipControl,
    ClipNote,
    GenerateResult,
)

WAIT_S = 5.0  # generous upper bound for loopback replies; tests finish far sooner


def melody(n: int = 700) -> Clip:
    notes = tuple(ClipNote(60 + i % 12, i * 0.5, 0.5, 90, 1) for i in range(n))
    return Clip("track-1", "Chorus", n * 0.5, 100.0, 4, 4, notes)


def generated(request_id: str, source: str) -> GenerateResult:
    chords = tuple(ClipNote(48 + i % 12, i * 1.0, 1.0, 70, 1) for i in range(300))
    piano = tuple(ClipNote(60 + i % 24, i * 0.25, 0.25, 80, 5) for i in range(900))
    symbols = tuple(ChordSymbol(i * 4.0, 4.0, "Am7") for i in range(150))
    return GenerateResult(request_id, source, {"chords": chords, "piano": piano}, symbols,
                          {"key": "A minor", "phrases": [{"label": "A", "bars": 8}]})


Script = Callable[[str, str, Clip, Callable[[str, object], None]], None]


def succeed(rid: str, source: str, clip: Clip, on_event: Callable[[str, object], None]) -> None:
    on_event("status", ("queued", 0.0, "queued"))
    on_event("status", ("running", 0.5, "harmonizing"))
    on_event("result", generated(rid, source))
    on_event("status", ("done", 1.0, "done"))


class FakeSession:
    """The session interface; events come from a worker thread, as the real one's do."""

    def __init__(self, script: Script | None = succeed) -> None:
        self.script = script
        self.submitted: queue.Queue[tuple[str, str, Clip, dict[str, Any]]] = queue.Queue()
        self.cancelled: queue.Queue[str] = queue.Queue()

    def submit(self, source: str, request_id: str, clip: Clip, options: Any,
               on_event: Callable[[str, object], None]) -> None:
        self.submitted.put((source, request_id, clip, dict(options)))
        if self.script is not None:
            script = self.script
            threading.Thread(target=script, args=(request_id, source, clip, on_event)).start()

    def cancel(self, request_id: str) -> bool:
        self.cancelled.put(request_id)
        return True

    def queue_length(self) -> int:
        return 3


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def session() -> FakeSession:
    return FakeSession()


@pytest.fixture
def server(session: FakeSession) -> Iterator[BridgeServer]:
    with BridgeServer(session, port=0) as bridge:
        yield bridge


@pytest.fixture
def client(server: BridgeServer) -> Iterator[OscClient[p.Message]]:
    with OscClient("127.0.0.1", server.port, codec=p.CODEC) as c:
        c.send(p.Hello("test", "pytest", p.PROTOCOL_VERSION, c.reply_port))
        assert expect(c, p.HelloOk) == p.HelloOk(BRIDGE_VERSION, p.PROTOCOL_VERSION)
        yield c


def expect(client: OscClient[p.Message], kind: type[Any],
           where: Callable[[Any], bool] = lambda m: True) -> Any:
    """The next message of `kind` that `where` accepts; others are skipped."""
    deadline = time.monotonic() + WAIT_S
    while (remaining := deadline - time.monotonic()) > 0:
        message = client.receive(remaining)
        if isinstance(message, kind) and where(message):
            return message
    raise AssertionError(f"no {kind.__name__} within {WAIT_S} s")


def sync(client: OscClient[p.Message], token: str = "sync") -> None:
    """Ping and wait for the pong: every packet sent before has been handled."""
    client.send(p.Ping(token))
    expect(client, p.Pong, lambda m: m.token == token)


def upload(client: OscClient[p.Message], rid: str, clip: Clip, skip: AbstractSet[int] = frozenset()
           ) -> tuple[p.ClipBegin, tuple[p.ClipNotes, ...], p.ClipEnd]:
    begin, chunks, end = p.clip_messages(rid, clip)
    client.send(begin)
    for chunk in chunks:
        if chunk.chunk not in skip:
            client.send(chunk)
    return begin, chunks, end


# ---- basics ------------------------------------------------------------------------------


def test_binds_loopback_by_default(server):
    assert server.host == "127.0.0.1"
    assert server.port > 0
    assert [osc.is_loopback_host(h) for h in ("127.0.0.1", "localhost", "::1", "127.5.0.1")] \
        == [True] * 4
    assert [osc.is_loopback_host(h) for h in ("0.0.0.0", "192.168.1.4", "")] == [False] * 3


def _ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_ipv6_loopback_works_end_to_end(session):
    with BridgeServer(session, host="::1", port=0) as bridge:
        assert bridge.host == "::1"
        with OscClient("::1", bridge.port, codec=p.CODEC) as c:
            c.send(p.Hello("test", "pytest", p.PROTOCOL_VERSION, c.reply_port))
            assert expect(c, p.HelloOk).proto == p.PROTOCOL_VERSION


def test_other_interfaces_log_a_warning(monkeypatch, caplog):
    with OscServer(lambda m, s: None, port=0, codec=osc.WIRE_CODEC):
        pass
    assert "reachable from other machines" not in caplog.text
    monkeypatch.setattr(osc, "is_loopback_host", lambda host: False)  # stay on loopback
    with caplog.at_level(logging.WARNING), \
            OscServer(lambda m, s: None, port=0, codec=osc.WIRE_CODEC):
        pass
    assert "reachable from other machines" in caplog.text


def test_hello_and_ping(client):
    client.send(p.Ping("abc"))
    assert expect(client, p.Pong) == p.Pong("abc", 3)


def test_hello_is_answered_with_the_lower_protocol_version(client):
    client.send(p.Hello("old", "x", p.OLDEST_PROTOCOL, client.reply_port))
    assert expect(client, p.HelloOk).proto == p.OLDEST_PROTOCOL
    client.send(p.Hello("future", "x", p.PROTOCOL_VERSION + 1, client.reply_port))
    assert expect(client, p.HelloOk).proto == p.PROTOCOL_VERSION  # the client decides
    client.send(p.Ping("after"))
    assert expect(client, p.Pong).token == "after"  # and no error came before it


def test_control_changes_reach_protocol_2_clients_only(server, session, monkeypatch):
    pedal = (ClipControl(0.0, 64, 127, 3), ClipControl(2.0, 64, 0, 3))

    def with_pedal(rid: str, source: str, clip: Clip, on_event: Any) -> None:
        on_event("result", replace(generated(rid, source), controls={"piano": pedal}))
        on_event("status", ("done", 1.0, "done"))

    class Recording(BridgeClient):
        received: list[p.Message] = []  # one instance per test

        def _receive(self, timeout_s: float) -> p.Message | None:
            message = super()._receive(timeout_s)
            if message is not None:
                self.received.append(message)
            return message

    session.script = with_pedal
    assert send_clip_and_wait("127.0.0.1", server.port, melody(), {}, WAIT_S).controls == {
        "piano": pedal}
    monkeypatch.setattr("bridge.client.PROTOCOL_VERSION", p.OLDEST_PROTOCOL)
    with Recording("127.0.0.1", server.port) as old:
        result = old.run(melody(), {}, WAIT_S)
    assert old.proto == p.OLDEST_PROTOCOL and result.controls == {}
    assert old.received and not any(isinstance(m, p.PartControls) for m in old.received)


def test_replies_go_to_the_hello_reply_port(server):
    with OscClient("127.0.0.1", server.port, codec=p.CODEC) as sender, \
            OscClient("127.0.0.1", server.port, codec=p.CODEC) as listener:
        sender.send(p.Hello("split", "x", 1, listener.reply_port))
        expect(listener, p.HelloOk)
        sender.send(p.Ping("to-listener"))
        assert expect(listener, p.Pong).token == "to-listener"
        assert sender.receive(0.05) is None


def test_ping_without_hello_answers_the_sender(server):
    with OscClient("127.0.0.1", server.port, codec=p.CODEC) as anonymous:
        sync(anonymous, "anon")


def test_osc_server_counts_bad_packets_by_reason_and_survives_handler_errors():
    delivered: queue.Queue[WireMessage] = queue.Queue()

    def handler(message: WireMessage, sender: osc.Address) -> None:
        if message.address == "/boom":
            raise RuntimeError("handler bug")
        delivered.put(message)

    with OscServer(handler, port=0, codec=osc.WIRE_CODEC) as server, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for dgram in (b"junk", b"#bundle\x00", b"/x\x00\x00,q\x00\x00", b"/x\x00\x00,s\x00\x00",
                      osc.build_datagram(WireMessage("/boom", "", ())),
                      osc.build_datagram(WireMessage("/ok", "i", (1,)))):
            sock.sendto(dgram, ("127.0.0.1", server.port))
        assert delivered.get(timeout=WAIT_S) == WireMessage("/ok", "i", (1,))
        stats = server.stats()
    assert stats == {"received": 6, "delivered": 1, "bad": 4, "bad_parse": 2, "bad_bundle": 1,
                     "bad_type_tags": 1, "handler_failed": 1, "send_failed": 0}


def test_every_bad_packet_is_counted_and_the_log_is_rate_limited(caplog):
    delivered: queue.Queue[WireMessage] = queue.Queue()
    with caplog.at_level(logging.WARNING, logger="bridge.osc"), \
            OscServer(lambda m, s: delivered.put(m), port=0, codec=osc.WIRE_CODEC) as server, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(50):
            sock.sendto(b"junk", ("127.0.0.1", server.port))
        sock.sendto(osc.build_datagram(WireMessage("/ok", "", ())), ("127.0.0.1", server.port))
        delivered.get(timeout=WAIT_S)
        assert server.stats()["bad_parse"] == 50
    logged = [r for r in caplog.records if "bad packet" in r.getMessage()]
    assert len(logged) == 10  # the burst; the rest are counted and summarised later


def test_close_is_idempotent_and_joins_threads(session):
    bridge = BridgeServer(session, port=0)
    threads = [bridge._thread, bridge._osc._thread]
    bridge.close()
    bridge.close()
    assert not any(t.is_alive() for t in threads)


# ---- upload, generate, results -----------------------------------------------------------


def test_send_clip_and_wait_returns_the_parts(server, session):
    clip = melody(700)
    result = send_clip_and_wait("127.0.0.1", server.port, clip, {"style": "pop_standard"}, WAIT_S)
    source, rid, received, options = session.submitted.get(timeout=WAIT_S)
    assert source == "osc:accobridge-cli:track-1"
    assert received == replace(clip, source=source)
    assert options == {"style": "pop_standard"}
    expected = generated(rid, source)
    assert result.request_id == rid
    assert result.parts == {
        "chords": tuple(replace(n, channel=2) for n in expected.parts["chords"]),
        "piano": tuple(replace(n, channel=3) for n in expected.parts["piano"]),
    }
    assert result.chords == expected.chords
    assert result.summary == expected.summary
    stats = server.stats()
    assert stats["bad"] == 0 and stats["rejected"] == 0 and stats["nacks_sent"] == 0


class LossyClient(BridgeClient):
    """Loses chosen chunks on their first try, and chosen replies once."""

    def __init__(self, *args: Any, drop_chunks: AbstractSet[int] = frozenset(),
                 drop_reply: Callable[[p.Message], bool] = lambda m: False, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.drop_chunks = drop_chunks
        self.drop_reply = drop_reply
        self.dropped: list[Any] = []
        self.sent_chunks: list[int] = []

    def _send_chunk(self, chunk: p.ClipNotes, attempt: int) -> None:
        if attempt == 0 and chunk.chunk in self.drop_chunks:
            self.dropped.append(chunk.chunk)
            return
        self.sent_chunks.append(chunk.chunk)
        super()._send_chunk(chunk, attempt)

    def _receive(self, timeout_s: float) -> p.Message | None:
        message = super()._receive(timeout_s)
        if message is not None and self.drop_reply(message):
            self.drop_reply = lambda m: False  # once
            self.dropped.append(message)
            return None
        return message


def test_lost_chunk_is_nacked_and_sent_again(server):
    with LossyClient("127.0.0.1", server.port, drop_chunks={1}) as lossy:
        result = lossy.run(melody(700), {}, WAIT_S)
    assert lossy.dropped == [1]
    assert lossy.sent_chunks == [0, 2, 1]  # chunk 1 again, after the nack
    assert len(result.parts["piano"]) == 900
    assert server.stats()["nacks_sent"] == 1


def test_lost_ack_is_repeated(server):
    with LossyClient("127.0.0.1", server.port, round_timeout_s=0.2,
                     drop_reply=lambda m: isinstance(m, p.Ack)) as lossy:
        result = lossy.run(melody(10), {}, WAIT_S)
    assert [type(m) for m in lossy.dropped] == [p.Ack]
    assert set(result.parts) == {"chords", "piano"}


def test_lost_result_piece_is_asked_for_again(server):
    def first_piano_chunk(m: p.Message) -> bool:
        return isinstance(m, p.PartNotes) and m.part == "piano"

    with LossyClient("127.0.0.1", server.port, round_timeout_s=0.2,
                     drop_reply=first_piano_chunk) as lossy:
        result = lossy.run(melody(10), {}, WAIT_S)
    assert len(lossy.dropped) == 1
    assert len(result.parts["piano"]) == 900


def test_vanished_clients_upload_is_dropped_after_the_timeout(session):
    clock = FakeClock()
    with BridgeServer(session, port=0, upload_timeout_s=5.0, clock=clock) as bridge, \
            OscClient("127.0.0.1", bridge.port, codec=p.CODEC) as c:
        _, chunks, end = upload(c, "gone", melody(700), skip={1, 2})
        sync(c)
        assert bridge.stats()["uploads_active"] == 1
        clock.now += 4.0
        c.send(chunks[1])  # activity keeps it alive
        sync(c)
        clock.now += 4.0
        sync(c)
        assert bridge.stats()["uploads_active"] == 1
        clock.now += 5.5  # the client vanished
        c.send(p.Ping("after"))
        error = expect(c, p.ErrorReply)
        assert (error.request_id, error.code) == ("gone", ErrorCode.TIMEOUT)
        assert "timed out after 5 s with 1 of 3 chunks missing" in error.message
        expect(c, p.Pong, lambda m: m.token == "after")
        stats = bridge.stats()
        assert (stats["uploads_active"], stats["uploads_expired"]) == (0, 1)
        c.send(end)
        assert expect(c, p.Nack) == p.Nack("gone", ())  # unknown now: start again


def test_uploaded_clip_without_generate_expires(session):
    clock = FakeClock()
    with BridgeServer(session, port=0, upload_timeout_s=5.0, clock=clock) as bridge, \
            OscClient("127.0.0.1", bridge.port, codec=p.CODEC) as c:
        _, _, end = upload(c, "idle", melody(10))
        c.send(end)
        assert expect(c, p.Ack) == p.Ack("idle")
        clock.now += 6.0
        sync(c)
        assert bridge.stats()["clips_expired"] == 1
        c.send(p.Generate("idle", "{}"))
        assert expect(c, p.ErrorReply).code == ErrorCode.BAD_INPUT


def test_nack_lists_missing_chunks_and_end_is_acked_once_complete(client):
    _, chunks, end = upload(client, "r1", melody(1000), skip={0, 2})
    client.send(end)
    assert expect(client, p.Nack) == p.Nack("r1", (0, 2))
    client.send(chunks[2])
    client.send(chunks[2])  # duplicate: ignored
    client.send(chunks[0])
    client.send(end)
    assert expect(client, p.Ack) == p.Ack("r1")
    client.send(end)  # the ack was lost, say
    assert expect(client, p.Ack) == p.Ack("r1")


def test_crc_mismatch_is_reported(client):
    upload(client, "r2", melody(10))
    client.send(p.ClipEnd("r2", "00000000"))
    error = expect(client, p.ErrorReply)
    assert error.code == ErrorCode.BAD_INPUT and "CRC mismatch" in error.message


@pytest.mark.parametrize(("params", "words"), [
    ("{not json", "params_json is not JSON"),
    ("[1, 2]", "must be a JSON object, got list"),
    ("[" * 3000 + "]" * 3000, "nested too deeply"),  # used to get no answer at all
    ('{"alpha": NaN}', "NaN is not a JSON number"),
])
def test_bad_params_json_is_error_1(client, session, params, words):
    _, _, end = upload(client, "r3", melody(10))
    client.send(end)
    expect(client, p.Ack)
    client.send(p.Generate("r3", params))
    error = expect(client, p.ErrorReply)
    assert (error.request_id, error.code) == ("r3", ErrorCode.BAD_INPUT)
    assert words in error.message
    assert session.submitted.empty()


def test_generate_without_upload_is_error_1(client):
    client.send(p.Generate("nothing", "{}"))
    error = expect(client, p.ErrorReply)
    assert error.code == ErrorCode.BAD_INPUT and "no uploaded clip" in error.message


def test_too_large_clip_is_error_2(client):
    client.send(p.ClipBegin("big", "n", 16.0, 120.0, 4, 4, MAX_CLIP_NOTES + 1, 40, "", ""))
    error = expect(client, p.ErrorReply)
    assert (error.request_id, error.code) == ("big", ErrorCode.TOO_LARGE)


def test_client_refuses_too_large_clip_before_sending(server):
    notes = tuple(ClipNote(60, (i % 100) * 1.0, 1.0) for i in range(MAX_CLIP_NOTES + 1))
    with pytest.raises(ClipTooLargeError):
        send_clip_and_wait("127.0.0.1", server.port, replace(melody(1), notes=notes), {}, WAIT_S)


def test_status_get_and_cancel(client, session):
    session.script = None  # the job stays queued
    _, _, end = upload(client, "r4", melody(10))
    client.send(p.StatusGet("r4"))
    assert expect(client, p.Status).state == "uploading"
    client.send(end)
    expect(client, p.Ack)
    client.send(p.Generate("r4", '{"seed": 1}'))
    assert session.submitted.get(timeout=WAIT_S)[1:4:2] == ("r4", {"seed": 1})
    client.send(p.StatusGet("r4"))
    assert expect(client, p.Status).state == "submitted"
    client.send(p.Cancel("r4"))
    assert session.cancelled.get(timeout=WAIT_S) == "r4"
    client.send(p.StatusGet("never"))
    assert expect(client, p.Status) == p.Status("never", "unknown", 0.0, "")


def test_session_error_becomes_a_bridge_error_with_its_code(server, session):
    def fail(rid: str, source: str, clip: Clip, on_event: Callable[[str, object], None]) -> None:
        on_event("error", (ErrorCode.ENGINE_ERROR, "no templates for 7/8"))

    session.script = fail
    with pytest.raises(BridgeError, match="no templates for 7/8") as info:
        send_clip_and_wait("127.0.0.1", server.port, melody(10), {}, WAIT_S)
    assert info.value.code == ErrorCode.ENGINE_ERROR


def test_bad_input_error_is_a_bad_message_error(server, session):
    def refuse(rid: str, source: str, clip: Clip, on_event: Callable[[str, object], None]) -> None:
        on_event("error", (1, "unknown option(s): colour"))

    session.script = refuse
    with pytest.raises(BadMessageError, match="unknown option"):
        send_clip_and_wait("127.0.0.1", server.port, melody(10), {"colour": 1}, WAIT_S)


def test_superseded_request_ends_the_wait(server, session):
    def supersede(rid: str, source: str, clip: Clip,
                  on_event: Callable[[str, object], None]) -> None:
        on_event("status", ("superseded", 0.2, "superseded by x"))

    session.script = supersede
    with pytest.raises(BridgeError, match="was superseded"):
        send_clip_and_wait("127.0.0.1", server.port, melody(10), {}, WAIT_S)


def test_result_with_unknown_part_is_error_3(server, session):
    def kazoo(rid: str, source: str, clip: Clip, on_event: Callable[[str, object], None]) -> None:
        on_event("result", GenerateResult(rid, source, {"kazoo": ()}))

    session.script = kazoo
    with pytest.raises(BridgeError, match="'kazoo' has no MIDI channel") as info:
        send_clip_and_wait("127.0.0.1", server.port, melody(10), {}, WAIT_S)
    assert info.value.code == ErrorCode.ENGINE_ERROR


def test_silent_bridge_times_out_quickly():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        start = time.monotonic()
        with pytest.raises(ReplyTimeoutError, match="is the bridge running"):
            send_clip_and_wait("127.0.0.1", silent.getsockname()[1], melody(10), {}, 0.3)
        assert time.monotonic() - start < 2.0


def test_stalled_job_times_out_and_is_cancelled(server, session):
    session.script = None
    with BridgeClient("127.0.0.1", server.port, round_timeout_s=0.1) as c, \
            pytest.raises(ReplyTimeoutError, match="last status: submitted"):
        c.run(melody(10), {}, 0.6)
    _, rid, _, _ = session.submitted.get(timeout=WAIT_S)
    assert session.cancelled.get(timeout=WAIT_S) == rid


def test_wrong_direction_packets_are_rejected_and_counted(server, client):
    client.send(p.Pong("x", 1))
    client.send(p.ClipNotes("no-upload", 0, (ClipNote(60, 0.0, 1.0),)))
    sync(client)
    stats = server.stats()
    assert (stats["rejected"], stats["rejected_direction"], stats["rejected_unknown_upload"]) \
        == (2, 1, 1)


# ---- fuzz --------------------------------------------------------------------------------

FUZZ_PACKETS = 10_000
FUZZ_BATCH = 64  # packets between pings: well inside the socket's receive buffer


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] = rng.randrange(256)
        elif op == 1:
            del b[pos:]
        elif op == 2:
            b[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif op == 3:
            del b[pos:pos + rng.randint(1, 8)]
        elif op == 4:
            b[pos:pos] = b[pos:pos + rng.randint(1, 32)]
        elif op == 5:  # a different type tag
            comma = b.find(b",")
            if 0 <= comma < len(b) - 1:
                at = rng.randrange(comma + 1, min(len(b), comma + 12))
                b[at] = ord(rng.choice("ifsdhTFNbq[]"))
        else:
            word = rng.choice([b"\x7f\xc0\x00\x00", b"\x7f\x80\x00\x00", b"\xff\xff\xff\xff",
                               b"\x7f\xff\xff\xff", b"\x00\x00\x00\x00", b"\x80\x00\x00\x00"])
            at = rng.randrange(0, max(1, len(b) - 3), 4) if len(b) >= 4 else 0
            b[at:at + 4] = word
    return bytes(b)


EDGE_VALUES: dict[str, list[Any]] = {
    "i": [-1, 0, 1, 16, 17, 127, 128, 65_535, 65_536, 2**31 - 1, -(2**31)],
    "f": [0.0, -0.0, -1.0, 0.5, 1.0, 1.5, 1e38, -1e38, float("nan"), float("inf")],
    "s": ["", "x", "f1", "a b", "Running", "0123abcd", "é" * 40, "x" * 70, "{", "{}"],
}


def _wellformed(rng: random.Random) -> bytes:
    """A well-formed OSC message for one of our addresses, with edge values and sometimes
    the wrong tags or argument count: exercises the table checks rather than the parser."""
    spec = rng.choice(p.MESSAGES)
    tags = spec.tags + (spec.group.tags * rng.choice([0, 1, 2, 257]) if spec.group else "")
    if rng.random() < 0.2:
        tags = "".join(rng.choice("ifs") if rng.random() < 0.2 else t for t in tags)
    if rng.random() < 0.1:
        tags = tags[:-1] if tags and rng.random() < 0.5 else tags + rng.choice("ifs")
    values = tuple(rng.choice(EDGE_VALUES[t]) for t in tags)
    return osc.build_datagram(WireMessage(spec.address, tags, values))


def _fuzz_packets(rng: random.Random, sink_port: int) -> list[bytes]:
    templates = [p.encode(m) for m in SAMPLES_FOR_FUZZ]
    packets = []
    for _ in range(FUZZ_PACKETS):
        roll = rng.random()
        if roll < 0.25:
            dgram = _wellformed(rng)
        elif roll < 0.35:
            dgram = rng.randbytes(rng.randint(0, 512))
        elif roll < 0.40:
            dgram = b"/acco/" + rng.randbytes(rng.randint(0, 300))
        elif roll < 0.41:
            dgram = b"/acco/ping\x00\x00,s\x00\x00" + bytes(rng.randint(9_300, 12_000))
        elif roll < 0.42:
            dgram = b"#bundle\x00" + rng.randbytes(rng.randint(8, 64))
        else:
            dgram = _mutate(rng, rng.choice(templates))
        try:
            message = p.decode(dgram)
        except BadMessageError:
            pass
        else:  # a surviving hello must not send our replies to someone else's port
            if isinstance(message, p.Hello):
                dgram = p.encode(replace(message, reply_port=sink_port))
        packets.append(dgram)
    return packets


def _bad(dgram: bytes) -> bool:
    try:
        p.decode(dgram)
    except BadMessageError:
        return True
    return False


SAMPLES_FOR_FUZZ: list[p.Message] = [
    p.Hello("fuzz", "x", 1, 9),
    p.Ping("t"),
    p.ClipBegin("f1", "n", 8.0, 120.0, 4, 4, 3, 1, "s", ""),
    p.ClipNotes("f1", 0, (ClipNote(60, 0.0, 1.0), ClipNote(62, 1.0, 1.0), ClipNote(64, 2.0, 2.0))),
    p.ClipEnd("f1", "0123abcd"),
    p.Generate("f1", '{"seed": 1}'),
    p.Cancel("f1"),
    p.StatusGet("f1"),
    p.ResultGet("f1"),
    p.Status("f1", "running", 0.5, "m"),
    p.PartNotes("f1", "piano", 0, (ClipNote(60, 0.0, 1.0, 90, 3),)),
    p.Chords("f1", 0, 1, (ChordSymbol(0.0, 4.0, "C"),)),
    p.ErrorReply("f1", 1, "x"),
]


def test_fuzzed_packets_are_counted_and_the_server_keeps_answering(session):
    session.script = None
    rng = random.Random(20_261_125)
    with BridgeServer(session, port=0) as bridge, \
            OscClient("127.0.0.1", bridge.port, codec=p.CODEC) as probe, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as fuzzer:
        sink.bind(("127.0.0.1", 0))
        fuzzer.bind(("127.0.0.1", 0))
        probe.send(p.Hello("probe", "x", 1, probe.reply_port))
        expect(probe, p.HelloOk)
        packets = _fuzz_packets(rng, sink.getsockname()[1])
        expected_bad = sum(map(_bad, packets))
        target = ("127.0.0.1", bridge.port)
        start = time.perf_counter()
        pings = 0
        for batch in range(0, len(packets), FUZZ_BATCH):
            for dgram in packets[batch:batch + FUZZ_BATCH]:
                fuzzer.sendto(dgram, target)
            sync(probe, f"batch-{batch}")
            pings += 1
        elapsed = time.perf_counter() - start
        sync(probe, "still-alive")
        stats = bridge.stats()
    print(f"\nfuzz: {len(packets)} packets ({expected_bad} bad) in {elapsed:.2f} s = "
          f"{len(packets) / elapsed:,.0f} packets/s; stats {stats}")
    assert 0.5 * FUZZ_PACKETS < expected_bad < FUZZ_PACKETS  # both kinds are exercised
    assert stats["received"] == len(packets) + 1 + pings + 1  # hello, pings, last ping
    assert stats["bad"] == expected_bad
    assert sum(v for k, v in stats.items() if k.startswith("bad_")) == expected_bad
    assert stats.get("bad_internal", 0) == 0
    assert stats["handler_failed"] == stats["internal_errors"] == stats["inbox_dropped"] == 0
    assert stats["delivered"] == stats["received"] - expected_bad
