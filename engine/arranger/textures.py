"""A texture: a short chord-relative piano pattern with its descriptors (AccoMontage §3.3 /
algorithms.md §2.1). Its text format is `texture_format`, its rendering `texture_render`; this
module holds only the value types, so both can share them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.types import Meter, Style

Hand = Literal["lh", "rh"]
TEXTURE_METERS: tuple[str, ...] = ("4/4", "3/4", "6/8", "9/8", "12/8")


@dataclass(frozen=True)
class Tone:
    """One chord-relative tone of a pattern event (see the format in `texture_format`)."""

    degree: str  # b r 3 5 7 9 c t
    voices: int = 0  # for c: how many top voices of the voicing, 0 = all
    octave: int = 0
    dynamic: int = 0  # +1 accent, -1 ghost

    def __str__(self) -> str:
        marks = ("^" * self.octave if self.octave > 0 else "_" * -self.octave)
        dyn = {1: "!", -1: "~"}.get(self.dynamic, "")
        return f"{self.degree}{self.voices or ''}{marks}{dyn}"


@dataclass(frozen=True)
class PatternEvent:
    hand: Hand
    onset_16th: int  # from the pattern start
    duration_16th: int
    tones: tuple[Tone, ...]

    def __str__(self) -> str:
        return f"{self.onset_16th}+{self.duration_16th}:" + ",".join(map(str, self.tones))


@dataclass(frozen=True)
class Texture:
    """An authored texture and its descriptors (AccoMontage §3.3 / algorithms.md §2.1).

    `density`/`polyphony` are RD/VN of the pattern rendered on a plain C-major triad over its
    own length; the levels cut them with the descriptors' cutpoints. Build with
    `texture_render.make_texture`, which computes them."""

    name: str
    meter: str  # one of TEXTURE_METERS
    bars: int
    tags: tuple[str, ...]
    styles: tuple[Style, ...]
    pedal: bool
    velocity: int
    events: tuple[PatternEvent, ...]  # sorted by onset, then hand
    density: float = 0.0
    polyphony: float = 0.0
    density_level: int = 0
    polyphony_level: int = 0

    @property
    def length_16th(self) -> int:
        return self.bars * meter_of(self.meter).sixteenths_per_bar


def meter_of(name: str) -> Meter:
    """The Meter of a texture meter name such as '6/8'."""
    num, den = name.split("/")
    return Meter(int(num), int(den))


def texture_meter(meter: Meter) -> str:
    """The texture meter that serves a song meter: 2/4 and 2/2 reuse the 4/4 patterns."""
    return "4/4" if meter.name in ("2/4", "2/2") else meter.name
