"""The file presenter: melodies in (open, drop, a clip typed in by a tool), the arrangement out
(save .mid, drag a .mid) and the last session back from the store. Files are read and written on
the I/O thread, never on the GUI thread."""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from bridge.store import StoredSession
from bridge.types import Clip
from engine import Melody
from ui.engine_link import clip_from_melody
from ui.panel.background import RunInBackground
from ui.panel.document import PanelDocument
from ui.panel.jobs import PANEL_SOURCE
from ui.panel.link import EngineLink
from ui.panel.presenters import StatusView
from ui.panel.presenters.generation import GenerationPresenter
from ui.panel.presenters.settings import SettingsPresenter

logger = logging.getLogger("accobridge.panel")

MIDI_SUFFIXES = (".mid", ".midi", ".musicxml", ".mxl", ".xml")
NOT_GENERATED = "not generated"  # a stored clip whose job never finished


class FileView(StatusView, Protocol):
    def show_clip(self, placeholder: str = ...) -> None:
        """The document's new clip on screen, `placeholder` where the phrases will be."""

    def show_restored(self) -> None:
        """The document's restored result on screen."""

    def offer_restore(self, text: str) -> None: ...

    def show_notice(self, text: str) -> None:
        """Something about the open clip that is not an error (e.g. notes the melody lost)."""

    def file_saved(self, path: Path) -> None: ...


def melody_file(paths: Iterable[str]) -> Path | None:
    """The first melody file among dropped local paths."""
    for path in paths:
        if path.lower().endswith(MIDI_SUFFIXES):
            return Path(path)
    return None


class FilePresenter:
    def __init__(self, document: PanelDocument, link: EngineLink, settings: SettingsPresenter,
                 generation: GenerationPresenter, run: RunInBackground, view: FileView) -> None:
        self.document = document
        self.link = link
        self.settings = settings
        self.generation = generation
        self._run = run
        self._view = view
        self._restorable: StoredSession | None = None
        self._drag_dir = tempfile.TemporaryDirectory(prefix="accobridge-panel-")

    # ---- in ------------------------------------------------------------------------------

    def start_folder(self) -> str:
        """Where the open and save dialogs start: the last export's folder."""
        return getattr(self.settings.settings, "last_export_dir", None) or str(Path.home())

    def load_file(self, path: Path) -> None:
        """Read a melody file on the I/O thread, then generate for it. What the reader changed
        to make the file usable (the engine's MelodyWarning: chords in the melody track
        reduced to the top line) is said in the panel, not only on stderr."""
        def read() -> tuple[Melody, list[str]]:
            # mido's import, too, off the GUI thread
            from engine import load_melody, require_one_meter

            # catch_warnings swaps process-wide state: a warning another thread raises
            # meanwhile may be listed here too or go unseen (at worst one notice line)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)
                melody = load_melody(path)
            require_one_meter(melody, "the panel")  # its clip and roll carry one meter
            return melody, [str(w.message) for w in caught
                            if issubclass(w.category, UserWarning)]

        def opened(read_back: tuple[Melody, list[str]]) -> None:
            melody, notes = read_back
            self.load_melody(melody, path.stem)
            for note in notes:
                logger.warning("%s: %s", path.name, note)
            if notes:
                self._view.show_notice(f"{path.name}: " + "; ".join(dict.fromkeys(notes)))

        self._view.show_status(f"Reading {path.name}…")
        self._run(read, opened,
                  lambda err: self._view.report_error(f"Could not open {path.name}", err))

    def load_melody(self, melody: Melody, name: str) -> None:
        """Make `melody` the panel's clip (saved as the panel's last clip) and generate."""
        logger.info("loaded “%s”: %d notes, %s", name, len(melody.notes), melody.meter.name)
        self._open(clip_from_melody(melody, PANEL_SOURCE, name), melody, generate=True)

    def load_clip(self, clip: Clip, generate: bool = True) -> None:
        """Make a bridge clip (beats) the panel's clip, e.g. one typed in by a test or a tool."""
        self._open(replace(clip, source=PANEL_SOURCE), None, generate)

    def _open(self, clip: Clip, melody: Melody | None, generate: bool) -> None:
        self.document.open(PANEL_SOURCE, clip, melody)
        self._view.show_clip()
        if generate:
            self.generation.generate()

    # ---- out -----------------------------------------------------------------------------

    def save_name(self) -> str:
        clip = self.document.clip
        return (clip.name if clip else "accobridge") + "-accobridge.mid"

    def write_midi(self, path: Path) -> None:
        """Type 1, tracks Melody/Chords/Piano (engine.midi_io.write_song, atomic)."""
        from engine import write_song

        song = self.document.song_tracks()
        if song is None:
            raise ValueError("nothing to save yet: open a clip and generate first")
        melody, tracks, controls = song
        write_song(path, melody, tracks, controls=controls)

    def save_midi(self, path: Path) -> None:
        """Write the file on the I/O thread; the view hears `file_saved(path)` when it is there."""
        def done(_value: object) -> None:
            self._view.show_status(f"Saved {path}")
            self.settings.save(last_export_dir=str(path.parent))
            self._view.file_saved(path)

        self._run(lambda: self.write_midi(path), done,
                  lambda err: self._view.report_error(f"Could not save {path.name}", err))

    def drag_file(self) -> Path | None:
        """A temporary .mid of what is shown, for dragging out (written now, ~ms)."""
        if self.document.song_tracks() is None:
            self._view.report_error("Nothing to drag yet: open a clip and generate first", None)
            return None
        path = Path(self._drag_dir.name) / self.save_name().replace("/", "_")
        try:
            self.write_midi(path)
        except (OSError, ValueError) as err:
            self._view.report_error("Could not write the MIDI file to drag", err)
            return None
        return path

    def close(self) -> None:
        self._drag_dir.cleanup()

    # ---- the last session ----------------------------------------------------------------

    def look_for_last_session(self) -> None:
        """Find the newest stored request on the I/O thread (a file that is unreadable, too
        large or not a regular file is skipped with a warning, never waited on), then offer it
        unless a clip is open by then."""
        self._run(self.link.store.newest, self._offer,
                  lambda err: logger.warning("last session not read: %s", err))

    def _offer(self, stored: StoredSession | None) -> None:
        if stored is None or self.document.clip is not None:
            return  # nothing stored, or the user has moved on already
        self._restorable = stored
        clip = stored.clip
        what = ("with its chords and piano" if stored.result is not None
                else f"— {NOT_GENERATED}: press Generate after restoring")
        self._view.offer_restore(f"Last session: “{clip.name}” from {stored.source}, "
                                 f"{len(clip.notes)} notes {what}. Restore it?")

    def restore_last(self) -> None:
        """Show the stored clip and, only when it was generated, its own result (no engine run;
        Generate makes them editable)."""
        stored = self._restorable
        if stored is None:
            return
        self.document.open(stored.source, stored.clip, None)
        if stored.result is None:
            self._view.show_clip(f"Restored clip, {NOT_GENERATED}: press Generate.")
        else:
            self._view.show_clip()
            self.document.restored = stored.result
            self._view.show_restored()
        logger.info("restored the last %s from %s", "request" if stored.result else "clip",
                    stored.source)
