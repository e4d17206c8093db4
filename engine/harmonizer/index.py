"""Array form of one meter/mode slice of the template library, built once per process.

The search works on integer arrays: per template the root row of every slot, an id for its
first and last bar, its style; and per bar id the junction counts to every following bar id
(the c of eq. 3). Building this is the only per-library cost; each harmonization is then
vectorised numpy work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine.harmonizer.micro import DIATONIC_ROOTS, NO_CHORD_ROW
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
    rows: np.ndarray  # (n, bars*slots_per_bar) root-row index per slot (NO_CHORD_ROW for N.C.)
    first_bar: np.ndarray  # (n,) bar-signature id of the first bar
    last_bar: np.ndarray  # (n,) bar-signature id of the last bar
    style: np.ndarray  # (n,) index into STYLES
    chromatic: np.ndarray  # (n,) bool: any root outside the mode's scale


@dataclass(frozen=True)
class JunctionTable:
    """Sparse junction statistic: for each bar id, the following bar ids and their counts."""

    following: tuple[np.ndarray, ...]  # per bar id: ids of bars seen right after it
    counts: tuple[np.ndarray, ...]  # per bar id: how often (aligned with `following`)
    n_templates: int  # N of eq. 3
    max_count: int  # c_max of the release's log(c)/log(c_max)

    def scores(self, bar_id: int, variant: Variant) -> tuple[np.ndarray, np.ndarray]:
        """Junction score in [0, 1] from bar `bar_id` to each bar it was seen before.

        Paper eq. 3: T = 1 + log_N(1/c) is a loss; 1 − T = log c / log N is the score.
        Release: log c / log c_max. Unseen junctions (c = 0) score 0."""
        counts = self.counts[bar_id]
        denom = math.log(max(self.n_templates if variant == "paper" else self.max_count, 2))
        return self.following[bar_id], np.clip(np.log(counts) / denom, 0.0, 1.0)

    def score(self, a: int, b: int, variant: Variant) -> float:
        ids, scores = self.scores(a, variant)
        hit = np.nonzero(ids == b)[0]
        return float(scores[hit[0]]) if len(hit) else 0.0


@dataclass(frozen=True)
class ModeIndex:
    meter: str
    mode: Mode
    slots_per_bar: int
    groups: dict[int, LengthGroup]
    bar_ids: dict[BarSignature, int]
    junctions: JunctionTable


def _rows(roots: tuple[int, ...]) -> list[int]:
    return [NO_CHORD_ROW if r == NO_CHORD else r for r in roots]


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
            rows=np.array([_rows(t.slot_roots()) for t in members], dtype=np.intp),
            first_bar=np.array([bar_id(s[0]) for s in sigs], dtype=np.intp),
            last_bar=np.array([bar_id(s[-1]) for s in sigs], dtype=np.intp),
            style=np.array([STYLES.index(t.style) for t in members], dtype=np.intp),
            chromatic=np.array(
                [any(c.root != NO_CHORD and c.root not in scale for c in t.chords) for t in members]
            ),
        )
    following: dict[int, list[tuple[int, int]]] = {}
    for (jmode, a, b), count in library.junctions.items():
        if jmode == mode and count > 0:
            following.setdefault(bar_id(a), []).append((bar_id(b), count))
    n_bars = len(bar_ids)
    table = JunctionTable(
        following=tuple(
            np.array([b for b, _ in following.get(i, [])], dtype=np.intp) for i in range(n_bars)
        ),
        counts=tuple(
            np.array([c for _, c in following.get(i, [])], dtype=float) for i in range(n_bars)
        ),
        n_templates=len(templates),
        max_count=max((c for lst in following.values() for _, c in lst), default=2),
    )
    return ModeIndex(library.meter, mode, spb, groups, bar_ids, table)


@lru_cache(maxsize=16)
def mode_index(library: TemplateLibrary, meter_key: str, mode: Mode) -> ModeIndex:
    return build_index(library.for_meter(meter_key), mode)
