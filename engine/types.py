"""Plain, frozen value types shared by the engine, the bridge and the panel.

Time is kept in MIDI ticks (with the file's `ticks_per_beat`) for notes as they arrive, and in
16th-note steps (`*_16th`) on the analysis grid; seconds only appear at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from engine.errors import OptionError, UnsupportedMeterError

Mode = Literal["major", "minor"]
Style = Literal["pop_standard", "pop_complex", "dark", "rnb"]

STYLES: tuple[Style, ...] = ("pop_standard", "pop_complex", "dark", "rnb")
MODES: tuple[Mode, ...] = ("major", "minor")
SUPPORTED_METERS: tuple[tuple[int, int], ...] = (
    (4, 4), (2, 4), (2, 2), (3, 4), (6, 8), (9, 8), (12, 8)
)

PITCH_NAMES_SHARP = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
PITCH_NAMES_FLAT = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
# Keys conventionally spelled with flats (major tonic / minor tonic pitch classes).
_FLAT_MAJOR = {1, 3, 5, 8, 10}
_FLAT_MINOR = {0, 2, 3, 5, 7, 10}


@dataclass(frozen=True)
class Note:
    """One sounding note as read from or written to MIDI."""

    pitch: int
    start_tick: int
    duration_tick: int
    velocity: int = 90

    @property
    def end_tick(self) -> int:
        return self.start_tick + self.duration_tick


@dataclass(frozen=True)
class Meter:
    """A time signature the engine supports (4/4, 2/4, 2/2, 3/4; compound 6/8, 9/8, 12/8)."""

    numerator: int
    denominator: int

    def __post_init__(self) -> None:
        if (self.numerator, self.denominator) not in SUPPORTED_METERS:
            names = ", ".join(f"{n}/{d}" for n, d in SUPPORTED_METERS)
            raise UnsupportedMeterError(
                f"time signature {self.numerator}/{self.denominator} is not supported "
                f"(supported: {names})"
            )

    @property
    def name(self) -> str:
        return f"{self.numerator}/{self.denominator}"

    @property
    def sixteenths_per_bar(self) -> int:
        return self.numerator * 16 // self.denominator

    @property
    def slots_per_bar(self) -> int:
        """Chord-template slots (8th notes) per bar, as in AccoMontage2 §3.1."""
        return self.sixteenths_per_bar // 2

    @property
    def compound(self) -> bool:
        """6/8, 9/8, 12/8: eighths grouped in threes, so the felt beat is a dotted quarter."""
        return self.denominator == 8 and self.numerator % 3 == 0

    @property
    def beat_16th(self) -> int:
        """Length of the felt beat in 16ths: dotted quarter in 6/8, 9/8 and 12/8, half note in
        2/2."""
        if self.compound:
            return 6
        return 16 // self.denominator

    @property
    def library_key(self) -> str:
        """Which template library serves this meter (2/2 shares the 4/4 bar grid)."""
        return "4/4" if self.name == "2/2" else self.name


@dataclass(frozen=True)
class Key:
    tonic_pc: int
    mode: Mode

    def __post_init__(self) -> None:
        if not 0 <= self.tonic_pc < 12:
            raise ValueError(f"tonic pitch class must be 0..11, got {self.tonic_pc}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be major or minor, got {self.mode!r}")

    @property
    def uses_flats(self) -> bool:
        return self.tonic_pc in (_FLAT_MAJOR if self.mode == "major" else _FLAT_MINOR)

    def pitch_name(self, pc: int) -> str:
        names = PITCH_NAMES_FLAT if self.uses_flats else PITCH_NAMES_SHARP
        return names[pc % 12]

    @property
    def name(self) -> str:
        return f"{self.pitch_name(self.tonic_pc)} {self.mode}"


@dataclass(frozen=True)
class Melody:
    """A monophonic melody with the timing facts needed to write results back in sync."""

    notes: tuple[Note, ...]
    ticks_per_beat: int
    meter: Meter
    tempo_bpm: float = 120.0
    # (tick, microseconds per quarter) for every tempo change, first one at tick 0
    tempo_changes: tuple[tuple[int, int], ...] = ()
    key_signature: Key | None = None
    track_name: str = "Melody"
    # (tick, meter) of every time-signature change after the start, in order; `meter` is the
    # one at tick 0. Empty for a melody in one meter (engine/meter_sections.py splits the rest).
    meter_changes: tuple[tuple[int, Meter], ...] = ()

    @property
    def ticks_per_16th(self) -> float:
        return self.ticks_per_beat / 4.0

    @property
    def end_tick(self) -> int:
        return max((n.end_tick for n in self.notes), default=0)


@dataclass(frozen=True)
class Phrase:
    """A melody phrase on the bar grid; `label` is its letter (A, B, …), bars in this meter."""

    label: str
    start_bar: int
    bars: int

    @property
    def end_bar(self) -> int:
        return self.start_bar + self.bars


@dataclass(frozen=True)
class MeterSection:
    """One meter's stretch of a melody whose meter changes: its bar lines fall at
    `start_16th + k * bar` (bar lines restart at every change) and its first bar is bar
    `first_bar` of the piece (0-based, counted from the first downbeat, each bar in its own
    meter)."""

    meter: Meter
    start_16th: int
    first_bar: int


@dataclass(frozen=True)
class MelodyAnalysis:
    key: Key
    key_confidence: float  # 0..1; 1.0 when the user gave the key
    meter: Meter
    # Length of the partial bar the file starts with (the release's "pickup"): bar lines fall at
    # pickup_16th + k * bar. 0 for a bar-aligned clip.
    pickup_16th: int
    # Start of phrase 1, a bar line of that grid: the bar of the first melody onset, or the next
    # bar line when the first notes are an upbeat figure in the second half of their bar.
    downbeat_16th: int
    phrases: tuple[Phrase, ...]
    key_source: Literal["user", "detected"] = "detected"
    phrase_source: Literal["user", "detected"] = "detected"
    # A melody whose meter changes: every meter's stretch, the first one starting at
    # `downbeat_16th` in `meter`; phrases then count bars of the whole piece (Phrase.start_bar)
    # and never cross a change. Empty for one meter.
    sections: tuple[MeterSection, ...] = ()

    @property
    def total_bars(self) -> int:
        return sum(p.bars for p in self.phrases)

    def bar_start_16th(self, bar: int) -> int:
        if not self.sections:
            return self.downbeat_16th + bar * self.meter.sixteenths_per_bar
        section = self.section_of_bar(bar)
        return section.start_16th + (bar - section.first_bar) * section.meter.sixteenths_per_bar

    def section_of_bar(self, bar: int) -> MeterSection:
        """The meter section holding `bar` (0-based from the first downbeat)."""
        return next((s for s in reversed(self.sections) if s.first_bar <= bar),
                    self.sections[0] if self.sections else
                    MeterSection(self.meter, self.downbeat_16th, 0))

    def section_at(self, position_16th: int) -> MeterSection:
        """The meter section sounding at a 16th (the first one before its start)."""
        return next((s for s in reversed(self.sections) if s.start_16th <= position_16th),
                    self.sections[0] if self.sections else
                    MeterSection(self.meter, self.downbeat_16th, 0))

    @property
    def phrase_string(self) -> str:
        return "".join(f"{p.label}{p.bars}" for p in self.phrases)


@dataclass(frozen=True)
class Chord:
    """An absolute chord: root and bass pitch classes plus a quality name (see voicing)."""

    root_pc: int
    quality: str
    bass_pc: int

    def symbol(self, key: Key | None = None) -> str:
        spell = key.pitch_name if key is not None else (lambda pc: PITCH_NAMES_SHARP[pc % 12])
        suffix = QUALITY_SUFFIX.get(self.quality, self.quality)
        text = spell(self.root_pc) + suffix
        if self.bass_pc != self.root_pc:
            text += "/" + spell(self.bass_pc)
        return text


# Display suffixes for the quality vocabulary used by the template library.
QUALITY_SUFFIX: dict[str, str] = {
    "maj": "", "min": "m", "dim": "dim", "aug": "aug", "sus2": "sus2", "sus4": "sus4",
    "7": "7", "maj7": "maj7", "min7": "m7", "hdim7": "m7b5", "dim7": "dim7", "6": "6",
    "min6": "m6", "9": "9", "maj9": "maj9", "min9": "m9", "7sus4": "7sus4", "add9": "add9",
    "minadd9": "m(add9)", "minmaj7": "m(maj7)", "11": "11", "min11": "m11", "13": "13",
}


@dataclass(frozen=True)
class ChordEvent:
    chord: Chord
    start_16th: int  # from tick 0 of the input file
    duration_16th: int

    @property
    def end_16th(self) -> int:
        return self.start_16th + self.duration_16th


@dataclass(frozen=True)
class ProgressionChoice:
    """One candidate progression for one phrase, with the scores that ranked it (eq. 2–5)."""

    template_ids: tuple[int, ...]  # one id, or several for a concatenation
    style: Style
    chords: tuple[ChordEvent, ...]
    micro: float
    meso: float
    # eq. 5's best score of a path up to and including this phrase with this progression in it
    prefix_score: float
    # the score of the whole path (every phrase) with this progression in this phrase: what
    # alternatives are ranked by and what `Harmonization.score` is after choosing one
    path_score: float


@dataclass(frozen=True)
class PhraseHarmony:
    phrase: Phrase
    style: Style
    chosen: ProgressionChoice
    alternatives: tuple[ProgressionChoice, ...]  # best first, chosen excluded


VoicingRegister = Literal["low", "middle", "high"]
VOICING_REGISTERS: tuple[VoicingRegister, ...] = ("low", "middle", "high")


@dataclass(frozen=True)
class Voicing:
    """How the Chords track is voiced (engine/voicing.py): where the upper voices sit and
    whether a bass note sounds under them (off when the DAW has its own bass part)."""

    register: VoicingRegister = "middle"
    bass: bool = True

    def __post_init__(self) -> None:
        if self.register not in VOICING_REGISTERS:
            raise OptionError(
                f"voicing register must be one of {', '.join(VOICING_REGISTERS)}, "
                f"got {self.register!r}"
            )


@dataclass(frozen=True)
class Harmonization:
    melody: Melody
    analysis: MelodyAnalysis
    phrases: tuple[PhraseHarmony, ...]
    chord_notes: tuple[Note, ...]  # the voiced Chords track
    score: float
    voicing: Voicing = Voicing()  # how chord_notes were voiced; edits re-voice the same way

    @property
    def chords(self) -> tuple[ChordEvent, ...]:
        return tuple(ev for ph in self.phrases for ev in ph.chosen.chords)


# "ours": the paper's DP with our micro rule (quality-aware consonance); "paper": eq. 2–5 with
# the paper's table; "release": the released code's DP (0.9 decay, hard filters, its table).
Variant = Literal["ours", "paper", "release"]
VARIANTS: tuple[Variant, ...] = ("ours", "paper", "release")


@dataclass(frozen=True)
class HarmonizeOptions:
    """What the user may steer; None means "analyse the melody"."""

    key: Key | None = None
    phrases: str | None = None  # e.g. "A8A8B8B8"
    pickup_16th: int | None = None
    style: Style = "pop_standard"
    # Per-phrase style overrides by phrase index; None entries keep `style`.
    phrase_styles: tuple[Style | None, ...] = ()
    seed: int = 0
    alpha: float = 0.1  # weight of the macro (transition) term, eq. 5
    beta: float = 0.5  # micro vs meso balance, eq. 5
    variant: Variant = "ours"
    top_k: int = 5
    fix_leading_tone: bool = True  # major row V: .75 on the leading tone (algorithms.md §1.2)
    # ours: the melody over each chord picks its colour from the style's palette
    # (engine/harmonizer/colour.py); False keeps the style rule's fixed colour
    melody_colours: bool = True
    # ours: weight of the tonic-balance term in the search (engine/harmonizer/search.py)
    tonic_balance: float = 0.0
    # ours: cadence, opening and repeat terms in the search (engine/harmonizer/structure.py);
    # False only for ablations
    musical_structure: bool = True
    # "learned" (default: it wins every ear-level check, benchmarks/harmony_quality): the
    # melody-conditioned chord model (engine/models/chord_model.py) adds its log-probabilities
    # to the slot scores (engine/harmonizer/learned.py); "rules": the rules alone, no torch
    scorer: ModelChoice = "learned"
    voicing: Voicing = Voicing()  # how chord_notes are voiced (not part of the search)

    def __post_init__(self) -> None:
        from engine.options import check_harmonize

        check_harmonize(self)

    def to_json(self) -> dict[str, Any]:
        """The flat JSON object of the OSC API's option names (engine/options.py)."""
        from engine.options import harmonize_to_json

        return harmonize_to_json(self)

    @classmethod
    def from_json(cls, doc: object) -> HarmonizeOptions:
        """Options from the OSC API's JSON names; OptionError names a bad field."""
        from engine.options import harmonize_from_json

        return harmonize_from_json(doc)


TextureLibraryName = Literal["default", "pop909"]
TEXTURE_LIBRARIES: tuple[TextureLibraryName, ...] = ("default", "pop909")
ModelChoice = Literal["rules", "learned"]  # rule-based part or the torch model (engine/models)
MODEL_CHOICES: tuple[ModelChoice, ...] = ("rules", "learned")
LEVELS = 5  # rhythmic density and voice number are cut into levels 0..4 (algorithms.md §2.1)


@dataclass(frozen=True)
class ArrangeOptions:
    """The harmonizer's options plus the texture prefilter (AccoMontage §3.3)."""

    harmonize: HarmonizeOptions = field(default_factory=HarmonizeOptions)
    density: int | None = None  # requested rhythmic-density level 0..4; None = follow the melody
    polyphony: int | None = None  # requested voice-number level 0..4
    library: TextureLibraryName | None = None  # None: pop909 when imported, else default
    reharmonizer: ModelChoice = "rules"  # donor re-harmonization (algorithms.md §2.3)
    transition: ModelChoice = "rules"  # donor transition score (algorithms.md §2.2)

    def __post_init__(self) -> None:
        from engine.options import check_arrange

        check_arrange(self)

    def to_json(self) -> dict[str, Any]:
        """The harmonizer's JSON names plus the arranger's (engine/options.py)."""
        from engine.options import arrange_to_json

        return arrange_to_json(self)

    @classmethod
    def from_json(cls, doc: object) -> ArrangeOptions:
        from engine.options import arrange_from_json

        return arrange_from_json(doc)


@dataclass(frozen=True)
class TextureChoice:
    """The texture selected for one phrase."""

    phrase: Phrase
    library: TextureLibraryName
    name: str  # authored texture name, or "song:phrase" for a POP909 donor
    density_level: int
    polyphony_level: int
    transpose: int = 0  # semitones applied to a donor (best chord-similarity shift)
    fitness: float = 0.0


@dataclass(frozen=True)
class PedalEvent:
    tick: int
    down: bool


@dataclass(frozen=True)
class Arrangement:
    harmonization: Harmonization
    textures: tuple[TextureChoice, ...]
    piano_notes: tuple[Note, ...]
    pedal: tuple[PedalEvent, ...] = ()
