"""Array form of one meter/mode slice of the template library, built once per process.

The search works on integer arrays: per template the root row of every slot, an id for its
first and last bar, its style; and per bar id the junction counts to every following bar id
(the c of eq. 3). Building this is the only per-library cost; each harmonization is then
vectorised numpy work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from engine.harmonizer.micro import DIATONIC_ROOTS, chord_row
from engine.library.chord_templates import (
    NO_CHORD,
    BarSignature,
    ChordTemplate,
    MeterLibrary,
    TemplateChord,
    TemplateLibrary,
)
from engine.types import STYLES, Mode, Variant

UNIT_BARS = 1  # single bars, cut from the library's 2-bar templates, fill odd phrase lengths


@dataclass(frozen=True)
class LengthGroup:
    """All templates of one length: arrays aligned on the template axis."""

    bars: int
    templates: tuple[ChordTemplate, ...]
    rows: np.ndarray  # (n, bars*slots_per_bar) chord_table row per slot
    first_bar: np.ndarray  # (n,) bar-signature id of the first bar
    last_bar: np.ndarray  # (n,) bar-signature id of the last bar
    style: np.ndarray  # (n,) index into STYLES
    chromatic: np.ndarray  # (n,) bool: any root outside the mode's scale
    tonic_slots: np.ndarray  # (n,) how many 8th-note slots sit on the tonic (root 0)
    singles: tuple[tuple[ChordTemplate, ...], ...]  # each template as a one-part candidate


@dataclass(frozen=True)
class JunctionTable:
    """The junction statistic as a dense bar × bar count matrix (a few hundred bars a mode)."""

    counts: np.ndarray  # counts[a, b]: how often bar b followed bar a in the source songs
    # N of eq. 3: the number of templates (of this meter and mode). Normalising by the number
    # of junction observations instead was measured: concatenations then almost never win and
    # PCS/MCTD/CHE all get worse on the held-out set.
    n_templates: int
    _scores: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def matrix(self, variant: Variant) -> np.ndarray:
        """Junction scores in [0, 1], computed once per variant.

        Paper eq. 3: T = 1 + log_N(1/c) is a loss; 1 − T = log c / log N is the score.
        Release: log c / log c_max. Unseen junctions (c = 0) score 0."""
        key = "release" if variant == "release" else "paper"
        if key not in self._scores:
            top = float(self.counts.max(initial=2.0))
            denom = math.log(max(top if key == "release" else self.n_templates, 2))
            with np.errstate(divide="ignore"):
                scores = np.log(self.counts) / denom
            self._scores[key] = np.clip(np.nan_to_num(scores, neginf=0.0), 0.0, 1.0)
        return self._scores[key]

    def score(self, a: int, b: int, variant: Variant) -> float:
        return float(self.matrix(variant)[a, b])


@dataclass(frozen=True)
class ModeIndex:
    meter: str
    mode: Mode
    slots_per_bar: int
    groups: dict[int, LengthGroup]
    bar_ids: dict[BarSignature, int]
    junctions: JunctionTable

    @property
    def unknown_bar(self) -> int:
        """Bar id of a bar no template has (e.g. a user's locked chords): it joins nothing."""
        return len(self.bar_ids)


def _rows(template: ChordTemplate) -> list[int]:
    """`chord_table` row of every slot."""
    rows: list[int] = []
    for chord in template.chords:
        rows.extend([chord_row(chord.root, chord.quality)] * chord.slots)
    return rows


def _single_bars(templates: list[ChordTemplate], slots_per_bar: int) -> list[ChordTemplate]:
    """One-bar units: every distinct bar of the 2-bar templates, counts summed."""
    counts: dict[tuple[TemplateChord, ...], int] = {}
    owner: dict[tuple[TemplateChord, ...], ChordTemplate] = {}
    for tpl in templates:
        if tpl.bars != 2:
            continue
        for half in range(2):
            lo, hi = half * slots_per_bar, (half + 1) * slots_per_bar
            chords: list[TemplateChord] = []
            pos = 0
            for chord in tpl.chords:
                start, end = max(pos, lo), min(pos + chord.slots, hi)
                if end > start:
                    chords.append(TemplateChord(chord.root, chord.quality, chord.bass, end - start))
                pos += chord.slots
            key = tuple(chords)
            counts[key] = counts.get(key, 0) + tpl.count
            owner.setdefault(key, tpl)
    return [
        ChordTemplate(id=-1 - i, meter=owner[k].meter, mode=owner[k].mode, bars=UNIT_BARS,
                      chords=k, count=counts[k], style=owner[k].style, source="bar")
        for i, k in enumerate(sorted(counts, key=lambda k: (-counts[k], repr(k))))
    ]


def build_index(library: MeterLibrary, mode: Mode) -> ModeIndex:
    spb = library.slots_per_bar
    templates = [t for t in library.templates if t.mode == mode]
    units = _single_bars(templates, spb)
    bar_ids: dict[BarSignature, int] = {}

    def bar_id(sig: BarSignature) -> int:
        return bar_ids.setdefault(sig, len(bar_ids))

    groups: dict[int, LengthGroup] = {}
    by_bars: dict[int, list[ChordTemplate]] = {}
    for tpl in templates + units:
        by_bars.setdefault(tpl.bars, []).append(tpl)
    scale = set(DIATONIC_ROOTS[mode])
    for bars, members in sorted(by_bars.items()):
        sigs = [t.bar_signatures() for t in members]
        groups[bars] = LengthGroup(
            bars=bars,
            templates=tuple(members),
            rows=np.array([_rows(t) for t in members], dtype=np.intp),
            first_bar=np.array([bar_id(s[0]) for s in sigs], dtype=np.intp),
            last_bar=np.array([bar_id(s[-1]) for s in sigs], dtype=np.intp),
            style=np.array([STYLES.index(t.style) for t in members], dtype=np.intp),
            chromatic=np.array(
                [any(c.root != NO_CHORD and c.root not in scale for c in t.chords) for t in members]
            ),
            tonic_slots=np.array(
                [sum(c.slots for c in t.chords if c.root == 0) for t in members], dtype=float
            ),
            singles=tuple((t,) for t in members),
        )
    seen = [
        (bar_id(a), bar_id(b), count)
        for (jmode, a, b), count in sorted(library.junctions.items())
        if jmode == mode and count > 0
    ]
    # one spare row and column of zeros: the id of a bar no template has (`unknown_bar`)
    counts = np.zeros((len(bar_ids) + 1, len(bar_ids) + 1))
    for a_id, b_id, count in seen:
        counts[a_id, b_id] = count
    table = JunctionTable(counts=counts, n_templates=len(templates))
    return ModeIndex(library.meter, mode, spb, groups, bar_ids, table)


@lru_cache(maxsize=16)
def mode_index(library: TemplateLibrary, meter_key: str, mode: Mode) -> ModeIndex:
    return build_index(library.for_meter(meter_key), mode)
