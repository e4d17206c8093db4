"""Our OSC API without sockets: the table, encode/decode round trips, every validation error,
chunking, CRC, the packet-size limit, and upload/result assembly."""

from __future__ import annotations

import ast
import random
import struct
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bridge import protocol as p
from bridge.errors import BadMessageError, BridgeError, ClipTooLargeError, ErrorCode
from bridge.osc import WireMessage, build_datagram, parse_datagram
from bridge.protocol import doc
from bridge.types import (
    MAX_CLIP_BARS,
    MAX_CLIP_NOTES,
    ChordSymbol,
    Clip,
    ClipControl,
    ClipNote,
    GenerateResult,
)

ROOT = Path(__file__).resolve().parents[1]
NOTE = ClipNote(60, 0.5, 1.25, 100, 1)


def notes(n: int, channel: int = 1) -> tuple[ClipNote, ...]:
    """n float32-exact notes (quarter-beat grid), so round trips compare equal."""
    return tuple(ClipNote(40 + i % 48, i * 0.25, 0.25 + (i % 4) * 0.5, 1 + i % 127, channel)
                 for i in range(n))


def clip(n: int = 600, length_beats: float = 200.0) -> Clip:
    return Clip("test-track", "Verse melody", length_beats, 120.0, 4, 4, notes(n), "C major")


SAMPLES: list[Any] = [
    p.Hello("reaper-companion", "REAPER", 1, 17001),
    p.HelloOk("0.1.0", 1),
    p.Ping("t-1"),
    p.Pong("t-1", 2),
    p.ClipBegin("req-1", "Verse", 32.0, 96.5, 6, 8, 3, 1, "track-2", ""),
    p.ClipNotes("req-1", 0, (NOTE, ClipNote(0, 0.0, 0.125, 1, 16), ClipNote(127, 3.75, 8, 127))),
    p.ClipEnd("req-1", "0a1b2c3d"),
    p.Ack("req-1"),
    p.Nack("req-1", (0, 5, 7)),
    p.Nack("req-1", ()),
    p.Generate("req-1", '{"style": "pop_standard", "seed": 3}'),
    p.Cancel("req-1"),
    p.StatusGet("req-1"),
    p.Status("req-1", "running", 0.5, "harmonizing ♪"),
    p.ResultBegin("req-1", 2, 1, 1),
    p.PartBegin("req-1", "piano", "Piano", 3, 3, 1),
    p.PartNotes("req-1", "piano", 0, (replace(NOTE, channel=3),)),
    p.PartEnd("req-1", "piano", "ffffffff"),
    p.PartControls("req-1", "piano", 0, 1, 2, "0a1b2c3d",
                   (ClipControl(0.0, 64, 127, 3), ClipControl(3.5, 64, 0, 3))),
    p.PartControls("req-1", "chords", 0, 1, 0, "00000000", ()),
    p.Chords("req-1", 0, 1, (ChordSymbol(0.0, 4.0, "Cmaj7"), ChordSymbol(4.0, 2.0, "G/B"))),
    p.Chords("req-1", 0, 1, ()),
    p.Summary("req-1", 0, 1, '{"key": "C major"}'),
    p.ResultGet("req-1"),
    p.ErrorReply("req-1", 3, "engine failed"),
    p.ErrorReply("", 1, "protocol version 2 is not supported"),
    p.StatsGet("s-1"),
    p.Stats("s-1", (("bad_parse", 3), ("received", 2**31 - 1))),
    p.Stats("s-1", ()),
]


def raw(address: str, tags: str, *args: Any) -> bytes:
    """A datagram that bypasses our validation (python-osc encoding only)."""
    return build_datagram(WireMessage(address, tags, args))


def note_args(*values: Any) -> tuple[str, tuple[Any, ...]]:
    return "iffii", values


# ---- the table -------------------------------------------------------------------------


def test_samples_cover_every_message_type():
    assert {type(m) for m in SAMPLES} == set(p.BY_TYPE)
    assert len(p.BY_ADDRESS) == len(p.MESSAGES) == len(p.BY_TYPE)


def test_table_names_match_the_message_fields():
    for spec in p.MESSAGES:
        names = [name for name, _ in spec.args] + ([spec.group.field] if spec.group else [])
        assert names == list(spec.type.__dataclass_fields__), spec.address


def test_osc_api_doc_is_generated_from_the_table():
    """docs/osc-api.md is what `python3 -m bridge.protocol.doc` writes; rerun it after a change
    to the table."""
    assert doc.DOC_PATH == ROOT / "docs" / "osc-api.md"
    assert doc.DOC_PATH.read_text(encoding="utf-8") == doc.osc_api_markdown()
    assert doc.protocol_table() in doc.osc_api_markdown()
    assert doc.value_table() in doc.osc_api_markdown()


def test_osc_api_doc_command_writes_the_file(tmp_path):
    target = tmp_path / "osc-api.md"
    assert doc.main([str(target)]) == 0
    assert target.read_text(encoding="utf-8") == doc.osc_api_markdown()


def test_only_bridge_osc_imports_pythonosc():
    importers = []
    for path in ROOT.rglob("*.py"):
        if any(part.startswith(".") or part in {"build", "venv"} for part in path.parts):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "pythonosc" for n in names):
                importers.append(str(path.relative_to(ROOT)))
    assert sorted(set(importers)) == ["bridge/osc.py"]


# ---- codec -------------------------------------------------------------------------------


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message):
    dgram = p.encode(message)
    assert len(dgram) % 4 == 0
    assert p.decode(dgram) == message
    assert p.CODEC.decode(p.CODEC.encode(message)) == message


def test_decoded_values_are_float32_and_int():
    message = p.decode(p.encode(p.ClipNotes("r", 0, (ClipNote(60, 0.1, 0.3, 90, 2),))))
    assert isinstance(message, p.ClipNotes)
    note = message.notes[0]
    assert note.start_beats == struct.unpack(">f", struct.pack(">f", 0.1))[0]
    assert isinstance(note.pitch, int) and isinstance(note.channel, int)


def test_wire_codec_keeps_abletonosc_types():
    message = WireMessage("/live/clip/get/notes", "iisTFN", (1, 2, "x", True, False, None))
    assert parse_datagram(build_datagram(message)) == message


BAD_PACKETS = [
    # (datagram, reason, words the message must contain)
    (raw("/acco/nope", "s", "x"), "unknown_address", "unknown address"),
    (raw("/acco/ping", "i", 1), "type_tags", "expected type tags ,s"),
    (raw("/acco/status", "ssds", "r", "running", 0.5, "m"), "type_tags", ",ssfs"),
    (raw("/acco/ping", "ss", "a", "b"), "arg_count", "expected 1 arguments"),
    (raw("/acco/ping", ""), "arg_count", "got 0"),
    (b"/acco/ping\x00\x00", "arg_count", "got 0"),
    (raw("/acco/clip/notes", "si" + "iffi", "r", 0, 60, 0.0, 1.0, 100), "arg_count", "(iffii)*"),
    (raw("/acco/clip/notes", "si", "r", 0), "arg_count", "0 notes; must be 1..256"),
    (raw("/acco/clip/notes", "si" + "iffii" * 257, "r", 0, *(60, 0.0, 1.0, 100, 1) * 257),
     "arg_count", "257 notes"),
    (raw("/acco/clip/notes", "si" + "ifffi", "r", 0, 60, 0.0, 1.0, 100.0, 1), "type_tags",
     "(iffii)*"),
    (raw("/acco/clip/notes", "siiffii", "r", 0, 128, 0.0, 1.0, 100, 1), "value",
     "note 0 pitch must be in 0..127, got 128"),
    (raw("/acco/clip/notes", "siiffii", "r", 0, -1, 0.0, 1.0, 100, 1), "value", "pitch"),
    (raw("/acco/clip/notes", "siiffii", "r", 0, 60, 0.0, 1.0, 0, 1), "value",
     "velocity must be in 1..127, got 0"),
    (raw("/acco/clip/notes", "siiffii", "r", 0, 60, 0.0, 1.0, 128, 1), "value", "velocity"),
    (raw("/acco/clip/notes", "siiffii", "r", 0, 60, 0.0, 1.0, 100, 0), "value",
     "channel must be in 1..16, got 0"),
    (raw("/acco/clip/notes", "siiffii", "r", 0, 60, 0.0, 1.0, 100, 17), "value", "channel"),
    (raw("/acco/clip/notes", "siiffii", "r", 0, 60, 0.0, -1.0, 100, 1), "value",
     "duration_beats must be > 0, got -1"),
    (raw("/acco/clip/notes", "siiffii", "r", 0, 60, 0.0, 0.0, 100, 1), "value",
     "duration_beats must be > 0"),
    (raw("/acco/clip/notes", "siiffii", "r", 0, 60, -0.5, 1.0, 100, 1), "value",
     "start_beats must be ≥ 0"),
    (raw("/acco/clip/notes", "siiffii", "r", 0, 60, float("nan"), 1.0, 100, 1), "value",
     "start_beats must be a finite number"),
    (raw("/acco/clip/notes", "siiffii", "r", 0, 60, 0.0, float("inf"), 100, 1), "value",
     "duration_beats must be a finite number"),
    (raw("/acco/clip/notes", "siiffii", "r", -1, 60, 0.0, 1.0, 100, 1), "value", "chunk"),
    (raw("/acco/clip/begin", "ssffiiiiss", "r", "n", 4.0, 0.0, 4, 4, 1, 1, "", ""), "value",
     "tempo_bpm must be ≥ 1"),
    (raw("/acco/clip/begin", "ssffiiiiss", "r", "n", 4.0, 120.0, 4, 3, 1, 1, "", ""),
     "value", "ts_den must be one of 1, 2, 4, 8, 16, 32, 64, got 3"),
    (raw("/acco/clip/begin", "ssffiiiiss", "r", "n", 0.0, 120.0, 4, 4, 1, 1, "", ""),
     "value", "length_beats must be > 0"),
    (raw("/acco/clip/begin", "ssffiiiiss", "r", "n", 4.0, 120.0, 4, 4, -1, 1, "", ""),
     "value", "n_notes"),
    (raw("/acco/hello", "ssii", "c", "d", 1, 0), "value", "reply_port must be in 1..65535"),
    (raw("/acco/hello", "ssii", "c", "d", 1, 70000), "value", "reply_port"),
    (raw("/acco/hello", "ssii", "", "d", 1, 9000), "value", "client must be 1..64 bytes"),
    (raw("/acco/cancel", "s", ""), "value", "request_id must be 1..64 bytes"),
    (raw("/acco/cancel", "s", "has space"), "value", "request_id must match"),
    (raw("/acco/cancel", "s", "r" * 65), "value", "got 65 bytes"),
    (raw("/acco/clip/end", "ss", "r", "XYZ"), "value", "crc32"),
    (raw("/acco/clip/end", "ss", "r", "0A1B2C3D"), "value", "crc32 must match"),
    (raw("/acco/status", "ssfs", "r", "running", 1.5, ""), "value", "progress must be"),
    (raw("/acco/status", "ssfs", "r", "Running", 0.5, ""), "value", "state must match"),
    (raw("/acco/error", "sis", "r", 0, "x"), "value", "code must be in 1..99"),
    (raw("/acco/result/begin", "siii", "r", 17, 1, 1), "value", "n_parts must be in 0..16"),
    (raw("/acco/ping", "s", "x" * 10_000), "oversize", "at most 9216"),
    (b"#bundle\x00" + bytes(8), "bundle", "bundles are not supported"),
    (b"", "parse", "must start with '/'"),
    (b"hello world", "parse", "must start with '/'"),
    (b"/acco/ping\x00\x00s\x00\x00\x00", "parse", "must start with ','"),
    (b"/acco/ping\x00\x00,s\x00\x00", "parse", "malformed"),  # the string is missing
    (b"/acco/ping\x00\x00,s\x00\x00\xff\xfe\x00\x00", "parse", "malformed"),  # bad UTF-8
    (b"/acco/ping\x00\x00,[s]\x00\x00\x00\x00x\x00\x00\x00", "type_tags", "'[]'"),
    (b"/acco/ping\x00\x00,q\x00\x00", "type_tags", "unsupported type tag"),
    (b"/acco/\xff\x00\x00", "parse", "malformed"),
]


@pytest.mark.parametrize(("dgram", "reason", "words"), BAD_PACKETS)
def test_decode_refuses_with_reason_and_clear_message(dgram, reason, words):
    with pytest.raises(BadMessageError) as info:
        p.decode(dgram)
    assert info.value.reason == reason
    assert words in str(info.value)
    assert info.value.code == ErrorCode.BAD_INPUT
    assert isinstance(info.value, ValueError)


def test_truncated_packets_are_parse_errors():
    dgram = p.encode(SAMPLES[5])
    for cut in range(1, len(dgram) - 20):
        with pytest.raises(BadMessageError) as info:
            p.decode(dgram[:-cut])
        assert info.value.reason in {"parse", "arg_count", "type_tags"}


@pytest.mark.parametrize(("message", "words"), [
    (p.ClipNotes("r", 0, (ClipNote(200, 0.0, 1.0),)), "note 0 pitch must be in 0..127"),
    (p.ClipNotes("r", 0, (ClipNote(60, 0.0, float("nan")),)), "finite"),
    (p.ClipNotes("r", 0, ()), "0 notes; must be 1..256"),
    (p.ClipNotes("r", 0, notes(257)), "257 notes"),
    (p.Ping("a\x00b"), "NUL"),
    (p.Ping("\ud800"), "not valid Unicode"),
    (p.Pong("t", True), "must be an integer"),  # bool is an int to Python, not to OSC
    (p.Status("r", "running", "half", ""), "must be a number"),  # type: ignore[arg-type]
    (p.ClipBegin("r", "n", 1e39, 120.0, 4, 4, 0, 0, "", ""), "length_beats must be > 0"),
])
def test_encode_validates_with_the_same_table(message, words):
    with pytest.raises(BadMessageError, match=words.replace("(", r"\(").replace(".", r"\.")):
        p.encode(message)


def test_encode_refuses_non_messages():
    with pytest.raises(BadMessageError, match="not a protocol message"):
        p.encode("hello")  # type: ignore[arg-type]


# ---- packet size -------------------------------------------------------------------------


def _largest(spec: p.MessageSpec) -> Any:
    def biggest(field: p.Field) -> Any:
        if isinstance(field, p.Text):
            return ("0" if field.pattern and "0-9a-f" in field.pattern else "x") * field.max_bytes
        if isinstance(field, p.Int):
            return max(field.choices) if field.choices else field.hi
        return 1.0 if field.hi == 1.0 else 1000.0

    values = {name: biggest(field) for name, field in spec.args}
    if spec.group is not None:
        group = spec.group
        item = group.make(*(biggest(field) for _, field in group.args))
        values[group.field] = (item,) * group.max_items
    return spec.type(**values)


@pytest.mark.parametrize("spec", p.MESSAGES, ids=lambda s: s.address)
def test_worst_case_of_every_message_fits_one_datagram(spec):
    dgram = p.encode(_largest(spec))
    assert len(dgram) <= p.MAX_PACKET_BYTES
    assert p.decode(dgram) == _largest(spec)


def test_full_note_chunk_size():
    dgram = p.encode(p.ClipNotes("r" * 64, 0, notes(256)))
    assert len(dgram) == 6496  # 20 address + 1284 tags + 68 id + 4 chunk + 256 × 20 notes


def test_encode_refuses_oversize_packets():
    message = p.ErrorReply("r", 1, "x")
    assert len(p.encode(message)) < p.MAX_PACKET_BYTES
    with pytest.raises(BadMessageError) as info:
        p.decode(raw("/acco/error", "sis", "r", 1, "x" * p.MAX_PACKET_BYTES))
    assert info.value.reason == "oversize"


# ---- chunks and CRC ----------------------------------------------------------------------


@pytest.mark.parametrize(("n", "size", "expected"), [
    (0, 256, []), (1, 256, [1]), (256, 256, [256]), (257, 256, [256, 1]),
    (600, 100, [100] * 6), (10, 3, [3, 3, 3, 1]),
])
def test_chunk_notes(n, size, expected):
    chunks = p.chunk_notes(notes(n), size)
    assert [len(c) for c in chunks] == expected
    assert tuple(x for c in chunks for x in c) == notes(n)


@pytest.mark.parametrize("size", [0, 257])
def test_chunk_notes_refuses_bad_sizes(size):
    with pytest.raises(ValueError, match="1..256"):
        p.chunk_notes(notes(3), size)


def test_crc_is_zlib_crc32_of_the_documented_bytes():
    data = b"".join(struct.pack(">BffBB", n.pitch, n.start_beats, n.duration_beats, n.velocity,
                                n.channel) for n in notes(5))
    assert p.crc32_of_notes(notes(5)) == f"{zlib.crc32(data):08x}"
    assert p.crc32_of_notes(()) == "00000000"
    assert p.crc32_of_notes([NOTE]) == "23920559"  # pinned: the canonical form never changes


def test_crc_depends_on_order_and_every_field():
    base = p.crc32_of_notes(notes(3))
    assert p.crc32_of_notes(notes(3)[::-1]) != base
    for change in ({"pitch": 61}, {"start_beats": 0.75}, {"duration_beats": 2.0},
                   {"velocity": 99}, {"channel": 2}):
        assert p.crc32_of_notes([replace(NOTE, **change)]) != p.crc32_of_notes([NOTE])


def test_crc_survives_the_float32_trip():
    sent = (ClipNote(60, 0.1, 1 / 3, 100, 1),)
    message = p.decode(p.encode(p.ClipNotes("r", 0, sent)))
    assert isinstance(message, p.ClipNotes)
    assert message.notes != sent  # the times were rounded to float32 …
    assert p.crc32_of_notes(message.notes) == p.crc32_of_notes(sent)  # … the CRC agrees


def test_crc_validates_notes():
    with pytest.raises(BadMessageError, match="note 1 velocity"):
        p.crc32_of_notes([NOTE, replace(NOTE, velocity=0)])


# ---- clip upload -------------------------------------------------------------------------


def _upload_parts(c: Clip, rid: str = "req") -> tuple[p.ClipBegin, list[p.ClipNotes], p.ClipEnd]:
    begin, chunks, end = p.clip_messages(rid, c)
    sent: list[p.Message] = [begin, *chunks, end]
    decoded: list[Any] = [p.decode(p.encode(m)) for m in sent]
    return decoded[0], decoded[1:-1], decoded[-1]


def test_upload_in_any_order_with_duplicates():
    c = clip(1000)
    begin, chunks, end = _upload_parts(c)
    assert [len(ch.notes) for ch in chunks] == [256, 256, 256, 232]
    upload = p.ClipUpload(begin)
    order = chunks[::-1] + chunks[1:3]
    added = [upload.add(ch) for ch in order]
    assert added == [True] * 4 + [False, False]
    assert upload.complete and upload.missing() == ()
    received = upload.finish(end, "osc:test")
    assert received == replace(c, source="osc:test")


def test_upload_reports_missing_chunks():
    begin, chunks, end = _upload_parts(clip(1000))
    upload = p.ClipUpload(begin)
    upload.add(chunks[2])
    assert upload.missing() == (0, 1, 3)
    assert not upload.complete
    with pytest.raises(BadMessageError, match=r"3 of 4 chunks missing \(0, 1, 3\)") as info:
        upload.finish(end, "s")
    assert info.value.reason == "incomplete"


def test_upload_crc_mismatch():
    begin, chunks, _ = _upload_parts(clip(300))
    upload = p.ClipUpload(begin)
    for ch in chunks:
        upload.add(ch)
    with pytest.raises(BadMessageError, match="CRC mismatch") as info:
        upload.finish(p.ClipEnd("req", "00000000"), "s")
    assert info.value.reason == "crc"


def test_upload_refuses_foreign_and_out_of_range_chunks():
    begin, chunks, _ = _upload_parts(clip(300))
    upload = p.ClipUpload(begin)
    with pytest.raises(BadMessageError, match="chunk 2 is out of range 0..1"):
        upload.add(replace(chunks[0], chunk=2))
    with pytest.raises(BadMessageError, match="given to the upload of req"):
        upload.add(replace(chunks[0], request_id="other"))
    upload.add(chunks[0])
    with pytest.raises(BadMessageError, match="more notes than the 300 announced"):
        upload.add(replace(chunks[0], chunk=1))


@pytest.mark.parametrize(("n_notes", "n_chunks"), [(300, 1), (3, 4), (0, 1), (1, 0)])
def test_upload_refuses_impossible_chunk_counts(n_notes, n_chunks):
    begin = p.ClipBegin("r", "n", 16.0, 120.0, 4, 4, n_notes, n_chunks, "", "")
    with pytest.raises(BadMessageError, match="cannot come in"):
        p.ClipUpload(begin)


def test_empty_clip_uploads():
    begin, chunks, end = _upload_parts(replace(clip(0), notes=()))
    assert chunks == []
    upload = p.ClipUpload(begin)
    assert upload.finish(end, "s").notes == ()


def test_too_large_clips_are_code_2():
    with pytest.raises(ClipTooLargeError, match=f"at most {MAX_CLIP_NOTES}") as info:
        p.ClipUpload(p.ClipBegin("r", "n", 16.0, 120.0, 4, 4, MAX_CLIP_NOTES + 1, 40, "", ""))
    assert info.value.code == ErrorCode.TOO_LARGE == 2
    bars_beats = MAX_CLIP_BARS * 3.0  # 3/4: three beats a bar
    p.ClipUpload(p.ClipBegin("r", "n", bars_beats, 120.0, 3, 4, 0, 0, "", ""))
    with pytest.raises(ClipTooLargeError, match=f"{MAX_CLIP_BARS + 1} bars"):
        p.ClipUpload(p.ClipBegin("r", "n", bars_beats + 1, 120.0, 3, 4, 0, 0, "", ""))
    # a note far past the clip end makes it too long as well
    late = (ClipNote(60, MAX_CLIP_BARS * 4.0, 1.0),)
    upload = p.ClipUpload(p.ClipBegin("r", "n", 16.0, 120.0, 4, 4, 1, 1, "", ""))
    upload.add(p.ClipNotes("r", 0, late))
    with pytest.raises(ClipTooLargeError, match=f"{MAX_CLIP_BARS + 1} bars"):
        upload.finish(p.ClipEnd("r", p.crc32_of_notes(late)), "s")


def test_client_side_size_check():
    dense = tuple(ClipNote(60, (i % 2000) * 0.5, 0.5) for i in range(MAX_CLIP_NOTES + 1))
    full = replace(clip(0, length_beats=MAX_CLIP_BARS * 4.0), notes=dense[:-1])
    p.check_clip_size(full)
    with pytest.raises(ClipTooLargeError, match="10001 notes"):
        p.check_clip_size(replace(full, notes=dense))
    with pytest.raises(ClipTooLargeError):
        p.clip_messages("r", clip(10, length_beats=MAX_CLIP_BARS * 4.0 + 4))
    with pytest.raises(BadMessageError, match="ts_den"):
        p.check_clip_size(replace(clip(1), ts_den=0))


def test_clip_messages_cut_long_names_to_fit():
    begin, _, _ = p.clip_messages("r", replace(clip(1), name="é" * 200, key_hint=None))
    assert begin.name == "é" * 128 and begin.key_hint == ""
    p.encode(begin)


# ---- results -----------------------------------------------------------------------------


def result(n_chords_part: int = 600, n_piano: int = 300, n_symbols: int = 300,
           summary: dict[str, Any] | None = None) -> GenerateResult:
    symbols = tuple(ChordSymbol(i * 2.0, 2.0, ["C", "Am7", "F/A", "G7sus4"][i % 4])
                    for i in range(n_symbols))
    parts = {"piano": notes(n_piano, 1), "chords": notes(n_chords_part)}
    return GenerateResult("req", "src", parts, symbols,
                          summary if summary is not None else {"key": "C major"})


def _round_trip(messages: list[p.ResultMessage]) -> list[p.ResultMessage]:
    return [p.decode(p.encode(m)) for m in messages]  # type: ignore[misc]


def test_result_messages_layout():
    messages = p.result_messages(result())
    kinds = [type(m).__name__ for m in messages]
    assert kinds[0] == "ResultBegin" and messages[0] == p.ResultBegin("req", 2, 3, 1)
    assert [m.part for m in messages if isinstance(m, p.PartBegin)] == ["chords", "piano"]
    begins = {m.part: m for m in messages if isinstance(m, p.PartBegin)}
    assert begins["chords"] == p.PartBegin("req", "chords", "Chords", 2, 600, 3)
    assert begins["piano"] == p.PartBegin("req", "piano", "Piano", 3, 300, 2)
    assert {n.channel for m in messages if isinstance(m, p.PartNotes) and m.part == "piano"
            for n in m.notes} == {3}
    assert [len(m.chords) for m in messages if isinstance(m, p.Chords)] == [128, 128, 44]


def test_result_round_trip_in_any_order_with_duplicates():
    expected = result()
    messages = _round_trip(p.result_messages(expected))
    shuffled = messages + messages[::3]
    random.Random(7).shuffle(shuffled)
    assembly = p.ResultAssembly("req")
    for m in shuffled:
        assembly.add(m)
    assert assembly.complete
    got = assembly.result("src")
    assert got.parts == {"chords": notes(600, 2), "piano": notes(300, 3)}
    assert list(got.parts) == ["chords", "piano"]
    assert got.chords == expected.chords
    assert got.summary == {"key": "C major"}
    assert (got.request_id, got.source) == ("req", "src")


def test_result_missing_pieces_are_described():
    messages = _round_trip(p.result_messages(result()))
    assembly = p.ResultAssembly("req")
    assert assembly.describe_missing() == "no result yet" and not assembly.started
    dropped = next(m for m in messages if isinstance(m, p.PartNotes) and m.part == "piano")
    for m in messages:
        if m is not dropped:
            assembly.add(m)
    assert assembly.started and not assembly.complete
    assert assembly.describe_missing() == "missing part piano"
    with pytest.raises(BadMessageError, match="incomplete: missing part piano"):
        assembly.result("src")
    assembly.add(dropped)
    assert assembly.complete


def test_result_crc_mismatch():
    messages = [replace(m, crc32="12345678") if isinstance(m, p.PartEnd) else m
                for m in p.result_messages(result())]
    assembly = p.ResultAssembly("req")
    with pytest.raises(BadMessageError, match="CRC mismatch") as info:
        for m in messages:
            assembly.add(m)
    assert info.value.reason == "crc"


def test_result_with_unknown_part_is_an_engine_error():
    bad = replace(result(), parts={"kazoo": notes(3)})
    with pytest.raises(BridgeError, match="'kazoo' has no MIDI channel") as info:
        p.result_messages(bad)
    assert info.value.code == ErrorCode.ENGINE_ERROR


def test_result_with_an_invalid_note_cannot_be_encoded():
    bad = replace(result(), parts={"piano": (replace(NOTE, velocity=0),)})
    with pytest.raises(BadMessageError, match="velocity"):
        p.result_messages(bad)


def test_big_summary_is_chunked_and_huge_summary_truncated():
    phrases = [{"index": i, "label": "A", "alternatives": ["x" * 50] * 4} for i in range(100)]
    big = {"key": "C major", "phrases": phrases}
    messages = _round_trip(p.result_messages(result(3, 3, 3, big)))
    pieces = [m for m in messages if isinstance(m, p.Summary)]
    assert len(pieces) > 1
    assembly = p.ResultAssembly("req")
    for m in messages:
        assembly.add(m)
    assert assembly.result("s").summary == big
    huge = {"key": "C major", "blob": "x" * (p.MAX_SUMMARY_BYTES + 1)}
    assembly = p.ResultAssembly("req")
    for m in p.result_messages(result(3, 3, 3, huge)):
        assembly.add(m)
    assert assembly.result("s").summary == {"key": "C major", "truncated": True}


def test_empty_result_round_trips():
    empty = GenerateResult("req", "src", {}, (), {})
    messages = p.result_messages(empty)
    assert messages[0] == p.ResultBegin("req", 0, 1, 1)
    assembly = p.ResultAssembly("req")
    for m in _round_trip(messages):
        assembly.add(m)
    assert assembly.result("src") == empty


def test_result_assembly_refuses_inconsistent_pieces():
    assembly = p.ResultAssembly("req")
    with pytest.raises(BadMessageError, match="given to the result of req"):
        assembly.add(p.ResultBegin("other", 1, 1, 1))
    assembly.add(p.ResultBegin("req", 1, 1, 1))
    assembly.add(p.PartBegin("req", "piano", "Piano", 3, 1, 1))
    with pytest.raises(BadMessageError, match="2 parts; 1 announced"):
        assembly.add(p.PartBegin("req", "chords", "Chords", 2, 1, 1))
    assembly.add(p.Chords("req", 0, 2, ()))
    with pytest.raises(BadMessageError, match="does not fit"):
        assembly.add(p.Chords("req", 1, 3, ()))


# ---- control changes (protocol 2) ---------------------------------------------------------


def pedal(n: int, channel: int = 1) -> tuple[ClipControl, ...]:
    """n sustain-pedal changes, down and up by turns, float32-exact."""
    return tuple(ClipControl(i * 0.5, 64, 0 if i % 2 else 127, channel) for i in range(n))


def with_pedal(n: int = 300) -> GenerateResult:
    return replace(result(), controls={"piano": pedal(n)})


def test_crc_of_controls_is_zlib_crc32_of_the_documented_bytes():
    data = b"".join(struct.pack(">fBBB", c.start_beats, c.controller, c.value, c.channel)
                    for c in pedal(5))
    assert p.crc32_of_controls(pedal(5)) == f"{zlib.crc32(data):08x}"
    assert p.crc32_of_controls(()) == "00000000"
    with pytest.raises(BadMessageError, match="control 1 value"):
        p.crc32_of_controls([ClipControl(0.0, 64, 127), ClipControl(1.0, 64, 128)])


def test_controls_travel_per_part_on_its_channel():
    messages = p.result_messages(with_pedal())
    controls = [m for m in messages if isinstance(m, p.PartControls)]
    assert [(m.part, m.chunk, m.n_chunks, m.n_controls, len(m.controls)) for m in controls] == [
        ("chords", 0, 1, 0, 0), ("piano", 0, 2, 300, 256), ("piano", 1, 2, 300, 44)]
    assert {c.channel for m in controls for c in m.controls} == {3}
    assert {m.crc32 for m in controls if m.part == "piano"} == {
        p.crc32_of_controls(pedal(300, 3))}
    # each part's controls come before its end
    kinds = [(type(m).__name__, getattr(m, "part", "")) for m in messages]
    assert kinds.index(("PartControls", "piano")) < kinds.index(("PartEnd", "piano"))


def test_result_with_controls_round_trips_in_any_order_with_duplicates():
    messages = _round_trip(p.result_messages(with_pedal()))
    shuffled = messages + messages[::3]
    random.Random(11).shuffle(shuffled)
    assembly = p.ResultAssembly("req")
    for m in shuffled:
        assembly.add(m)
    got = assembly.result("src")
    assert got.controls == {"piano": pedal(300, 3)}
    assert got.parts == {"chords": notes(600, 2), "piano": notes(300, 3)}


def test_a_protocol_2_part_waits_for_its_controls():
    messages = _round_trip(p.result_messages(with_pedal()))
    late = [m for m in messages if isinstance(m, p.PartControls) and m.part == "piano"]
    assembly = p.ResultAssembly("req")
    for m in messages:
        if m not in late:
            assembly.add(m)
    assert not assembly.complete
    assert assembly.describe_missing() == "missing part piano controls"
    assembly.add(late[1])
    assert not assembly.complete  # one of two chunks
    assembly.add(late[0])
    assert assembly.complete and assembly.result("s").controls["piano"] == pedal(300, 3)


def test_protocol_1_results_carry_no_controls_and_are_complete_without():
    """An old client (protocol 1) gets exactly the old messages; a new client of an old bridge
    finishes a result that brings no controls."""
    old = p.result_messages(with_pedal(), proto=1)
    assert not any(isinstance(m, p.PartControls) for m in old)
    assert old == [m for m in p.result_messages(with_pedal())
                   if not isinstance(m, p.PartControls)]
    assembly = p.ResultAssembly("req", proto=1)
    for m in _round_trip(old):
        assembly.add(m)
    got = assembly.result("src")
    assert got.controls == {} and got.parts["piano"] == notes(300, 3)


def test_a_protocol_1_assembly_still_waits_for_controls_it_has_begun_to_get():
    messages = _round_trip(p.result_messages(with_pedal()))
    first = next(m for m in messages if isinstance(m, p.PartControls) and m.part == "piano")
    assembly = p.ResultAssembly("req", proto=1)
    for m in messages:
        if not isinstance(m, p.PartControls) or m is first:
            assembly.add(m)
    assert assembly.describe_missing() == "missing part piano controls"


def test_controls_crc_mismatch_and_inconsistent_totals():
    messages = [replace(m, crc32="12345678") if isinstance(m, p.PartControls) else m
                for m in p.result_messages(with_pedal())]
    assembly = p.ResultAssembly("req")
    with pytest.raises(BadMessageError, match="controls: CRC mismatch") as info:
        for m in messages:
            assembly.add(m)
    assert info.value.reason == "crc"
    assembly = p.ResultAssembly("req")
    assembly.add(p.PartControls("req", "piano", 0, 2, 300, "00000000", pedal(256)))
    with pytest.raises(BadMessageError, match="chunk 1 announces 299 in 2 chunks"):
        assembly.add(p.PartControls("req", "piano", 1, 2, 299, "00000000", pedal(43)))
    with pytest.raises(BadMessageError, match="cannot come in 1 chunks"):
        p.ResultAssembly("req").add(p.PartControls("req", "piano", 0, 1, 300, "0" * 8, ()))
    with pytest.raises(ClipTooLargeError, match="at most"):
        p.ResultAssembly("req").add(
            p.PartControls("req", "piano", 0, 1, p.MAX_PART_CONTROLS + 1, "0" * 8, ()))
