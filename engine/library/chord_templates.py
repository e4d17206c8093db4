"""The chord-progression template library (AccoMontage2 §3.1, our own build — algorithms.md §1.6).

A template is a key-relative progression of whole bars in one meter; the harmonizer only needs
each 8th-note slot's root (as semitones above the tonic) plus qualities for rendering. The file
holds statistics derived from the corpora (progressions with counts, bar-junction counts),
never melodies or songs. Format: gzip JSON, schema below, written atomically.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.atomic_file import atomic_output
from engine.errors import LibraryError
from engine.types import STYLES, Mode, Style

SCHEMA_VERSION = 1
DEFAULT_LIBRARY_PATH = Path(__file__).resolve().parents[1] / "data" / "chord_templates.json.gz"
NO_CHORD = -1  # root value of an N.C. slot

# Slots (8th notes) per bar for every library meter.
SLOTS_PER_BAR: dict[str, int] = {
    "4/4": 8, "2/4": 4, "3/4": 6, "6/8": 6, "9/8": 9, "12/8": 12,
}

BarSignature = tuple[int, ...]  # per-slot root semitones of one bar (NO_CHORD for N.C.)


@dataclass(frozen=True)
class TemplateChord:
    """One chord of a template: root in semitones above the tonic (or NO_CHORD), quality name,
    bass as semitones above the root (0 = root position), length in 8th-note slots."""

    root: int
    quality: str
    bass: int
    slots: int


@dataclass(frozen=True)
class ChordTemplate:
    id: int
    meter: str
    mode: Mode
    bars: int
    chords: tuple[TemplateChord, ...]
    count: int  # occurrences in the corpora
    style: Style
    source: str  # "pop909", "nottingham", "derived" (meter-adapted), …

    def slot_roots(self) -> tuple[int, ...]:
        roots: list[int] = []
        for chord in self.chords:
            roots.extend([chord.root] * chord.slots)
        return tuple(roots)

    def bar_signatures(self) -> tuple[BarSignature, ...]:
        per_bar = SLOTS_PER_BAR[self.meter]
        roots = self.slot_roots()
        return tuple(roots[i : i + per_bar] for i in range(0, len(roots), per_bar))


@dataclass(frozen=True, eq=False)  # identity hash: indexes are cached per loaded library
class MeterLibrary:
    meter: str
    templates: tuple[ChordTemplate, ...]
    # (mode, last bar of one progression, first bar of the next) -> occurrences (eq. 3's c)
    junctions: Mapping[tuple[str, BarSignature, BarSignature], int]

    @property
    def slots_per_bar(self) -> int:
        return SLOTS_PER_BAR[self.meter]


@dataclass(frozen=True, eq=False)
class TemplateLibrary:
    meters: Mapping[str, MeterLibrary]
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def for_meter(self, meter_key: str) -> MeterLibrary:
        try:
            return self.meters[meter_key]
        except KeyError as err:
            raise LibraryError(
                f"the template library has no templates for {meter_key} "
                f"(it has {', '.join(sorted(self.meters))}); run `accobridge library rebuild`"
            ) from err

    @property
    def size(self) -> int:
        return sum(len(m.templates) for m in self.meters.values())


def _sig_text(sig: BarSignature) -> str:
    return ".".join(str(r) for r in sig)


def _sig_parse(text: str) -> BarSignature:
    return tuple(int(r) for r in text.split("."))


def to_json(library: TemplateLibrary) -> dict[str, Any]:
    meters: dict[str, Any] = {}
    for key, lib in library.meters.items():
        meters[key] = {
            "slots_per_bar": lib.slots_per_bar,
            # [mode, bars, count, style, source, [[root, quality, bass, slots], ...]]
            "templates": [
                [t.mode, t.bars, t.count, t.style, t.source,
                 [[c.root, c.quality, c.bass, c.slots] for c in t.chords]]
                for t in lib.templates
            ],
            "junctions": [
                [mode, _sig_text(a), _sig_text(b), count]
                for (mode, a, b), count in sorted(lib.junctions.items())
            ],
        }
    return {"schema": SCHEMA_VERSION, "provenance": dict(library.provenance), "meters": meters}


def from_json(doc: Mapping[str, Any]) -> TemplateLibrary:
    if doc.get("schema") != SCHEMA_VERSION:
        raise LibraryError(
            f"template library schema {doc.get('schema')!r} is not {SCHEMA_VERSION}; "
            "run `accobridge library rebuild`"
        )
    meters: dict[str, MeterLibrary] = {}
    next_id = 0
    # the same chords and bar signatures recur thousands of times: build each once
    chord_of: dict[tuple[Any, ...], TemplateChord] = {}
    sig_of: dict[str, BarSignature] = {}

    def chord(r: Any, q: Any, b: Any, n: Any) -> TemplateChord:
        key = (r, q, b, n)
        if key not in chord_of:
            chord_of[key] = TemplateChord(int(r), str(q), int(b), int(n))
        return chord_of[key]

    def sig(text: str) -> BarSignature:
        if text not in sig_of:
            sig_of[text] = _sig_parse(text)
        return sig_of[text]

    for key, body in doc["meters"].items():
        templates = []
        for mode, bars, count, style, source, chords in body["templates"]:
            if style not in STYLES:
                raise LibraryError(f"unknown style {style!r} in template library")
            templates.append(ChordTemplate(
                id=next_id, meter=key, mode=mode, bars=int(bars),
                chords=tuple(chord(*c) for c in chords),
                count=int(count), style=style, source=str(source),
            ))
            next_id += 1
        junctions = {
            (str(mode), sig(a), sig(b)): int(c) for mode, a, b, c in body["junctions"]
        }
        meters[key] = MeterLibrary(meter=key, templates=tuple(templates), junctions=junctions)
    return TemplateLibrary(meters=meters, provenance=doc.get("provenance", {}))


def save_library(library: TemplateLibrary, path: Path = DEFAULT_LIBRARY_PATH) -> None:
    """Write atomically: a half-written library would break every later harmonization."""
    payload = json.dumps(to_json(library), separators=(",", ":")).encode()
    with atomic_output(path) as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(payload)


@lru_cache(maxsize=4)
def load_library(path: Path = DEFAULT_LIBRARY_PATH) -> TemplateLibrary:
    try:
        with gzip.open(path, "rb") as fh:
            doc = json.loads(fh.read())
    except FileNotFoundError as err:
        raise LibraryError(
            f"chord template library not found at {path}; run `accobridge library rebuild`"
        ) from err
    except (OSError, ValueError) as err:
        raise LibraryError(f"chord template library at {path} is unreadable: {err}") from err
    return from_json(doc)
