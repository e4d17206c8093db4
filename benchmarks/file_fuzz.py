"""Seeded file fuzzer for the melody readers (issue 13):
`python3 -m benchmarks.file_fuzz --cases 4500 --seed N [--jobs 2] [--save DIR]`.

Each case is a valid file (the demo melody and two small authored tunes, as MIDI, MusicXML and
.mxl) changed by one to three seeded mutations: byte flips, truncation, inserted and repeated
bytes, lying lengths and header fields, field swaps, value extremes (0, negative, huge, NaN,
text in numbers), deep nesting, long strings, note floods, entity and zip bombs. A case goes
through what `accobridge harmonize FILE -o OUT` does with a file (load, harmonize, write) in a
worker process with an address-space limit, under a wall-clock limit, and ends as one outcome:
`ok`, `error: <kind>` (the clear BadInputError), `traceback: <type> at <place>`, `timeout`,
`memory` or `crash`. 0 tracebacks, timeouts, memory errors and crashes is the goal. Case `i` of
seed `N` is the same file on every run; `--save` writes the files of the bad outcomes.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import multiprocessing.connection
import os
import random
import re
import resource
import struct
import sys
import tempfile
import time
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

BAD_OUTCOMES = ("traceback", "timeout", "memory", "crash")
MEMORY_HEADROOM = 1 << 30  # address space a case may add to a warmed-up worker
CASE_SECONDS = 10.0  # a harmonize of the longest supported melody takes well under 1 s
MAKE_SECONDS = 30.0  # making the largest case (a 40 MB zip bomb) takes about a second
MAX_GROWTH = 24 << 20  # what a mutation may add to a file: past every reader's size cap

# ----------------------------------------------------------------------------- seed files

AUTHORED_MUSICXML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 3.1 Partwise//EN"
  "http://www.musicxml.org/dtds/partwise.dtd">
<score-partwise version="3.1">
  <part-list>
    <score-part id="P1"><part-name>Flute</part-name></score-part>
    <score-part id="P2"><part-name>Piano</part-name></score-part>
  </part-list>
  <part id="P1">
    <measure number="1">
      <attributes><divisions>4</divisions><key><fifths>-2</fifths><mode>minor</mode></key>
        <time><beats>3</beats><beat-type>4</beat-type></time></attributes>
      <direction placement="above"><sound tempo="84"/></direction>
      <note><pitch><step>G</step><octave>4</octave></pitch><duration>4</duration></note>
      <note><pitch><step>B</step><alter>-1</alter><octave>4</octave></pitch>
        <duration>2</duration></note>
      <note><pitch><step>C</step><octave>5</octave></pitch><duration>2</duration></note>
      <note><pitch><step>D</step><octave>5</octave></pitch><duration>4</duration>
        <tie type="start"/></note>
    </measure>
    <measure number="2">
      <note><pitch><step>D</step><octave>5</octave></pitch><duration>4</duration>
        <tie type="stop"/></note>
      <note><grace/><pitch><step>E</step><alter>-1</alter><octave>5</octave></pitch></note>
      <note><pitch><step>C</step><octave>5</octave></pitch><duration>4</duration></note>
      <note><pitch><step>A</step><octave>4</octave></pitch><duration>3</duration></note>
      <note><pitch><step>F</step><alter>1</alter><octave>4</octave></pitch>
        <duration>1</duration></note>
    </measure>
    <measure number="3">
      <note><pitch><step>G</step><octave>4</octave></pitch><duration>8</duration></note>
      <backup><duration>8</duration></backup>
      <note><pitch><step>D</step><octave>4</octave></pitch><duration>8</duration>
        <voice>2</voice></note>
      <forward><duration>4</duration></forward>
    </measure>
    <measure number="4">
      <direction><sound tempo="72"/></direction>
      <note><pitch><step>B</step><alter>-1</alter><octave>4</octave></pitch>
        <duration>4</duration></note>
      <note><chord/><pitch><step>G</step><octave>4</octave></pitch><duration>4</duration></note>
      <note><pitch><step>A</step><octave>4</octave></pitch><duration>4</duration></note>
      <note><rest/><duration>4</duration></note>
    </measure>
  </part>
  <part id="P2">
    <measure number="1">
      <attributes><divisions>1</divisions></attributes>
      <note><pitch><step>G</step><octave>2</octave></pitch><duration>3</duration></note>
      <note><chord/><pitch><step>D</step><octave>3</octave></pitch><duration>3</duration></note>
    </measure>
  </part>
</score-partwise>
"""

CONTAINER = ('<?xml version="1.0" encoding="UTF-8"?><container version="1.0"><rootfiles>'
             '<rootfile full-path="{name}" media-type="application/vnd.recordare.musicxml+xml"/>'
             "</rootfiles></container>")


SHARP_SPELLING = tuple((name[0], len(name) > 1) for name in
                       ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"))


def melody_musicxml(melody: Any) -> str:
    """A Melody as one-part MusicXML (divisions = ticks per beat, rests as <forward>)."""
    signature = melody.key_signature
    major_tonic = 0 if signature is None else (
        signature.tonic_pc + (3 if signature.mode == "minor" else 0))
    fifths = (major_tonic * 7) % 12
    fifths = fifths - 12 if fifths > 6 else fifths
    mode = "minor" if signature is not None and signature.mode == "minor" else "major"
    body, now = [], 0
    for note in melody.notes:
        if note.start_tick > now:
            body.append(f"<forward><duration>{note.start_tick - now}</duration></forward>")
        step, sharp = SHARP_SPELLING[note.pitch % 12]
        body.append(f"<note><pitch><step>{step}</step>{'<alter>1</alter>' if sharp else ''}"
                    f"<octave>{note.pitch // 12 - 1}</octave></pitch>"
                    f"<duration>{note.duration_tick}</duration></note>")
        now = note.end_tick
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="4.0"><part-list>'
        '<score-part id="P1"><part-name>Melody</part-name></score-part></part-list>'
        '<part id="P1"><measure number="1"><attributes>'
        f"<divisions>{melody.ticks_per_beat}</divisions><key><fifths>{fifths}</fifths>"
        f"<mode>{mode}</mode></key>"
        f"<time><beats>{melody.meter.numerator}</beats>"
        f"<beat-type>{melody.meter.denominator}</beat-type></time></attributes>"
        f'<direction><sound tempo="{melody.tempo_bpm:g}"/></direction>'
        + "\n".join(body) + "</measure></part></score-partwise>\n"
    )


def mxl(document: bytes, name: str = "score/tune.xml") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", "application/vnd.recordare.musicxml")
        archive.writestr("META-INF/container.xml", CONTAINER.format(name=name))
        archive.writestr(name, document)
    return buffer.getvalue()


@cache
def seed_files() -> tuple[tuple[str, str, bytes], ...]:
    """(name, suffix, bytes) of the valid files every case starts from, written by the
    engine's own writer (MIDI) and by hand (MusicXML)."""
    from engine.demo import demo_melody, melody_from_steps
    from engine.midi_io import write_song
    from engine.types import Key, Meter, Note

    demo = demo_melody()
    waltz = melody_from_steps(
        [(67, 4), (70, 2), (72, 2), (74, 8), (75, 4), (74, 4), (72, 4), (70, 8), (0, 4)] * 4,
        meter=Meter(3, 4), tempo_bpm=84.0, key=Key(7, "minor"))
    waltz = replace(waltz, tempo_changes=((0, 714_286), (5760, 833_333)))
    chords = [Note(p, bar * 1440, 1440, 70) for bar in range(12) for p in (43, 50, 58)]
    files: list[tuple[str, str, bytes]] = []
    with tempfile.TemporaryDirectory() as folder:
        for name, melody, tracks in (("demo", demo, []), ("waltz", waltz,
                                                          [("Piano", 2, chords)])):
            path = Path(folder) / f"{name}.mid"
            write_song(path, melody, tracks)
            files.append((f"{name}.mid", ".mid", path.read_bytes()))
    demo_xml = melody_musicxml(demo).encode()
    files += [("demo.musicxml", ".musicxml", demo_xml),
              ("waltz.musicxml", ".musicxml", AUTHORED_MUSICXML.encode()),
              ("waltz.mxl", ".mxl", mxl(AUTHORED_MUSICXML.encode()))]
    return tuple(files)


# ------------------------------------------------------------------------------ mutations

Mutation = Callable[[random.Random, bytes], bytes]
EXTREME_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF)
EXTREME_TEXTS = (
    "0", "-1", "-0", "-2147483649", "4294967296", "99999999999999999999999", "1e309", "-1e309",
    "1E-400", "nan", "NaN", "inf", "-Infinity", "1/0", "3+2", "2+2+3", "four", "x", "", "  ",
    "0x10", "1_000", "½", "\u0663", "1" * 5000, "0." + "0" * 5000 + "1", "a" * 100_000,
    "\u202e\x1b[31m", "1.5", "-0.5", "+7", "07",
)
TAGS = ("note", "pitch", "step", "octave", "alter", "duration", "divisions", "beats",
        "beat-type", "fifths", "mode", "backup", "forward", "chord", "tie", "measure", "part",
        "attributes", "time", "key", "sound", "grace", "rest", "score-partwise")


def _position(rng: random.Random, data: bytes) -> int:
    return rng.randrange(max(1, len(data)))


def flip_bits(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[_position(rng, out)] ^= 1 << rng.randrange(8)
    return bytes(out)


def set_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if out:
            out[_position(rng, out)] = rng.choice((*EXTREME_BYTES, rng.randrange(256)))
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: _position(rng, data)]


def insert_bytes(rng: random.Random, data: bytes) -> bytes:
    at = _position(rng, data)
    noise = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return data[:at] + noise + data[at:]


def delete_slice(rng: random.Random, data: bytes) -> bytes:
    at = _position(rng, data)
    return data[:at] + data[at + rng.randint(1, 256):]


def repeat_slice(rng: random.Random, data: bytes) -> bytes:
    at = _position(rng, data)
    piece = data[at : at + rng.randint(1, 64)]
    count = min(rng.choice((2, 100, 10_000, 200_000)), MAX_GROWTH // max(1, len(piece)))
    return data[:at] + piece * count + data[at:]


def swap_slices(rng: random.Random, data: bytes) -> bytes:
    """A field swap, blind: two equal-length runs of bytes trade places."""
    size = rng.choice((1, 2, 3, 4, 8))
    a, b = sorted((_position(rng, data), _position(rng, data)))
    if b - a < size or b + size > len(data):
        return data
    return data[:a] + data[b : b + size] + data[a + size : b] + data[a : a + size] + \
        data[b + size :]


BYTE_MUTATIONS: tuple[Mutation, ...] = (flip_bits, set_bytes, truncate, insert_bytes,
                                         delete_slice, repeat_slice, swap_slices)


def _extreme_int(rng: random.Random, width: int) -> bytes:
    top = (1 << (8 * width)) - 1
    value = rng.choice((0, 1, 2, top, top - 1, 1 << (8 * width - 1), rng.randrange(top + 1)))
    return value.to_bytes(width, "big")


def midi_header_field(rng: random.Random, data: bytes) -> bytes:
    """MThd length, format, track count or ticks per beat set to an extreme."""
    at, width = rng.choice(((4, 4), (8, 2), (10, 2), (12, 2)))
    return data[:at] + _extreme_int(rng, width) + data[at + width :]


def midi_chunk_length(rng: random.Random, data: bytes) -> bytes:
    starts = [m.start() for m in re.finditer(b"MTrk", data)]
    if not starts:
        return data
    at = rng.choice(starts) + 4
    (length,) = struct.unpack(">L", data[at : at + 4].ljust(4, b"\0"))
    value = rng.choice((0, 1, length - 1, length + 1, length * 2, 0xFFFF_FFFF, 361))
    return data[:at] + struct.pack(">L", max(0, value) & 0xFFFF_FFFF) + data[at + 4 :]


META_PATTERNS = (b"\xff\x51\x03", b"\xff\x58\x04", b"\xff\x59\x02", b"\xff\x03",
                 b"\xff\x2f\x00")


def midi_meta_value(rng: random.Random, data: bytes) -> bytes:
    """A tempo, time or key signature, name or end of track given extreme bytes or length."""
    found = [m.start() for p in META_PATTERNS for m in re.finditer(re.escape(p), data)]
    if not found:
        return data
    at = rng.choice(found)
    if rng.random() < 0.3:  # the meta's length byte
        return data[: at + 2] + bytes([rng.choice(EXTREME_BYTES)]) + data[at + 3 :]
    length = data[at + 2]
    payload = bytes(rng.choice((*EXTREME_BYTES, rng.randrange(256))) for _ in range(length))
    return data[: at + 3] + payload + data[at + 3 + length :]


def _grow_last_track(data: bytes, events: bytes) -> bytes:
    """`events` inserted before the last track's end, its length fixed to match."""
    starts = [m.start() for m in re.finditer(b"MTrk", data)]
    end = data.rfind(b"\xff\x2f\x00")
    if not starts or end < starts[-1]:
        return data
    at = starts[-1] + 4
    (length,) = struct.unpack(">L", data[at : at + 4])
    grown = data[: end - 1] + events + data[end - 1 :]
    return grown[:at] + struct.pack(">L", (length + len(events)) & 0xFFFF_FFFF) + grown[at + 4 :]


def midi_note_flood(rng: random.Random, data: bytes) -> bytes:
    count = rng.choice((10, 5000, 70_000, 300_000))
    gap = rng.choice((b"\x00", b"\x01", b"\x83\x60"))
    return _grow_last_track(data, (gap + b"\x90\x3c\x40" + gap + b"\x80\x3c\x00") * count)


def midi_odd_events(rng: random.Random, data: bytes) -> bytes:
    """Events a writer would not make: long delta times, sysex, system bytes, running status."""
    events = rng.choice((
        b"\xff\xff\xff\xff\x7f\x90\x3c\x40", b"\x00\xf0\x05\x01\x02\x03\x04\xf7",
        b"\x00\xf0\xff\xff\xff\x7f", b"\x00\xf4", b"\x00\xf8\x00\xf2\x01\x02", b"\x00\x3c\x40",
        b"\x00\xff\x51\x03\x00\x00\x00", b"\x00\xff\x59\x02\x09\x03",
        b"\x87\xff\xff\x7f\x90\x3c\x40",
        b"\x00\xff\x58\x04\x05\x02\x18\x08", b"\x00\xff\x01\x83\xff\xff\x7f", b"\x00\x99\x24\x7f",
        b"\x00\xff\x03\x05" + b"\x1b[31m", b"\x00\x90\x3c\x40" * 3,
    ))
    return _grow_last_track(data, events)


MIDI_MUTATIONS: tuple[Mutation, ...] = (midi_header_field, midi_chunk_length, midi_meta_value,
                                         midi_note_flood, midi_odd_events)

_TEXT = re.compile(rb">([^<>]+)<")
_ATTRIBUTE = re.compile(rb'="([^"]*)"')
_LEAF = re.compile(rb"<([a-z-]+)>[^<>]*</\1>|<([a-z-]+)/>")
_BLOCK = re.compile(rb"<(note|measure|attributes|direction|backup)\b.*?</\1>", re.S)


def xml_value(rng: random.Random, data: bytes) -> bytes:
    """An element's text or an attribute's value replaced by an extreme or by text."""
    spots = [m.span(1) for m in _TEXT.finditer(data) if m.group(1).strip()]
    spots += [m.span(1) for m in _ATTRIBUTE.finditer(data)]
    if not spots:
        return data
    a, b = rng.choice(spots)
    return data[:a] + rng.choice(EXTREME_TEXTS).encode() + data[b:]


def xml_swap(rng: random.Random, data: bytes) -> bytes:
    """Two elements' texts trade places (a step where an octave was, a duration as divisions)."""
    spots = [m.span(1) for m in _TEXT.finditer(data) if m.group(1).strip()]
    if len(spots) < 2:
        return data
    (a, b), (c, d) = sorted(rng.sample(spots, 2))
    return data[:a] + data[c:d] + data[b:c] + data[a:b] + data[d:]


def xml_rename(rng: random.Random, data: bytes) -> bytes:
    """One leaf element gets another element's name."""
    leaves = list(_LEAF.finditer(data))
    if not leaves:
        return data
    leaf = rng.choice(leaves)
    old = leaf.group(1) or leaf.group(2)
    new = rng.choice(TAGS).encode()
    piece = leaf.group(0).replace(b"<" + old, b"<" + new, 1).replace(b"</" + old, b"</" + new)
    return data[: leaf.start()] + piece + data[leaf.end() :]


def xml_delete(rng: random.Random, data: bytes) -> bytes:
    found = list(_LEAF.finditer(data)) + list(_BLOCK.finditer(data))
    if not found:
        return data
    gone = rng.choice(found)
    return data[: gone.start()] + data[gone.end() :]


def xml_repeat(rng: random.Random, data: bytes) -> bytes:
    """A note, measure or attributes block repeated up to tens of thousands of times."""
    found = list(_BLOCK.finditer(data))
    if not found:
        return data
    block = rng.choice(found)
    count = min(rng.choice((2, 50, 1000, 20_000, 80_000)), MAX_GROWTH // len(block.group(0)))
    return data[: block.start()] + block.group(0) * count + data[block.end() :]


def xml_nest(rng: random.Random, data: bytes) -> bytes:
    """A leaf's text wrapped in thousands of nested elements."""
    leaves = [m for m in _TEXT.finditer(data) if m.group(1).strip()]
    if not leaves:
        return data
    a, b = rng.choice(leaves).span(1)
    depth = rng.choice((100, 5000, 200_000))
    tag = rng.choice((b"x", b"note", b"measure"))
    return data[:a] + (b"<" + tag + b">") * depth + data[a:b] + (b"</" + tag + b">") * depth + \
        data[b:]


def xml_long_text(rng: random.Random, data: bytes) -> bytes:
    """A part name, measure number or part id millions of characters long."""
    long = (rng.choice(("A", "\u00e9", "\u202e", "\x1b[2J")) * rng.choice((10_000, 3_000_000)))
    pattern = rng.choice((rb"(<part-name>)[^<]*", rb'(<measure number=")[^"]*',
                          rb'(<part id=")[^"]*', rb'(<score-part id=")[^"]*'))
    return re.sub(pattern, lambda m: m.group(1) + long.encode(), data, count=1)


BOMB_DTD = (b'<!DOCTYPE score-partwise [<!ENTITY a "aaaaaaaaaa">'
            + b"".join(b'<!ENTITY %c "%s">' % (98 + i, (b"&%c;" % (97 + i)) * 10)
                       for i in range(9)) + b"]>")


def xml_entities(rng: random.Random, data: bytes) -> bytes:
    """Entity expansion: a billion laughs, or an external entity (never fetched)."""
    start = data.find(b"<score-partwise")
    if start < 0:
        return data
    if rng.random() < 0.5:
        dtd, use = BOMB_DTD, b"&j;"
    else:
        dtd, use = b'<!DOCTYPE s [<!ENTITY e SYSTEM "file:///etc/passwd">]>', b"&e;"
    body = data[start:].replace(b"<part-name>", b"<part-name>" + use, 1)
    return b'<?xml version="1.0"?>' + dtd + body


XML_MUTATIONS: tuple[Mutation, ...] = (xml_value, xml_value, xml_value, xml_swap, xml_rename,
                                        xml_delete, xml_repeat, xml_nest, xml_long_text,
                                        xml_entities)


def _mxl_inner(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read("score/tune.xml")


def mxl_bomb(rng: random.Random, data: bytes) -> bytes:
    """The score followed by megabytes of zeros (deflate packs them about 1000 times)."""
    return mxl(_mxl_inner(data) + bytes(rng.choice((2 << 20, 40 << 20))))


def mxl_container(rng: random.Random, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/container.xml", rng.choice((
            CONTAINER.format(name="missing.xml"), "<container/>", "<container>",
            CONTAINER.format(name="META-INF/container.xml"), CONTAINER.format(name="../x"))))
        archive.writestr("score/tune.xml", _mxl_inner(data))
    return buffer.getvalue()


def mxl_sizes(rng: random.Random, data: bytes) -> bytes:
    """The central directory's sizes made to lie (small, or 3 GB)."""
    at = data.find(b"PK\x01\x02")
    if at < 0:
        return data
    field = at + rng.choice((20, 24))  # compressed size, uncompressed size
    return data[:field] + _extreme_int(rng, 4) + data[field + 4 :]


def mxl_inner(rng: random.Random, data: bytes) -> bytes:
    """A MusicXML mutation inside the archive."""
    return mxl(rng.choice(XML_MUTATIONS)(rng, _mxl_inner(data)))


MXL_MUTATIONS: tuple[Mutation, ...] = (mxl_bomb, mxl_container, mxl_sizes, mxl_inner,
                                        mxl_inner, mxl_inner)
MUTATIONS = {".mid": MIDI_MUTATIONS, ".musicxml": XML_MUTATIONS, ".mxl": MXL_MUTATIONS}


@dataclass(frozen=True)
class Case:
    index: int
    suffix: str
    data: bytes
    recipe: str  # seed file and mutations, for the report


def make_case(seed: int, index: int) -> Case:
    """Case `index` of `seed`: the same bytes on every run and machine."""
    rng = random.Random(f"{seed}/{index}")
    name, suffix, data = rng.choice(seed_files())
    steps = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        structured = MUTATIONS[suffix]
        mutation = rng.choice(structured if rng.random() < 0.6 else BYTE_MUTATIONS)
        if suffix == ".mxl" and mutation in BYTE_MUTATIONS and steps:
            break  # the archive is no longer readable for structured steps after this
        try:
            data = mutation(rng, data)
        except Exception:  # whatever zipfile raises on an archive an earlier step broke:
            break  # this step cannot reach into it, and the case is made
        steps.append(mutation.__name__)
    return Case(index, suffix, data, f"{name}: {' + '.join(steps)}")


# --------------------------------------------------------------------------- running cases

def _error_kind(message: str) -> str:
    """A short, stable name for a clear error's reason, for the counts."""
    patterns = (
        ("unreadable", r"is not a readable"), ("size limit", r"may be at most|at most [\d,]+ "
                                                             r"bytes|inflates"),
        ("too many notes/elements", r"holds more than"), ("meter", r"time signature"),
        ("tempo", r"tempo"), ("no notes", r"no notes|at least \d+ are needed"),
        ("too long", r"bars long|quarter notes, outside|notes; at most"),
        ("not score-partwise", r"score-partwise"), ("SMPTE", r"SMPTE"),
        ("empty", r"is empty"), ("XML entities", r"<!ENTITY>"),
    )
    field_name = re.match(r"[^:]*: (<[a-z -]+>|[a-z_]+ at tick|the header's ticks per beat)",
                          message)
    if field_name:
        return f"bad value {field_name.group(1).replace(' at tick', '')}"
    return next((kind for kind, pattern in patterns if re.search(pattern, message)), "other")


def _run_case(path: Path, out: Path) -> tuple[str, str]:
    """(outcome, detail) of what `accobridge harmonize PATH -o OUT` does."""
    import warnings

    import engine

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            melody = engine.load_melody(path)
            result = engine.harmonize(melody)
            engine.write_song(out, melody, [("Chords", 2, result.chord_notes)])
            engine.harmonization_chart(result)
        return "ok", ""
    except engine.BadInputError as err:
        message = str(err)
        if "\n" in message:
            return "traceback", f"{type(err).__name__} with a message of several lines"
        return "error", f"{type(err).__name__}: {_error_kind(message)}"
    except MemoryError:
        return "memory", ""
    except Exception as err:  # what the fuzzer is looking for
        frame = traceback.extract_tb(err.__traceback__)[-1]
        place = f"{Path(frame.filename).name}:{frame.lineno}"
        return "traceback", f"{type(err).__name__} at {place}: {str(err)[:80]}"


def _vm_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _warm_up() -> None:
    """Pay the once-per-process loads (template library, scorer) before the limits apply."""
    import engine

    engine.harmonize(engine.demo_melody())


def _serve(conn: multiprocessing.connection.Connection, headroom: int) -> None:
    """A worker: warm up (library loaded, first harmonize paid), limit the address space, then
    run the cases sent until the pipe closes."""
    folder = Path(tempfile.mkdtemp(prefix="file-fuzz-"))
    _warm_up()
    limit = _vm_bytes() + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send(("ready", limit))
    while (job := conn.recv()) is not None:
        seed, index = job
        case = make_case(seed, index)  # made here, so the cases are made in parallel
        path, out = folder / f"case{case.suffix}", folder / "out.mid"
        path.write_bytes(case.data)
        conn.send(("started",))  # the case's clock starts now, not while it was being made
        began = time.perf_counter()
        outcome, detail = _run_case(path, out)
        seconds = time.perf_counter() - began
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        conn.send((outcome, detail, seconds, peak))


@dataclass
class _Worker:
    process: Any
    conn: multiprocessing.connection.Connection
    ready: bool = False
    case: int | None = None
    deadline: float = 0.0


@dataclass
class FuzzReport:
    cases: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    bad: list[tuple[int, str]] = field(default_factory=list)  # case index, outcome
    seconds: float = 0.0
    slowest_case_s: float = 0.0
    slowest_case: int = -1
    peak_rss_bytes: int = 0
    address_limit_bytes: int = 0

    @property
    def bad_count(self) -> int:
        return sum(n for key, n in self.outcomes.items() if key.split(":")[0] in BAD_OUTCOMES)


def run_fuzz(cases: int, seed: int, jobs: int = 2, case_seconds: float = CASE_SECONDS,
             headroom: int = MEMORY_HEADROOM, first: int = 0) -> FuzzReport:
    """Cases `first` .. `first + cases - 1` of `seed` over `jobs` worker processes; a worker
    that overruns its case or dies is replaced."""
    context = multiprocessing.get_context("fork")  # the workers inherit the seeds, no re-import
    seed_files()
    report = FuzzReport()
    pending = list(range(first + cases - 1, first - 1, -1))  # made when sent: memory stays flat
    workers: list[_Worker] = []

    def start() -> _Worker:
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child, headroom), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    def record(case: int, outcome: str, detail: str = "") -> None:
        key = f"{outcome}: {detail}" if detail and outcome != "ok" else outcome
        report.outcomes[key] += 1
        report.cases += 1
        if outcome in BAD_OUTCOMES:
            report.bad.append((case, key))

    def replace(worker: _Worker) -> None:
        worker.process.kill()
        worker.process.join()
        worker.conn.close()
        workers[workers.index(worker)] = start()

    began = time.perf_counter()
    workers.extend(start() for _ in range(max(1, jobs)))
    while pending or any(w.case is not None for w in workers):
        for worker in workers:
            if worker.ready and worker.case is None and pending:
                worker.case = pending.pop()
                worker.conn.send((seed, worker.case))
                worker.deadline = time.monotonic() + MAKE_SECONDS
        busy = [w for w in workers if w.case is not None or not w.ready]
        now = time.monotonic()
        wait = min((w.deadline - now for w in busy if w.case is not None), default=case_seconds)
        ready = multiprocessing.connection.wait([w.conn for w in busy], timeout=max(0, wait))
        for worker in list(busy):
            if worker.conn in ready:
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):  # the worker died: a crash, or killed for memory
                    if not worker.ready:
                        raise RuntimeError("a fuzz worker died while warming up") from None
                    if worker.case is not None:
                        record(worker.case, "crash", f"exit {worker.process.exitcode}")
                        worker.case = None
                    replace(worker)
                    continue
                if message[0] == "ready":
                    worker.ready = True
                    report.address_limit_bytes = message[1]
                    continue
                if message[0] == "started":
                    worker.deadline = time.monotonic() + case_seconds
                    continue
                outcome, detail, seconds, peak = message
                assert worker.case is not None
                record(worker.case, outcome, detail)
                if seconds > report.slowest_case_s:
                    report.slowest_case_s, report.slowest_case = seconds, worker.case
                report.peak_rss_bytes = max(report.peak_rss_bytes, peak)
                worker.case = None
            elif worker.case is not None and time.monotonic() > worker.deadline:
                record(worker.case, "timeout", f"over {case_seconds:g} s")
                worker.case = None
                replace(worker)
    for worker in workers:
        worker.conn.send(None)
        worker.process.join(timeout=5)
        if worker.process.is_alive():
            worker.process.kill()
        worker.conn.close()
    report.seconds = time.perf_counter() - began
    return report


def describe(report: FuzzReport, seed: int) -> str:
    lines = [f"file fuzz, seed {seed}: {report.cases} cases in {report.seconds:.1f} s; "
             f"slowest case {report.slowest_case_s:.2f} s (case {report.slowest_case}); peak "
             "worker RSS "
             f"{report.peak_rss_bytes / 2**20:.0f} MiB (address space limit "
             f"{report.address_limit_bytes / 2**20:.0f} MiB)"]
    totals = Counter(key.split(":")[0] for key in report.outcomes.elements())
    for outcome in ("ok", "error", *BAD_OUTCOMES):
        lines.append(f"  {outcome:9s} {totals.get(outcome, 0):6d}")
        for key, count in sorted(report.outcomes.items(), key=lambda kv: -kv[1]):
            if key.split(":")[0] == outcome and key != outcome:
                lines.append(f"      {count:6d}  {key.split(': ', 1)[1]}")
    for index, key in report.bad[:20]:
        lines.append(f"  case {index} ({make_case(seed, index).recipe}): {key}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.file_fuzz",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=4500)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--first", type=int, default=0, help="index of the first case")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--case-seconds", type=float, default=CASE_SECONDS)
    parser.add_argument("--save", type=Path, help="write the files of bad outcomes here")
    args = parser.parse_args(argv)
    report = run_fuzz(args.cases, args.seed, args.jobs, args.case_seconds, first=args.first)
    print(describe(report, args.seed))
    if args.save and report.bad:
        args.save.mkdir(parents=True, exist_ok=True)
        for index, _ in report.bad:
            case = make_case(args.seed, index)
            (args.save / f"case{index}{case.suffix}").write_bytes(case.data)
    return 1 if report.bad_count else 0


if __name__ == "__main__":
    sys.exit(main())
