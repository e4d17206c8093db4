"""MusicXML in (score-partwise .musicxml/.xml, or a compressed .mxl): one track of notes per
part, with the meter, tempo and key marks, for engine.melody_source to turn into a Melody.

Reading is bounded before and while parsing (file size; a .mxl's inflated size and ratio; the
elements and notes parsed) and every value used is checked where it is read, so a hostile file
gets one MidiFileError naming the file, the element and the measure.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
import zipfile
import zlib
from fractions import Fraction
from pathlib import Path

from engine.errors import MidiFileError, UnsupportedMeterError
from engine.melody_source import (
    MAX_BARS,
    MAX_FILE_NOTES,
    MAX_MUSICXML_BYTES,
    MAX_NAME_CHARS,
    ScoreSource,
    bad_value,
    key_from_fifths,
    one_line,
    read_capped,
    supported_meter_names,
)
from engine.types import Note

MUSICXML_TICKS_PER_BEAT = 480
MUSICXML_SUFFIXES = (".musicxml", ".mxl", ".xml")
MAX_XML_ELEMENTS = 1_000_000  # a 512-bar orchestral score has about half as many
MAX_MXL_RATIO = 200  # inflated / compressed; MusicXML text compresses 10-50 times
# Any time position past this many quarter notes is past the longest melody supported
# (512 bars of 12/8 are 3,072 quarters).
MAX_QUARTERS = MAX_BARS * 8
_FEED_BYTES = 1 << 16
_DECIMAL = re.compile(r"[+-]?(?:\d{1,12}(?:\.\d{0,12})?|\.\d{1,12})")  # xs:decimal, bounded
_ENTITY_MARKERS = tuple("<!ENTITY".encode(code) for code in ("utf-8", "utf-16-le", "utf-16-be"))
_STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# what xml.etree and zipfile raise on a broken file (LookupError: an unknown encoding;
# RuntimeError: encrypted; NotImplementedError: an unknown compression)
_READ_ERRORS = (ET.ParseError, LookupError, StopIteration, zipfile.BadZipFile,
                NotImplementedError, RuntimeError, EOFError, zlib.error, OSError, ValueError)


def _document(path: Path) -> bytes:
    """The score's XML text: the file itself, or the root file that META-INF/container.xml
    names inside a .mxl, inflated only once the archive's sizes are checked."""
    data = read_capped(path, MAX_MUSICXML_BYTES, "MusicXML")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        inflated = sum(info.file_size for info in archive.infolist())
        packed = sum(info.compress_size for info in archive.infolist())
        too_dense = inflated > MAX_MXL_RATIO * packed and inflated > 1 << 20
        if inflated > MAX_MUSICXML_BYTES or too_dense:
            raise MidiFileError(
                f"{path.name} inflates {packed:,} bytes to {inflated:,}; a .mxl file may hold "
                f"at most {MAX_MUSICXML_BYTES:,} bytes of MusicXML, compressed at most "
                f"{MAX_MXL_RATIO} times"
            )
        container = _parse(path, _member(path, archive, "META-INF/container.xml"))
        rootfile = next(e for e in container.iter() if e.tag.endswith("rootfile"))
        return _member(path, archive, rootfile.attrib["full-path"])


def _member(path: Path, archive: zipfile.ZipFile, name: str) -> bytes:
    """One file of the archive, read no further than the cap whatever its header claims."""
    with archive.open(name) as stream:
        data = stream.read(MAX_MUSICXML_BYTES + 1)
    if len(data) > MAX_MUSICXML_BYTES:
        raise MidiFileError(f"{path.name}: {name} inflates past {MAX_MUSICXML_BYTES:,} bytes")
    return data


def _parse(path: Path, document: bytes) -> ET.Element:
    """The XML tree, parsed in pieces and refused once it holds too many elements or notes.
    Entity declarations are refused unparsed: MusicXML has no use for them, and expanded they
    can take hundreds of times the file's size (expat's own limit allows 100 times)."""
    if any(marker in document for marker in _ENTITY_MARKERS):
        raise MidiFileError(f"{path.name} declares XML entities (<!ENTITY>), which MusicXML "
                            "files do not use")
    parser: ET.XMLPullParser = ET.XMLPullParser(events=("start",))
    root: ET.Element | None = None
    elements = notes = 0
    for offset in range(0, len(document), _FEED_BYTES):
        parser.feed(document[offset : offset + _FEED_BYTES])
        for event in parser.read_events():
            element = event[-1]  # for "start" events always an Element
            assert isinstance(element, ET.Element)
            root = element if root is None else root
            elements += 1
            notes += element.tag == "note"
        if elements > MAX_XML_ELEMENTS or notes > MAX_FILE_NOTES:
            raise MidiFileError(
                f"{path.name} holds more than {min(elements, MAX_XML_ELEMENTS):,} elements or "
                f"{min(notes, MAX_FILE_NOTES):,} notes; a MusicXML file may hold at most "
                f"{MAX_XML_ELEMENTS:,} elements and {MAX_FILE_NOTES:,} notes"
            )
    parser.close()
    if root is None:
        raise ET.ParseError("no element found")
    return root


def _musicxml_root(path: Path) -> ET.Element:
    """Parse .musicxml/.xml, or the root file named by META-INF/container.xml inside a .mxl."""
    try:
        return _parse(path, _document(path))
    except MidiFileError:
        raise
    except _READ_ERRORS as err:
        raise MidiFileError(
            f"{path.name} is not a readable MusicXML file ({one_line(err)})"
        ) from err


class _Values:
    """Reads the values of one measure, each checked, with errors naming the measure."""

    def __init__(self, path: Path, part: int, part_id: str | None) -> None:
        self.path = path
        self.part = f"part {part_id[:40]!r}" if part_id else f"part {part + 1}"
        self.measure = "?"

    def error(self, tag: str, value: str, problem: str) -> MidiFileError:
        return bad_value(self.path, f"<{tag}> in measure {self.measure} of {self.part}",
                         value, problem)

    def decimal(self, element: ET.Element, tag: str, default: Fraction, positive: bool = False,
                ) -> Fraction:
        """A decimal child (missing or empty: `default`), >= 0, or > 0 when `positive`."""
        text = (element.findtext(tag) or "").strip()
        if not text:
            return default
        if not _DECIMAL.fullmatch(text):
            raise self.error(tag, text, "it must be a decimal number")
        value = Fraction(text)
        if value < 0 or (positive and value == 0):
            raise self.error(tag, text, f"it must be {'above' if positive else 'at least'} 0")
        return value

    def integer(self, element: ET.Element, tag: str, default: int, low: int, high: int) -> int:
        text = (element.findtext(tag) or "").strip()
        if not text:
            return default
        if not re.fullmatch(r"[+-]?\d{1,6}", text) or not low <= int(text) <= high:
            raise self.error(tag, text, f"it must be a whole number from {low} to {high}")
        return int(text)

    def quarters(self, quarters: Fraction, tag: str, text: str | None) -> Fraction:
        """A time position in quarter notes, kept within the supported length."""
        if not 0 <= quarters <= MAX_QUARTERS:
            raise self.error(tag, text or "", f"it moves the time to {float(quarters):g} quarter "
                             f"notes, outside 0-{MAX_QUARTERS} ({MAX_BARS} bars at most)")
        return quarters

    def meter(self, time: ET.Element) -> tuple[int, int]:
        beats = (time.findtext("beats") or "").strip()
        beat_type = self.integer(time, "beat-type", 4, 1, 64)
        if "+" in beats and all(b.strip().isdigit() for b in beats.split("+")):
            raise UnsupportedMeterError(
                f"{self.path.name}: additive time signature {beats}/{beat_type} in measure "
                f"{self.measure} of {self.part} is not supported (supported: "
                f"{supported_meter_names()})"
            )
        return self.integer(time, "beats", 4, 1, 99), beat_type

    def pitch(self, pitch: ET.Element) -> int:
        step = (pitch.findtext("step") or "C").strip()
        if step.upper() not in _STEPS:
            raise self.error("step", step, "it must be one of A B C D E F G")
        octave = self.integer(pitch, "octave", 4, 0, 9)
        text = (pitch.findtext("alter") or "").strip()
        if text and not _DECIMAL.fullmatch(text):
            raise self.error("alter", text, "it must be a decimal number of semitones")
        alter = round(Fraction(text or 0))
        midi = 12 * (octave + 1) + _STEPS[step.upper()] + alter
        if not 0 <= midi <= 127:
            raise self.error("pitch", f"{step}{octave} altered by {alter}",
                             f"that is MIDI note {midi}, outside 0-127")
        return midi

    def tempo_us(self, sound: ET.Element) -> int | None:
        """A <sound tempo="…"> (quarter notes per minute) in microseconds per quarter note."""
        text = (sound.get("tempo") or "").strip()
        if not text:
            return None
        if not _DECIMAL.fullmatch(text) or Fraction(text) <= 0:
            raise bad_value(self.path, f"<sound tempo> in measure {self.measure} of "
                            f"{self.part}", text, "it must be a number of beats per minute")
        return max(1, round(60_000_000 / Fraction(text)))  # the BPM range is checked later


def read_musicxml(path: Path) -> ScoreSource:
    """Score-partwise MusicXML: one track per part; voices and chords meet in top-line reduction.

    Time is counted in Fractions of a quarter, so any <divisions> maps exactly onto 480 ticks.
    """
    root = _musicxml_root(path)
    if root.tag != "score-partwise":
        raise MidiFileError(f"{path.name}: only score-partwise MusicXML is supported")
    names = {p.get("id"): (p.findtext("part-name") or "").strip()[:MAX_NAME_CHARS]
             for p in root.iter("score-part")}
    source = ScoreSource(ticks_per_beat=MUSICXML_TICKS_PER_BEAT)

    def ticks(quarters: Fraction) -> int:
        return int(quarters * MUSICXML_TICKS_PER_BEAT)

    for index, part in enumerate(root.findall("part")):
        values = _Values(path, index, part.get("id"))
        divisions = Fraction(1)
        measure_start = Fraction(0)
        notes: list[Note] = []
        tied: dict[int, int] = {}  # pitch -> index in notes of a note whose tie continues
        for measure in part.findall("measure"):
            values.measure = (measure.get("number") or "?")[:20]
            position = measure_end = measure_start
            last_start = measure_start
            for element in measure:
                tag = element.tag
                if tag == "attributes":
                    divisions = values.decimal(element, "divisions", divisions, positive=True)
                    time = element.find("time")
                    if time is not None and index == 0:
                        beats, beat_type = values.meter(time)
                        source.time_signatures.append((ticks(measure_start), beats, beat_type))
                    key = element.find("key")
                    if key is not None and source.key is None:
                        fifths = values.integer(key, "fifths", 0, -7, 7)
                        source.key = key_from_fifths(fifths, key.findtext("mode") == "minor")
                elif tag in ("backup", "forward"):
                    step = values.decimal(element, "duration", Fraction(0)) / divisions
                    position = values.quarters(position + (-step if tag == "backup" else step),
                                               tag, element.findtext("duration"))
                elif tag == "note" and element.find("grace") is None:
                    length = values.decimal(element, "duration", Fraction(0)) / divisions
                    start = last_start if element.find("chord") is not None else position
                    values.quarters(start + length, "duration", element.findtext("duration"))
                    pitch = element.find("pitch")
                    if pitch is not None:
                        midi_pitch = values.pitch(pitch)
                        ties = {t.get("type") for t in element.findall("tie")}
                        if "stop" in ties and midi_pitch in tied:
                            held = notes[tied[midi_pitch]]
                            notes[tied[midi_pitch]] = Note(
                                held.pitch, held.start_tick,
                                max(1, ticks(start + length) - held.start_tick), held.velocity)
                        else:
                            notes.append(Note(midi_pitch, ticks(start),
                                              max(1, ticks(length))))
                            tied[midi_pitch] = len(notes) - 1
                        if "start" not in ties:
                            tied.pop(midi_pitch, None)
                    last_start = start
                    position = start + length
                if tag == "direction" or tag == "sound":
                    sound = element if tag == "sound" else element.find("sound")
                    tempo = None if sound is None else values.tempo_us(sound)
                    if tempo is not None:
                        source.tempos.append((ticks(position), tempo))
                measure_end = max(measure_end, position)
            measure_start = measure_end
        name = names.get(part.get("id")) or f"Part {index + 1}"
        source.tracks.append((name, sorted(notes, key=lambda n: (n.start_tick, -n.pitch))))
    return source
