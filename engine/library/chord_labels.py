"""Chord labels and pitch sets read into (root pc, quality, bass interval): POP909's Harte
labels and a sounding pitch set matched against the library's quality vocabulary. Shared by the
chord-template builder, the POP909 reader and the chord input of a MIDI chord track.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from engine.errors import BadInputError

# A chord as read: (root pitch class, quality, bass semitones above the root).
AbsChord = tuple[int, str, int]

# Interval sets (semitones above the root) of every quality name the library uses; the order is
# the tie-break preference when a pitch set matches several equally well (plainest first).
QUALITY_INTERVALS: dict[str, frozenset[int]] = {
    name: frozenset(intervals)
    for name, intervals in (
        ("maj", (0, 4, 7)), ("min", (0, 3, 7)), ("7", (0, 4, 7, 10)), ("min7", (0, 3, 7, 10)),
        ("maj7", (0, 4, 7, 11)), ("dim", (0, 3, 6)), ("aug", (0, 4, 8)), ("sus4", (0, 5, 7)),
        ("sus2", (0, 2, 7)), ("6", (0, 4, 7, 9)), ("min6", (0, 3, 7, 9)),
        ("hdim7", (0, 3, 6, 10)), ("dim7", (0, 3, 6, 9)), ("7sus4", (0, 5, 7, 10)),
        ("add9", (0, 2, 4, 7)), ("minadd9", (0, 2, 3, 7)), ("9", (0, 2, 4, 7, 10)),
        ("maj9", (0, 2, 4, 7, 11)), ("min9", (0, 2, 3, 7, 10)), ("minmaj7", (0, 3, 7, 11)),
        ("11", (0, 2, 5, 7, 10)), ("min11", (0, 2, 3, 5, 7, 10)), ("13", (0, 2, 4, 7, 9, 10)),
    )
}

_NOTE_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_DEGREE_SEMITONES = {1: 0, 2: 2, 3: 4, 4: 5, 5: 7, 6: 9, 7: 11, 9: 2, 11: 5, 13: 9}


def note_name_pc(name: str) -> int:
    """Pitch class of a note name such as 'Gb', 'C#' or 'E'."""
    if not name or name[0] not in _NOTE_PC or any(ch not in "#b" for ch in name[1:]):
        raise BadInputError(f"not a note name: {name!r}")
    return (_NOTE_PC[name[0]] + name.count("#") - name[1:].count("b")) % 12


def _degree_semitones(degree: str) -> int:
    """Harte interval ('b3', '5', '#4', 'b7') as semitones above the root, mod 12."""
    match = re.fullmatch(r"([#b]*)(\d+)", degree.strip())
    if match is None or int(match.group(2)) not in _DEGREE_SEMITONES:
        raise BadInputError(f"not a chord degree: {degree!r}")
    accidentals, number = match.groups()
    shift = accidentals.count("#") - accidentals.count("b")
    return (_DEGREE_SEMITONES[int(number)] + shift) % 12


def _harte_quality(shorthand: str, extensions: frozenset[str]) -> str:
    """Map a Harte shorthand plus added degrees onto our vocabulary (nearest colour wins)."""
    ext = {e.lstrip("*") for e in extensions}
    ninth = bool(ext & {"9", "2"})
    if shorthand == "maj":
        if "b7" in ext:
            return "9" if ninth else "7"
        if "7" in ext:
            return "maj9" if ninth else "maj7"
        if "6" in ext:
            return "6"
        return "add9" if ninth else "maj"
    if shorthand == "min":
        if "b7" in ext:
            return "min9" if ninth else "min7"
        if "7" in ext:
            return "minmaj7"
        if "6" in ext:
            return "min6"
        return "minadd9" if ninth else "min"
    if shorthand == "maj6":  # 6/9 stays a 6; with b7 it is a dominant 13 (no 9)
        if "b7" in ext:
            return "13"
        return "maj7" if "7" in ext else "6"
    if shorthand == "min7":
        if ext & {"11", "4"}:
            return "min11"
        return "min9" if ninth else "min7"
    if shorthand == "maj7":
        return "maj9" if ninth or "13" in ext else "maj7"
    if shorthand in ("7", "9"):
        if "13" in ext:
            return "13"
        if shorthand == "7" and ninth:
            return "9"
        return shorthand
    if shorthand == "sus4":
        return "7sus4" if "b7" in ext else "sus4"
    if shorthand == "aug":  # aug(b7) keeps its augmented colour
        return "aug"
    direct = {
        "sus2": "sus2", "dim": "dim", "hdim7": "hdim7", "dim7": "dim7", "min6": "min6",
        "maj9": "maj9", "min9": "min9", "min11": "min11", "minmaj7": "minmaj7", "11": "11",
        "13": "13", "maj13": "maj9", "min13": "min11", "9sus4": "7sus4",
    }
    if shorthand in direct:
        return direct[shorthand]
    raise BadInputError(f"unknown chord quality {shorthand!r}")


def parse_pop909_label(label: str) -> AbsChord | None:
    """A POP909 Harte label ('B:maj7/3', 'Bb:min(9)', 'N') -> (root pc, quality, bass interval).

    None for 'N' (no chord). The bass is in semitones above the root (0 = root position). Some
    labels in the files are cut at a space ('B:sus4(b7,'); what is left is read as far as it
    goes. The chord-tone column of the files is not used: it disagrees with the labels (maj7
    and hdim7 tones are wrong there), and the label is the annotation."""
    label = "".join(ch for ch in label if ch.isprintable()).strip()  # two labels carry a \x01
    if label in ("N", "X", ""):
        return None
    if ":" not in label:
        raise BadInputError(f"chord label without quality: {label!r}")
    root_text, rest = label.split(":", 1)
    root = note_name_pc(root_text)
    bass = 0
    slash = rest.rfind("/")
    if slash > rest.rfind(")") and slash >= 0:
        bass_text = rest[slash + 1 :]
        rest = rest[:slash]
        bass = _degree_semitones(bass_text) if bass_text else 0
    shorthand, _, ext_text = rest.partition("(")
    extensions = frozenset(e.strip() for e in ext_text.rstrip(")").split(",") if e.strip())
    return root, _harte_quality(shorthand or "maj", extensions), bass


def recognise_pitch_set(pitches: Iterable[int]) -> AbsChord:
    """MIDI pitches of one chord -> (root pc, quality, bass interval) by template matching.

    Every pitch class is tried as the root against every quality's interval set; the best
    Jaccard overlap wins, ties going to a root-position reading (lowest note = root) and then
    to the plainer quality. So E-G-C reads as C/E, A-C-E-G as Am7 (not C6/A)."""
    notes = sorted(set(pitches))
    if not notes:
        raise BadInputError("an empty chord has no root")
    bass_pc = notes[0] % 12
    pcs = {n % 12 for n in notes}
    order = {name: i for i, name in enumerate(QUALITY_INTERVALS)}
    best: tuple[float, int, int] | None = None
    choice = (bass_pc, "maj")
    for root in sorted(pcs):
        rel = frozenset((pc - root) % 12 for pc in pcs)
        for name, intervals in QUALITY_INTERVALS.items():
            jaccard = len(rel & intervals) / len(rel | intervals)
            rank = (jaccard, int(root == bass_pc), -order[name])
            if best is None or rank > best:
                best, choice = rank, (root, name)
    root, quality = choice
    return root, quality, (bass_pc - root) % 12
