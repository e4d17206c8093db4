"""Melodies whose meter changes: one-meter sections in, one result in the piece's time out.

The harmonizer and the arranger work in one meter (a chord template is a run of equal bars, a
texture tiles one bar length), so a melody whose time signature changes is cut at every change
into sections, each a one-meter melody on its own clock whose bar lines restart at the change.
Each section gets its own phrases (a phrase never crosses a change), templates and textures;
the results are shifted back into the piece's ticks and 16ths and joined. This module owns
the cutting, the analysis of the whole piece and the shifting; engine.pipeline runs the
one-meter engine on each section.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from engine.analysis.key import estimate_key_of_sections
from engine.analysis.meter_grid import first_downbeat
from engine.analysis.phrases import LABELS, parse_phrase_string, segment_phrases, total_bars
from engine.errors import OptionError, PhraseStringError
from engine.grid import note_spans_16th
from engine.types import (
    ChordEvent,
    Harmonization,
    Key,
    Melody,
    MelodyAnalysis,
    Meter,
    MeterSection,
    Note,
    PedalEvent,
    Phrase,
    PhraseHarmony,
    ProgressionChoice,
    TextureChoice,
)


@dataclass(frozen=True)
class MeterPiece:
    """One section's melody on its own clock: its tick 0 is `offset_tick` of the piece. A note
    sounding over the change belongs to the section it starts in, cut at the change."""

    melody: Melody
    offset_tick: int
    offset_16th: int


def split_melody(melody: Melody) -> tuple[MeterPiece, ...]:
    """The melody cut at every meter change (one piece for a melody in one meter)."""
    starts = [0, *(tick for tick, _ in melody.meter_changes)]
    ends = [*starts[1:], None]
    meters = [melody.meter, *(meter for _, meter in melody.meter_changes)]
    pieces = []
    for lo, hi, meter in zip(starts, ends, meters, strict=True):
        notes = tuple(
            Note(n.pitch, n.start_tick - lo,
                 (n.end_tick if hi is None else min(n.end_tick, hi)) - n.start_tick, n.velocity)
            for n in melody.notes
            if n.start_tick >= lo and (hi is None or n.start_tick < hi)
        )
        local = replace(melody, notes=notes, meter=meter, tempo_changes=(), meter_changes=())
        pieces.append(MeterPiece(local, lo, round(lo / melody.ticks_per_16th)))
    return tuple(pieces)


def bar_at_tick(
    tick: int, ticks_per_beat: int, first: Meter, changes: Sequence[tuple[int, Meter]]
) -> int:
    """0-based bar of a tick counted from tick 0, each bar in its own meter (bar lines restart
    at every change, as a DAW counts them; a partial bar before a change counts as a bar)."""
    bars, start, meter = 0, 0, first
    for change_tick, new_meter in changes:
        if change_tick > tick:
            break
        bars += math.ceil((change_tick - start) / _ticks_per_bar(meter, ticks_per_beat))
        start, meter = change_tick, new_meter
    return bars + int((tick - start) // _ticks_per_bar(meter, ticks_per_beat))


def _ticks_per_bar(meter: Meter, ticks_per_beat: int) -> float:
    return ticks_per_beat * 4 * meter.numerator / meter.denominator


def bar_of_tick(melody: Melody, tick: int) -> int:
    """`bar_at_tick` in a melody's meter map."""
    return bar_at_tick(tick, melody.ticks_per_beat, melody.meter, melody.meter_changes)


# ---------------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class _Grid:
    """Where one section's bars lie: its first bar line (local 16ths), how many bars the
    piece counts in it (a partial bar before the next change counts) and how many whole bars
    phrases may fill."""

    downbeat_16th: int
    counted_bars: int
    phrase_bars: int


def _grids(pieces: Sequence[MeterPiece], pickup_16th: int) -> list[_Grid]:
    grids = []
    for k, piece in enumerate(pieces):
        bar = piece.melody.meter.sixteenths_per_bar
        # phrase 1 may start a bar late (an upbeat figure); a later section starts at its
        # change, so that no bar of the piece goes without chords
        downbeat = (first_downbeat(piece.melody, pickup_16th) if k == 0 and piece.melody.notes
                    else pickup_16th if k == 0 else 0)
        if k + 1 < len(pieces):
            length = pieces[k + 1].offset_16th - piece.offset_16th - downbeat
            counted, whole = max(0, math.ceil(length / bar)), max(0, length // bar)
        else:
            counted = whole = total_bars(piece.melody, downbeat) if piece.melody.notes else 0
        # a section without notes has no phrases (nothing to harmonize), only its bar count
        whole = min(whole, total_bars(piece.melody, downbeat)) if piece.melody.notes else 0
        grids.append(_Grid(downbeat, counted, whole))
    return grids


def phrase_spans(melody: Melody, pickup_16th: int | None = None) -> tuple[tuple[int, int], ...]:
    """(first bar line in 16ths of the piece, bars) that each meter section's phrases must fill,
    as a given phrase string is checked (a partial bar before a change gets no phrase); the
    pickup as `analyze_sections` takes it."""
    pieces = split_melody(melody)
    grids = _grids(pieces, _pickup(pieces, pickup_16th))
    return tuple((piece.offset_16th + grid.downbeat_16th, grid.phrase_bars)
                 for piece, grid in zip(pieces, grids, strict=True))


def analyze_sections(
    melody: Melody, key: Key | None = None, phrases: str | None = None,
    pickup_16th: int | None = None,
) -> MelodyAnalysis:
    """Key, bar grid and phrases of a melody whose meter changes (`engine.analysis.analyze`
    per section): one key for the piece, phrases per section, bars numbered through the piece.

    The file puts a bar line at every change, so the first section's pickup follows from the
    first change; a given pickup must agree with it."""
    pieces = split_melody(melody)
    pickup = _pickup(pieces, pickup_16th)
    grids = _grids(pieces, pickup)
    sounding = [k for k, piece in enumerate(pieces) if piece.melody.notes]
    if key is None:
        key_found, confidence = estimate_key_of_sections(
            [(pieces[k].melody, pickup if k == 0 else 0) for k in sounding])
    else:
        key_found, confidence = key, 1.0
    first_bars = [sum(g.counted_bars for g in grids[:k]) for k in range(len(grids))]
    if phrases is None:
        per_section = _detected_phrases(pieces, grids, key_found)
    else:
        per_section = _given_phrases(phrases, pieces, grids, first_bars)
    found = tuple(
        Phrase(p.label, p.start_bar + first_bars[k], p.bars)
        for k, section_phrases in enumerate(per_section) for p in section_phrases
    )
    sections = tuple(
        MeterSection(piece.melody.meter, piece.offset_16th + grid.downbeat_16th, first_bar)
        for piece, grid, first_bar in zip(pieces, grids, first_bars, strict=True)
    )
    return MelodyAnalysis(
        key=key_found,
        key_confidence=confidence,
        meter=melody.meter,
        pickup_16th=pickup,
        downbeat_16th=sections[0].start_16th,
        phrases=found,
        key_source="detected" if key is None else "user",
        phrase_source="detected" if phrases is None else "user",
        sections=sections,
    )


def _pickup(pieces: Sequence[MeterPiece], given: int | None) -> int:
    first, change = pieces[0].melody.meter, pieces[1].offset_16th
    implied = change % first.sixteenths_per_bar
    if given is not None and given != implied:
        raise OptionError(
            f"pickup {given} puts no bar line at the change to {pieces[1].melody.meter.name} "
            f"(16th {change}); with this meter map the pickup is {implied} sixteenths"
        )
    return implied


def _detected_phrases(
    pieces: Sequence[MeterPiece], grids: Sequence[_Grid], key: Key
) -> list[tuple[Phrase, ...]]:
    """Each section's phrases as `segment_phrases` finds them, lettered on from the letters
    the sections before used (a phrase in another meter is never a repeat of one here)."""
    out: list[tuple[Phrase, ...]] = []
    used = 0
    for piece, grid in zip(pieces, grids, strict=True):
        if not piece.melody.notes or grid.phrase_bars == 0:
            out.append(())
            continue
        found = segment_phrases(piece.melody, grid.downbeat_16th, key)
        kept = [Phrase(p.label, p.start_bar, min(p.bars, grid.phrase_bars - p.start_bar))
                for p in found if p.start_bar < grid.phrase_bars]
        letters = {label: LABELS[min(used + i, len(LABELS) - 1)]
                   for i, label in enumerate(dict.fromkeys(p.label for p in kept))}
        used += len(letters)
        out.append(tuple(replace(p, label=letters[p.label]) for p in kept))
    return out


_GROUP = re.compile(r"[A-Za-z]\d+")


def _given_phrases(
    text: str, pieces: Sequence[MeterPiece], grids: Sequence[_Grid], first_bars: Sequence[int]
) -> list[tuple[Phrase, ...]]:
    """The user's phrase string cut at the meter changes: each section's phrases must fill
    its whole bars (the last section: up to the melody's end, as for one meter)."""
    compact = re.sub(r"\s+", "", text)
    groups = _GROUP.findall(compact)
    if "".join(groups) != compact or not groups:
        parse_phrase_string(text, 1)  # raises with the usual message for a bad string
    out: list[tuple[Phrase, ...]] = []
    position = 0
    for k, (piece, grid) in enumerate(zip(pieces, grids, strict=True)):
        last = k + 1 == len(pieces)
        taken: list[str] = []
        bars = 0
        while position < len(groups) and (last or bars < grid.phrase_bars):
            length = int(groups[position][1:])
            if not last and bars + length > grid.phrase_bars:
                change = first_bars[k] + grid.counted_bars + 1
                raise PhraseStringError(
                    f"phrase {groups[position]!r} crosses the change to "
                    f"{pieces[k + 1].melody.meter.name} at bar {change}: a phrase must end at "
                    f"a meter change (the {piece.melody.meter.name} section from bar "
                    f"{first_bars[k] + 1} has {grid.phrase_bars} bars)"
                )
            taken.append(groups[position])
            bars += length
            position += 1
        if not taken:
            if grid.phrase_bars:
                raise PhraseStringError(
                    f"phrases cover {sum(int(g[1:]) for g in groups)} bars but the melody has "
                    f"more: the {piece.melody.meter.name} section from bar {first_bars[k] + 1} "
                    f"has {grid.phrase_bars} bars without a phrase"
                )
            out.append(())
            continue
        last_onset = (int(note_spans_16th(piece.melody)[0].max()) - grid.downbeat_16th
                      ) // piece.melody.meter.sixteenths_per_bar if last else None
        try:
            out.append(parse_phrase_string("".join(taken), grid.phrase_bars, last_onset))
        except PhraseStringError as err:
            raise PhraseStringError(
                f"{err} in the {piece.melody.meter.name} section from bar {first_bars[k] + 1}"
            ) from err
    return out


def section_analysis(analysis: MelodyAnalysis, k: int, piece: MeterPiece) -> MelodyAnalysis:
    """Section k's one-meter analysis on the piece's clock: its phrases, bars from its own
    first bar line."""
    section = analysis.sections[k]
    end = (analysis.sections[k + 1].first_bar if k + 1 < len(analysis.sections)
           else math.inf)
    return replace(
        analysis,
        meter=section.meter,
        pickup_16th=analysis.pickup_16th if k == 0 else 0,
        downbeat_16th=section.start_16th - piece.offset_16th,
        phrases=tuple(
            replace(p, start_bar=p.start_bar - section.first_bar)
            for p in analysis.phrases if section.first_bar <= p.start_bar < end
        ),
        sections=(),
    )


def phrase_range(analysis: MelodyAnalysis, k: int) -> range:
    """Indices into analysis.phrases of section k's phrases."""
    section = analysis.sections[k]
    end = (analysis.sections[k + 1].first_bar if k + 1 < len(analysis.sections)
           else math.inf)
    inside = [i for i, p in enumerate(analysis.phrases) if section.first_bar <= p.start_bar < end]
    return range(inside[0], inside[-1] + 1) if inside else range(0)


# ---------------------------------------------------------------------------------- shifting


def shift_chords(chords: Sequence[ChordEvent], by_16th: int) -> tuple[ChordEvent, ...]:
    return tuple(replace(ev, start_16th=ev.start_16th + by_16th) for ev in chords)


def shift_choice(choice: ProgressionChoice, by_16th: int) -> ProgressionChoice:
    return replace(choice, chords=shift_chords(choice.chords, by_16th))


def shift_phrase(phrase: Phrase, by_bars: int) -> Phrase:
    return replace(phrase, start_bar=phrase.start_bar + by_bars)


def shift_harmony(harmony: PhraseHarmony, by_16th: int, by_bars: int) -> PhraseHarmony:
    return PhraseHarmony(
        shift_phrase(harmony.phrase, by_bars), harmony.style,
        shift_choice(harmony.chosen, by_16th),
        tuple(shift_choice(alt, by_16th) for alt in harmony.alternatives),
    )


def shift_notes(notes: Sequence[Note], by_tick: int) -> tuple[Note, ...]:
    return tuple(replace(n, start_tick=n.start_tick + by_tick) for n in notes)


def shift_pedal(pedal: Sequence[PedalEvent], by_tick: int) -> tuple[PedalEvent, ...]:
    return tuple(replace(p, tick=p.tick + by_tick) for p in pedal)


def shift_texture(texture: TextureChoice, by_bars: int) -> TextureChoice:
    return replace(texture, phrase=shift_phrase(texture.phrase, by_bars))


def section_textures(
    choices: Mapping[int, TextureChoice] | None, indices: range, first_bar: int
) -> dict[int, TextureChoice]:
    """Texture choices by piece phrase index -> those of one section (`indices`), by its own
    phrase index and bars."""
    return {i - indices[0]: shift_texture(t, -first_bar)
            for i, t in (choices or {}).items() if i in indices}


def section_harmonization(
    harmonization: Harmonization, k: int, piece: MeterPiece
) -> Harmonization:
    """Section k of a stitched harmonization on the section's own clock (for the arranger)."""
    analysis = section_analysis(harmonization.analysis, k, piece)
    first_bar = harmonization.analysis.sections[k].first_bar
    phrases = tuple(
        shift_harmony(harmonization.phrases[i], -piece.offset_16th, -first_bar)
        for i in phrase_range(harmonization.analysis, k)
    )
    changes = [tick for tick, _ in harmonization.melody.meter_changes]
    end = changes[k] if k < len(changes) else math.inf
    notes = shift_notes(
        [n for n in harmonization.chord_notes if piece.offset_tick <= n.start_tick < end],
        -piece.offset_tick)
    return replace(harmonization, melody=piece.melody, analysis=analysis, phrases=phrases,
                   chord_notes=notes)
