"""The audition presenter: Play/Stop from the playhead, loop the whole song or one phrase,
mute/solo per part, the output to play through. It plays what the document shows (exactly what
Save .mid writes) with a `ui.panel.audition.Player`, made on the first Play; a new result while
playing goes on from where the playhead is, a new clip stops."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from ui.engine_link import clip_melody
from ui.panel.audition import (
    NO_OUTPUT,
    PARTS,
    Mix,
    Output,
    Performance,
    Player,
    open_output,
    output_choices,
    performance_of,
)
from ui.panel.background import RunInBackground
from ui.panel.document import PanelDocument
from ui.panel.presenters import StatusView

logger = logging.getLogger("accobridge.panel")


def performance_of_document(doc: PanelDocument) -> Performance:
    """What `doc` shows, as Save .mid writes it (the melody alone before a result)."""
    length = doc.view.length_beats if doc.view is not None else 0.0
    if doc.clip is not None:
        length = max(length, doc.clip.length_beats)
    tracks = doc.song_tracks()
    if tracks is not None:
        return performance_of(*tracks, length)
    if doc.melody is not None:
        return performance_of(doc.melody, [], {}, length)
    if doc.clip is None:
        raise ValueError("no clip to play")
    return performance_of(clip_melody(doc.clip), [], {}, length)

WHOLE_SONG = "Whole song"


class AuditionView(StatusView, Protocol):
    def show_playing(self, playing: bool) -> None:
        """Play/Stop's state; while playing the view calls `tick()` every few tens of ms."""

    def show_playhead(self, beats: float | None) -> None: ...

    def show_loop(self, choices: Sequence[str], index: int,
                  span: tuple[float, float] | None) -> None:
        """The loop ranges to choose from, the chosen one, and the span marked on the roll
        (None: looping is off)."""

    def show_outputs(self, names: Sequence[str], current: str) -> None: ...


class AuditionPresenter:
    def __init__(self, view: AuditionView, document: PanelDocument, run: RunInBackground,
                 make_player: Callable[[Callable[[Sequence[int]], bool]], Player] = Player,
                 list_outputs: Callable[[], list[str]] = output_choices,
                 open_output: Callable[[str], Any] = open_output) -> None:
        self._view = view
        self.document = document
        self._run = run
        self._make_player = make_player
        self._list_outputs = list_outputs
        self._open_output = open_output
        self.output = Output()
        self.player: Player | None = None
        self.start_beats = 0.0  # where Play starts: the playhead when stopped
        self.looping = False
        self.loop_index = 0  # 0: the whole song, i + 1: phrase i
        self.muted: set[str] = set()
        self.soloed: set[str] = set()
        self._playing = False
        self._outputs = [NO_OUTPUT]

    # ---- transport ----------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._playing

    def toggle(self) -> None:
        """Space: play from the playhead, or stop there."""
        if self._playing:
            self.stop()
        else:
            self.play()

    def play(self) -> None:
        if self.document.clip is None and self.document.melody is None:
            self._view.show_status("Nothing to play yet: open a melody or play a clip in the "
                                   "DAW")
            self._view.show_playing(False)
            return
        if self.player is None:
            self.player = self._make_player(self.output.send)
            self.player.set_mix(self.mix())
        shown = replace(self.document)  # what is on screen now; read on the player's thread
        self.player.play(lambda: performance_of_document(shown), self.start_beats,
                         self.loop_span())
        self._playing = True
        self._view.show_playing(True)
        self._view.show_playhead(self.start_beats)
        if self.output.name == NO_OUTPUT:
            self._view.show_status("Playing without sound: choose a MIDI output (or the "
                                   "built-in preview) beside Play")

    def stop(self) -> None:
        """Stop where the playhead is (Play goes on from there)."""
        if self.player is not None:
            position = self.player.position()
            self.player.stop()
            if position is not None:
                self.start_beats = position
        self._ended()

    def seek(self, beats: float) -> None:
        """Play from `beats` (at once while playing)."""
        self.start_beats = max(0.0, beats)
        if self._playing:
            self.play()
        else:
            self._view.show_playhead(self.start_beats)

    def tick(self) -> None:
        """The view's timer while playing: move the playhead; notice the end of the song."""
        position = self.player.position() if self.player is not None else None
        if position is None:  # the end of the song (a loop never ends by itself)
            self.start_beats = 0.0
            self._ended()
        else:
            self._view.show_playhead(position)

    def _ended(self) -> None:
        self._playing = False
        self._view.show_playing(False)
        self._view.show_playhead(self.start_beats if self.start_beats > 0 else None)

    # ---- what plays ---------------------------------------------------------------------

    def document_changed(self) -> None:
        """A new result (or lock) is on screen: new loop ranges; while playing, the new
        result goes on from where the playhead is."""
        self._show_loop()
        if self._playing and self.player is not None:
            position = self.player.position()
            if position is not None:
                self.start_beats = position
            self.play()

    def clip_changed(self) -> None:
        """Another clip: stop, back to its start."""
        if self._playing:
            self.stop()
        self.start_beats = 0.0
        self.loop_index = 0
        self._view.show_playhead(None)
        self._show_loop()

    # ---- loop ---------------------------------------------------------------------------

    def phrases(self) -> list[tuple[str, float, float]]:
        """(name, start, end) of each phrase on screen."""
        view = self.document.view
        if view is None:
            return []
        bar = view.bar_beats if view.bar_beats > 0 else 4.0
        named = []
        for p in view.phrases:
            first = round((p.start_beats - view.first_bar_beats) / bar) + 1
            named.append((f"{p.label} · bars {first}–{first + p.bars - 1}",
                          p.start_beats, p.end_beats))
        return named

    def loop_span(self) -> tuple[float, float] | None:
        if not self.looping:
            return None
        phrases = self.phrases()
        if 0 < self.loop_index <= len(phrases):
            _name, start, end = phrases[self.loop_index - 1]
            return start, end
        doc = self.document
        if doc.view is not None:
            return 0.0, doc.view.length_beats
        return 0.0, doc.clip.length_beats if doc.clip is not None else 0.0

    def set_looping(self, on: bool) -> None:
        self.looping = on
        self._loop_changed()

    def choose_loop(self, index: int) -> None:
        """0: the whole song; i + 1: phrase i (clicking a phrase on the roll also loops it)."""
        self.loop_index = index
        self._loop_changed()

    def loop_phrase(self, phrase: int) -> None:
        self.loop_index = phrase + 1
        self.looping = True
        self._loop_changed()

    def _loop_changed(self) -> None:
        self._show_loop()
        if self._playing:
            self.document_changed()

    def _show_loop(self) -> None:
        phrases = self.phrases()
        if self.loop_index > len(phrases):
            self.loop_index = 0
        choices = [WHOLE_SONG] + [name for name, _s, _e in phrases]
        self._view.show_loop(choices, self.loop_index, self.loop_span())

    # ---- mute / solo --------------------------------------------------------------------

    def mix(self) -> Mix:
        return Mix(frozenset(self.muted), frozenset(self.soloed))

    def set_muted(self, part: str, on: bool) -> None:
        self._toggle(self.muted, part, on)

    def set_soloed(self, part: str, on: bool) -> None:
        self._toggle(self.soloed, part, on)

    def _toggle(self, parts: set[str], part: str, on: bool) -> None:
        if part not in PARTS:
            raise ValueError(f"no part {part!r}: expected one of {', '.join(PARTS)}")
        (parts.add if on else parts.discard)(part)
        if self.player is not None:
            self.player.set_mix(self.mix())

    # ---- output -------------------------------------------------------------------------

    def refresh_outputs(self) -> None:
        """List the outputs again (off the GUI thread; the chooser is about to open)."""
        self._run(self._list_outputs, self._listed, self._list_failed)

    def _listed(self, names: object) -> None:
        assert isinstance(names, list)
        if self.output.name not in names:
            names.append(self.output.name)  # a port that vanished stays chosen until changed
        self._outputs = names
        self._view.show_outputs(names, self.output.name)

    def _list_failed(self, err: Exception) -> None:
        self._view.report_error("Could not list the MIDI outputs", err)

    def choose_output(self, name: str) -> None:
        """Play through `name` from now on (opened off the GUI thread)."""
        if name == self.output.name:
            return

        def opened(target: object) -> None:
            self.output.replace(target, name)
            self._view.show_outputs(self._outputs, name)
            self._view.show_status(f"Audition plays through {name}")

        def failed(err: Exception) -> None:
            self._view.show_outputs(self._outputs, self.output.name)
            self._view.report_error(f"Could not open {name}", err)

        self._run(lambda: self._open_output(name), opened, failed)

    # ---- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop, silence, close the output. Idempotent."""
        if self.player is not None:
            self.player.close()
            self.player = None
        self.output.close()
        self._playing = False
