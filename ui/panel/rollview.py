"""What the piano roll shows, as plain frozen values in beats from the clip start (Qt-free: the
engine's worker builds them, so the GUI thread only draws)."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
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
    voicings: tuple[RollNote, ...] = ()  # the Chords track as exported (its voiced notes)


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
        melody=base.melody, piano=_notes_from_ticks(arrangement.piano_notes, tpb),
        voicings=_notes_from_ticks(harmonization.chord_notes, tpb), chords=chords,
        phrases=phrases, bar_beats=analysis.meter.sixteenths_per_bar / 4,
        first_bar_beats=analysis.downbeat_16th / 4, length_beats=end,
    )


def view_of_clip(clip: Clip, result: GenerateResult | None = None) -> RollView:
    """A stored clip and its stored result (a restored session: no phrases known)."""
    bar = clip.ts_num * 4 / clip.ts_den
    melody = tuple(RollNote(n.pitch, n.start_beats, n.duration_beats) for n in clip.notes)
    parts = result.parts if result is not None else {}
    piano, voicings = (tuple(RollNote(n.pitch, n.start_beats, n.duration_beats)
                             for n in parts.get(part, ())) for part in ("piano", "chords"))
    chords = tuple(RollChord(c.start_beats, c.duration_beats, c.symbol)
                   for c in (result.chords if result is not None else ()))
    end = max([clip.length_beats, bar] + [n.start_beats + n.length_beats for n in melody])
    return RollView(melody=melody, piano=piano, voicings=voicings, chords=chords, bar_beats=bar,
                    length_beats=end)


def with_locks(view: RollView, locked: Collection[int]) -> RollView:
    """The same view with phrase `i` marked locked for each i in `locked`."""
    return replace(view, phrases=tuple(replace(p, locked=i in locked)
                                       for i, p in enumerate(view.phrases)))


# ---- chord symbols that fit their span ---------------------------------------------------------

_SYMBOL = re.compile(r"^([A-G][#b]?)(.*?)(?:/([A-G][#b]?))?$")
# engine.types.QUALITY_SUFFIX's suffixes, shortened by rule: (extensions dropped, quality only).
# The quality alone keeps what a player needs first: minor, diminished (°), half-diminished
# (ø), augmented (+), suspended.
_SHORTER: dict[str, tuple[str, str]] = {
    "": ("", ""), "m": ("m", "m"), "dim": ("dim", "°"), "aug": ("aug", "+"),
    "sus2": ("sus", "sus"), "sus4": ("sus", "sus"), "7": ("7", ""), "maj7": ("maj7", ""),
    "m7": ("m7", "m"), "m7b5": ("m7b5", "ø"), "dim7": ("dim7", "°"), "6": ("6", ""),
    "m6": ("m6", "m"), "9": ("7", ""), "maj9": ("maj7", ""), "m9": ("m7", "m"),
    "7sus4": ("7sus", "sus"), "add9": ("", ""), "m(add9)": ("m", "m"), "m(maj7)": ("m", "m"),
    "11": ("7", ""), "m11": ("m7", "m"), "13": ("7", ""),
}


def symbol_forms(symbol: str) -> tuple[str, ...]:
    """`symbol` and its shorter forms, longest first: without the bass note, extensions
    dropped, the quality alone, the root alone ("Cm(add9)/Eb", "Cm(add9)", "Cm", "C"). A
    symbol that is not root + known suffix only loses its bass, then all but its root."""
    match = _SYMBOL.match(symbol)
    if match is None:
        return (symbol,)
    root, suffix, bass = match.groups()
    shorter = _SHORTER.get(suffix)
    forms = [symbol, root + suffix] if bass else [symbol]
    if shorter is not None:
        forms += [root + shorter[0], root + shorter[1]]
    forms.append(root)
    return tuple(dict.fromkeys(forms))  # in order, each once


def fit_text(forms: Sequence[str], width: float, measure: Callable[[str], float]) -> str:
    """The first of `forms` (longest first) whose `measure` (its drawn width) is at most
    `width`; "" when none fits. Never a text cut mid-glyph."""
    return next((form for form in forms if measure(form) <= width), "")


def fit_symbol(symbol: str, width: float, measure: Callable[[str], float]) -> str:
    """The longest form of `symbol` (see `symbol_forms`) that fits `width`, or ""."""
    return fit_text(symbol_forms(symbol), width, measure)
