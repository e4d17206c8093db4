"""The engine's job queue (bridge.session) and its crash-safe store (bridge.store).

A fake generate function is steered with threading.Events; tests wait on events with timeouts,
never on sleeps.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import tracemalloc
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bridge import store as store_module
from bridge.errors import ErrorCode
from bridge.jsonfile import DATA_DIR_ENV
from bridge.session import Session
from bridge.store import (
    SCHEMA_VERSION,
    SESSION_FILE,
    ClipStore,
    StoredSession,
    clip_from_json,
    clip_to_json,
    file_stem,
    result_from_json,
    result_to_json,
)
from bridge.types import (
    Cancelled,
    ChordSymbol,
    Clip,
    ClipControl,
    ClipNote,
    GenerateResult,
    JobContext,
)
from engine.errors import OptionError

WAIT = 10.0  # seconds; only ever reached when a test is about to fail
ENDINGS = {"done", "failed", "cancelled", "superseded"}


def make_clip(source: str = "osc:test", name: str = "verse", notes: int = 4) -> Clip:
    return Clip(
        source=source, name=name, length_beats=8.0, tempo_bpm=96.5, ts_num=4, ts_den=4,
        notes=tuple(ClipNote(60 + i % 12, i * 0.5, 0.5, 90, 1) for i in range(notes)),
        key_hint="C major" if notes % 2 else None,
    )


def make_result(request_id: str, source: str, clip: Clip) -> GenerateResult:
    melody = clip.notes
    return GenerateResult(
        request_id=request_id,
        source=source,
        parts={
            "chords": tuple(ClipNote(n.pitch - 12, n.start_beats, 2.0, 70, 2) for n in melody),
            "piano": tuple(ClipNote(n.pitch - 24, n.start_beats, 0.25, 64, 3) for n in melody),
        },
        chords=(ChordSymbol(0.0, 4.0, "C"), ChordSymbol(4.0, 4.0, "G7/B")),
        summary={"key": "C major", "meter": "4/4", "phrases": ["A8", "B8"], "name": clip.name},
        controls={"piano": tuple(ClipControl(n.start_beats, 64, 0 if i % 2 else 127, 3)
                                 for i, n in enumerate(melody))},
    )


class FakeEngine:
    """Plays the engine. Options steer it: {"block": True} waits for `gate` while checking for
    cancellation, as the real engine does; {"hold": True} waits for `gate`, then checks once
    (the test decides when the job notices); {"ignore_cancel": True} never checks;
    {"raise": exc} raises; {"progress": [...]} reports those fractions."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started: dict[str, threading.Event] = {}
        self.contexts: dict[str, JobContext] = {}
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def started_event(self, request_id: str) -> threading.Event:
        with self._lock:
            return self.started.setdefault(request_id, threading.Event())

    def __call__(self, clip: Clip, options: Mapping[str, Any], ctx: JobContext) -> GenerateResult:
        self.calls.append(ctx.request_id)
        self.contexts[ctx.request_id] = ctx
        self.started_event(ctx.request_id).set()
        for fraction in options.get("progress", ()):
            ctx.progress(fraction, f"{fraction:.0%}")
        if options.get("block"):
            # Waiting with a timeout here is the engine's periodic cancellation check.
            while not self.gate.wait(0.005):
                if not options.get("ignore_cancel"):
                    ctx.check()
        if options.get("hold"):
            assert self.gate.wait(WAIT)
            ctx.check()
        if "raise" in options:
            raise options["raise"]
        return make_result(ctx.request_id, ctx.source, clip)


class Recorder:
    """Collects every event per request; `ended(id)` is set on the request's ending status."""

    def __init__(self) -> None:
        self.events: dict[str, list[tuple[str, object]]] = {}
        self.order: list[str] = []  # request ids in the order their results arrived
        self.threads: set[str] = set()
        self._ended: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def for_request(self, request_id: str) -> Any:
        def on_event(kind: str, payload: object) -> None:
            with self._lock:
                self.threads.add(threading.current_thread().name)
                self.events.setdefault(request_id, []).append((kind, payload))
                if kind == "result":
                    self.order.append(request_id)
            if kind == "status" and payload[0] in ENDINGS:  # type: ignore[index]
                self.ended(request_id).set()

        return on_event

    def ended(self, request_id: str) -> threading.Event:
        with self._lock:
            return self._ended.setdefault(request_id, threading.Event())

    def wait(self, *request_ids: str) -> None:
        for request_id in request_ids:
            assert self.ended(request_id).wait(WAIT), f"{request_id} never ended"

    def kinds(self, request_id: str) -> list[str]:
        return [kind for kind, _ in self.events.get(request_id, [])]

    def statuses(self, request_id: str) -> list[str]:
        return [p[0] for k, p in self.events.get(request_id, []) if k == "status"]  # type: ignore[index]

    def ending(self, request_id: str) -> tuple[str, float, str]:
        status = [p for k, p in self.events[request_id] if k == "status"]
        return status[-1]  # type: ignore[return-value]

    def payloads(self, request_id: str, kind: str) -> list[Any]:
        return [p for k, p in self.events.get(request_id, []) if k == kind]


@pytest.fixture
def store(tmp_path: Path) -> ClipStore:
    return ClipStore(tmp_path / "sessions")


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def session(engine: FakeEngine, store: ClipStore) -> Iterator[Session]:
    s = Session(engine, store)
    yield s
    engine.gate.set()
    assert s.close(WAIT)


# ---- latest request wins ----------------------------------------------------------------


def test_latest_request_wins_for_one_source(session: Session, engine: FakeEngine) -> None:
    rec = Recorder()
    clip = make_clip()
    session.submit("ableton", "A1", clip, {"hold": True}, rec.for_request("A1"))
    assert engine.started_event("A1").wait(WAIT)
    session.submit("ableton", "A2", clip, {}, rec.for_request("A2"))
    assert engine.contexts["A1"].is_cancelled()  # A1 is told to stop at once
    session.submit("ableton", "A3", make_clip(name="chorus"), {}, rec.for_request("A3"))
    assert session.queue_length() == 1  # A3 replaced A2
    engine.gate.set()  # A1 now checks, sees it was superseded and stops
    rec.wait("A1", "A2", "A3")

    assert rec.ending("A1")[:1] == ("superseded",)
    assert rec.ending("A1")[2] == "superseded by A2"
    assert rec.statuses("A2") == ["queued", "superseded"]
    assert rec.ending("A2")[2] == "superseded by A3"
    assert rec.kinds("A3") == ["status", "status", "result", "status"]
    assert rec.statuses("A3") == ["queued", "running", "done"]
    (result,) = rec.payloads("A3", "result")
    assert result.request_id == "A3" and result.summary["name"] == "chorus"
    assert rec.order == ["A3"]
    assert engine.calls == ["A1", "A3"]  # A2 never reached the engine
    assert rec.threads == {"accobridge-session"}  # on_event only ever on the worker


def test_a_superseded_result_that_still_arrives_is_dropped(
    session: Session, engine: FakeEngine, store: ClipStore
) -> None:
    rec = Recorder()
    session.submit("reaper", "R1", make_clip(), {"block": True, "ignore_cancel": True},
                   rec.for_request("R1"))
    assert engine.started_event("R1").wait(WAIT)
    session.submit("reaper", "R2", make_clip(name="new"), {}, rec.for_request("R2"))
    engine.gate.set()  # R1 returns its result despite being superseded
    rec.wait("R1", "R2")
    assert rec.kinds("R1") == ["status", "status", "status"]  # no "result"
    assert rec.ending("R1")[0] == "superseded"
    assert rec.order == ["R2"]
    stored = store.load("reaper")
    assert stored is not None and stored.result is not None and stored.request_id == "R2"


def test_sources_queue_fifo_and_all_are_delivered(session: Session, engine: FakeEngine) -> None:
    rec = Recorder()
    session.submit("blocker", "B0", make_clip(), {"block": True}, rec.for_request("B0"))
    assert engine.started_event("B0").wait(WAIT)
    for request_id, source in [("X1", "osc:x"), ("Y1", "osc:y"), ("Z1", "midi"), ("X2", "osc:x")]:
        session.submit(source, request_id, make_clip(source), {}, rec.for_request(request_id))
    assert session.queue_length() == 3  # one per source
    engine.gate.set()
    rec.wait("B0", "Y1", "Z1", "X2", "X1")
    # X2 replaced X1 and so queues after Y1 and Z1: FIFO by submission of the live request.
    assert rec.order == ["B0", "Y1", "Z1", "X2"]
    assert rec.ending("X1")[0] == "superseded"
    assert engine.calls == ["B0", "Y1", "Z1", "X2"]


def test_hundred_rapid_edits_leave_only_the_latest(session: Session, engine: FakeEngine) -> None:
    rec = Recorder()
    ids = [f"E{i:03d}" for i in range(100)]
    lengths = []
    for request_id in ids:
        session.submit("ableton", request_id, make_clip(), {"block": True},
                       rec.for_request(request_id))
        lengths.append(session.queue_length())
    assert max(lengths) <= 1
    engine.gate.set()
    rec.wait(*ids)
    assert rec.order == [ids[-1]]
    assert {rec.ending(i)[0] for i in ids[:-1]} == {"superseded"}
    # Edits that reached the engine between two submits were told to stop; only the last ran on.
    assert engine.calls == sorted(engine.calls) and engine.calls[-1] == ids[-1]
    assert all(engine.contexts[i].is_cancelled() for i in engine.calls[:-1])
    assert session.queue_length() == 0


def test_every_request_ends_exactly_once(session: Session, engine: FakeEngine) -> None:
    rec = Recorder()
    ids = [f"Q{i}" for i in range(30)]
    for n, request_id in enumerate(ids):
        session.submit(f"src{n % 3}", request_id, make_clip(), {}, rec.for_request(request_id))
    rec.wait(*ids)
    assert session.close(WAIT)
    for request_id in ids:
        statuses = rec.statuses(request_id)
        assert statuses[0] == "queued"
        assert [s for s in statuses if s in ENDINGS] == [statuses[-1]]


# ---- cancel, progress, errors -------------------------------------------------------------


def test_cancel_running_and_queued(session: Session, engine: FakeEngine) -> None:
    rec = Recorder()
    session.submit("a", "C1", make_clip(), {"block": True}, rec.for_request("C1"))
    assert engine.started_event("C1").wait(WAIT)
    session.submit("b", "C2", make_clip(), {}, rec.for_request("C2"))
    assert session.cancel("C2") is True
    assert session.queue_length() == 0
    assert session.cancel("C1", source="other") is False
    assert session.cancel("C1") is True
    assert session.cancel("nope") is False
    rec.wait("C1", "C2")
    assert rec.ending("C1")[0] == "cancelled"
    assert rec.statuses("C2") == ["queued", "cancelled"]
    assert engine.calls == ["C1"]


def test_progress_is_forwarded_as_running_status(session: Session) -> None:
    rec = Recorder()
    options = {"progress": [0.25, 0.5, float("nan"), 2.0]}
    session.submit("a", "P1", make_clip(), options, rec.for_request("P1"))
    rec.wait("P1")
    running = [p for p in rec.payloads("P1", "status") if p[0] == "running"]
    assert running == [("running", 0.0, "started"), ("running", 0.25, "25%"),
                       ("running", 0.5, "50%"), ("running", 0.5, "nan%"),
                       ("running", 1.0, "200%")]  # NaN keeps the last value, 2.0 is clamped
    assert rec.ending("P1")[:2] == ("done", 1.0)


def test_progress_from_an_engine_helper_thread_still_arrives_on_the_worker(
    store: ClipStore,
) -> None:
    def generate(clip: Clip, options: Mapping[str, Any], ctx: JobContext) -> GenerateResult:
        helper = threading.Thread(target=ctx.progress, args=(0.5, "from a helper"))
        helper.start()
        helper.join()
        return make_result(ctx.request_id, ctx.source, clip)

    session = Session(generate, store)
    rec = Recorder()
    try:
        session.submit("a", "H1", make_clip(), {}, rec.for_request("H1"))
        rec.wait("H1")
    finally:
        assert session.close(WAIT)
    assert rec.payloads("H1", "status")[2] == ("running", 0.5, "from a helper")
    assert rec.statuses("H1") == ["queued", "running", "running", "done"]
    assert rec.threads == {"accobridge-session"}


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (ValueError("melody is empty"), ErrorCode.BAD_INPUT, "melody is empty"),
        (OptionError("unknown style 'polka'"), ErrorCode.BAD_INPUT, "unknown style 'polka'"),
        (RuntimeError("CUDA out of memory"), ErrorCode.ENGINE_ERROR,
         "RuntimeError: CUDA out of memory"),
        (KeyError("chords"), ErrorCode.ENGINE_ERROR, "KeyError: 'chords'"),
    ],
)
def test_engine_errors_map_to_codes(
    session: Session, caplog: pytest.LogCaptureFixture, error: Exception, code: ErrorCode,
    message: str,
) -> None:
    rec = Recorder()
    with caplog.at_level(logging.WARNING, logger="bridge.session"):
        session.submit("a", "F1", make_clip(), {"raise": error}, rec.for_request("F1"))
        rec.wait("F1")
    assert rec.payloads("F1", "error") == [(int(code), message)]
    assert rec.ending("F1")[0] == "failed"
    assert rec.kinds("F1")[-2:] == ["error", "status"]
    logged = [r for r in caplog.records if "F1" in r.getMessage()]
    assert logged
    if code is ErrorCode.ENGINE_ERROR:  # engine bugs keep their traceback
        assert logged[0].exc_info is not None and logged[0].exc_info[1] is error


def test_engine_cancelling_itself_reports_cancelled(session: Session) -> None:
    rec = Recorder()
    session.submit("a", "K1", make_clip(), {"raise": Cancelled("K1")}, rec.for_request("K1"))
    rec.wait("K1")
    assert rec.ending("K1")[0] == "cancelled"
    assert rec.payloads("K1", "error") == []


def test_exception_in_on_event_does_not_kill_the_worker(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(kind: str, payload: object) -> None:
        raise RuntimeError("client went away")

    rec = Recorder()
    with caplog.at_level(logging.ERROR, logger="bridge.session"):
        session.submit("a", "X1", make_clip(), {}, explode)
        session.submit("b", "X2", make_clip(), {}, rec.for_request("X2"))
        rec.wait("X2")
    assert rec.statuses("X2") == ["queued", "running", "done"]
    bad = [r for r in caplog.records if "X1" in r.getMessage()]
    assert bad and all(r.exc_info is not None for r in bad)


def test_close_joins_cancels_and_is_idempotent(engine: FakeEngine, store: ClipStore) -> None:
    session = Session(engine, store)
    rec = Recorder()
    session.submit("a", "S1", make_clip(), {"block": True}, rec.for_request("S1"))
    assert engine.started_event("S1").wait(WAIT)
    session.submit("b", "S2", make_clip(), {}, rec.for_request("S2"))
    assert session.close(WAIT) is True  # S1 notices the cancellation and stops
    assert rec.ending("S1")[:3:2] == ("cancelled", "session closed")
    assert rec.statuses("S2") == ["queued", "cancelled"]
    assert session.close(WAIT) is True
    with pytest.raises(RuntimeError, match="closed"):
        session.submit("a", "S3", make_clip(), {}, rec.for_request("S3"))


# ---- persistence: one pair per request --------------------------------------------------------


def _stored_names(store: ClipStore) -> list[str]:
    return sorted(p.name for p in store.folder.iterdir()) if store.folder.is_dir() else []


def _generated(session: Session, rec: Recorder, request_id: str, clip: Clip) -> GenerateResult:
    session.submit(clip.source, request_id, clip, {}, rec.for_request(request_id))
    rec.wait(request_id)
    (result,) = rec.payloads(request_id, "result")
    return result


def test_a_killed_job_restores_its_clip_as_not_generated_never_with_an_older_result(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    engine = FakeEngine()
    first = Session(engine, ClipStore(folder))
    rec = Recorder()
    result = _generated(first, rec, "R1", make_clip("osc:client-1", "take 3", notes=7))
    newer = make_clip("osc:client-1", "take 4", notes=3)
    first.submit("osc:client-1", "R2", newer, {"block": True}, rec.for_request("R2"))
    assert engine.started_event("R2").wait(WAIT)
    # "Crash" while R2 runs: nothing of the first session is used any more.
    restarted = Session(FakeEngine(), ClipStore(folder))
    try:
        assert restarted.last("osc:client-1") == StoredSession("osc:client-1", "R2", newer, None)
        assert restarted.last("never-seen") is None
        # R1's pair is still there for whoever asks for R1 by its id
        assert restarted.store.stored_result("R1") == result
        assert restarted.store.stored_result("R2") is None
    finally:
        engine.gate.set()
        assert first.close(WAIT) and restarted.close(WAIT)


@pytest.mark.parametrize("ending", ["failed", "bad input", "cancelled", "superseded"])
def test_a_job_without_a_result_leaves_the_pair_before_it(
    session: Session, engine: FakeEngine, store: ClipStore, ending: str
) -> None:
    rec = Recorder()
    old = make_clip("ableton", "old", notes=5)
    result = _generated(session, rec, "G1", old)
    new = make_clip("ableton", "new", notes=9)
    endings: dict[str, dict[str, Any]] = {
        "failed": {"raise": RuntimeError("engine died")},
        "bad input": {"raise": ValueError("10,000 notes: too many")},
        "cancelled": {"hold": True}, "superseded": {"hold": True}}
    options = endings[ending]
    session.submit("ableton", "G2", new, options, rec.for_request("G2"))
    if ending in ("cancelled", "superseded"):
        assert engine.started_event("G2").wait(WAIT)
        assert store.load("ableton") == StoredSession("ableton", "G2", new, None)  # running
        if ending == "cancelled":
            session.cancel("G2")
        else:  # a newer clip that the engine then refuses
            session.submit("ableton", "G3", make_clip("ableton", "newest"),
                           {"raise": ValueError("refused")}, rec.for_request("G3"))
        engine.gate.set()
        rec.wait("G3" if ending == "superseded" else "G2")
    rec.wait("G2")
    # Never the new melody with the old chords: the old pair, whole, or nothing else.
    assert session.last("ableton") == StoredSession("ableton", "G1", old, result)
    assert len(_stored_names(store)) == 1  # refused clips are not kept


def test_close_keeps_the_running_clip_as_not_generated(tmp_path: Path) -> None:
    engine = FakeEngine()
    session = Session(engine, ClipStore(tmp_path / "s"))
    rec = Recorder()
    session.submit("panel", "P1", make_clip("panel"), {"block": True}, rec.for_request("P1"))
    assert engine.started_event("P1").wait(WAIT)
    assert session.close(WAIT)
    assert rec.ending("P1")[0] == "cancelled"
    assert ClipStore(tmp_path / "s").newest() == StoredSession("panel", "P1", make_clip("panel"),
                                                              None)


def test_a_pair_replaces_the_sources_older_files(store: ClipStore) -> None:
    clip = make_clip()
    store.save_clip("osc:test", "crashed", make_clip(name="crashed"))  # left by a killed job
    store.save_pair("osc:test", clip, make_result("R1", "osc:test", clip))
    store.save_clip("osc:test", "R2", make_clip(name="running"))
    assert sorted(n.split(".")[-2] for n in _stored_names(store)) == ["clip", "pair"]
    assert store.load("osc:test") == StoredSession("osc:test", "R2", make_clip(name="running"),
                                                   None)
    store.save_pair("osc:test", clip, make_result("R2", "osc:test", clip))
    assert _stored_names(store) == [store.path("osc:test", "R2", True).name]
    assert store.stored_result("R1") is None and store.stored_result("R2") is not None


def test_stored_results_are_found_by_request_id_and_source(store: ClipStore) -> None:
    for source in ("osc:a", "osc:b"):  # two clients that both count from 1
        clip = make_clip(source)
        store.save_pair(source, clip, make_result("1", source, clip))
    found = store.stored_result("1")
    assert found is not None and found.source == "osc:b"  # the newest
    only_a = store.stored_result("1", lambda source: source.startswith("osc:a"))
    assert only_a is not None and only_a.source == "osc:a"
    assert store.stored_result("1", lambda source: False) is None
    assert store.stored_result("2") is None


def test_default_store_lives_in_the_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    session = Session(FakeEngine())
    try:
        assert session.store.folder == tmp_path / "sessions"
    finally:
        assert session.close(WAIT)


def test_store_round_trips_clips_and_results(store: ClipStore) -> None:
    for clip in (make_clip(notes=0), make_clip(notes=5), make_clip("x", notes=10_000)):
        result = make_result("r", clip.source, clip)
        store.save_pair(clip.source, clip, result)
        assert store.load(clip.source) == StoredSession(clip.source, "r", clip, result)
    assert clip_from_json(json.loads(json.dumps(clip_to_json(clip)))) == clip
    assert store.newest() == StoredSession("x", "r", clip, result)
    assert [p.name for p in store.folder.iterdir() if p.suffix == ".tmp"] == []


def test_stored_file_names_schema_and_source(store: ClipStore) -> None:
    store.save_clip("osc:a", "R9", make_clip("osc:a"))
    path = store.path("osc:a", "R9", False)
    assert path.name.startswith(file_stem("osc:a") + ".") and path.name.endswith(".clip.json")
    document = json.loads(path.read_text())
    assert document["schema"] == SCHEMA_VERSION == 3
    assert (document["kind"], document["source"], document["request_id"]) == (
        "session", "osc:a", "R9")
    assert document["result"] is None


def test_files_of_schema_1_and_2_are_upgraded_on_first_use(store: ClipStore) -> None:
    """Schema 2 kept a clip file and a result file per source, which need not belong together:
    the clip comes back not generated, the result (whose clip is unknown) goes."""
    clip = make_clip()
    store.folder.mkdir(parents=True)
    stem = file_stem(clip.source)
    old_clip = store.folder / f"{stem}.clip.json"
    old_clip.write_text(json.dumps({"schema": 1, "kind": "clip", "source": clip.source,
                                    "clip": clip_to_json(clip)}))
    result = result_to_json(make_result("r", clip.source, clip))
    del result["controls"]
    (store.folder / f"{stem}.result.json").write_text(json.dumps(
        {"schema": 1, "kind": "result", "source": clip.source, "result": result}))
    os.utime(old_clip, ns=(10**18, 10**18))
    assert store.newest() == StoredSession(clip.source, "", clip, None)
    assert _stored_names(store) == [store.path(clip.source, "", False).name]
    assert store.path(clip.source, "", False).stat().st_mtime_ns == 10**18  # order kept


def test_a_version_1_result_loads_without_controls() -> None:
    clip = make_clip()
    document: dict[str, Any] = {"schema": 1, "kind": "result", "source": clip.source,
                                "result": result_to_json(make_result("r", clip.source, clip))}
    del document["result"]["controls"]
    upgraded = SESSION_FILE.upgrade(document)
    assert upgraded["result"]["controls"] == {}
    assert result_from_json(upgraded["result"]) == replace(make_result("r", clip.source, clip),
                                                           controls={})


def test_corrupt_control_field_reads_as_absent(store: ClipStore) -> None:
    clip = make_clip()
    store.save_pair(clip.source, clip, make_result("r", clip.source, clip))
    path = store.path(clip.source, "r", True)
    document = json.loads(path.read_text())
    document["result"]["controls"]["piano"][0] = [0.0, 64, "down", 3]
    path.write_text(json.dumps(document))
    assert store.load(clip.source) is None and store.corrupt_files == 1


@pytest.mark.parametrize(
    "damage",
    [
        "not json at all {",
        "",
        "[1, 2, 3]",
        '{"schema": 99, "kind": "session", "source": "osc:test", "request_id": "r"}',
        '{"schema": 3, "kind": "session", "source": "osc:test", "request_id": "r", '
        '"clip": {"name": "x"}, "result": null}',
        '{"schema": 3, "kind": "clip", "source": "osc:test", "clip": {}}',
        '{"schema": 3, "kind": "session", "source": "someone-else", "request_id": "r"}',
        '{"schema": 3, "kind": "session", "source": "osc:test", "request_id": "other"}',
        '{"schema": 3, "kind": "session", "source": "osc:test", "request_id": "r", '
        '"clip": {}, "result": {}}',
        '{"schema": 3, "source": ' + "[" * 60 + "]" * 60 + "}",
        '{"schema": 3, "source": ' + "[" * 990 + "]" * 990 + "}",
    ],
)
def test_corrupt_file_reads_as_absent_and_is_logged(
    store: ClipStore, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    clip = make_clip()
    store.save_clip(clip.source, "r", clip)
    store.path(clip.source, "r", False).write_text(damage)
    with caplog.at_level(logging.WARNING, logger="bridge.store"):
        assert store.load(clip.source) is None
    assert any("ignoring stored session file" in r.getMessage() for r in caplog.records)
    assert store.corrupt_files == 1


def test_a_result_filed_under_another_request_is_corrupt(store: ClipStore) -> None:
    clip = make_clip()
    store.save_pair(clip.source, clip, make_result("R1", clip.source, clip))
    document = json.loads(store.path(clip.source, "R1", True).read_text())
    document["result"]["request_id"] = "R0"  # an older job's result beside this clip
    store.path(clip.source, "R1", True).write_text(json.dumps(document))
    assert store.load(clip.source) is None and store.corrupt_files == 1


def test_bad_files_are_skipped_and_the_others_still_restore(
    store: ClipStore, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIFO (which would block an open() forever), a deeply nested file, an oversized one, a
    symbolic link and garbage, all newer than the good pair: skipped with a warning each."""
    good = make_clip("good")
    store.save_pair("good", good, make_result("G", "good", good))
    os.utime(store.path("good", "G", True), ns=(10**18, 10**18))  # older than the rest
    deep = store.path("deep", "D", False)
    deep.write_text('{"schema": 3, "kind": "session", "source": "deep", "request_id": "D", '
                    '"clip": ' + "[" * 500 + "]" * 500 + ', "result": null}')
    store.path("huge", "H", False).write_bytes(b" " * 9000)
    monkeypatch.setattr(store_module, "MAX_ENTRY_BYTES", 8192)
    store.path("garbage", "X", True).write_bytes(b"\xff\xfe")
    store.path("link", "L", True).symlink_to(store.path("good", "G", True))
    fifo = store.path("fifo", "F", False)
    os.mkfifo(fifo)
    found: list[StoredSession | None] = []
    reader = threading.Thread(target=lambda: found.append(store.newest()), daemon=True)
    with caplog.at_level(logging.WARNING, logger="bridge.store"):
        reader.start()
        reader.join(WAIT)
    if reader.is_alive():  # blocked on the FIFO: let it go, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading the store waited on a FIFO")
    assert found == [StoredSession("good", "G", good, make_result("G", "good", good))]
    warned = "\n".join(r.getMessage() for r in caplog.records)
    for name in ("deep", "huge", "garbage", "link", "fifo"):
        assert file_stem(name) in warned, name
    assert "not a regular file" in warned and "nested more than" in warned


def test_stale_temporary_files_go_at_start(store: ClipStore) -> None:
    store.folder.mkdir(parents=True)
    left = store.folder / ".osc-x.0123456789abcdef.pair.json.k2j4h5.tmp"
    left.write_text('{"half": ')
    mine = store.folder / "notes.txt"  # not ours: left alone
    mine.write_text("x")
    session = Session(FakeEngine(), store)  # its worker sweeps before the first job
    rec = Recorder()
    session.submit("a", "T1", make_clip("a"), {"raise": ValueError("no")}, rec.for_request("T1"))
    rec.wait("T1")
    assert session.close(WAIT)
    assert _stored_names(store) == ["notes.txt"]
    left.write_text('{"half": ')
    assert ClipStore(store.folder).newest() is None  # or a reader's first use
    assert _stored_names(store) == ["notes.txt"]


def test_the_store_keeps_the_newest_sources_and_bytes(
    store: ClipStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(store_module.MAX_SOURCES + 5):
        clip = make_clip(f"osc:{i}")
        store.save_pair(clip.source, clip, make_result("r", clip.source, clip))
    stems = {name.split(".")[0] for name in _stored_names(store)}
    assert stems == {file_stem(f"osc:{i}") for i in range(5, store_module.MAX_SOURCES + 5)}
    size = store.path("osc:10", "r", True).stat().st_size
    monkeypatch.setattr(store_module, "MAX_STORE_BYTES", 2 * size + size // 2)
    clip = make_clip("osc:99")
    store.save_pair(clip.source, clip, make_result("r", clip.source, clip))
    assert _stored_names(store) == sorted(store.path(source, "r", True).name for source in
                                          ("osc:99", f"osc:{store_module.MAX_SOURCES + 4}"))


def test_refused_clips_do_not_fill_the_disk(store: ClipStore) -> None:
    """Issue 13: 10,000-note clips the engine refuses grew the store 23 MB in 9 s."""
    def refuse(clip: Clip, options: Mapping[str, Any], ctx: JobContext) -> GenerateResult:
        raise ValueError(f"melody has {len(clip.notes)} notes; at most 4096 are supported")

    session = Session(refuse, store)
    rec = Recorder()
    try:
        for i in range(20):
            session.submit(f"osc:{i}", f"N{i}", make_clip(f"osc:{i}", notes=10_000), {},
                           rec.for_request(f"N{i}"))
        rec.wait(*(f"N{i}" for i in range(20)))
    finally:
        assert session.close(WAIT)
    assert _stored_names(store) == []


def test_corrupt_store_file_does_not_break_a_session(
    store: ClipStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.folder.mkdir(parents=True)
    store.path("ableton", "G0", True).write_bytes(b"\xff\xfe garbage")
    session = Session(FakeEngine(), store)
    try:
        with caplog.at_level(logging.WARNING, logger="bridge.store"):
            assert session.last("ableton") is None
        assert caplog.records
        rec = Recorder()
        session.submit("ableton", "G1", make_clip(), {}, rec.for_request("G1"))
        rec.wait("G1")
        stored = session.last("ableton")
        assert stored is not None and stored.clip == make_clip()
        assert stored.result is not None and stored.result.request_id == "G1"
    finally:
        assert session.close(WAIT)


@pytest.mark.parametrize(
    "source",
    ["../../etc/passwd", "..", ".", "/abs/path", "C:\\Windows\\system32", "a/../../b", "",
     "con", "nul.txt", "osc:client\x00evil", "ünïcødé ♪", "x" * 5000, "\udcff"],
)
def test_hostile_source_names_stay_inside_the_folder(store: ClipStore, source: str) -> None:
    clip = make_clip(source)
    store.save_pair(source, clip, make_result("../r\x00", source, clip))
    folder = store.folder.resolve()
    path = store.path(source, "../r\x00", True)
    assert path.resolve().parent == folder
    assert len(path.name) < 100
    assert _stored_names(store) == [path.name]
    stored = store.load(source)
    assert stored is not None and stored.clip == clip


def test_similar_sources_get_distinct_files() -> None:
    names = ["osc:a/b", "osc:a_b", "osc:a:b", "OSC:A_B", "osc:a_b "]
    assert len({file_stem(n) for n in names}) == len(names)


def test_failed_clip_save_still_runs_the_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    session = Session(FakeEngine(), ClipStore(blocker / "sessions"))
    try:
        rec = Recorder()
        with caplog.at_level(logging.ERROR, logger="bridge.session"):
            session.submit("a", "D1", make_clip(), {}, rec.for_request("D1"))
            rec.wait("D1")
        assert rec.payloads("D1", "status")[1][2].startswith("started; clip not saved")
        assert rec.ending("D1")[0] == "done" and "result not saved" in rec.ending("D1")[2]
        assert [r for r in caplog.records if r.exc_info is not None]
    finally:
        assert session.close(WAIT)


# ---- memory -------------------------------------------------------------------------------


def test_memory_stays_flat_over_a_thousand_submits(store: ClipStore) -> None:
    def generate(clip: Clip, options: Mapping[str, Any], ctx: JobContext) -> GenerateResult:
        ctx.progress(0.5, "half")  # FakeEngine keeps its contexts; this one keeps nothing
        ctx.check()
        return make_result(ctx.request_id, ctx.source, clip)

    session = Session(generate, store)
    ended: dict[str, threading.Event] = {}
    results = 0

    def counting(request_id: str) -> Any:
        event = ended.setdefault(request_id, threading.Event())

        def on_event(kind: str, payload: object) -> None:
            nonlocal results
            results += kind == "result"
            if kind == "status" and payload[0] in ENDINGS:  # type: ignore[index]
                event.set()

        return on_event

    def burst(start: int, count: int) -> None:
        for i in range(start, start + count):
            request_id = f"M{i}"
            session.submit(f"src{i % 4}", request_id, make_clip(notes=64), {}, counting(request_id))
        assert ended[f"M{start + count - 1}"].wait(WAIT)
        for i in range(start, start + count):  # every request ended; forget our own bookkeeping
            assert ended.pop(f"M{i}").wait(WAIT)

    tracemalloc.start()
    try:
        burst(0, 100)  # warm up caches, logging, the store's folder
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        burst(100, 1000)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert results >= 4  # the last request of each source at least
    assert session.queue_length() == 0
    assert session.close(WAIT)
    print(f"memory growth over 1,000 submits: {growth} bytes")
    assert growth < 1_000_000, f"grew {growth} bytes"
