"""The DAW presenter: the adapters (Ableton, REAPER, OSC, MIDI) the settings ask for, clips a DAW
sends, and "Send to DAW": answering the DAW's clip with what the panel shows, through that
adapter's own result path."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Protocol

from bridge.types import Clip
from ui.panel.document import PanelDocument
from ui.panel.jobs import PanelOutcome
from ui.panel.link import EngineLink
from ui.panel.presenters import StatusView
from ui.panel.presenters.generation import GenerationPresenter

logger = logging.getLogger("accobridge.panel")


class DawView(StatusView, Protocol):
    def live(self) -> bool:
        """Live mode: a DAW clip is generated (and answered) as soon as it arrives."""

    def show_clip(self, placeholder: str = ...) -> None:
        """The document's new clip on screen, `placeholder` where the phrases will be."""


class DawPresenter:
    def __init__(self, link: EngineLink, document: PanelDocument,
                 generation: GenerationPresenter, view: DawView) -> None:
        self.link = link
        self.document = document
        self.generation = generation
        self._view = view

    def restart_services(self, settings: Any) -> None:
        """(Re)start the adapters `settings` ask for; a failure becomes a connection status."""
        self.link.gate.debounce_s = getattr(settings, "debounce_ms", 150) / 1000
        config = replace(settings.service_config(), midi_meter=self.generation.midi_meter)
        self.link.start_services(config, self._view.live())

    def update_request(self) -> None:
        """DAW clips sent without options of their own follow the preset."""
        self.link.set_daw_request(self.generation.daw_request())

    def clip_arrived(self, source: str, clip: object) -> None:
        """Live mode answers a clip by itself (see `accepts`); otherwise it waits here."""
        if not isinstance(clip, Clip):
            return
        logger.info("clip “%s” arrived from %s (%d notes)", clip.name, source, len(clip.notes))
        if not self._view.live():
            self.document.open(source, clip, None)
            self._view.show_clip("Live mode is off: press Generate, then Send to DAW.")

    def accepts(self, outcome: PanelOutcome) -> bool:
        """Whether a result the engine sent to a DAW is shown: in live mode, with its clip."""
        if not self._view.live():
            return False
        doc = self.document
        if doc.clip is None or doc.source != outcome.source or doc.clip.notes != outcome.clip.notes:
            doc.open(outcome.source, outcome.clip, outcome.arrangement.harmonization.melody)
            self._view.show_clip()
        self._view.show_status(f"{outcome.source}: sent to the DAW")
        return True

    def send(self) -> None:
        """Answer the DAW clip with what the panel shows (a file's clip has no DAW to answer)."""
        doc = self.document
        if doc.arrangement is None or doc.clip is None:
            return
        if not doc.from_daw:
            self._view.report_error(
                "This clip was opened from a file: no DAW is waiting for it", None,
                "Send to DAW answers the clip a DAW sent (Ableton, REAPER, an OSC client or the "
                "MIDI input). For a file, use Save .mid or drag the .mid onto a track.")
            return
        source, request = doc.source, self.generation.replay_request()
        if request is not None and self.link.send_to_daw(source, request):
            self._view.show_status(f"Sending to {source}…")
        else:
            self._view.report_error(f"{source} has not sent a clip since the panel started", None,
                                    "A restored clip cannot be answered: send it from the DAW "
                                    "again (or save/drag the .mid).")
