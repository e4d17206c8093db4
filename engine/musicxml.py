"""MusicXML in (score-partwise .musicxml/.xml, or a compressed .mxl): one track of notes per
part, with the meter, tempo and key marks, for engine.melody_source to turn into a Melody.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from fractions import Fraction
from pathlib import Path

from engine.errors import MidiFileError
from engine.melody_source import ScoreSource, one_line
from engine.types import Key, Note

MUSICXML_TICKS_PER_BEAT = 480
MUSICXML_SUFFIXES = (".musicxml", ".mxl", ".xml")


def _musicxml_root(path: Path) -> ET.Element:
    """Parse .musicxml/.xml, or the root file named by META-INF/container.xml inside a .mxl."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                container = ET.fromstring(archive.read("META-INF/container.xml"))
                rootfile = next(e for e in container.iter() if e.tag.endswith("rootfile"))
                return ET.fromstring(archive.read(rootfile.attrib["full-path"]))
        return ET.parse(path).getroot()
    except (ET.ParseError, KeyError, StopIteration, zipfile.BadZipFile, OSError) as err:
        raise MidiFileError(
            f"{path.name} is not a readable MusicXML file ({one_line(err)})"
        ) from err


def read_musicxml(path: Path) -> ScoreSource:
    """Score-partwise MusicXML: one track per part; voices and chords meet in top-line reduction.

    Time is counted in Fractions of a quarter, so any <divisions> maps exactly onto 480 ticks.
    """
    root = _musicxml_root(path)
    if root.tag != "score-partwise":
        raise MidiFileError(f"{path.name}: only score-partwise MusicXML is supported")
    names = {p.get("id"): (p.findtext("part-name") or "").strip()
             for p in root.iter("score-part")}
    source = ScoreSource(ticks_per_beat=MUSICXML_TICKS_PER_BEAT)

    def ticks(quarters: Fraction) -> int:
        return int(quarters * MUSICXML_TICKS_PER_BEAT)

    for index, part in enumerate(root.findall("part")):
        divisions = Fraction(1)
        measure_start = Fraction(0)
        notes: list[Note] = []
        tied: dict[int, int] = {}  # pitch -> index in notes of a note whose tie continues
        for measure in part.findall("measure"):
            position = measure_end = measure_start
            last_start = measure_start
            for element in measure:
                tag = element.tag
                if tag == "attributes":
                    divisions = Fraction(element.findtext("divisions") or divisions)
                    time = element.find("time")
                    if time is not None and index == 0:
                        source.time_signatures.append(
                            (ticks(measure_start), int(time.findtext("beats") or 4),
                             int(time.findtext("beat-type") or 4)))
                    key = element.find("key")
                    if key is not None and source.key is None:
                        source.key = _musicxml_key(key)
                elif tag in ("backup", "forward"):
                    step = Fraction(element.findtext("duration") or 0) / divisions
                    position += -step if tag == "backup" else step
                elif tag == "note" and element.find("grace") is None:
                    length = Fraction(element.findtext("duration") or 0) / divisions
                    start = last_start if element.find("chord") is not None else position
                    pitch = element.find("pitch")
                    if pitch is not None:
                        midi_pitch = _musicxml_pitch(pitch)
                        ties = {t.get("type") for t in element.findall("tie")}
                        if "stop" in ties and midi_pitch in tied:
                            held = notes[tied[midi_pitch]]
                            notes[tied[midi_pitch]] = Note(
                                held.pitch, held.start_tick,
                                ticks(start + length) - held.start_tick, held.velocity)
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
                    if sound is not None and sound.get("tempo"):
                        source.tempos.append(
                            (ticks(position), int(round(60e6 / float(sound.get("tempo", 120))))))
                measure_end = max(measure_end, position)
            measure_start = measure_end
        name = names.get(part.get("id")) or f"Part {index + 1}"
        source.tracks.append((name, sorted(notes, key=lambda n: (n.start_tick, -n.pitch))))
    return source


def _musicxml_pitch(pitch: ET.Element) -> int:
    step = "C D EF G A B".index(pitch.findtext("step", "C"))
    alter = int(round(float(pitch.findtext("alter") or 0)))
    return 12 * (int(pitch.findtext("octave") or 4) + 1) + step + alter


def _musicxml_key(key: ET.Element) -> Key:
    fifths = int(key.findtext("fifths") or 0)
    mode = key.findtext("mode") or "major"
    major_tonic = (7 * fifths) % 12
    if mode == "minor":
        return Key((major_tonic + 9) % 12, "minor")
    return Key(major_tonic, "major")
