"""Renders a texture against a phrase's chords (AccoMontage §3.3 / algorithms.md §2.1): every
note a chord tone, in the hand's register, below the melody. Also computes a texture's
descriptors (`make_texture`), which are those of its own rendering.

Register (why: the pattern keeps its written contour on every chord, in a register that fits
the melody): left hand — ``b`` is the bass note, MIDI ~33-52 (lower for figures that climb
high), the octaves of a phrase's basses chosen together so the line moves by at most a major
sixth; other LH degrees sit within the octave above the bass note (a 2nd becomes a 9th).
Right hand — degrees are stacked over the root as written (``r 3 5 r^`` rises root, third,
fifth, octave) from a root near the previous one around MIDI 57; ``c``/``t`` use close
voicings led from the previous chord (the idea of engine/voicing.py). Right-hand notes stay
below the melody floor: the gesture or voicing takes a lower octave when it would reach the
melody, a note that still does drops octaves, and one that would fall under MIDI 43 is left
out. Every note is a chord tone (engine.chords.INTERVALS) of the chord it sounds over.

Time: the pattern tiles from the phrase start for any phrase length (a 2-bar pattern on 3 bars
plays bars 1, 2, 1); in 2/4 a 4/4 bar spans two bars, in 2/2 it is one bar. Every event takes
the chord sounding at its onset (none: silent) and is clipped at that chord's end; when at least
a quarter of its length is left it re-strikes on the next chord (pads and held basses follow the
harmony instead of falling silent).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import numpy as np

from engine.arranger.descriptors import (
    DENSITY_CUTPOINTS,
    POLYPHONY_CUTPOINTS,
    level,
    onset_roll,
    rhythmic_density,
    voice_number,
)
from engine.arranger.textures import PatternEvent, Texture, meter_of, texture_meter
from engine.chords import INTERVALS
from engine.errors import BadInputError
from engine.types import Chord, ChordEvent, Meter, Style

# Registers (MIDI). The bass note lives in BASS_LOW..BASS_HIGH; LH figures above it are kept
# under LH_TOP by lowering that window for wide figures. Hard limits: nothing is emitted
# outside LH_LOWEST..LH_HIGHEST / RH_LOWEST..RH_HIGHEST (right-hand notes pushed below
# RH_LOWEST by a low melody are dropped rather than muddy the bass).
BASS_LOW, BASS_HIGH, LH_TOP = 33, 52, 57
LH_LOWEST, LH_HIGHEST = 28, 64
MAX_BASS_LEAP = 9  # a major sixth, unless the pattern's octave marks ask for more
RH_LOWEST, RH_HIGHEST = 43, 84
RH_ROOT_CENTRE = 57  # right-hand degrees stack over a root near A3
RH_VOICING_CENTRE = 64  # close voicings centre around E4 (cf. engine/voicing.py)
RH_VOICING_LOW = 50  # below ~D3 close voicings turn muddy

ACCENT, GHOST, LH_LIFT = 12, -14, 4  # velocity offsets: marks, and a firmer bass hand
RESTRIKE_MIN_16TH = 4  # a held note re-strikes on the next chord if a quarter is left
RESTRIKE_SOFTEN = 6
_FREE = 1 << 10  # melody floor meaning "no melody here"


_ToneKey = tuple[str, int, int]  # degree, voices, octave
_PlanEvent = tuple[int, int, bool, tuple[tuple[_ToneKey, int], ...]]  # onset, length, rh, tones


@dataclass(frozen=True)
class _Plan:
    """A texture compiled for rendering: plain tuples, registers worked out once."""

    period: int
    events: tuple[_PlanEvent, ...]
    rh_degrees: tuple[_ToneKey, ...]  # right-hand single degrees (set the gesture's span)
    uses_voicing: bool
    bass_low: int
    bass_high: int


# Semitones above the bass note that LH degrees span in root position (lowest, highest): they
# size the bass window so a figure stays in the left hand's register.
_REACH = {"b": (0, 0), "r": (0, 0), "3": (3, 5), "5": (6, 8), "7": (9, 12), "9": (13, 14),
          "c": (1, 11), "t": (3, 11)}


@lru_cache(maxsize=512)
def _plan(texture: Texture) -> _Plan:
    """Compile a texture once: velocities resolved, the bass window sized to its LH figure."""
    events: list[_PlanEvent] = []
    rh_degrees: set[_ToneKey] = set()
    lh_reach = [0]
    lh_depth = [0]
    for e in texture.events:
        rh = e.hand == "rh"
        lift = 0 if rh else LH_LIFT
        tones = []
        for tone in e.tones:
            key = (tone.degree, tone.voices, tone.octave)
            velocity = texture.velocity + lift + {1: ACCENT, -1: GHOST}.get(tone.dynamic, 0)
            tones.append((key, max(1, min(127, velocity))))
            if rh and tone.degree not in ("c", "t"):
                rh_degrees.add(key)
            if not rh:
                lowest, highest = _REACH[tone.degree]
                lh_reach.append(highest + 12 * tone.octave)
                lh_depth.append(lowest + 12 * tone.octave)
        events.append((e.onset_16th, e.duration_16th, rh, tuple(tones)))
    # a wide LH figure lowers the bass window so the figure stays under LH_TOP; a figure
    # reaching below the bass raises it so nothing falls under LH_LOWEST
    high = max(BASS_LOW, min(BASS_HIGH, LH_TOP - max(lh_reach)))
    low = max(BASS_LOW, LH_LOWEST - min(lh_depth))
    high = max(high, low + 11)
    return _Plan(
        period=texture.length_16th, events=tuple(events), rh_degrees=tuple(sorted(rh_degrees)),
        uses_voicing=any(k[0] in ("c", "t") for ev in events if ev[2] for k, _ in ev[3]),
        bass_low=low, bass_high=high,
    )


@lru_cache(maxsize=256)
def _degree_offsets(quality: str) -> dict[str, int]:
    """Semitones above the root of each degree letter for a quality (see `texture_format`)."""
    mods = {i % 12 for i in INTERVALS.get(quality, INTERVALS["maj"])}

    def pick(options: Sequence[int], fallback: int) -> int:
        return next((o for o in options if o % 12 in mods), fallback)

    return {
        "r": 0,
        "3": pick((4, 3, 5, 2), 0),
        "5": pick((7, 6, 8, 14), 12),
        "7": pick((10, 11, 9), 12),
        "9": pick((14,), 12),
    }


@lru_cache(maxsize=1024)
def _upper_pcs(root_pc: int, quality: str) -> tuple[int, ...]:
    """The pitch classes a `c` voicing stacks (at most four)."""
    pcs = sorted({(root_pc + i) % 12 for i in INTERVALS.get(quality, INTERVALS["maj"])})
    if len(pcs) > 4:  # drop the fifth first, as pianists do (as engine/voicing.py)
        fifth = (root_pc + 7) % 12
        if fifth in pcs:
            pcs.remove(fifth)
    return tuple(pcs)


_Candidate = tuple[tuple[int, ...], float, float]  # notes, mean, cost without motion/ceiling


@lru_cache(maxsize=1024)
def _close_voicings(pcs: tuple[int, ...]) -> tuple[_Candidate, ...]:
    """Close-position stacks of the pitch classes, every inversion, every usable octave, with
    their register cost (distance from the centre, muddiness below RH_VOICING_LOW)."""
    out = []
    for rot in range(len(pcs)):
        order = pcs[rot:] + pcs[:rot]
        for base in range(RH_LOWEST, RH_HIGHEST - 6):
            if base % 12 != order[0]:
                continue
            notes = [base]
            for pc in order[1:]:
                notes.append(notes[-1] + (pc - notes[-1]) % 12)
            if notes[-1] <= RH_HIGHEST - 6:
                mean = sum(notes) / len(notes)
                register = (0.3 * abs(mean - RH_VOICING_CENTRE)
                            + 2.0 * max(0, RH_VOICING_LOW - notes[0]))
                out.append((tuple(notes), mean, register))
    return tuple(out)


@lru_cache(maxsize=4096)
def _choose_voicing(
    pcs: tuple[int, ...], prev: tuple[int, ...] | None, ceiling: int
) -> tuple[int, ...]:
    """Least motion from `prev`, near the centre, top below `ceiling` (engine/voicing.py idea);
    a top a semitone, tritone or major 7th under the melody's floor costs a little (clash)."""
    prev_mean = sum(prev) / len(prev) if prev else float(RH_VOICING_CENTRE)
    best: tuple[int, ...] = ()
    best_cost = float("inf")
    for notes, mean, register in _close_voicings(pcs):
        c = register
        if prev:
            c += 0.5 * abs(mean - prev_mean) + sum(
                min(abs(n - p) for p in prev) for n in notes) / len(notes)
        if notes[-1] >= ceiling:
            c += 100.0 + 10.0 * (notes[-1] - ceiling)
        elif ceiling < _FREE and (ceiling - notes[-1]) % 12 in (0, 5, 10):
            c += 1.0  # top = floor - 1, floor - 6, floor - 11
        if c < best_cost:
            best, best_cost = notes, c
    return best


def _top_voices(voicing: tuple[int, ...], degree: str, voices: int) -> tuple[int, ...]:
    """`t`: the top voice; `c`: all voices, or the top `voices` of them."""
    if degree == "t":
        return voicing[-1:]
    return voicing[-voices:] if voices else voicing


class _ChordContext:
    """Where one chord's tones sit in both hands, worked out once per chord."""

    __slots__ = ("root", "quality", "bass", "bass_pc", "rh_root", "voicing", "ceiling", "cache")

    def __init__(self, chord: Chord, bass: int, rh_root: int, voicing: tuple[int, ...],
                 ceiling: int) -> None:
        self.root, self.quality, self.bass_pc = chord.root_pc, chord.quality, chord.bass_pc
        self.bass, self.rh_root, self.voicing, self.ceiling = bass, rh_root, voicing, ceiling
        self.cache: dict[tuple[bool, _ToneKey], tuple[int, ...]] = {}

    def pitches(self, rh: bool, key: _ToneKey) -> tuple[int, ...]:
        """The tone's pitches in the hand's hard range (the melody is checked by the caller)."""
        found = self.cache.get((rh, key))
        if found is None:
            fitted = (_fit(p, rh, _FREE) for p in self._place(rh, key))
            found = tuple(p for p in fitted if p is not None)
            self.cache[(rh, key)] = found
        return found

    def _place(self, rh: bool, key: _ToneKey) -> tuple[int, ...]:
        degree, voices, octave = key
        shift = 12 * octave
        if rh:
            if degree in ("c", "t"):
                return tuple(p + shift for p in _top_voices(self.voicing, degree, voices))
            if degree == "b":
                return (self.rh_root + (self.bass_pc - self.root) % 12 + shift,)
            return (self.rh_root + _degree_offsets(self.quality)[degree] + shift,)
        if degree == "b":
            return (self.bass + shift,)
        if degree in ("c", "t"):
            # upper chord tones stacked within the octave above the bass note
            stack = tuple(sorted(self.bass + 1 + (pc - self.bass - 1) % 12
                                 for pc in _upper_pcs(self.root, self.quality)))
            return tuple(p + shift for p in _top_voices(stack, degree, voices))
        # within the octave above the bass note; a second above it would be mud low on the
        # keyboard, so it becomes a 9th, and a missing 7th/9th (offset >= 12: "the root an
        # octave up") doubles the bass note an octave up rather than in unison
        offset = _degree_offsets(self.quality)[degree]
        above = (self.root + offset - self.bass) % 12
        if above in (1, 2) or (above == 0 and offset >= 12):
            above += 12
        return (self.bass + above + shift,)


def _lead_basses(pcs: Sequence[int], plan: _Plan) -> list[int]:
    """The bass notes of a phrase's chords, chosen together (a small Viterbi over the octaves
    of each bass pitch class): each near the previous one and pulled to the window's centre,
    stepping a little outside the window rather than leaping beyond a major sixth. Seeing
    the whole phrase lets a falling line start high enough to keep falling by step."""
    centre = (plan.bass_low + plan.bass_high) // 2 - 2  # a bass sounds best low in its window
    layers = [[p for p in range(LH_LOWEST, LH_TOP + 1) if p % 12 == pc] for pc in pcs]

    def place(p: int) -> float:
        return 0.35 * abs(p - centre) + 4.0 * max(0, plan.bass_low - p, p - plan.bass_high)

    def move(a: int, b: int) -> float:
        return abs(a - b) + (100.0 if abs(a - b) > MAX_BASS_LEAP else 0.0)

    if not layers:
        return []
    costs = [place(p) for p in layers[0]]
    back: list[list[int]] = []
    for prev_layer, layer in pairwise(layers):
        step = []
        new_costs = []
        for p in layer:
            j = min(range(len(prev_layer)), key=lambda k: (costs[k] + move(prev_layer[k], p), k))
            step.append(j)
            new_costs.append(costs[j] + move(prev_layer[j], p) + place(p))
        back.append(step)
        costs = new_costs
    j = min(range(len(costs)), key=lambda k: (costs[k], k))
    path = [j]
    for step in reversed(back):
        j = step[j]
        path.append(j)
    path.reverse()
    return [layer[k] for layer, k in zip(layers, path, strict=True)]


def _lead_rh_root(pc: int, prev: int, top: int, bottom: int, ceiling: int) -> int:
    """The right hand's root: near the previous one and the centre, with the written gesture
    (`bottom`..`top` semitones around it) under the melody and above the muddy register."""

    def cost(p: int) -> tuple[float, int]:
        c = abs(p - prev) + 0.6 * abs(p - RH_ROOT_CENTRE)
        if p + top >= ceiling:
            c += 100.0 + (p + top - ceiling)
        if p + bottom < RH_LOWEST:
            c += 50.0
        return c, p

    return min((p for p in range(RH_ROOT_CENTRE - 24, RH_ROOT_CENTRE + 12) if p % 12 == pc),
               key=cost)


def _contexts(
    plan: _Plan, chords: Sequence[ChordEvent], floor: list[int], start: int
) -> list[_ChordContext]:
    """Bass (chosen over the whole phrase), right-hand root and voicing per chord, the latter
    two led from the previous chord; `ceiling` is the melody's lowest pitch over the chord."""
    basses = _lead_basses([ev.chord.bass_pc for ev in chords], plan)
    prev_root = RH_ROOT_CENTRE
    prev_voicing: tuple[int, ...] | None = None
    out = []
    for ev, bass in zip(chords, basses, strict=True):
        chord = ev.chord
        lo, hi = max(ev.start_16th - start, 0), min(ev.end_16th - start, len(floor))
        ceiling = min(floor[lo:hi], default=_FREE)
        offsets = _degree_offsets(chord.quality)
        spans = [(offsets[d] if d != "b" else (chord.bass_pc - chord.root_pc) % 12) + 12 * o
                 for d, _, o in plan.rh_degrees] or [0]
        rh_root = _lead_rh_root(chord.root_pc, prev_root, max(spans), min(spans), ceiling)
        voicing: tuple[int, ...] = ()
        if plan.uses_voicing:
            voicing = _choose_voicing(_upper_pcs(chord.root_pc, chord.quality), prev_voicing,
                                      ceiling)
            prev_voicing = voicing
        out.append(_ChordContext(chord, bass, rh_root, voicing, ceiling))
        prev_root = rh_root
    return out


def _fit(pitch: int, rh: bool, ceiling: int) -> int | None:
    """The pitch moved by octaves under the melody ceiling and into the hard range; None when
    it cannot sound there (never above the melody)."""
    low, high = (RH_LOWEST, RH_HIGHEST) if rh else (LH_LOWEST, LH_HIGHEST)
    while pitch > high or pitch >= ceiling:
        pitch -= 12
    while pitch < low:
        pitch += 12
    return pitch if pitch < ceiling and pitch <= high else None


def render_texture(
    texture: Texture, chords: Sequence[ChordEvent], start_16th: int, length_16th: int,
    meter: Meter, melody_floor: np.ndarray | None = None,
) -> list[tuple[int, int, int, int]]:
    """Notes (start_16th, duration_16th, pitch, velocity) of `texture` tiled over the phrase
    [start_16th, start_16th + length_16th) of the song's 16th grid, against the song's chords.

    `melody_floor[t]` is the lowest melody pitch sounding at absolute step t (-1 or beyond the
    array: no melody); notes stay strictly below it. Rules: module docstring."""
    if texture_meter(meter) != texture.meter:
        raise BadInputError(f"texture {texture.name!r} is for {texture.meter}, "
                            f"the song is in {meter.name}")
    if length_16th <= 0:
        return []
    plan = _plan(texture)
    end = start_16th + length_16th
    floor = [_FREE] * length_16th
    if melody_floor is not None:
        window = np.asarray(melody_floor[start_16th:end], dtype=np.int64)
        floor[: len(window)] = np.where(window < 0, _FREE, window).tolist()
    sounding = sorted((c for c in chords if c.end_16th > start_16th and c.start_16th < end),
                      key=lambda c: c.start_16th)
    chord_at = [-1] * length_16th
    for i, ev in enumerate(sounding):
        lo, hi = max(ev.start_16th, start_16th) - start_16th, min(ev.end_16th, end) - start_16th
        chord_at[lo:hi] = [i] * (hi - lo)
    # where the sounding chord next changes (or stops), seen from each step
    next_change = [length_16th] * length_16th
    for t in range(length_16th - 2, -1, -1):
        next_change[t] = t + 1 if chord_at[t + 1] != chord_at[t] else next_change[t + 1]
    contexts = _contexts(plan, sounding, floor, start_16th)

    notes: list[tuple[int, int, int, int]] = []
    bass_chord = -1  # the chord the left hand's last bass tone belonged to
    for tile in range(0, length_16th, plan.period):
        for onset, length, rh, tones in plan.events:
            at = tile + onset
            if at >= length_16th:
                break
            index = chord_at[at]
            if index < 0:
                continue  # no chord sounding: the event is silent
            stop = min(at + length, length_16th)
            softer = 0
            while True:
                ctx = contexts[index]
                chord_end = min(next_change[at], stop)
                for key, velocity in _bass_restart(tones, rh, index != bass_chord):
                    for pitch in ctx.pitches(rh, key):
                        if pitch >= ctx.ceiling:  # maybe under the melody's floor over this note
                            fitted = _fit(pitch, rh, min(floor[at:chord_end]))
                            if fitted is None:
                                continue
                            pitch = fitted
                        notes.append((pitch, at, chord_end - at, max(1, velocity - softer)))
                if not rh and tones and tones[0][0][0] in _BASS_DEGREES:
                    bass_chord = index
                # clipped at the chord change: re-strike on the next chord when enough is left
                if chord_end >= stop or stop - chord_end < RESTRIKE_MIN_16TH:
                    break
                index = chord_at[chord_end]
                if index < 0:
                    break
                at, softer = chord_end, softer + RESTRIKE_SOFTEN
    return _tidy(notes, start_16th)


_BASS_DEGREES = frozenset({"b", "r", "5"})


def _bass_restart(
    tones: tuple[tuple[_ToneKey, int], ...], rh: bool, new_chord: bool
) -> tuple[tuple[_ToneKey, int], ...]:
    """An alternating bass (root … fifth …) restarts on the chord's bass after a chord change
    (docs/musicianship.md): a left-hand figure opening on the fifth plays the bass note
    instead when its chord is not the one the previous bass tone belonged to."""
    if rh or not new_chord or not tones or tones[0][0][0] != "5":
        return tones
    (_, voices, _), velocity = tones[0]
    return (("b", voices, 0), velocity), *tones[1:]


def _tidy(notes: list[tuple[int, int, int, int]], offset: int) -> list[tuple[int, int, int, int]]:
    """(pitch, start, length, velocity) notes → absolute (start, length, pitch, velocity), one
    note per pitch at a time (a repeated pitch cuts the earlier one short)."""
    notes.sort()
    out: list[tuple[int, int, int, int]] = []
    last_pitch = last_end = -1
    for pitch, start, length, velocity in notes:
        if pitch == last_pitch and last_end > start:
            p_start, p_length, _, p_velocity = out[-1]
            if p_start == start:  # doubled by both hands: keep one, the longer and louder
                out[-1] = (start, max(p_length, length), pitch, max(p_velocity, velocity))
                last_end = start + max(p_length, length)
                continue
            out[-1] = (p_start, start - p_start, pitch, p_velocity)
        out.append((start, length, pitch, velocity))
        last_pitch, last_end = pitch, start + length
    out.sort()
    return [(s + offset, d, p, v) for s, d, p, v in out]


def make_texture(
    name: str, meter: str, bars: int, tags: Iterable[str], styles: Iterable[Style], pedal: bool,
    velocity: int, events: Iterable[PatternEvent],
) -> Texture:
    """A texture with its events in canonical order and its descriptors computed."""
    ordered = tuple(sorted(events, key=lambda e: (e.onset_16th, e.hand, e.duration_16th,
                                                  tuple(map(str, e.tones)))))
    bare = Texture(name, meter, bars, tuple(tags), tuple(styles), pedal, velocity, ordered)
    length = bare.length_16th
    c_major = (ChordEvent(Chord(0, "maj", 0), 0, length),)
    own = meter_of(meter)
    rendered = render_texture(bare, c_major, 0, length, own)
    onsets = onset_roll(np.array(rendered, dtype=np.int64)[:, [0, 2, 1, 3]]
                        if rendered else np.zeros((0, 4), dtype=np.int64), length)
    density = rhythmic_density(onsets)
    polyphony = voice_number(onsets, own.beat_16th)
    return dataclasses.replace(
        bare, density=density, polyphony=polyphony,
        density_level=level(density, DENSITY_CUTPOINTS),
        polyphony_level=level(polyphony, POLYPHONY_CUTPOINTS),
    )
