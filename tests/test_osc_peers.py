"""Who the OSC server answers, over real UDP sockets on 127.0.0.1: a hello flood cannot evict a
client with work in flight nor take its replies; a request is answered only to the address
that began it (no 32-byte → 224 KB amplification); logged peer fields are escaped; the counts
are summarised while bad packets arrive and sent on /acco/stats; a restarted bridge answers
result/get from the store for the same client. Waits are on replies, never sleeps."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_osc_server import (
    WAIT_S,
    FakeClock,
    FakeSession,
    expect,
    generated,
    melody,
    succeed,
    sync,
    upload,
)

from bridge import protocol as p
from bridge.osc import OscClient
from bridge.peers import made_by, source_of
from bridge.server import BridgeServer
from bridge.session import Session
from bridge.store import ClipStore
from bridge.tally import Tally
from bridge.types import Clip, GenerateResult, JobContext

Client = OscClient[p.Message]


# The fixtures of tests/test_osc_server.py, with a client that says hello by `hello()`.
@pytest.fixture
def session() -> FakeSession:
    return FakeSession()


@pytest.fixture
def server(session: FakeSession) -> Iterator[BridgeServer]:
    with BridgeServer(session, port=0) as bridge:
        yield bridge


@pytest.fixture
def client(server: BridgeServer) -> Iterator[Client]:
    with hello(server.port, "test") as c:
        yield c


@contextlib.contextmanager
def hello(port: int, name: str = "daw-script") -> Iterator[Client]:
    with OscClient("127.0.0.1", port, codec=p.CODEC) as client:
        client.send(p.Hello(name, "pytest", p.PROTOCOL_VERSION, client.reply_port))
        expect(client, p.HelloOk)
        yield client


def uploaded(client: Client, rid: str, clip: Clip | None = None) -> None:
    *_, end = upload(client, rid, clip or melody(40))
    client.send(end)
    expect(client, p.Ack, lambda m: m.request_id == rid)


def collect_result(client: Client, rid: str) -> GenerateResult:
    assembly = p.ResultAssembly(rid, p.PROTOCOL_VERSION)
    deadline = time.monotonic() + WAIT_S
    while not assembly.complete and (remaining := deadline - time.monotonic()) > 0:
        message = client.receive(remaining)
        if isinstance(message, p.ResultMessage) and message.request_id == rid:
            assembly.add(message)
    assert assembly.complete, assembly.describe_missing()
    return assembly.result("")


def datagrams_until_pong(sock: socket.socket, target: tuple[str, int]) -> list[bytes]:
    """Ping from `sock` and return what came before the pong (the server handles packets in
    order, so that is every answer to what `sock` sent before)."""
    sock.sendto(p.encode(p.Ping("done")), target)
    received: list[bytes] = []
    deadline = time.monotonic() + WAIT_S
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        data = sock.recv(65_536)
        if p.decode(data) == p.Pong("done", 3):
            return received
        received.append(data)
    raise AssertionError("no pong")


def held_until(release: threading.Event) -> Callable[..., None]:
    """A session script that reports running, then succeeds once `release` is set."""
    def script(rid: str, source: str, clip: Clip, on_event: Callable[[str, object], None]) -> None:
        on_event("status", ("running", 0.5, "working"))
        release.wait(WAIT_S)
        succeed(rid, source, clip, on_event)

    return script


# ---- peers ---------------------------------------------------------------------------------


def test_a_hello_flood_neither_evicts_a_busy_client_nor_takes_its_replies(session, caplog):
    release = threading.Event()
    session.script = held_until(release)
    with caplog.at_level(logging.INFO, logger="bridge"), \
            BridgeServer(session, port=0) as bridge, hello(bridge.port, "victim") as victim, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, \
            contextlib.ExitStack() as stack:
        sink.bind(("127.0.0.1", 0))
        uploaded(victim, "v-1")
        victim.send(p.Generate("v-1", "{}"))
        expect(victim, p.Status, lambda m: m.state == "running")
        flood = p.encode(p.Hello("flood", "x", p.PROTOCOL_VERSION, sink.getsockname()[1]))
        for _ in range(p.MAX_PEERS):  # one local process, a new sender address per hello
            attacker = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            attacker.sendto(flood, ("127.0.0.1", bridge.port))
        sync(victim, "after-the-flood")  # the pong still comes to the victim
        victim.send(p.StatusGet("v-1"))
        assert expect(victim, p.Status).state == "running"
        release.set()
        assert collect_result(victim, "v-1").parts["piano"]
        stats = bridge.stats()
        sink.setblocking(False)
        stray = []
        with contextlib.suppress(BlockingIOError):
            while True:
                stray.append(p.decode(sink.recv(65_536)))
    assert stats["peers"] == p.MAX_PEERS and stats["hellos"] == p.MAX_PEERS + 1
    assert not [m for m in stray if not isinstance(m, p.HelloOk)]  # no pong, status or result
    assert caplog.text.count("hello from") == 10  # the log is rate-limited too


def test_result_get_from_another_peer_gets_a_short_error_not_the_result(server, client):
    uploaded(client, "a-1")
    client.send(p.Generate("a-1", "{}"))
    assert collect_result(client, "a-1").parts["piano"]
    sync(client, "settled")  # past the "done" status that follows the result
    target = ("127.0.0.1", server.port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind(("127.0.0.1", 0))
        other.sendto(p.encode(p.ResultGet("a-1")), target)  # 32 bytes in
        answers = datagrams_until_pong(other, target)
        assert sum(map(len, answers)) < 200  # … a short error out, not 224 KB
        [refusal] = map(p.decode, answers)
        assert isinstance(refusal, p.ErrorReply) and refusal.code == 1
        assert "another client" in refusal.message
        # naming the owner's port in a hello sends it nothing but the hello's answer and ours
        other.sendto(p.encode(p.Hello("thief", "x", 2, client.reply_port)), target)
        other.sendto(p.encode(p.ResultGet("a-1")), target)
        other.sendto(p.encode(p.StatusGet("a-1")), target)
    client.send(p.Ping("end"))  # answered after everything the thief sent
    seen = []
    while not isinstance(message := expect(client, object), p.Pong):
        seen.append(message)
    assert not [m for m in seen if isinstance(m, p.ResultMessage | p.Status)]
    assert server.stats()["rejected_not_owner"] == 3


def test_another_peers_messages_do_not_move_a_running_requests_replies(server, session):
    release = threading.Event()
    session.script = held_until(release)
    with hello(server.port, "owner") as owner, hello(server.port, "intruder") as intruder:
        uploaded(owner, "h-1")
        owner.send(p.Generate("h-1", "{}"))
        expect(owner, p.Status, lambda m: m.state == "running")
        for message in (p.StatusGet("h-1"), p.Generate("h-1", "{}"), p.ClipEnd("h-1", "0" * 8),
                        p.Cancel("h-1")):
            intruder.send(message)
            assert "another client" in expect(intruder, p.ErrorReply).message
        intruder.send(p.ClipBegin("h-1", "n", 4.0, 120.0, 4, 4, 1, 1, "s", ""))
        expect(intruder, p.ErrorReply)
        release.set()
        assert collect_result(owner, "h-1").parts["chords"]
        sync(intruder)
    assert session.cancelled.empty()


def test_control_characters_in_logged_peer_fields_are_escaped(server, client, caplog):
    with caplog.at_level(logging.INFO, logger="bridge"):
        client.send(p.Hello("evil\nbridge: forged line", "\x1b[31mLive\x1b[0m\r\u202e", 2,
                            client.reply_port))
        expect(client, p.HelloOk)
    messages = [r.getMessage() for r in caplog.records]
    assert not any(c in m for m in messages for c in "\n\r\x1b\u202e")
    assert any("evil\\nbridge: forged line" in m and "\\x1b[31mLive\\x1b[0m\\r\\u202e" in m
               for m in messages)


def test_source_names_keep_clients_apart():
    assert source_of("a:b", "x") == "osc:a%3Ab:x" and source_of("daw", "") == "osc:daw"
    assert made_by(source_of("daw", "track 1"), "daw") and made_by("osc:daw", "daw")
    assert not made_by(source_of("a:b", "x"), "a") and not made_by("osc:dawn:x", "daw")


# ---- counts you can see --------------------------------------------------------------------


def test_counts_are_summarised_while_bad_packets_arrive(session, caplog):
    clock = FakeClock()
    with caplog.at_level(logging.INFO, logger="bridge"), \
            BridgeServer(session, port=0, clock=clock) as bridge, \
            hello(bridge.port) as probe, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as bad:
        def summaries() -> list[str]:
            return [r.getMessage() for r in caplog.records if "counts so far" in r.getMessage()]

        for _ in range(12):
            bad.sendto(b"not osc", ("127.0.0.1", bridge.port))
        sync(probe)
        assert summaries() == []  # the first ten were logged one by one
        clock.now += 11
        sync(probe, "t1")
        assert len(summaries()) == 1 and "bad 12 (parse 12)" in summaries()[0]
        assert "acco-osc: 2 more bad packets (parse) not logged" in caplog.text
        bad.sendto(b"still not osc", ("127.0.0.1", bridge.port))
        sync(probe, "t2")
        assert len(summaries()) == 1  # at most one line per 10 s …
        clock.now += 11
        sync(probe, "t3")
        assert len(summaries()) == 2 and "bad 13 (parse 13)" in summaries()[1]
        clock.now += 11
        sync(probe, "t4")
        assert len(summaries()) == 2  # … and none when nothing new was refused


def test_summary_lines_group_reasons_and_report_final_counts(caplog):
    tally = Tally("spool", logging.getLogger("tests.peers"), noun="files", clock=lambda: 0.0)
    tally.count("received", 5)
    tally.count("results_written", 0)
    tally.refuse("rejected", "crc", "clip-1.txt", "bad CRC")
    tally.refuse("rejected", "format", "clip-2.txt", "bad line")
    assert tally.summary() == "received 5, rejected 2 (crc 1, format 1)"
    assert not tally.report()  # within report_s of the start
    with caplog.at_level(logging.INFO, logger="tests.peers"):
        assert tally.report(final=True)
    assert caplog.records[-1].getMessage() == (
        "spool: final counts: received 5, rejected 2 (crc 1, format 1)")


def test_stats_carry_the_counters(server, client):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as bad:
        bad.sendto(b"not osc", ("127.0.0.1", server.port))
        bad.sendto(p.encode(p.Ack("x")), ("127.0.0.1", server.port))  # well-formed, wrong way
    sync(client)
    client.send(p.StatsGet("s-1"))
    stats = expect(client, p.Stats)
    counters = dict(stats.counters)
    assert stats.token == "s-1" and [name for name, _ in stats.counters] == sorted(counters)
    assert counters["bad"] == counters["bad_parse"] == 1
    assert counters["rejected"] == counters["rejected_direction"] == 1
    assert counters["hellos"] == counters["peers"] == 1
    assert all(value > 0 for value in counters.values())


# ---- after a restart -----------------------------------------------------------------------


def test_result_get_after_a_restart_answers_the_same_client_from_the_store(tmp_path: Path):
    def engine(clip: Clip, options: Any, ctx: JobContext) -> GenerateResult:
        return generated(ctx.request_id, ctx.source)

    folder = tmp_path / "sessions"
    session = Session(engine, ClipStore(folder))
    try:
        with BridgeServer(session, port=0) as bridge, hello(bridge.port) as client:
            uploaded(client, "r-1")
            client.send(p.Generate("r-1", "{}"))
            first = collect_result(client, "r-1")
    finally:
        session.close()
    restarted = Session(engine, ClipStore(folder))
    try:
        with BridgeServer(restarted, port=0) as bridge:
            with hello(bridge.port, "someone-else") as stranger:
                stranger.send(p.ResultGet("r-1"))
                assert "no result stored" in expect(stranger, p.ErrorReply).message
            with OscClient("127.0.0.1", bridge.port, codec=p.CODEC) as anonymous:
                anonymous.send(p.ResultGet("r-1"))
                expect(anonymous, p.ErrorReply)
            with hello(bridge.port) as again:  # the same client name, a new socket
                again.send(p.ResultGet("r-1"))
                assert collect_result(again, "r-1") == first
                again.send(p.StatusGet("r-1"))
                assert expect(again, p.Status).state == "done"
    finally:
        restarted.close()
