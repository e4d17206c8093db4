"""The generation presenter: turns the user's intents (generate, choose an alternative,
regenerate or lock a phrase, a phrase style, an analysis edit, a chord or a texture changed by
hand) into engine requests for the open clip, and the engine's news into what the window shows.
Latest wins: news of any panel request but the newest is dropped."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Protocol

from bridge.types import ClipNote
from engine import ArrangeOptions, Chord, Melody, TextureChoice
from ui.panel.document import AnalysisEdits, PanelDocument
from ui.panel.jobs import PANEL_SOURCE, Action, PanelOutcome, PanelRequest
from ui.panel.link import EngineLink
from ui.panel.presenters import StatusView
from ui.panel.presenters.presets import PresetPresenter

logger = logging.getLogger("accobridge.panel")


class GenerationView(StatusView, Protocol):
    def analysis_edits(self) -> AnalysisEdits: ...

    def start_progress(self) -> None:
        """A request is on its way (progress shows only if it takes long)."""

    def set_progress(self, fraction: float) -> None: ...

    def end_progress(self) -> None: ...

    def show_result(self, outcome: PanelOutcome) -> None:
        """The document's new arrangement (from `outcome`) on screen."""

    def show_locks(self) -> None:
        """The document's locks changed: the same arrangement, redrawn."""


class GenerationPresenter:
    def __init__(self, link: EngineLink, document: PanelDocument, presets: PresetPresenter,
                 view: GenerationView) -> None:
        self.link = link
        self.document = document
        self.presets = presets
        self.latest_request: str | None = None
        self._view = view
        self._regenerations = 0  # "Regenerate phrase" clicks: the seed of the next one
        self.midi_meter = "4/4"  # the editor's meter as last edited: MIDI takes carry none
        # request id -> phrase whose chosen progression becomes a lock when its result comes
        # (a chord edited by hand is kept like a locked phrase)
        self._lock_on_result: dict[str, int] = {}
        # called with every result taken, after it is shown (the history records it)
        self.on_taken: list[Callable[[PanelOutcome], None]] = []

    # ---- what a request carries ---------------------------------------------------------

    def arrange_options(self) -> ArrangeOptions:
        """The preset's options with the analysis edits and per-phrase styles on top."""
        edits = self._view.analysis_edits()
        key = None
        if edits.key is not None:
            from engine import parse_key

            tonic, mode = edits.key.split(" ")
            key = parse_key(tonic, mode)
        doc = self.document
        count = len(doc.arrangement.harmonization.phrases) if doc.arrangement else 0
        count = max([count] + [i + 1 for i in doc.phrase_styles])
        styles = tuple(doc.phrase_styles.get(i) for i in range(count))
        options = self.presets.arrange_options()
        return replace(options, harmonize=replace(
            options.harmonize, key=key, phrases=edits.phrases, pickup_16th=edits.pickup_16th,
            phrase_styles=styles,  # type: ignore[arg-type]  # values come from STYLES
        ))

    def daw_request(self) -> PanelRequest:
        """What a DAW clip without options of its own is generated with."""
        return PanelRequest("generate", self.arrange_options(), parts=self.presets.send_parts())

    def replay_request(self) -> PanelRequest | None:
        """The shown arrangement as it is, for the DAW that sent its clip (None: nothing yet)."""
        doc = self.document
        if doc.arrangement is None or doc.clip is None:
            return None
        return self._request("replay", self.arrange_options(), clip_notes=doc.clip.notes)

    # ---- intents ------------------------------------------------------------------------

    def generate(self) -> None:
        """Harmonize and arrange the clip (locked phrases keep their chords); latest wins."""
        if self.document.clip is None:
            return
        try:
            melody = self.document.request_melody(self._view.analysis_edits().meter)
            request = self._request("generate", self.arrange_options(), melody=melody)
        except ValueError as err:  # a bad meter or key from the editor
            self._view.report_error(str(err), err)
            return
        self._submit(request, "Generating…")

    def choose_alternative(self, phrase: int, alternative: int) -> None:
        if self.document.arrangement is None:
            return
        self._submit(self._request("choose", self.arrange_options(), phrase_index=phrase,
                                   alternative_index=alternative),
                     f"Phrase {phrase + 1}: alternative {alternative + 1}…")

    def regenerate_phrase(self, phrase: int) -> None:
        """A new progression for this phrase only; each click draws among the near-best ones
        (a new seed per click, else two clicks would toggle between the two best)."""
        if self.document.arrangement is None:
            return
        self._regenerations += 1
        options = self.arrange_options()
        options = replace(options, harmonize=replace(
            options.harmonize, seed=options.harmonize.seed + self._regenerations))
        self._submit(self._request("regenerate_phrase", options, phrase_index=phrase),
                     f"Regenerating phrase {phrase + 1}…")

    def replace_chord(self, phrase: int, event: int, chord: Chord) -> None:
        """Chord `event` of the phrase becomes `chord`; its piano is re-rendered around it and
        the phrase is locked with it, so a later Generate keeps the edit."""
        arrangement = self.document.arrangement
        if arrangement is None:
            return
        request = self._request("replace_chord", self.arrange_options(), phrase_index=phrase,
                                event_index=event, chord=chord)
        symbol = chord.symbol(arrangement.harmonization.analysis.key)
        before = self.latest_request
        self._submit(request, f"Phrase {phrase + 1}: chord {event + 1} is now {symbol}…")
        if self.latest_request is not None and self.latest_request != before:
            self._lock_on_result[self.latest_request] = phrase

    def choose_texture(self, phrase: int, texture: TextureChoice) -> None:
        """The phrase plays `texture` (one of `texture_candidates`); the rest is kept."""
        if self.document.arrangement is None:
            return
        self._submit(self._request("choose_texture", self.arrange_options(),
                                   phrase_index=phrase, texture=texture),
                     f"Phrase {phrase + 1}: texture {texture.name}…")

    # ---- questions for the engine (run by the caller on a background thread) ------------

    def chord_suggestions(self, phrase: int, event: int) -> Callable[[], Any]:
        """The work that lists the chords fitting that chord's span, best first
        (`engine.suggest_chords`), for the arrangement shown now."""
        arrangement = self._shown()
        options = self.arrange_options().harmonize

        def work() -> Any:
            from engine import suggest_chords

            return suggest_chords(arrangement.harmonization, phrase, event, options)
        return work

    def texture_candidates(self, phrase: int) -> Callable[[], Any]:
        """The work that lists the arranger's textures for that phrase, best first
        (`engine.texture_candidates`), for the arrangement shown now."""
        arrangement = self._shown()
        options = self.arrange_options()

        def work() -> Any:
            from engine import texture_candidates

            return texture_candidates(arrangement, phrase, options)
        return work

    def _shown(self) -> Any:
        arrangement = self.document.arrangement
        if arrangement is None:
            raise ValueError("nothing is shown yet: generate first")
        return arrangement

    def set_locked(self, phrase: int, locked: bool) -> None:
        doc = self.document
        if doc.arrangement is None:
            return
        if locked:
            doc.locked[phrase] = doc.arrangement.harmonization.phrases[phrase].chosen
        else:
            doc.locked.pop(phrase, None)
        self._view.show_locks()

    def set_phrase_style(self, phrase: int, style: object) -> None:
        doc = self.document
        if style is None:
            doc.phrase_styles.pop(phrase, None)
        else:
            doc.phrase_styles[phrase] = str(style)
        if phrase not in doc.locked:
            self.regenerate_phrase(phrase)

    def analysis_edited(self) -> None:
        """A new phrase structure renumbers the phrases: locks and phrase styles no longer
        apply. (The window generates again after a debounce.)"""
        doc = self.document
        edits = self._view.analysis_edits()
        self.midi_meter = "{}/{}".format(*edits.meter)
        if self.link.services is not None:  # the ports capture the next take in it
            self.link.services.set_midi_meter(self.midi_meter)
        analysis = doc.arrangement.harmonization.analysis if doc.arrangement else None
        meter = (analysis.meter.numerator, analysis.meter.denominator) if analysis else None
        if (edits.phrases is not None or edits.pickup_16th is not None
                or (meter is not None and meter != edits.meter)):
            if doc.locked:
                logger.info("phrase structure edited: phrase locks released")
            doc.release_phrases()

    # ---- the engine's news --------------------------------------------------------------

    def on_status(self, source: str, request_id: str, state: str, progress: float,
                  message: str) -> None:
        if source == PANEL_SOURCE and request_id != self.latest_request:
            return  # an older request's news
        if state == "running":
            self._view.set_progress(progress)
            if source != PANEL_SOURCE:
                self._view.show_status(f"{source}: {message}")
        elif state in ("done", "failed", "cancelled", "superseded") and source == PANEL_SOURCE:
            self._view.end_progress()

    def on_failed(self, source: str, request_id: str, code: int, message: str) -> None:
        if source == PANEL_SOURCE and request_id != self.latest_request:
            return
        self._view.end_progress()
        who = "" if source == PANEL_SOURCE else f" (clip from {source})"
        self._view.report_error(f"Could not generate{who}: {message}", None,
                                f"request {request_id}, error code {code}\n{message}")

    def is_stale(self, outcome: PanelOutcome) -> bool:
        """A panel result that a newer request has overtaken."""
        stale = outcome.source == PANEL_SOURCE and outcome.request_id != self.latest_request
        if stale:
            logger.debug("dropping stale result %s", outcome.request_id)
        return stale

    def take(self, outcome: PanelOutcome) -> None:
        """`outcome` becomes the document's arrangement, and is shown."""
        doc = self.document
        self._view.end_progress()
        doc.arrangement, doc.view, doc.restored = outcome.arrangement, outcome.view, None
        edited = self._lock_on_result.pop(outcome.request_id, None)
        if edited is not None:
            doc.locked[edited] = outcome.arrangement.harmonization.phrases[edited].chosen
        harmonization = outcome.arrangement.harmonization
        a = harmonization.analysis
        summary = (f"{len(harmonization.chords)} chords, "
                   f"{len(outcome.arrangement.piano_notes)} piano notes")
        logger.info("%s: %s, %s, phrases %s, %s", outcome.request_id, a.key.name, a.meter.name,
                    a.phrase_string, summary)
        if outcome.source == PANEL_SOURCE:
            self._view.show_status(f"{a.key.name}, {a.meter.name}, phrases {a.phrase_string}: "
                                   f"{summary}")
        self._view.show_result(outcome)
        for taken in self.on_taken:
            taken(outcome)

    # ---- helpers ------------------------------------------------------------------------

    def _request(self, action: Action, options: ArrangeOptions, *, melody: Melody | None = None,
                 phrase_index: int = -1, alternative_index: int = -1, event_index: int = -1,
                 chord: Chord | None = None, texture: TextureChoice | None = None,
                 clip_notes: tuple[ClipNote, ...] = ()) -> PanelRequest:
        """A request with the document's locks (and arrangement, but to generate afresh) and
        the preset's parts."""
        doc = self.document
        return PanelRequest(action, options, melody=melody,
                            locked=MappingProxyType(dict(doc.locked)),
                            arrangement=None if action == "generate" else doc.arrangement,
                            phrase_index=phrase_index, alternative_index=alternative_index,
                            event_index=event_index, chord=chord, texture=texture,
                            parts=self.presets.send_parts(), clip_notes=clip_notes)

    def _submit(self, request: PanelRequest, message: str) -> None:
        clip = self.document.clip
        if clip is None:
            return
        panel_clip = clip if clip.source == PANEL_SOURCE else replace(clip, source=PANEL_SOURCE)
        try:
            self.latest_request = self.link.submit(panel_clip, request)
        except RuntimeError as err:
            self._view.report_error("The engine is not running", err)
            return
        self._view.show_status(message)
        self._view.start_progress()

