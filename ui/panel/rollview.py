"""What the piano roll shows, as plain frozen values in beats from the clip start (Qt-free: the
engine's worker builds them, so the GUI thread only draws)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from bridge.types import Clip, GenerateResult
from engine import Arrangement, Melody, ProgressionChoice


@dataclass(frozen=True)
class RollNote:
    pitch: int
    start_beats: float
    length_beats: float


@dataclass(frozen=True)
class RollPhrase:
    label: str
    start_beats: float
    end_beats: float
    bars: int
    locked: bool = False


@dataclass(frozen=True)
class RollChord:
    start_beats: float
    length_beats: float
    symbol: str


@dataclass(frozen=True)
class RollView:
    """What the roll shows; built from whatever the panel has (clip, result, arrangement)."""

    melody: tuple[RollNote, ...] = ()
    piano: tuple[RollNote, ...] = ()
    chords: tuple[RollChord, ...] = ()
    phrases: tuple[RollPhrase, ...] = ()
    bar_beats: float = 4.0
    first_bar_beats: float = 0.0  # where a bar line falls (the phrase grid's downbeat)
    length_beats: float = 16.0


def _notes_from_ticks(notes: Sequence[object], ticks_per_beat: int) -> tuple[RollNote, ...]:
    return tuple(
        RollNote(n.pitch, n.start_tick / ticks_per_beat, n.duration_tick / ticks_per_beat)  # type: ignore[attr-defined]
        for n in notes
    )


def view_of_melody(melody: Melody) -> RollView:
    bar = melody.meter.numerator * 4 / melody.meter.denominator
    notes = _notes_from_ticks(melody.notes, melody.ticks_per_beat)
    end = max((n.start_beats + n.length_beats for n in notes), default=bar)
    return RollView(melody=notes, bar_beats=bar, length_beats=max(bar, end))


def view_of_arrangement(arrangement: Arrangement,
                        locked: Mapping[int, ProgressionChoice] | None = None) -> RollView:
    harmonization = arrangement.harmonization
    melody, analysis = harmonization.melody, harmonization.analysis
    tpb = melody.ticks_per_beat
    key = analysis.key
    phrases = tuple(
        RollPhrase(p.label, analysis.bar_start_16th(p.start_bar) / 4,
                   analysis.bar_start_16th(p.end_bar) / 4, p.bars, i in (locked or {}))
        for i, p in enumerate(analysis.phrases)
    )
    chords = tuple(RollChord(ev.start_16th / 4, ev.duration_16th / 4, ev.chord.symbol(key))
                   for ev in harmonization.chords)
    base = view_of_melody(melody)
    end = max([base.length_beats] + [p.end_beats for p in phrases])
    return RollView(
        melody=base.melody, piano=_notes_from_ticks(arrangement.piano_notes, tpb), chords=chords,
        phrases=phrases, bar_beats=analysis.meter.sixteenths_per_bar / 4,
        first_bar_beats=analysis.downbeat_16th / 4, length_beats=end,
    )


def view_of_clip(clip: Clip, result: GenerateResult | None = None) -> RollView:
    """A stored clip and its stored result (a restored session: no phrases known)."""
    bar = clip.ts_num * 4 / clip.ts_den
    melody = tuple(RollNote(n.pitch, n.start_beats, n.duration_beats) for n in clip.notes)
    piano: tuple[RollNote, ...] = ()
    chords: tuple[RollChord, ...] = ()
    if result is not None:
        piano = tuple(RollNote(n.pitch, n.start_beats, n.duration_beats)
                      for n in result.parts.get("piano", ()))
        chords = tuple(RollChord(c.start_beats, c.duration_beats, c.symbol) for c in result.chords)
    end = max([clip.length_beats, bar] + [n.start_beats + n.length_beats for n in melody])
    return RollView(melody=melody, piano=piano, chords=chords, bar_beats=bar, length_beats=end)


def with_locks(view: RollView, locked: Collection[int]) -> RollView:
    """The same view with phrase `i` marked locked for each i in `locked`."""
    return replace(view, phrases=tuple(replace(p, locked=i in locked)
                                       for i, p in enumerate(view.phrases)))
