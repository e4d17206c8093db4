"""Hostile melody files (issue 13): every problem in a MIDI or MusicXML file is one
BadInputError naming the file and the field, and `accobridge harmonize` turns it into one line
on stderr with exit status 2; never a traceback, a MemoryError or minutes of work. Each file is
built here as bytes, from a valid file and one change."""

from __future__ import annotations

import io
import struct
import time
import zipfile
from pathlib import Path

import pytest

from engine.errors import BadInputError, UnsupportedMeterError
from engine.melody_source import MAX_FILE_NOTES, MAX_MIDI_BYTES, melody_from_notes
from engine.midi_io import read_melody
from engine.types import Meter, Note
from ui.cli import main

TPB = 480


# ------------------------------------------------------------------------------ MIDI bytes


def varlen(value: int) -> bytes:
    out = [value & 0x7F]
    while value > 0x7F:
        value >>= 7
        out.append(0x80 | (value & 0x7F))
    return bytes(reversed(out))


def meta(kind: int, payload: bytes, delta: int = 0) -> bytes:
    return varlen(delta) + bytes([0xFF, kind]) + varlen(len(payload)) + payload


def scale(count: int = 8, length: int = TPB) -> bytes:
    """`count` notes one after another; running status after the first note_on."""
    events = b""
    for i in range(count):
        pitch = 60 + i % 12
        events += b"\x00" + (b"\x90" if i == 0 else b"") + bytes([pitch, 80])
        events += varlen(length) + bytes([pitch, 0])
    return events


def smf(track: bytes, *, header_length: int = 6, track_length: int | None = None,
        division: int = TPB) -> bytes:
    """A type-0 file of one track; the lengths in it may lie."""
    body = track + meta(0x2F, b"")
    length = len(body) if track_length is None else track_length
    return (b"MThd" + struct.pack(">LHHH", header_length, 0, 1, division)
            + b"MTrk" + struct.pack(">L", length) + body)


TEMPO_120 = meta(0x51, (500_000).to_bytes(3, "big"))


def midi_cases() -> dict[str, tuple[bytes, str]]:
    lying = smf(meta(0x03, b"Melody") + scale(), header_length=0xFFFF_FFFF)
    many = smf(scale(MAX_FILE_NOTES + 1000, length=1))
    return {
        "first tempo 0": (smf(meta(0x51, b"\0\0\0") + scale()), "set_tempo at tick 0"),
        "later tempo 0": (smf(TEMPO_120 + scale(4) + meta(0x51, b"\0\0\0") + scale(4)),
                          "set_tempo at tick 1920"),
        "tempo 2 bytes": (smf(meta(0x51, b"\x07\xa1") + scale()), "set_tempo"),
        "key signature 9 sharps": (smf(meta(0x59, b"\x09\x00") + scale()), "key_signature"),
        "key signature mode 3": (smf(meta(0x59, b"\x00\x03") + scale()), "key_signature"),
        "time signature over 2^200": (smf(meta(0x58, b"\x04\xc8\x18\x08") + scale()),
                                      "time_signature"),
        "ticks per beat 0": (smf(scale(), division=0), "ticks per beat"),
        "header length 4 GB": (lying.ljust(361, b"\0"), "header length 4,294,967,295"),
        "track length 4 GB": (smf(scale(), track_length=0xFFFF_FFF0), "track 0 says"),
        "delta time of 5 bytes": (smf(b"\xff\xff\xff\xff\x7f\x90\x3c\x50" + scale()),
                                  "longer than 4 bytes"),
        "undefined status": (smf(b"\x00\xf4" + scale()), "0xF4"),
        "data before any status": (smf(b"\x00\x3c\x50" + scale()), "without a status byte"),
        "more notes than read": (many, f"more than {MAX_FILE_NOTES:,} notes"),
        "file over the size cap": (many + bytes(MAX_MIDI_BYTES),
                                   f"at most {MAX_MIDI_BYTES:,} bytes"),
    }


# -------------------------------------------------------------------------- MusicXML text

MUSICXML = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1">
  <part-list><score-part id="P1"><part-name>Voice</part-name></score-part></part-list>
  <part id="P1">
    <measure number="1">
      <attributes><divisions>2</divisions><key><fifths>1</fifths><mode>major</mode></key>
        <time><beats>4</beats><beat-type>4</beat-type></time></attributes>
      <direction><sound tempo="100"/></direction>
      <note><pitch><step>G</step><octave>4</octave></pitch><duration>2</duration></note>
      <note><pitch><step>A</step><octave>4</octave></pitch><duration>2</duration></note>
      <note><pitch><step>B</step><alter>0</alter><octave>4</octave></pitch><duration>2</duration>
      </note>
      <note><pitch><step>D</step><octave>5</octave></pitch><duration>2</duration></note>
    </measure>
    <measure number="2">
      <note><pitch><step>C</step><octave>5</octave></pitch><duration>4</duration></note>
      <backup><duration>4</duration></backup>
      <forward><duration>4</duration></forward>
      <note><pitch><step>G</step><octave>4</octave></pitch><duration>4</duration></note>
    </measure>
  </part>
</score-partwise>
"""


def mxl(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


CONTAINER = (b'<?xml version="1.0"?><container><rootfiles><rootfile full-path="score.xml"/>'
             b"</rootfiles></container>")


def changed(old: str, new: str) -> bytes:
    assert old in MUSICXML
    return MUSICXML.replace(old, new, 1).encode()


def musicxml_cases() -> dict[str, tuple[str, bytes, str]]:
    """name -> (suffix, bytes, what the message must name)."""
    cases: dict[str, tuple[str, bytes, str]] = {}
    for value in ("0", "-2", "two"):
        cases[f"divisions {value}"] = (".musicxml", changed(
            "<divisions>2</divisions>", f"<divisions>{value}</divisions>"), "<divisions>")
    for value in ("long", "-1", "1e309", "1/0", "nan"):
        cases[f"duration {value}"] = (".musicxml", changed(
            "<duration>2</duration>", f"<duration>{value}</duration>"), "<duration>")
    for field, old, value in (
        ("step", "<step>G</step>", "H"), ("octave", "<octave>4</octave>", "x"),
        ("octave", "<octave>4</octave>", "3000"), ("alter", "<alter>0</alter>", "sharp"),
        ("alter", "<alter>0</alter>", "nan"), ("fifths", "<fifths>1</fifths>", "many"),
        ("beats", "<beats>4</beats>", "four"), ("beat-type", "<beat-type>4</beat-type>", "0"),
    ):
        cases[f"{field} {value}"] = (".musicxml", changed(old, f"<{field}>{value}</{field}>"),
                                     f"<{field}>")
    cases["huge backup"] = (".musicxml", changed(
        "<backup><duration>4", "<backup><duration>100000000"), "<backup>")
    cases["huge forward"] = (".musicxml", changed(
        "<forward><duration>4", "<forward><duration>100000000"), "<forward>")
    for value in ("0", "inf", "nan", "fast", "-90"):
        cases[f"sound tempo {value}"] = (".musicxml", changed(
            'tempo="100"', f'tempo="{value}"'), "<sound tempo>")
    cases["pitch over MIDI 127"] = (".musicxml", changed(
        "<step>C</step><octave>5</octave>", "<step>B</step><alter>1</alter><octave>9</octave>"),
        "<pitch>")
    cases["tens of thousands of notes"] = (".musicxml", changed(
        "</measure>", "<note/>" * (MAX_FILE_NOTES + 10) + "</measure>"), "notes")
    cases[".mxl inflating to 20 MB"] = (".mxl", mxl(
        {"META-INF/container.xml": CONTAINER, "score.xml": MUSICXML.encode() + bytes(20 << 20)}),
        "inflates")
    cases[".mxl compressed 1000 times"] = (".mxl", mxl(
        {"META-INF/container.xml": CONTAINER, "score.xml": MUSICXML.encode() + bytes(2 << 20)}),
        "compressed at most")
    laughs = "".join(f'<!ENTITY l{i + 1} "{f"&l{i};" * 10}">' for i in range(9))
    cases["entity expansion"] = (".musicxml", changed(
        "<score-partwise", f'<!DOCTYPE score-partwise [<!ENTITY l0 "{"ha" * 1000}">{laughs}]>'
        "<score-partwise").replace(b"Voice", b"&l9;"), "<!ENTITY>")
    claims = bytearray(mxl({"META-INF/container.xml": CONTAINER, "score.xml": MUSICXML.encode()}))
    entry = claims.rfind(b"PK\x01\x02")  # the score's central directory entry
    claims[entry + 24 : entry + 28] = struct.pack("<L", 3_000_000_000)
    cases[".mxl claiming 3 GB"] = (".mxl", bytes(claims), "inflates")
    return cases


def all_cases() -> dict[str, tuple[str, bytes, str]]:
    cases = {name: (".mid", data, needle) for name, (data, needle) in midi_cases().items()}
    return cases | musicxml_cases()


CASES = all_cases()


@pytest.fixture
def hostile(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    suffix, data, needle = CASES[request.param]
    path = tmp_path / f"hostile{suffix}"
    path.write_bytes(data)
    return path, needle


@pytest.mark.parametrize("hostile", list(CASES), indirect=True)
def test_hostile_file_is_one_clear_error(hostile: tuple[Path, str]) -> None:
    path, needle = hostile
    began = time.perf_counter()
    with pytest.raises(BadInputError) as info:
        read_melody(path)
    message = str(info.value)
    assert path.name in message and needle in message, message
    assert "\n" not in message
    assert time.perf_counter() - began < 5  # the worst of them was 14 s before


@pytest.mark.parametrize("hostile", list(CASES), indirect=True)
def test_cli_says_one_line_and_exits_2(hostile: tuple[Path, str], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path, needle = hostile
    out = tmp_path / "out.mid"
    with pytest.raises(SystemExit) as exit_info:
        main(["harmonize", str(path), "-o", str(out)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("accobridge: warning")]
    assert exit_info.value.code == 2
    assert len(lines) == 1 and lines[0].startswith("accobridge: error:") and needle in lines[0]
    assert not out.exists()


def test_additive_meter_names_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "five.musicxml"
    path.write_bytes(changed("<beats>4</beats><beat-type>4", "<beats>3+2</beats><beat-type>8"))
    with pytest.raises(UnsupportedMeterError, match=r"additive time signature 3\+2/8 in measure "
                       r"1 of part 'P1' is not supported \(supported: 4/4, 2/4"):
        read_melody(path)


def test_the_valid_files_read(tmp_path: Path) -> None:
    """The cases above are one change away from these."""
    good: dict[str, bytes] = {
        "good.mid": smf(TEMPO_120 + meta(0x59, b"\xff\x01") + scale()),
        "good.musicxml": MUSICXML.encode(),
        "good.mxl": mxl({"META-INF/container.xml": CONTAINER, "score.xml": MUSICXML.encode()}),
    }
    for name, data in good.items():
        (tmp_path / name).write_bytes(data)
        melody = read_melody(tmp_path / name)
        assert len(melody.notes) >= 6, name
    assert read_melody(tmp_path / "good.mid").key_signature is not None


@pytest.mark.parametrize("note", [Note(40_000, 0, 480), Note(60, -480, 480), Note(60, 0, 0)])
def test_notes_from_elsewhere_are_checked_before_the_grid(note: Note) -> None:
    """A clip's notes reach the int16 pitch grid through melody_from_notes: checked there."""
    notes = [Note(60 + i, 480 * (i + 1), 480) for i in range(4)] + [note]
    with pytest.raises(BadInputError, match="is not a MIDI note"):
        melody_from_notes(notes, TPB, Meter(4, 4), ((0, 500_000),))


def test_a_tempo_of_zero_from_elsewhere_is_refused() -> None:
    notes = [Note(60 + i, 480 * i, 480) for i in range(4)]
    with pytest.raises(BadInputError, match="not a tempo"):
        melody_from_notes(notes, TPB, Meter(4, 4), ((0, 500_000), (960, 0)))
