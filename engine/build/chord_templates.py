"""Builds the chord-template library from the corpora (AccoMontage2 §3.1 / algorithms.md §1.6).

Owns: the cutting of 2/4/8-bar windows from the songs (`template_songs`), the templates other
meters derive from them and the style of each (`template_rules`), de-duplication with counts,
selection, bar-junction counts (the c of eq. 3) and the provenance record.

Windows with a no-chord slot or across a key change are dropped (counted in the provenance).
Identical (meter, mode, bars, chords) windows merge; the count is the number of windows (real
and derived ones alike) and the source the corpus that gave most of them (real beats derived).
Selection: the corpora give ~80k distinct progressions, most seen in one song only; the paper's
library had 5,762 and `load_library` slows with size, so each (meter, mode, bars) cell keeps its
best-ranked `CELL_BUDGET` templates (rank: songs, a real occurrence counting twice a derived
one, then windows), a tenth of the budget reserved for each style. Junction counts are kept
whole: they come from the full songs, not from the kept templates (9/8 and 12/8: only pairs
of bars that kept templates have, see `_junctions`).

Run: `python -m engine.build.chord_templates [--data DIR] [-o PATH]`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.build.template_rules import (
    COMPOUND_OF,
    SlotChord,
    chords_from_slots,
    compound_bar,
    derive_compound,
    derive_duple,
    derive_triple,
    label_style,
    triple_bar,
)
from engine.build.template_songs import Bar, SongChords, nottingham_songs, pop909_songs
from engine.library.chord_templates import (
    DEFAULT_LIBRARY_PATH,
    SLOTS_PER_BAR,
    BarSignature,
    ChordTemplate,
    MeterLibrary,
    TemplateChord,
    TemplateLibrary,
    save_library,
)
from engine.library.datasets import shared_data_dir
from engine.types import MODES, STYLES, Mode, Style

BUILD_COMMAND = "python -m engine.build.chord_templates"
TEMPLATE_BARS = (2, 4, 8)
# Templates kept per (meter, mode, bars): 4/4 is the main meter and gets the most.
CELL_BUDGET: dict[str, dict[int, int]] = {
    "4/4": {2: 400, 4: 500, 8: 400},
    "2/4": {2: 120, 4: 160, 8: 120},
    "3/4": {2: 120, 4: 160, 8: 120},
    "6/8": {2: 120, 4: 160, 8: 120},
    "9/8": {2: 120, 4: 160, 8: 120},
    "12/8": {2: 120, 4: 160, 8: 120},
}

# Meters whose junction table keeps only bars of kept templates (see `_junctions`).
PRUNED_JUNCTION_METERS = frozenset({"9/8", "12/8"})

Progress = Callable[[str], None]


TemplateKey = tuple[str, Mode, int, tuple[TemplateChord, ...]]  # meter, mode, bars, chords
JunctionKey = tuple[str, BarSignature, BarSignature]


@dataclass
class _Support:
    """How often one template was seen: windows per source, and in which songs."""

    windows: Counter[str] = field(default_factory=Counter)  # source -> windows
    real_songs: set[str] = field(default_factory=set)
    derived_songs: set[str] = field(default_factory=set)

    def add(self, source: str, song: str) -> None:
        self.windows[source] += 1
        (self.derived_songs if source == "derived" else self.real_songs).add(song)

    @property
    def rank(self) -> tuple[int, int]:
        """Selection rank: songs it occurs in (a real occurrence in the meter counts twice a
        derived one, so real waltzes and jigs win over converted pop), then windows."""
        return 2 * len(self.real_songs) + len(self.derived_songs), sum(self.windows.values())


@dataclass
class _Tally:
    """Everything counted while reading the songs."""

    templates: dict[TemplateKey, _Support]
    junctions: dict[str, Counter[JunctionKey]]
    dropped_windows: Counter[str]

    @classmethod
    def empty(cls) -> _Tally:
        return cls(defaultdict(_Support), defaultdict(Counter), Counter())


def _window_slots(song: SongChords, start: int, size: int) -> list[SlotChord] | None:
    bars = song.bars[start : start + size]
    if len(bars) < size:
        return None
    if any(b.segment != bars[0].segment for b in bars):
        return None
    if not all(b.complete for b in bars):
        return None
    return [s for b in bars for s in b.slots if s is not None]


def _add_song(song: SongChords, tally: _Tally) -> None:
    song_ref = f"{song.corpus}:{song.song_id}"
    for start, size in song.windows:
        slots = _window_slots(song, start, size)
        if slots is None:
            bars = song.bars[start : start + size]
            reason = ("window crosses a key change"
                      if len({b.segment for b in bars}) > 1 else "window has no-chord slots")
            if size > 1:
                tally.dropped_windows[reason] += 1
            continue
        mode = song.bars[start].mode
        chords = chords_from_slots(slots)
        if size in TEMPLATE_BARS:
            tally.templates[(song.meter, mode, size, chords)].add(song.corpus, song_ref)
        for derived_key in _derived_templates(song.meter, mode, size, chords, start):
            tally.templates[derived_key].add("derived", song_ref)
    _add_junctions(song, tally)


def _derived_templates(
    meter: str, mode: Mode, size: int, chords: tuple[TemplateChord, ...], start: int
) -> Iterator[TemplateKey]:
    """The templates other meters derive from one real window (rules in `template_rules`);
    `start` is the window's first bar (6/8 bars pair into 12/8 bars from an even bar)."""
    if meter == "6/8" and size % 2 == 0 and size // 2 in TEMPLATE_BARS and start % 2 == 0:
        yield "12/8", mode, size // 2, chords
    if meter == "3/4" and size in TEMPLATE_BARS:
        compound = derive_compound(chords, "3/4")
        if compound is not None:
            yield "9/8", mode, size, compound
    if meter != "4/4":
        return
    if 2 * size in TEMPLATE_BARS:
        yield "2/4", mode, 2 * size, derive_duple(chords)
    if size not in TEMPLATE_BARS:
        return
    for triple in ("3/4", "6/8"):
        derived = derive_triple(chords, triple)
        if derived is not None:
            yield triple, mode, size, derived
    waltz = derive_triple(chords, "3/4")
    for source, simple in (("4/4", chords), ("3/4", waltz)):
        compound = derive_compound(simple, source) if simple is not None else None
        if compound is not None:
            yield COMPOUND_OF[source], mode, size, compound


def _add_junctions(song: SongChords, tally: _Tally) -> None:
    """Count consecutive bar pairs (eq. 3's c) in the song's meter and in the meters derived
    from it, bars converted as their templates are."""
    for a, b in zip(song.bars, song.bars[1:], strict=False):
        if a.segment != b.segment or not (a.complete and b.complete):
            continue
        tally.junctions[song.meter][(a.mode, a.signature(), b.signature())] += 1
    if song.meter == "6/8":
        _count_converted(song.bars, tally.junctions["12/8"], pair_bars=True)
    if song.meter == "3/4":
        _count_converted(song.bars, tally.junctions["9/8"], compound_bar)
    if song.meter != "4/4":
        return
    halves: list[tuple[Bar, BarSignature] | None] = []
    for bar in song.bars:
        sig = bar.signature() if bar.complete else None
        halves += [(bar, sig[:4]), (bar, sig[4:])] if sig else [None, None]
    for x, y in zip(halves, halves[1:], strict=False):
        if x and y and x[0].segment == y[0].segment:
            tally.junctions["2/4"][(x[0].mode, x[1], y[1])] += 1
    _count_converted(song.bars, tally.junctions["3/4"], lambda bar: triple_bar(bar, "3/4"))
    _count_converted(song.bars, tally.junctions["6/8"], lambda bar: triple_bar(bar, "6/8"))
    _count_converted(song.bars, tally.junctions["12/8"], compound_bar)
    _count_converted(song.bars, tally.junctions["9/8"], _waltz_compound_bar)


def _waltz_compound_bar(bar: Sequence[SlotChord]) -> list[SlotChord] | None:
    """A 4/4 bar as 3/4 (`triple_bar`), then as 9/8 (`compound_bar`)."""
    triple = triple_bar(bar, "3/4")
    return compound_bar(triple) if triple is not None else None


def _count_converted(
    bars: Sequence[Bar], junctions: Counter[JunctionKey],
    convert: Callable[[Sequence[SlotChord]], list[SlotChord] | None] | None = None,
    pair_bars: bool = False,
) -> None:
    """Count consecutive bar pairs of a derived meter: each bar converted (`convert`), or two
    bars joined into one (`pair_bars`: 6/8 -> 12/8, from the song's first bar)."""
    joined: list[tuple[Bar, list[SlotChord] | None]] = []
    if pair_bars:
        for a, b in zip(bars[::2], bars[1::2], strict=False):
            whole = a.complete and b.complete and a.segment == b.segment
            joined.append((a, [s for s in a.slots + b.slots if s is not None] if whole else None))
    else:
        for bar in bars:
            slots = [s for s in bar.slots if s is not None] if bar.complete else None
            joined.append((bar, convert(slots) if slots and convert else None))
    for (a, a_slots), (b, b_slots) in zip(joined, joined[1:], strict=False):
        if a_slots and b_slots and a.segment == b.segment:
            key = (a.mode, tuple(s[0] for s in a_slots), tuple(s[0] for s in b_slots))
            junctions[key] += 1


def _select(
    candidates: Sequence[tuple[TemplateKey, _Support, Style]], budget: int
) -> list[tuple[TemplateKey, _Support, Style]]:
    """Keep `budget` templates of one (meter, mode, bars) cell: the best-ranked of each style
    first (a tenth of the budget each, so rarer colours survive), then the best-ranked of the
    rest. The corpora give ~80k distinct windows, mostly seen in one song only; the paper's
    library had 5,762 and loading stays quick at this size."""
    ranked = sorted(candidates, key=lambda c: (-c[1].rank[0], -c[1].rank[1], _chords_order(c[0])))
    if len(ranked) <= budget:
        return ranked
    keep: set[int] = set()
    for style in STYLES:
        of_style = [i for i, c in enumerate(ranked) if c[2] == style]
        keep.update(of_style[: budget // 10])
    for i in range(len(ranked)):
        if len(keep) >= budget:
            break
        keep.add(i)
    return [ranked[i] for i in sorted(keep)]


def _chords_order(key: TemplateKey) -> list[tuple[int, str, int, int]]:
    return [(c.root, c.quality, c.bass, c.slots) for c in key[3]]


def _templates(tally: _Tally) -> dict[str, list[ChordTemplate]]:
    """De-duplicated, selected templates per meter, by mode and bars, best-ranked first."""
    cells: dict[tuple[str, Mode, int], list[tuple[TemplateKey, _Support, Style]]]
    cells = defaultdict(list)
    for key, support in tally.templates.items():
        cells[key[:3]].append((key, support, label_style(key[3], key[1])))
    per_meter: dict[str, list[ChordTemplate]] = {meter: [] for meter in SLOTS_PER_BAR}
    for (meter, mode, bars), candidates in sorted(cells.items()):
        for (_, _, _, chords), support, style in _select(candidates, CELL_BUDGET[meter][bars]):
            real = {s: n for s, n in support.windows.items() if s != "derived"}
            per_meter[meter].append(ChordTemplate(
                id=len(per_meter[meter]), meter=meter, mode=mode, bars=bars, chords=chords,
                count=sum(support.windows.values()), style=style,
                source=min(real, key=lambda s: (-real[s], s)) if real else "derived",
            ))
    return per_meter


def _junctions(
    meter: str, templates: Sequence[ChordTemplate], tally: _Tally
) -> dict[JunctionKey, int]:
    """Junction counts of one meter, sorted. The compound meters derived from 4/4 pop songs
    keep only pairs of bars that some kept template has: the search looks up no other pair
    (it joins templates' first and last bars, and single bars cut from 2-bar templates), and
    the whole table of converted pop bars would double the shipped file."""
    counts = tally.junctions[meter]
    if meter in PRUNED_JUNCTION_METERS:
        bars = {(t.mode, sig) for t in templates for sig in t.bar_signatures()}
        counts = Counter({key: n for key, n in counts.items()
                          if (key[0], key[1]) in bars and (key[0], key[2]) in bars})
    return dict(sorted(counts.items()))


def _template_census(per_meter: dict[str, list[ChordTemplate]]) -> dict[str, Any]:
    census: dict[str, Any] = {}
    for meter, templates in per_meter.items():
        body: dict[str, Any] = {}
        for mode in MODES:
            of_mode = [t for t in templates if t.mode == mode]
            body[mode] = {
                "by_bars": {str(b): sum(t.bars == b for t in of_mode) for b in TEMPLATE_BARS},
                "by_style": {s: sum(t.style == s for t in of_mode) for s in STYLES},
                "by_source": dict(sorted(Counter(t.source for t in of_mode).items())),
            }
        census[meter] = body
    return census


def build_library(
    data_dir: Path, progress: Progress | None = None, limit: int | None = None
) -> TemplateLibrary:
    """Read the corpora under `data_dir` and build the library (algorithms.md §1.6).

    `limit` caps the songs read per corpus (tests); held-out songs never count."""
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    tally = _Tally.empty()
    skipped: Counter[str] = Counter()
    used: Counter[str] = Counter()
    for name, songs in (("POP909", pop909_songs(data_dir, limit, skipped, used)),
                        ("Nottingham", nottingham_songs(data_dir, limit, skipped, used))):
        say(f"reading {name} …")
        for song in songs:
            _add_song(song, tally)
    per_meter = _templates(tally)
    meters = {
        meter: MeterLibrary(meter, tuple(templates), _junctions(meter, templates, tally))
        for meter, templates in per_meter.items()
    }
    census = _template_census(per_meter)
    provenance: dict[str, Any] = {
        "built": datetime.now(UTC).date().isoformat(),
        "build_command": BUILD_COMMAND,
        "method": "algorithms.md §1.6; windows, derivation and style rule in "
                  "engine/build/chord_templates.py",
        "held_out_rule": "engine.library.datasets.is_held_out: sha1('dataset:id') % 10 == 0 "
                         "(ids: POP909 folder name, Nottingham file stem); never read",
        "sources": {
            "pop909": "pop909-structure finalized_chord.txt + analyzed_key.txt + "
                      "human_label1.txt (MIT)",
            "nottingham": "nottingham chords/*.mid + melody/*.mid (GPL-3; statistics only)",
            "derived": "2/4, 3/4, 6/8, 12/8 templates converted from real 4/4 windows; 9/8 "
                       "from 3/4 ones (real and derived); 12/8 from pairs of 6/8 bars",
        },
        "songs": dict(sorted(used.items())),
        "skipped_songs": dict(sorted(skipped.items())),
        "dropped_windows": dict(sorted(tally.dropped_windows.items())),
        "distinct_progressions_seen": len(tally.templates),
        "selection": "per (meter, mode, bars) the best-ranked by songs (real x2, derived x1) "
                     f"then windows, a tenth of each budget reserved per style; {CELL_BUDGET}",
        "templates": sum(len(t) for t in per_meter.values()),
        "junctions": {m: len(meters[m].junctions) for m in SLOTS_PER_BAR},
        "census": census,
    }
    say(f"built {provenance['templates']} templates in {time.perf_counter() - started:.1f} s")
    return TemplateLibrary(meters=meters, provenance=provenance)


def _report(library: TemplateLibrary) -> str:
    lines = [f"{library.size} templates"]
    for meter, body in library.provenance["census"].items():
        for mode, stats in body.items():
            bars = " ".join(f"{b}:{n}" for b, n in stats["by_bars"].items())
            styles = " ".join(f"{s}:{n}" for s, n in stats["by_style"].items())
            lines.append(f"  {meter} {mode:5}  bars {bars}  styles {styles}")
    lines.append(f"junctions: {library.provenance['junctions']}")
    lines.append(f"songs: {library.provenance['songs']}")
    lines.append(f"skipped: {library.provenance['skipped_songs']}")
    lines.append(f"dropped windows: {library.provenance['dropped_windows']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=BUILD_COMMAND, description="Build the chord-template library from the corpora."
    )
    parser.add_argument("--data", type=Path, default=None,
                        help="corpora folder (default: $ACCOBRIDGE_SHARED_DATA or ../shared/data)")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_LIBRARY_PATH,
                        help=f"library file to write (default: {DEFAULT_LIBRARY_PATH})")
    parser.add_argument("--limit", type=int, default=None, help="songs per corpus (quick test)")
    args = parser.parse_args(argv)
    data_dir = args.data or shared_data_dir()
    if data_dir is None:
        parser.error("no corpora folder found; pass --data DIR")
    library = build_library(data_dir, progress=lambda m: print(m, file=sys.stderr),
                            limit=args.limit)
    save_library(library, args.output)
    print(_report(library))
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
