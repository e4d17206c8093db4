"""The bridge's injected `Generate` function: a DAW clip in, engine parts out.

Lives in `ui` because it is wiring: it is the one place that knows both the bridge's clip
values (beats) and the engine's (ticks, 16ths). Options arrive as the plain JSON the OSC API
carries; unknown keys and bad values are refused with a message the client can show.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from bridge.types import (
    PART_CHANNELS,
    PARTS,
    ChordSymbol,
    Clip,
    ClipNote,
    GenerateResult,
    JobContext,
)
from engine.errors import OptionError
from engine.types import ArrangeOptions, HarmonizeOptions, Meter, Note

TICKS_PER_BEAT = 480
OPTION_KEYS = frozenset({
    "style", "phrase_styles", "density", "polyphony", "key", "mode", "phrases", "pickup",
    "seed", "library", "parts", "variant", "alpha", "beta", "reharmonizer", "transition",
    "tonic_balance", "colours", "scorer",
})
COLOUR_CHOICES = ("melody", "style")
MODEL_CHOICES = ("rules", "learned")


def harmonize_options(options: Mapping[str, Any]) -> HarmonizeOptions:
    """HarmonizeOptions from the OSC/JSON option names (the CLI's, without dashes)."""
    from engine.analysis.key import parse_key

    unknown = set(options) - OPTION_KEYS
    if unknown:
        raise OptionError(f"unknown option(s): {', '.join(sorted(unknown))}")
    try:
        key = options.get("key")
        return HarmonizeOptions(
            key=parse_key(str(key), options.get("mode")) if key else None,
            phrases=options.get("phrases") or None,
            pickup_16th=None if options.get("pickup") is None else int(options["pickup"]),
            style=options.get("style", "pop_standard"),
            phrase_styles=tuple(options.get("phrase_styles", ())),
            seed=int(options.get("seed", 0)),
            alpha=float(options.get("alpha", 0.1)),
            beta=float(options.get("beta", 0.5)),
            variant=options.get("variant", "ours"),
            tonic_balance=_unit(options, "tonic_balance", 0.0),
            melody_colours=_colours(options.get("colours", "melody")),
            scorer=_model_choice(options, "scorer", "learned"),
        )
    except (TypeError, ValueError) as err:
        if isinstance(err, OptionError):
            raise
        raise OptionError(f"bad option value: {err}") from err


def _unit(options: Mapping[str, Any], name: str, default: float) -> float:
    value = float(options.get(name, default))
    if not 0.0 <= value <= 1.0:
        raise OptionError(f"option {name} must lie in 0..1, got {value}")
    return value


def _colours(value: Any) -> bool:
    if value not in COLOUR_CHOICES:
        raise OptionError(f"option colours must be one of {', '.join(COLOUR_CHOICES)}, "
                          f"got {value!r}")
    return bool(value == "melody")


def clip_melody(clip: Clip) -> Any:
    """The clip's notes as an engine Melody (top line, limits and meter checked)."""
    from engine.midi_io import melody_from_notes

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
                                 name=clip.name or "Melody")


def _clip_notes(notes: tuple[Note, ...], channel: int) -> tuple[ClipNote, ...]:
    return tuple(
        ClipNote(n.pitch, n.start_tick / TICKS_PER_BEAT, n.duration_tick / TICKS_PER_BEAT,
                 max(1, min(127, n.velocity)), channel)
        for n in notes
    )


def _model_choice(options: Mapping[str, Any], name: str, default: str = "rules") -> Any:
    """'rules' or 'learned' (engine/models) for the chord scorer or a learned arranger part."""
    value = options.get(name, default)
    if value not in MODEL_CHOICES:
        raise OptionError(f"{name} must be one of {', '.join(MODEL_CHOICES)}, not {value!r}")
    return value


def generate(clip: Clip, options: Mapping[str, Any], context: JobContext) -> GenerateResult:
    """Harmonize (and arrange, when the piano part is wanted) one clip."""
    from engine.chart import arrangement_chart, harmonization_chart
    from engine.pipeline import arrange, harmonize

    parts = tuple(options.get("parts", PARTS))
    if not parts or set(parts) - set(PARTS):
        raise OptionError(f"parts must be a non-empty subset of {', '.join(PARTS)}")
    context.progress(0.05, "reading clip")
    melody = clip_melody(clip)
    context.check()
    harm = harmonize_options(options)
    context.progress(0.2, "harmonizing")
    if "piano" in parts:
        level = {k: None if options.get(k) is None else int(options[k])
                 for k in ("density", "polyphony")}
        models = {k: _model_choice(options, k) for k in ("reharmonizer", "transition")}
        result = arrange(melody, ArrangeOptions(harm, level["density"], level["polyphony"],
                                                options.get("library"), **models))
        harmonization, piano = result.harmonization, result.piano_notes
        summary = arrangement_chart(result)
    else:
        harmonization, piano = harmonize(melody, harm), ()
        summary = harmonization_chart(harmonization)
    context.check()
    context.progress(0.9, "sending")
    out: dict[str, tuple[ClipNote, ...]] = {}
    if "chords" in parts:
        out["chords"] = _clip_notes(harmonization.chord_notes, PART_CHANNELS["chords"])
    if "piano" in parts:
        out["piano"] = _clip_notes(piano, PART_CHANNELS["piano"])
    key = harmonization.analysis.key
    symbols = tuple(
        ChordSymbol(ev.start_16th / 4, ev.duration_16th / 4, ev.chord.symbol(key))
        for ev in harmonization.chords
    )
    return GenerateResult(context.request_id, context.source, out, symbols, summary)
