"""The embedded default texture library: its text format, parser, writer and loader.

Our stand-in for the POP909 donor phrases of AccoMontage §3.3 / algorithms.md §2.1: short,
chord-relative piano patterns authored for AccoBridge (no dataset content), tagged with the
same rhythmic-density / voice-number levels as donors, rendered (`texture_render`) against any
chord, key and phrase length.

Texture format (``engine/data/textures/*.tex``; ``#`` starts a comment, blank lines ignored)::

    texture ballad_arpeggio_8ths      # starts a block; name [a-z0-9_]+, unique in the library
    meter 4/4                         # 4/4 | 3/4 | 6/8 | 9/8 | 12/8 (2/4 and 2/2 songs
                                      # play the 4/4 ones)
    bars 1                            # pattern length in bars: 1, 2 or 4 (default 1)
    tags ballad arpeggio              # style words, free
    styles pop_standard dark          # chord styles it suits (pop_standard pop_complex dark
                                      # rnb), or "all" (the default)
    pedal yes                         # sustain pedal wanted: yes | no (default no)
    velocity 64                       # base MIDI velocity 1..127 (default 70)
    lh 0+16:b                         # left-hand events; lines of one hand accumulate
    rh 0+2:5/r^/3^/r^ 8+2:5/r^/3^/r^  # right-hand events

An event is ``ONSET+LENGTH:GROUP`` in 16ths from the pattern start; ``ONSET+LENGTH:G1/G2/...``
is a run of groups, each LENGTH long, one after another (``-`` = a rest in the run). A group is
tones struck together, joined by ``,``. A tone is a chord-relative degree, then octave marks,
then an optional dynamic mark:

- ``b`` the chord's bass note, ``r`` root, ``3`` third (the 4th/2nd of a sus chord), ``5`` fifth
  (b5/#5; the 9th, else the root an octave up, when the chord has none), ``7`` seventh (the 6th
  of a 6 chord; the root an octave up when it has none), ``9`` the 9th/2nd (else the root an
  octave up);
- ``c`` all upper chord tones as a close voicing (inversion chosen for smooth voice leading),
  ``c2``/``c3`` its top two/three voices, ``t`` its top voice;
- ``^`` an octave up, ``_`` an octave down (repeatable); ``!`` accent, ``~`` ghost (softer).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import cast

from engine.arranger.texture_render import make_texture
from engine.arranger.textures import TEXTURE_METERS, Hand, PatternEvent, Texture, Tone, meter_of
from engine.errors import LibraryError
from engine.types import STYLES, Style

TEXTURE_DIR = Path(__file__).resolve().parents[1] / "data" / "textures"
PATTERN_BARS: tuple[int, ...] = (1, 2, 4)
DEFAULT_VELOCITY = 70

_TONE_RE = re.compile(r"^(b|r|3|5|7|9|c[1-4]?|t)([\^_]*)([!~]?)$")
_EVENT_RE = re.compile(r"^(\d+)\+(\d+):(\S+)$")
_NAME_RE = re.compile(r"^[a-z0-9_]+$")


def _fail(source: str, line: int, message: str) -> LibraryError:
    return LibraryError(f"{source}:{line}: {message}")


def _parse_tone(text: str, source: str, line: int) -> Tone:
    m = _TONE_RE.match(text)
    if m is None:
        raise _fail(source, line, f"bad tone {text!r} (expected b r 3 5 7 9 c c2 c3 t, then "
                                  "^ or _ marks, then ! or ~)")
    degree, marks, dyn = m.groups()
    if "^" in marks and "_" in marks:
        raise _fail(source, line, f"tone {text!r} mixes ^ and _")
    voices = int(degree[1:]) if len(degree) > 1 else 0
    return Tone(degree[0], voices, marks.count("^") - marks.count("_"),
                {"!": 1, "~": -1}.get(dyn, 0))


def _parse_events(
    hand: Hand, words: Sequence[str], length: int, source: str, line: int
) -> list[PatternEvent]:
    events: list[PatternEvent] = []
    for word in words:
        m = _EVENT_RE.match(word)
        if m is None:
            raise _fail(source, line, f"bad event {word!r} (expected ONSET+LENGTH:TONES)")
        onset, step = int(m.group(1)), int(m.group(2))
        if step < 1:
            raise _fail(source, line, f"event {word!r} has zero length")
        for n, group in enumerate(m.group(3).split("/")):
            at = onset + n * step
            if at + step > length:
                raise _fail(source, line, f"event {word!r} runs past the pattern's end "
                                          f"({length} sixteenths)")
            if group == "-":
                continue
            tones = tuple(_parse_tone(t, source, line) for t in group.split(","))
            events.append(PatternEvent(hand, at, step, tones))
    return events


@dataclass
class _Block:
    """A texture block while it is being read."""

    name: str
    line: int
    meter: str | None = None
    bars: int = 1
    tags: tuple[str, ...] = ()
    styles: tuple[Style, ...] = STYLES
    pedal: bool = False
    velocity: int = DEFAULT_VELOCITY
    hands: list[tuple[Hand, list[str], int]] = dataclasses.field(default_factory=list)


def _finish(block: _Block, source: str) -> Texture:
    if block.meter is None:
        raise _fail(source, block.line, f"texture {block.name!r} has no meter line")
    length = block.bars * meter_of(block.meter).sixteenths_per_bar
    events = [e for hand, words, line in block.hands
              for e in _parse_events(hand, words, length, source, line)]
    if not events:
        raise _fail(source, block.line, f"texture {block.name!r} has no lh/rh events")
    return make_texture(block.name, block.meter, block.bars, block.tags, block.styles,
                        block.pedal, block.velocity, events)


def _header(block: _Block, key: str, words: list[str], source: str, line: int) -> None:
    """Apply one header line to the block being read."""
    value = " ".join(words)
    if key == "meter":
        if value not in TEXTURE_METERS:
            raise _fail(source, line, f"meter {value!r} not one of {', '.join(TEXTURE_METERS)}")
        block.meter = value
    elif key == "bars":
        if not value.isdigit() or int(value) not in PATTERN_BARS:
            raise _fail(source, line, f"bars {value!r} not one of 1, 2, 4")
        block.bars = int(value)
    elif key == "tags":
        block.tags = tuple(words)
    elif key == "styles":
        if words == ["all"]:
            block.styles = STYLES
        else:
            unknown = [w for w in words if w not in STYLES]
            if unknown or not words:
                raise _fail(source, line, f"unknown style(s) {unknown} (known: "
                                          f"{', '.join(STYLES)} or all)")
            block.styles = tuple(cast(Style, w) for w in words)
    elif key == "pedal":
        if value not in ("yes", "no"):
            raise _fail(source, line, f"pedal {value!r} is not yes or no")
        block.pedal = value == "yes"
    elif key == "velocity":
        if not value.isdigit() or not 1 <= int(value) <= 127:
            raise _fail(source, line, f"velocity {value!r} not in 1..127")
        block.velocity = int(value)
    else:
        raise _fail(source, line, f"unknown key {key!r}")


def parse_textures(text: str, source: str = "<text>") -> tuple[Texture, ...]:
    """Textures of a .tex text; errors raise LibraryError naming `source` and the line."""
    textures: list[Texture] = []
    names: set[str] = set()
    block: _Block | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        key, rest = words[0], words[1:]
        if key == "texture":
            if block is not None:
                textures.append(_finish(block, source))
            if len(rest) != 1 or not _NAME_RE.match(rest[0]):
                raise _fail(source, number, "expected 'texture NAME' with NAME in [a-z0-9_]+")
            if rest[0] in names:
                raise _fail(source, number, f"texture {rest[0]!r} defined twice")
            names.add(rest[0])
            block = _Block(rest[0], number)
        elif block is None:
            raise _fail(source, number, f"{key!r} before the first 'texture NAME' line")
        elif key in ("lh", "rh"):
            block.hands.append((cast(Hand, key), rest, number))
        else:
            _header(block, key, rest, source, number)
    if block is not None:
        textures.append(_finish(block, source))
    return tuple(textures)


def format_textures(textures: Iterable[Texture]) -> str:
    """The .tex text of textures (one event per word); parsing it gives them back."""
    blocks = []
    for t in textures:
        lines = [f"texture {t.name}", f"meter {t.meter}", f"bars {t.bars}"]
        if t.tags:
            lines.append("tags " + " ".join(t.tags))
        lines += ["styles " + " ".join(t.styles), f"pedal {'yes' if t.pedal else 'no'}",
                  f"velocity {t.velocity}"]
        for hand in ("lh", "rh"):
            words = [str(e) for e in t.events if e.hand == hand]
            if words:
                lines.append(f"{hand} " + " ".join(words))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


@lru_cache(maxsize=1)
def load_default_textures() -> tuple[Texture, ...]:
    """Every texture of engine/data/textures/*.tex, in file then block order (cached)."""
    paths = sorted(TEXTURE_DIR.glob("*.tex"))
    if not paths:
        raise LibraryError(f"no texture files (*.tex) in {TEXTURE_DIR}")
    textures: list[Texture] = []
    seen: dict[str, str] = {}
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise LibraryError(f"cannot read texture file {path}: {err}") from err
        for texture in parse_textures(text, path.name):
            if texture.name in seen:
                raise LibraryError(f"{path.name}: texture {texture.name!r} is also defined in "
                                   f"{seen[texture.name]}")
            seen[texture.name] = path.name
            textures.append(texture)
    return tuple(textures)
