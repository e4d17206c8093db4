"""The one generate path: a DAW clip and its JSON options in, the bridge's result out.

`serve`, `send` (through a bridge), the panel and every DAW adapter (OSC, Ableton, REAPER,
MIDI) reach the engine through `generate` (or, for the panel's edits, `run_arrangement` +
`generate_result`). Lives in `ui` because it is wiring: the one place that knows both the
bridge's values (beats, clips, parts) and the engine's (ticks, 16ths, options). Every unit
conversion between them is here; options are read by the engine's one codec
(`ArrangeOptions.from_json`), so every source accepts exactly the same values.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import Any

from bridge.types import (
    PART_CHANNELS,
    PARTS,
    SUSTAIN_PEDAL,
    ChordSymbol,
    Clip,
    ClipControl,
    ClipNote,
    Generate,
    GenerateResult,
    JobContext,
)
from engine import (
    Arrangement,
    ArrangeOptions,
    Harmonization,
    Key,
    Melody,
    Meter,
    Note,
    OptionError,
)

TICKS_PER_BEAT = 480  # the resolution a DAW clip's beats are read at
PARTS_OPTION = "parts"  # the one option that belongs to the bridge, not the engine
# Live 12's scale names that are a major or minor key (its other modes give no hint)
_HINT_MODES = {"major": "major", "ionian": "major", "minor": "minor", "aeolian": "minor"}
_HINT_RE = re.compile(r"^\s*([A-G][#b]?)\s+([A-Za-z]+)\s*$")


def request_options(options: Mapping[str, Any]) -> tuple[ArrangeOptions, tuple[str, ...]]:
    """The engine's options and the wanted parts from the OSC API's JSON object."""
    if not isinstance(options, Mapping):
        raise OptionError(f"options must be a JSON object, got {type(options).__name__}")
    parts = options.get(PARTS_OPTION, list(PARTS))
    if (not isinstance(parts, list | tuple) or not parts or len(parts) > len(PARTS)
            or any(not isinstance(p, str) or p not in PARTS for p in parts)):
        raise OptionError(f"option parts must be a non-empty list of {', '.join(PARTS)}, "
                          f"got {str(parts)[:60]}")
    engine_options = {k: v for k, v in options.items() if k != PARTS_OPTION}
    return ArrangeOptions.from_json(engine_options), tuple(p for p in PARTS if p in parts)


def key_of_hint(hint: str | None) -> Key | None:
    """The key a DAW's scale setting names ("C Major", "F# minor"), None for other modes."""
    from engine import parse_key

    match = _HINT_RE.match(hint or "")
    if match is None or match.group(2).lower() not in _HINT_MODES:
        return None
    return parse_key(match.group(1), _HINT_MODES[match.group(2).lower()])


def clip_melody(clip: Clip) -> Melody:
    """The clip's notes as an engine Melody (top line, limits and meter checked). The DAW's
    scale (`key_hint`) weighs in like a file's key signature: a prior, not an override."""
    from engine import melody_from_notes

    meter = Meter(clip.ts_num, clip.ts_den)
    notes = [
        Note(n.pitch, round(n.start_beats * TICKS_PER_BEAT),
             max(1, round(n.duration_beats * TICKS_PER_BEAT)), n.velocity)
        for n in clip.notes
        if n.start_beats < clip.length_beats or clip.length_beats <= 0
    ]
    tempo_us = round(60_000_000 / clip.tempo_bpm) if clip.tempo_bpm > 0 else 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the top-line reduction is expected for DAW clips
        return melody_from_notes(notes, TICKS_PER_BEAT, meter, ((0, tempo_us),),
                                 key=key_of_hint(clip.key_hint), name=clip.name or "Melody")


def clip_from_melody(melody: Melody, source: str, name: str) -> Clip:
    """A bridge clip (beats, whole bars) holding `melody`: what `send` uploads and the store
    persists for a file."""
    tpb = melody.ticks_per_beat
    bar_beats = melody.meter.numerator * 4 / melody.meter.denominator
    end = melody.end_tick / tpb
    length = max(bar_beats, -(-end // bar_beats) * bar_beats)
    return Clip(
        source=source, name=name, length_beats=length, tempo_bpm=melody.tempo_bpm,
        ts_num=melody.meter.numerator, ts_den=melody.meter.denominator,
        notes=tuple(ClipNote(n.pitch, n.start_tick / tpb, n.duration_tick / tpb, n.velocity,
                             PART_CHANNELS["melody"]) for n in melody.notes),
    )


def notes_of_part(notes: tuple[ClipNote, ...], ticks_per_beat: int) -> list[Note]:
    """A result part's notes back in a file's ticks (what `send` writes)."""
    return [Note(n.pitch, round(n.start_beats * ticks_per_beat),
                 max(1, round(n.duration_beats * ticks_per_beat)), n.velocity) for n in notes]


def _clip_notes(notes: tuple[Note, ...], ticks_per_beat: int, channel: int) -> tuple[ClipNote, ...]:
    return tuple(
        ClipNote(n.pitch, n.start_tick / ticks_per_beat, n.duration_tick / ticks_per_beat,
                 max(1, min(127, n.velocity)), channel)
        for n in notes
    )


def run_arrangement(melody: Melody, options: ArrangeOptions,
                    parts: tuple[str, ...]) -> Arrangement:
    """Harmonize, and arrange when the piano is wanted (a chords-only request skips the
    arranger: an Arrangement with no textures)."""
    from engine import arrange, harmonize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # top-line reduction etc. were reported at load time
        if "piano" in parts:
            return arrange(melody, options)
        return Arrangement(harmonize(melody, options.harmonize), (), ())


def generate_result(arrangement: Arrangement, parts: tuple[str, ...], request_id: str,
                    source: str, key_hint: str | None = None) -> GenerateResult:
    """The bridge's result: each wanted part on its channel, the piano's sustain pedal, the
    chord symbols and the chart, in beats of the melody's own resolution."""
    from engine import arrangement_chart, harmonization_chart

    harmonization: Harmonization = arrangement.harmonization
    tpb = harmonization.melody.ticks_per_beat
    out: dict[str, tuple[ClipNote, ...]] = {}
    controls: dict[str, tuple[ClipControl, ...]] = {}
    if "chords" in parts:
        out["chords"] = _clip_notes(harmonization.chord_notes, tpb, PART_CHANNELS["chords"])
    if "piano" in parts:
        out["piano"] = _clip_notes(arrangement.piano_notes, tpb, PART_CHANNELS["piano"])
        controls["piano"] = tuple(
            ClipControl(p.tick / tpb, SUSTAIN_PEDAL, 127 if p.down else 0, PART_CHANNELS["piano"])
            for p in arrangement.pedal)
    key = harmonization.analysis.key
    symbols = tuple(
        ChordSymbol(ev.start_16th / 4, ev.duration_16th / 4, ev.chord.symbol(key))
        for ev in harmonization.chords
    )
    summary = (arrangement_chart(arrangement) if arrangement.textures
               else harmonization_chart(harmonization))
    if key_hint:  # the DAW's scale, shown beside the key we heard (it weighed in as a prior)
        summary["key"] = {**summary["key"], "daw_scale": key_hint}
    return GenerateResult(request_id, source, out, symbols, summary, controls)


def with_defaults(defaults: Mapping[str, Any]) -> Generate:
    """`generate` whose options start from `defaults` (serve's --preset and flags); what a DAW
    sends with its clip wins. The defaults are checked here, once, like any options."""
    fixed = dict(defaults)
    request_options(fixed)

    def generate_with_defaults(clip: Clip, options: Mapping[str, Any],
                               context: JobContext) -> GenerateResult:
        return generate(clip, {**fixed, **options}, context)

    return generate_with_defaults


def generate(clip: Clip, options: Mapping[str, Any], context: JobContext) -> GenerateResult:
    """The bridge's injected `Generate`: harmonize (and arrange, when the piano is wanted)."""
    context.progress(0.05, "reading clip")
    arrange_options, parts = request_options(options)
    melody = clip_melody(clip)
    context.check()
    context.progress(0.2, "harmonizing")
    arrangement = run_arrangement(melody, arrange_options, parts)
    context.check()
    context.progress(0.9, "sending")
    return generate_result(arrangement, parts, context.request_id, context.source,
                           clip.key_hint)


__all__ = [
    "clip_melody", "clip_from_melody", "generate", "generate_result", "key_of_hint",
    "notes_of_part", "request_options", "run_arrangement", "with_defaults",
]
