"""The panel's engine work, Qt-free: what one request asks for and how it runs on the
session's worker.

`PanelEngine` is the session's injected engine for every source: a DAW clip (options as the OSC
API's JSON) or a panel request (a `PanelRequest` inside the options). Both go through the one
generate path (ui/engine_link.py) and keep the rich `Arrangement` (alternatives, textures) for
the panel beside the plain result.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from bridge.types import PARTS, Clip, ClipNote, GenerateResult, JobContext
from engine import Arrangement, ArrangeOptions, Chord, Melody, ProgressionChoice, TextureChoice
from ui.engine_link import (
    clip_from_melody,
    clip_melody,
    generate_result,
    request_options,
    run_arrangement,
)
from ui.panel.rollview import RollView, view_of_arrangement

# The options key a panel request travels under. Only an in-process `PanelRequest` object
# counts: a DAW client's JSON can carry this name but never that type.
PANEL_REQUEST = "_panel_request"
PANEL_SOURCE = "panel"
Action = Literal["generate", "choose", "regenerate_phrase", "replay", "replace_chord",
                 "choose_texture"]


@dataclass(frozen=True)
class PanelRequest:
    """One thing the panel asks the engine for.

    - "generate": harmonize + arrange `melody` (locked phrases keep their progression);
    - "choose": the `arrangement` with phrase `phrase_index` on alternative
      `alternative_index`; the other phrases keep chords and textures;
    - "regenerate_phrase": only phrase `phrase_index` gets a new progression;
    - "replace_chord": chord `event_index` of phrase `phrase_index` becomes `chord`, and that
      phrase's piano is re-rendered to it (its texture and every other phrase kept);
    - "choose_texture": phrase `phrase_index` plays `texture`, the rest is kept;
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
    event_index: int = -1
    chord: Chord | None = None
    texture: TextureChoice | None = None
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


def run_request(request: PanelRequest, clip: Clip,
                context: JobContext | None = None) -> Arrangement:
    """Carry out one panel request (on the engine's worker thread)."""
    # the engine's working modules load here, on the worker, never while the window is built
    from engine import (
        arrange_harmonization,
        choose_alternative,
        choose_texture,
        regenerate,
        regenerate_phrase,
        replace_chord,
    )

    def progress(fraction: float, message: str) -> None:
        if context is not None:
            context.progress(fraction, message)
            context.check()

    options = request.options
    if request.action == "replay" and request.arrangement is not None:
        if request.clip_notes == clip.notes:
            return request.arrangement
        request = PanelRequest("generate", options, locked=request.locked)  # the clip changed
    if request.action in ("choose", "regenerate_phrase", "replace_chord", "choose_texture"):
        current = request.arrangement
        if current is None:
            raise ValueError(f"{request.action} needs an arrangement")
        if request.action == "choose_texture":
            if request.texture is None:
                raise ValueError("choose_texture needs a texture")
            progress(0.5, "arranging")
            chosen: Arrangement = choose_texture(current, request.phrase_index, request.texture,
                                                 options)
            return chosen
        progress(0.2, "harmonizing the phrase")
        if request.action == "choose":
            harmonization = choose_alternative(current.harmonization, request.phrase_index,
                                                     request.alternative_index)
        elif request.action == "replace_chord":
            if request.chord is None:
                raise ValueError("replace_chord needs a chord")
            harmonization = replace_chord(current.harmonization, request.phrase_index,
                                          request.event_index, request.chord, options.harmonize)
        else:
            harmonization = regenerate_phrase(current.harmonization, request.phrase_index,
                                                    options.harmonize)
        progress(0.5, "arranging")
        keep: dict[int, TextureChoice] = dict(enumerate(current.textures))
        arrangement: Arrangement = arrange_harmonization(harmonization, options, keep)
        return arrangement
    melody = request.melody if request.melody is not None else clip_melody(clip)
    progress(0.2, "harmonizing")
    if request.locked:
        harmonization = regenerate(melody, options.harmonize, request.locked)
        progress(0.5, "arranging")
        arranged: Arrangement = arrange_harmonization(harmonization, options)
        return arranged
    return run_arrangement(melody, options, request.parts)


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
            arrange_options, parts = request_options(options)
            request = PanelRequest("generate", arrange_options, parts=parts)
        arrangement = run_request(request, clip, context)
        context.check()
        context.progress(0.9, "sending")
        result = generate_result(arrangement, request.parts, context.request_id,
                                 context.source, clip.key_hint)
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


__all__ = [
    "PANEL_REQUEST", "PANEL_SOURCE", "PanelEngine", "PanelOutcome", "PanelRequest",
    "clip_from_melody", "clip_melody", "run_request",
]
