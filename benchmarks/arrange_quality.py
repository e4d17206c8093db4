"""Accompaniment quality on the held-out corpus: `python -m benchmarks.arrange_quality`.

Scores our arranger (authored default library; the POP909 donor library when imported; each
also with a requested density/polyphony level pair) and POP909's own professional piano with the
accompaniment metrics of docs/evaluation.md, per corpus and overall, and says which of the
project's goals are met (chord-tone ratio ≥ 0.95, melody clash rate ≤ 2%).

Pieces are the held-out items of `benchmarks.eval_corpus` (POP909 songs and Nottingham tunes),
arranged with their key and phrases given as a user would (`EvalItem.given_options`). Every row
is judged on the span of the given phrases (first downbeat to last phrase end), with the
melody of the eval item; a piano note counts when it starts inside that span. An arranger row
is judged against its own chords; POP909's piano against the human chord annotation.
Level hit rates pool phrases: the share whose measured RD/VN level (engine.arranger.descriptors)
equals the requested level, or, on rows without a request, the level the arranger says it chose;
the pop909 rows are levelled on the donor library's own scale (quintiles per phrase length).
A system failing on a piece is counted and reported; the run goes on.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from benchmarks.common import map_pieces
from benchmarks.eval_corpus import NOTTINGHAM, POP909, EvalItem, load_eval_corpus
from engine.grid import melody_grid
from engine.library.datasets import shared_data_dir
from engine.metrics.accompaniment import (
    NO_CHORD,
    AccompanimentMetrics,
    accompaniment_metrics,
    chord_target_grid,
    note_rows,
    roots_per_beat,
)
from engine.piano_checks import PianoChecks, piano_checks
from engine.types import LEVELS, Arrangement, ArrangeOptions, ChordEvent, Melody

if TYPE_CHECKING:
    from engine.library.pop909_textures import DonorLibrary

log = logging.getLogger("benchmarks.arrange_quality")

DEFAULT_LIMIT = 20  # pieces per corpus
DEFAULT_LIB, DEFAULT_LEVELS, DONOR_LIB, DONOR_LEVELS, DONOR_LEARNED, HUMAN_PIANO = (
    "default", "default_levels", "pop909", "pop909_levels", "pop909_learned", "human_piano",
)
SYSTEMS = (DEFAULT_LIB, DEFAULT_LEVELS, DONOR_LIB, DONOR_LEVELS, DONOR_LEARNED, HUMAN_PIANO)
ARRANGER_SYSTEMS = (DEFAULT_LIB, DEFAULT_LEVELS, DONOR_LIB, DONOR_LEVELS, DONOR_LEARNED)
REQUESTING_SYSTEMS = (DEFAULT_LEVELS, DONOR_LEVELS)
DONOR_SYSTEMS = (DONOR_LIB, DONOR_LEVELS, DONOR_LEARNED)
TITLES = {
    DEFAULT_LIB: "ours, default library",
    DEFAULT_LEVELS: "ours, default, levels asked",
    DONOR_LIB: "ours, pop909 library",
    DONOR_LEVELS: "ours, pop909, levels asked",
    DONOR_LEARNED: "ours, pop909, learned models",
    HUMAN_PIANO: "POP909 piano (human)",
}
# Per-piece means (NaN left out) ...
MEAN_METRICS = ("chord_tone_ratio", "melody_clash_rate", "above_melody_share", "groove_within",
                "groove_across", "groove_ratio", "chord_recognizability", "rhythmic_density",
                "voice_number")
# ... and phrase-pooled level hit rates.
LEVEL_METRICS = ("density_hit", "polyphony_hit", "density_near", "polyphony_near")
COLUMNS = ("chord_tone_ratio", "melody_clash_rate", "above_melody_share", "density_hit",
           "polyphony_hit", "density_near", "polyphony_near", "groove_within", "groove_across",
           "groove_ratio", "chord_recognizability")
HEADERS = {
    "chord_tone_ratio": "CT↑", "melody_clash_rate": "clash↓", "above_melody_share": "above↓",
    "density_hit": "RD hit", "polyphony_hit": "VN hit", "density_near": "RD±1",
    "polyphony_near": "VN±1",
    "groove_within": "grv in", "groove_across": "grv x", "groove_ratio": "ratio",
    "chord_recognizability": "recog↑",
}
# Ear-level piano checks (engine/piano_checks.py; issue 11), pooled per group.
EARS = ("stacked", "velocity_gap", "loud", "thirdless", "parallel_octaves", "bass_on_root",
        "ending_held", "top_texture")
EAR_HEADERS = {"stacked": "stack↓", "velocity_gap": "velgap", "loud": "loud↓",
               "thirdless": "3rdless↓", "parallel_octaves": "//8ve↓", "bass_on_root": "bassR↑",
               "ending_held": "end↑",
               "top_texture": "toptex↓"}
DONOR_METER = "4/4"  # POP909 donors are 4/4 phrases: other pieces skip the pop909 rows
MIN_CHORD_TONE_RATIO = 0.95  # AccoMontage2's released outputs: ~0.956
MAX_CLASH_RATE = 0.02
MAX_ABOVE = 0.05
# issue 11's ear-level targets for every library
MIN_VELOCITY_GAP = 8.0
MAX_THIRDLESS = 0.02
MAX_PARALLEL_OCTAVES = 3.0
MIN_HELD_ENDING = 0.90
MAX_TOP_TEXTURE = 0.40
GROUPS = (POP909, NOTTINGHAM, "all")
MAX_FAILURES_SHOWN = 12  # the rest are in the --json output

_PHRASE_RE = re.compile(r"([A-Za-z])(\d+)")

Arranger = Callable[[Melody, ArrangeOptions], Arrangement]


def requested_levels(index: int) -> tuple[int, int]:
    """The (density, polyphony) pair asked of piece `index`: every pair once per 25 pieces."""
    return index % LEVELS, (index // LEVELS + index) % LEVELS


@dataclass(frozen=True)
class LevelHits:
    """Per-phrase level agreement of one piece: counts of phrases."""

    phrases: int
    density_hit: int
    polyphony_hit: int
    density_near: int  # within ±1 level
    polyphony_near: int


@dataclass
class PieceResult:
    """Metrics of every system on one piece; a failed system has an error message instead."""

    name: str
    dataset: str
    meter: str
    metrics: dict[str, AccompanimentMetrics] = field(default_factory=dict)
    ears: dict[str, PianoChecks] = field(default_factory=dict)  # engine/piano_checks.py
    textures: dict[str, tuple[str, ...]] = field(default_factory=dict)  # names used, per system
    levels: dict[str, LevelHits] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    seconds_by_system: dict[str, float] = field(default_factory=dict)  # making the piano only
    alignment: float = math.nan  # POP909: share of melody.txt onsets the MIDI melody matches


# ------------------------------------------------------------------------------ systems


def load_arranger() -> tuple[Arranger | None, str]:
    """The engine's facade `engine.pipeline.arrange`, or None and why not."""
    try:
        from engine import pipeline

        return cast(Arranger, pipeline.arrange), ""
    except (ImportError, AttributeError) as err:
        return None, f"{type(err).__name__}: {err}"


@cache
def donor_library() -> tuple[DonorLibrary | None, str]:
    """The imported POP909 donor library (loaded once per process), or None and why not."""
    try:
        from engine.library.pop909_textures import load_donor_library

        library = load_donor_library()
        return library, "" if library is not None else "not imported"
    except Exception as err:  # absent or unreadable: the pop909 rows are skipped, and said why
        return None, f"{type(err).__name__}: {err}"


def donor_level_cutpoints(
    library: DonorLibrary, phrases: Sequence[tuple[int, int]]
) -> list[tuple[Sequence[float], Sequence[float]]]:
    """Per phrase, the (RD, VN) cut points the donor library levels phrases of its length with
    (quintiles among donors of that length; library-wide ones for rare or absent lengths), so a
    measured level is on the scale the request and the donors' levels are."""
    cuts: list[tuple[Sequence[float], Sequence[float]]] = []
    for start, end in phrases:
        group = library.group(end - start)
        source = group if group is not None else library
        cuts.append((tuple(source.density_cutpoints), tuple(source.polyphony_cutpoints)))
    return cuts


def phrase_bars(phrases: str) -> list[tuple[int, int]]:
    """(start_bar, end_bar) per phrase of a phrase string such as "A8A8B8"."""
    spans: list[tuple[int, int]] = []
    bar = 0
    for match in _PHRASE_RE.finditer(phrases):
        spans.append((bar, bar + int(match.group(2))))
        bar += int(match.group(2))
    return spans


def human_piano(item: EvalItem) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """POP909's piano (PIANO + BRIDGE) rows, the annotated chord tones and roots per 16th, all
    on the pop909-structure grid the eval item's melody uses, and the MIDI/structure melody
    alignment score (`engine.build.pop909_midi`)."""
    from engine.build.pop909_midi import read_pop909_song

    root = shared_data_dir()
    if root is None:
        raise FileNotFoundError("shared data folder not found")
    song = read_pop909_song(root / POP909 / item.song_id, root / "pop909-structure" / item.song_id)
    per_beat = 4  # the chord file has one entry per quarter-note beat, 3/4 songs included
    tones = np.repeat(song.chord_chroma, per_beat, axis=0)
    roots = np.repeat(song.chord_roots.astype(np.int64), per_beat)
    return np.asarray(song.piano), tones, roots, float(song.alignment_match)


def arranger_targets(
    chords: Sequence[ChordEvent], length_16th: int
) -> tuple[np.ndarray, np.ndarray]:
    """Target chord tones and roots per 16th from tick 0 of the arranger's own chords."""
    return chord_target_grid(chords, length_16th), roots_per_beat(chords, length_16th, 1)


def _fitted(values: np.ndarray, length: int, fill: int) -> np.ndarray:
    """`values` cut or padded (with `fill`) to `length` rows."""
    if values.shape[0] >= length:
        return values[:length]
    padding = np.full((length - values.shape[0], *values.shape[1:]), fill, dtype=values.dtype)
    return np.concatenate([values, padding])


def _judged_rows(item: EvalItem, rows: np.ndarray) -> np.ndarray:
    """Piano rows from the item's first downbeat: notes starting inside the judged span."""
    start, end = item.downbeat_16th, item.end_16th
    shifted = np.array(rows, dtype=np.int64) if len(rows) else np.zeros((0, 4), dtype=np.int64)
    shifted[:, 0] -= start
    return shifted[(shifted[:, 0] >= 0) & (shifted[:, 0] < end - start)]


def judge(
    item: EvalItem, rows: np.ndarray, tones: np.ndarray, roots: np.ndarray,
    donors: DonorLibrary | None = None,
) -> AccompanimentMetrics:
    """Metrics of one piano part on the item's judged span (first downbeat to last phrase end).

    `rows` are notes in 16ths from tick 0; `tones` the target chord's pitch classes per 16th and
    `roots` the intended root per 16th (NO_CHORD where none), both from tick 0. With `donors`,
    RD/VN levels are on the donor library's scale, else on the descriptors' constants.
    """
    start, end = item.downbeat_16th, item.end_16th
    pitch, _ = melody_grid(item.melody, end)
    shifted = _judged_rows(item, rows)
    beat = item.meter.beat_16th
    phrases = phrase_bars(item.phrases)
    return accompaniment_metrics(
        shifted,
        pitch[start:],
        _fitted(np.asarray(tones, dtype=bool), end, 0)[start:],
        _fitted(np.asarray(roots, dtype=np.int64), end, NO_CHORD)[start:end:beat],
        phrases,
        item.meter.sixteenths_per_bar,
        beat,
        level_cutpoints=None if donors is None else donor_level_cutpoints(donors, phrases),
    )


def judge_ears(item: EvalItem, rows: np.ndarray, tones: np.ndarray,
               roots: np.ndarray) -> PianoChecks:
    """Ear-level piano checks (`engine.piano_checks`) on the same span and grid as `judge`."""
    start, end = item.downbeat_16th, item.end_16th
    pitch, onset = melody_grid(item.melody, end)
    shifted = _judged_rows(item, rows)
    ticks = item.melody.ticks_per_16th
    velocities = np.array([n.velocity for n in item.melody.notes
                           if start <= round(n.start_tick / ticks) < end])
    return piano_checks(
        shifted, pitch[start:end], onset[start:end], velocities,
        _fitted(np.asarray(tones, dtype=bool), end, 0)[start:end],
        _fitted(np.asarray(roots, dtype=np.int64), end, NO_CHORD)[start:end],
        item.meter.beat_16th,
    )


def level_hits(metrics: AccompanimentMetrics, density: Sequence[int],
               polyphony: Sequence[int]) -> LevelHits:
    measured_d, measured_p = np.array(metrics.density_levels), np.array(metrics.polyphony_levels)
    want_d, want_p = np.array(density), np.array(polyphony)
    if not (measured_d.shape == want_d.shape == measured_p.shape == want_p.shape):
        raise ValueError(
            f"{len(want_d)} texture levels for {len(measured_d)} phrases"
        )
    return LevelHits(
        phrases=int(measured_d.size),
        density_hit=int((measured_d == want_d).sum()),
        polyphony_hit=int((measured_p == want_p).sum()),
        density_near=int((abs(measured_d - want_d) <= 1).sum()),
        polyphony_near=int((abs(measured_p - want_p) <= 1).sum()),
    )


def evaluate_piece(job: tuple[int, EvalItem]) -> PieceResult:
    """Run every system on one piece; each failure is recorded and the others still run."""
    index, item = job
    result = PieceResult(item.name, item.dataset, item.meter.name)
    arranger, _ = load_arranger()
    donors, _ = donor_library()
    density, polyphony = requested_levels(index)
    systems: dict[str, ArrangeOptions] = {}
    if arranger is not None:
        harmonize = item.given_options()
        systems[DEFAULT_LIB] = ArrangeOptions(harmonize=harmonize, library="default")
        systems[DEFAULT_LEVELS] = ArrangeOptions(
            harmonize=harmonize, library="default", density=density, polyphony=polyphony
        )
        if donors is not None and item.meter.name == DONOR_METER:
            systems[DONOR_LIB] = ArrangeOptions(harmonize=harmonize, library="pop909")
            systems[DONOR_LEVELS] = ArrangeOptions(
                harmonize=harmonize, library="pop909", density=density, polyphony=polyphony
            )
            # the learned re-harmonizer (VAE) and contrastive transition instead of the rules
            systems[DONOR_LEARNED] = ArrangeOptions(
                harmonize=harmonize, library="pop909", reharmonizer="learned",
                transition="learned",
            )
    for system, options in systems.items():
        assert arranger is not None
        started = time.perf_counter()
        try:
            arrangement = arranger(item.melody, options)
            result.seconds_by_system[system] = time.perf_counter() - started
            rows = note_rows(arrangement.piano_notes, item.melody.ticks_per_16th)
            tones, roots = arranger_targets(arrangement.harmonization.chords, item.end_16th)
            metrics = judge(item, rows, tones, roots, donors if system in DONOR_SYSTEMS else None)
            result.metrics[system] = metrics
            result.ears[system] = judge_ears(item, rows, tones, roots)
            result.textures[system] = tuple(dict.fromkeys(t.name for t in arrangement.textures))
            phrases = len(metrics.density_levels)
            if system in REQUESTING_SYSTEMS:
                wanted = ([density] * phrases, [polyphony] * phrases)
            else:
                wanted = ([t.density_level for t in arrangement.textures],
                          [t.polyphony_level for t in arrangement.textures])
            result.levels[system] = level_hits(metrics, *wanted)
        except Exception as err:  # a benchmark must survive one bad piece: count, log, go on
            log.warning("%s failed on %s: %s: %s", system, item.name, type(err).__name__, err)
            result.failures[system] = f"{type(err).__name__}: {err}"
    if item.dataset == POP909:
        try:
            rows, tones, roots, result.alignment = human_piano(item)
            result.metrics[HUMAN_PIANO] = judge(item, rows, tones, roots)
            result.ears[HUMAN_PIANO] = judge_ears(item, rows, tones, roots)
        except Exception as err:  # same: count, log, go on
            log.warning("POP909 piano failed on %s: %s: %s", item.name, type(err).__name__, err)
            result.failures[HUMAN_PIANO] = f"{type(err).__name__}: {err}"
    return result


def evaluate(items: Sequence[EvalItem], jobs: int) -> list[PieceResult]:
    """All pieces, in corpus order; `jobs` worker processes (1: in this process)."""
    return map_pieces(evaluate_piece, list(enumerate(items)), jobs)


# ----------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class Summary:
    """One system over one group of pieces: per-piece means and phrase-pooled level hit rates."""

    pieces: int
    failures: int
    phrases: int
    means: dict[str, float]
    seconds: float  # mean time to arrange one piece (NaN for the human piano)
    ears: dict[str, float] = field(default_factory=dict)  # pooled piano checks (EARS)


def summarise(results: Sequence[PieceResult]) -> dict[str, dict[str, Summary]]:
    """group → system → summary."""
    table: dict[str, dict[str, Summary]] = {}
    for group in GROUPS:
        members = [r for r in results if group in ("all", r.dataset)]
        table[group] = {}
        for system in SYSTEMS:
            scored = [r.metrics[system] for r in members if system in r.metrics]
            means = {m: _nanmean([float(getattr(s, m)) for s in scored]) for m in MEAN_METRICS}
            hits = [r.levels[system] for r in members if system in r.levels]
            phrases = sum(h.phrases for h in hits)
            for m in LEVEL_METRICS:
                means[m] = sum(getattr(h, m) for h in hits) / phrases if phrases else math.nan
            took = [r.seconds_by_system[system] for r in members if system in r.seconds_by_system]
            table[group][system] = Summary(
                pieces=len(scored),
                failures=sum(1 for r in members if system in r.failures),
                phrases=phrases,
                means=means,
                seconds=_nanmean(took),
                ears=pool_ears([r.ears[system] for r in members if system in r.ears],
                               [r.textures[system] for r in members if system in r.textures]),
            )
    return table


def pool_ears(checks: Sequence[PianoChecks],
              textures: Sequence[Sequence[str]]) -> dict[str, float]:
    """The piano checks of several pieces pooled (note-ons, notes, chords, bass moves; the
    velocities by note-on), the held-ending share of pieces, and the top texture share: the
    largest share of pieces that use one and the same texture or donor phrase."""
    def total(name: str) -> int:
        return sum(int(getattr(c, name)) for c in checks)

    ons = total("note_ons")
    piano = sum(c.piano_velocity * c.note_ons for c in checks if c.note_ons)
    melody = _nanmean([c.melody_velocity for c in checks])
    used = Counter(name for names in textures for name in set(names))
    return {
        "stacked": total("stacked") / ons if ons else math.nan,
        "velocity_gap": melody - piano / ons if ons else math.nan,
        "loud": total("loud") / ons if ons else math.nan,
        "thirdless": (total("thirdless") / total("chords_judged")
                      if total("chords_judged") else math.nan),
        "parallel_octaves": (100 * total("parallel_octaves") / total("bass_moves")
                             if total("bass_moves") else math.nan),
        "bass_on_root": (total("bass_on_root") / total("chord_changes")
                         if total("chord_changes") else math.nan),
        "ending_held": _nanmean([c.ending_held for c in checks]),
        "top_texture": max(used.values()) / len(textures) if textures and used else math.nan,
    }


def goals(summary: dict[str, Summary]) -> dict[str, dict[str, bool]]:
    """Per arranger row: the project's goals (docs/evaluation.md, the arranger issue)."""
    verdicts: dict[str, dict[str, bool]] = {}
    for system in ARRANGER_SYSTEMS:
        row = summary[system]
        if row.pieces == 0:
            continue
        m = row.means
        e = row.ears
        verdicts[system] = {
            f"chord-tone ratio >= {MIN_CHORD_TONE_RATIO}":
                m["chord_tone_ratio"] >= MIN_CHORD_TONE_RATIO,
            f"clash rate <= {MAX_CLASH_RATE:.0%}": m["melody_clash_rate"] <= MAX_CLASH_RATE,
            f"above melody <= {MAX_ABOVE:.0%}": m["above_melody_share"] <= MAX_ABOVE,
            "groove within > across": m["groove_ratio"] > 1.0,
            # issue 11's ear-level targets
            "no stacked note-ons": e.get("stacked") == 0.0,
            f"velocity gap >= {MIN_VELOCITY_GAP}": e.get("velocity_gap", 0.0) >= MIN_VELOCITY_GAP,
            f"thirdless <= {MAX_THIRDLESS:.0%}": e.get("thirdless", 1.0) <= MAX_THIRDLESS,
            f"parallel octaves <= {MAX_PARALLEL_OCTAVES:g}/100":
                e.get("parallel_octaves", 100.0) <= MAX_PARALLEL_OCTAVES,
            f"held ending >= {MIN_HELD_ENDING:.0%}": e.get("ending_held", 0.0) >= MIN_HELD_ENDING,
            f"top texture <= {MAX_TOP_TEXTURE:.0%}": e.get("top_texture", 1.0) <= MAX_TOP_TEXTURE,
        }
    return verdicts


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


# ------------------------------------------------------------------------------ report


def format_report(
    table: dict[str, dict[str, Summary]], results: Sequence[PieceResult], notes: Sequence[str],
    seconds: float,
) -> str:
    lines: list[str] = []
    name_width = 28
    header = f"{'':<{name_width}}{'n':>4}{'fail':>5}" + "".join(
        f"{HEADERS[m]:>8}" for m in COLUMNS
    )
    for group in GROUPS:
        pieces = sum(1 for r in results if group in ("all", r.dataset))
        lines += ["", f"== {group} ({pieces} pieces)", header]
        for system in SYSTEMS:
            row = table[group][system]
            if row.pieces == 0 and row.failures == 0:
                continue
            cells = "".join(f"{_cell(row.means[m]):>8}" for m in COLUMNS)
            lines.append(f"{TITLES[system]:<{name_width}}{row.pieces:>4}{row.failures:>5}{cells}")
    ear_header = f"{'':<{name_width}}{'n':>4}{'':>5}" + "".join(
        f"{EAR_HEADERS[e]:>9}" for e in EARS)
    for group in GROUPS:
        lines += ["", f"== {group}: ear-level piano checks", ear_header]
        for system in SYSTEMS:
            row = table[group][system]
            if row.pieces == 0:
                continue
            cells = "".join(f"{_ear_cell(row.ears.get(e, math.nan), e):>9}" for e in EARS)
            lines.append(f"{TITLES[system]:<{name_width}}{row.pieces:>4}{'':>5}{cells}")
    lines += [
        "",
        "stack: share of note-ons on a pitch already sounding; vel gap: melody mean − piano mean",
        "velocity; loud: share of piano notes at velocity ≥ 110; 3rdless: major/minor chords of",
        "≥ a beat whose third sounds nowhere; //8ve: parallel octaves with the melody per 100",
        "bass moves; bassR: new chords whose first piano onset has the root in the bass; end:",
        "last piano onset within a beat of the melody's, held ≥ a beat (share of",
        "pieces); top tex: largest share of pieces using one texture or donor phrase. POP909",
        "melodies come from melody.txt at velocity 90, so its human piano's gap is against 90.",
        "",
        "CT chord-tone ratio, clash: share of piano duration under the melody at a m2/TT/M7,",
        "above: share of piano notes starting above the melody; RD/VN hit: share of phrases at the",
        "requested level (rows without a request: the level the arranger reports), ±1 within one",
        "level; grv in/x: bar-pair onset Jaccard within/across phrases; recog: triad-root match",
        "per beat.",
        "",
    ]
    lines += notes
    for system, verdict in goals(table["all"]).items():
        met = [name for name, ok in verdict.items() if ok]
        missed = [name for name, ok in verdict.items() if not ok]
        lines.append(
            f"goals, {TITLES[system]}: {len(met)}/{len(verdict)} met"
            + (f"; missed: {', '.join(missed)}" if missed else "")
        )
    if any(s in r.metrics or s in r.failures for r in results for s in DONOR_SYSTEMS):
        other = Counter(r.meter for r in results if r.meter != DONOR_METER)
        if other:
            meters = ", ".join(f"{count} in {meter}" for meter, count in sorted(other.items()))
            lines.append(f"pop909 rows: {DONOR_METER} pieces only ({meters} skipped)")
    aligned = [r.alignment for r in results if not math.isnan(r.alignment)]
    if aligned:
        lines.append(
            f"POP909 piano: MIDI melody matches melody.txt on {np.mean(aligned):.1%} of onsets "
            f"on average (min {min(aligned):.1%}; the grid the piano is judged on)"
        )
    failures = [(r.name, s, msg) for r in results for s, msg in r.failures.items()]
    if failures:
        lines.append(f"failures ({len(failures)}):")
        shown = failures[:MAX_FAILURES_SHOWN]
        lines += [f"  {name} {TITLES[system]}: {msg}" for name, system, msg in shown]
        if len(shown) < len(failures):
            lines.append(f"  … {len(failures) - len(shown)} more (see --json)")
    for system in ARRANGER_SYSTEMS:
        took = [r.seconds_by_system[system] for r in results if system in r.seconds_by_system]
        if took:
            lines.append(
                f"{TITLES[system]}: {1000 * float(np.mean(took)):.0f} ms per piece "
                f"(max {1000 * max(took):.0f} ms)"
            )
    lines.append(f"time: {seconds:.1f} s")
    return "\n".join(lines)


def _cell(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3f}"


def _ear_cell(value: float, ear: str) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:.1f}" if ear in ("velocity_gap", "parallel_octaves") else f"{value:.3f}"


def report_json(
    table: dict[str, dict[str, Summary]], results: Sequence[PieceResult], notes: Sequence[str],
    seconds: float,
) -> dict[str, Any]:
    def clean(value: object) -> object:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, (tuple, list)):
            return [clean(v) for v in value]
        return value

    return {
        "seconds": seconds,
        "notes": list(notes),
        "summary": {
            group: {
                system: {"pieces": row.pieces, "failures": row.failures, "phrases": row.phrases,
                         "seconds_per_piece": clean(row.seconds),
                         **{m: clean(v) for m, v in row.means.items()},
                         **{e: clean(v) for e, v in row.ears.items()}}
                for system, row in rows.items()
            }
            for group, rows in table.items()
        },
        "goals": goals(table["all"]),
        "pieces": [
            {
                "name": r.name,
                "meter": r.meter,
                "seconds_by_system": r.seconds_by_system,
                "metrics": {
                    s: {k: clean(v) for k, v in asdict(m).items()} for s, m in r.metrics.items()
                },
                "levels": {s: asdict(h) for s, h in r.levels.items()},
                "ears": {s: {k: clean(v) for k, v in asdict(e).items()}
                         for s, e in r.ears.items()},
                "textures": {s: list(t) for s, t in r.textures.items()},
                "failures": r.failures,
                "alignment": clean(r.alignment),
            }
            for r in results
        ],
    }


def availability_notes() -> list[str]:
    """What could not be run in this process, and how to make it run."""
    notes: list[str] = []
    _, missing = load_arranger()
    if missing:
        notes.append(f"engine.pipeline.arrange not available, only POP909's piano scored: "
                     f"{missing}")
    donors, why = donor_library()
    if donors is None:
        notes.append(
            f"POP909 donor library not available ({why}): pop909 rows skipped; import it with "
            "`accobridge library import-pop909 PATH`"
        )
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.arrange_quality", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help=f"pieces per corpus (default {DEFAULT_LIMIT}; 0 = all held-out)")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes (default: 2, or 1 on a one-core machine)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    began = time.perf_counter()
    limit = args.limit or None
    corpus = load_eval_corpus(limit, limit)
    if not corpus.items:
        print("no evaluation data: shared data folder not found (set ACCOBRIDGE_SHARED_DATA)",
              file=sys.stderr)
        return 1
    notes = availability_notes()
    results = evaluate(corpus.items, args.jobs)
    table = summarise(results)
    seconds = time.perf_counter() - began
    print(format_report(table, results, notes, seconds))
    if args.json is not None:
        args.json.write_text(json.dumps(report_json(table, results, notes, seconds), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
