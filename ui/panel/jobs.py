"""The panel's engine work, Qt-free: what one request asks for, how it runs on the session's
worker, and how its arrangement becomes the bridge's `GenerateResult` for the DAW.

One `PanelEngine.generate` is the session's injected engine for every source: a DAW clip
(options as the OSC API's JSON) or a panel request (a `PanelRequest` inside the options). Both
keep the rich `Arrangement` (alternatives, textures) for the panel beside the plain result.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from bridge.types import (
    PART_CHANNELS,
    PARTS,
    ChordSymbol,
    Clip,
    ClipNote,
    GenerateResult,
    JobContext,
)
from engine.types import (
    Arrangement,
    ArrangeOptions,
    Melody,
    Note,
    ProgressionChoice,
    TextureChoice,
)
from ui.panel.rollview import RollView, view_of_arrangement

# The options key a panel request travels under. Only an in-process `PanelRequest` object
# counts: a DAW client's JSON can carry this name but never that type.
PANEL_REQUEST = "_panel_request"
PANEL_SOURCE = "panel"
Action = Literal["generate", "choose", "regenerate_phrase", "replay"]


@dataclass(frozen=True)
class PanelRequest:
    """One thing the panel asks the engine for.

    - "generate": harmonize + arrange `melody` (locked phrases keep their progression);
    - "choose": the `arrangement` with phrase `phrase_index` on alternative
      `alternative_index`; the other phrases keep chords and textures;
    - "regenerate_phrase": only phrase `phrase_index` gets a new progression;
    - "replay": send `arrangement` as it is (to a DAW), unless the clip has changed since,
      in which case it is generated afresh with the same options.
    """

    action: Action
    options: ArrangeOptions
    melody: Melody | None = None  # None: read from the clip
    locked: Mapping[int, ProgressionChoice] = field(default_factory=lambda: MappingProxyType({}))
    arrangement: Arrangement | None = None
    phrase_index: int = -1
    alternative_index: int = -1
    parts: tuple[str, ...] = PARTS
    clip_notes: tuple[ClipNote, ...] = ()  # for "replay": the clip `arrangement` was made for


@dataclass(frozen=True)
class PanelOutcome:
    """A finished request: the rich arrangement for the panel, the plain result for the DAW."""

    source: str
    request_id: str
    clip: Clip
    arrangement: Arrangement
    result: GenerateResult
    view: RollView  # what the roll shows, built here so the GUI thread only draws


def clip_from_melody(melody: Melody, source: str, name: str) -> Clip:
    """A bridge clip (beats) holding `melody`: what the store persists for a file."""
    tpb = melody.ticks_per_beat
    bar_beats = melody.meter.numerator * 4 / melody.meter.denominator
    end = melody.end_tick / tpb
    length = max(bar_beats, -(-end // bar_beats) * bar_beats)  # whole bars
    return Clip(
        source=source, name=name, length_beats=length, tempo_bpm=melody.tempo_bpm,
        ts_num=melody.meter.numerator, ts_den=melody.meter.denominator,
        notes=tuple(ClipNote(n.pitch, n.start_tick / tpb, n.duration_tick / tpb, n.velocity, 1)
                    for n in melody.notes),
    )


def clip_melody(clip: Clip) -> Melody:
    """The engine melody of a DAW clip (the bridge's own conversion)."""
    from ui.engine_link import clip_melody as convert

    melody: Melody = convert(clip)
    return melody


def wire_arrange_options(options: Mapping[str, Any]) -> tuple[ArrangeOptions, tuple[str, ...]]:
    """ArrangeOptions and parts from the OSC API's JSON options (the bridge's option names)."""
    from engine.errors import OptionError
    from ui.engine_link import harmonize_options

    plain = {k: v for k, v in options.items() if k not in ("density", "polyphony", "library",
                                                             "parts", PANEL_REQUEST)}
    harmonize = harmonize_options(plain)
    parts = tuple(options.get("parts", PARTS))
    if not parts or set(parts) - set(PARTS):
        raise OptionError(f"parts must be a non-empty subset of {', '.join(PARTS)}")
    try:
        density = None if options.get("density") is None else int(options["density"])
        polyphony = None if options.get("polyphony") is None else int(options["polyphony"])
    except (TypeError, ValueError) as err:
        raise OptionError(f"bad density/polyphony: {err}") from err
    return ArrangeOptions(harmonize, density, polyphony, options.get("library")), parts


def _clip_notes(notes: tuple[Note, ...], ticks_per_beat: int, channel: int) -> tuple[ClipNote, ...]:
    return tuple(
        ClipNote(n.pitch, n.start_tick / ticks_per_beat, n.duration_tick / ticks_per_beat,
                 max(1, min(127, n.velocity)), channel)
        for n in notes
    )


def arrangement_result(arrangement: Arrangement, parts: tuple[str, ...], request_id: str,
                       source: str) -> GenerateResult:
    """The bridge result of an arrangement: the same parts, channels and chart `serve` sends
    (ui.engine_link.generate), kept in the melody's own ticks per beat."""
    from engine.chart import arrangement_chart

    harmonization = arrangement.harmonization
    tpb = harmonization.melody.ticks_per_beat
    out: dict[str, tuple[ClipNote, ...]] = {}
    if "chords" in parts:
        out["chords"] = _clip_notes(harmonization.chord_notes, tpb, PART_CHANNELS["chords"])
    if "piano" in parts:
        out["piano"] = _clip_notes(arrangement.piano_notes, tpb, PART_CHANNELS["piano"])
    key = harmonization.analysis.key
    symbols = tuple(
        ChordSymbol(ev.start_16th / 4, ev.duration_16th / 4, ev.chord.symbol(key))
        for ev in harmonization.chords
    )
    return GenerateResult(request_id, source, out, symbols, arrangement_chart(arrangement))


def run_request(request: PanelRequest, clip: Clip,
                context: JobContext | None = None) -> Arrangement:
    """Carry out one panel request (on the engine's worker thread)."""
    from engine import edits
    from engine.pipeline import arrange

    def progress(fraction: float, message: str) -> None:
        if context is not None:
            context.progress(fraction, message)
            context.check()

    options = request.options
    if request.action == "replay" and request.arrangement is not None:
        if request.clip_notes == clip.notes:
            return request.arrangement
        request = PanelRequest("generate", options, locked=request.locked)  # the clip changed
    if request.action in ("choose", "regenerate_phrase"):
        current = request.arrangement
        if current is None:
            raise ValueError(f"{request.action} needs an arrangement")
        progress(0.2, "harmonizing the phrase")
        if request.action == "choose":
            harmonization = edits.choose_alternative(current.harmonization, request.phrase_index,
                                                     request.alternative_index)
        else:
            harmonization = edits.regenerate_phrase(current.harmonization, request.phrase_index,
                                                    options.harmonize)
        progress(0.5, "arranging")
        keep: dict[int, TextureChoice] = dict(enumerate(current.textures))
        arrangement: Arrangement = edits.arrange_harmonization(harmonization, options, keep)
        return arrangement
    melody = request.melody if request.melody is not None else clip_melody(clip)
    progress(0.2, "harmonizing")
    if request.locked:
        harmonization = edits.regenerate(melody, options.harmonize, request.locked)
        progress(0.5, "arranging")
        arranged: Arrangement = edits.arrange_harmonization(harmonization, options)
        return arranged
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # top-line reduction etc. were reported at load time
        result: Arrangement = arrange(melody, options)
    return result


class PanelEngine:
    """The session's generate function (see `bridge.types.Generate`) for the panel.

    Every finished request's `PanelOutcome` is kept until the session delivers (or drops) its
    result; `take(request_id)` hands it to the panel once, on the "result" event.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outcomes: dict[str, PanelOutcome] = {}

    def __call__(self, clip: Clip, options: Mapping[str, Any],
                 context: JobContext) -> GenerateResult:
        context.progress(0.05, "reading clip")
        request = options.get(PANEL_REQUEST)
        if not isinstance(request, PanelRequest):
            arrange_options, parts = wire_arrange_options(options)
            request = PanelRequest("generate", arrange_options, parts=parts)
        arrangement = run_request(request, clip, context)
        context.check()
        context.progress(0.9, "sending")
        result = arrangement_result(arrangement, request.parts, context.request_id,
                                    context.source)
        view = view_of_arrangement(arrangement, request.locked)
        with self._lock:
            self._outcomes[context.request_id] = PanelOutcome(
                context.source, context.request_id, clip, arrangement, result, view)
        return result

    def take(self, request_id: str) -> PanelOutcome | None:
        with self._lock:
            return self._outcomes.pop(request_id, None)

    def forget(self, request_id: str) -> None:
        """Drop a request's outcome that will never be delivered (superseded, cancelled)."""
        with self._lock:
            self._outcomes.pop(request_id, None)
