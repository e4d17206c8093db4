"""The bridge-owned tracks in Live and writing a generated part into them.

Ownership: the bridge writes only to tracks named exactly "AccoBridge Chords" and "AccoBridge
Piano" (found by name, created at the end of the set when missing), in the scene of the melody
clip; any other track's clips are never touched. Every write is read back and compared; a
mismatch is error code 4 (DAW_WRITE_FAILED).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from bridge.ableton.errors import AbletonError, WriteVerifyError
from bridge.ableton.live_api import LiveApi, SlotRef
from bridge.ableton.notes import compare_notes, live_notes
from bridge.types import ClipNote

logger = logging.getLogger(__name__)

BRIDGE_TRACK_NAMES: Mapping[str, str] = MappingProxyType({
    "chords": "AccoBridge Chords",
    "piano": "AccoBridge Piano",
})


@dataclass(frozen=True)
class WrittenPart:
    part: str
    track: int  # 0-based index of the bridge-owned track
    scene: int
    notes: int
    messages: int  # add/notes messages it took




class BridgeTracks:
    """Finds (or creates) the bridge-owned tracks and writes parts into their clips. Remembers
    each track's index between writes; used from one thread (the Ableton adapter's)."""

    def __init__(self, live_api: LiveApi) -> None:
        self._api = live_api
        self._tracks: dict[str, int] = {}  # part -> bridge track index

    def write_part(self, part: str, notes: Sequence[ClipNote], scene: int,
                    length_beats: float) -> WrittenPart:
        name = BRIDGE_TRACK_NAMES[part]
        wanted = live_notes(notes)
        track = self._bridge_track(part)
        slot = SlotRef(track, scene)
        lengths = self._api.clip_lengths(track)
        if scene >= len(lengths):
            raise AbletonError(f"scene {scene + 1} no longer exists; generate again")
        existing = lengths[scene]
        # Only this bridge-owned slot is ever cleared, replaced or created.
        if existing is not None and math.isclose(existing, length_beats, abs_tol=1e-4):
            self._api.remove_notes(track, scene)
        else:
            if existing is not None:
                self._api.delete_clip(track, scene)
            self._api.create_clip(track, scene, length_beats)
        self._api.set_clip_name(track, scene, name)
        messages = self._api.add_notes(track, scene, wanted) if wanted else 0
        back = self._api.clip_notes(track, scene, span_beats=length_beats,
                                    expected=len(wanted))
        problem = compare_notes(wanted, back)
        if problem is not None:
            raise WriteVerifyError(f"{name} ({slot}): wrote {len(wanted)} notes in {messages} "
                                   f"message(s), read back {len(back)}: {problem}")
        return WrittenPart(part, track, scene, len(wanted), messages)

    def _bridge_track(self, part: str) -> int:
        """The index of the track named BRIDGE_TRACK_NAMES[part]: the remembered one while it
        still has that name, else the first track with it, else a new MIDI track."""
        name = BRIDGE_TRACK_NAMES[part]
        cached = self._tracks.get(part)
        if cached is not None:
            try:
                if self._api.track_name(cached) == name:
                    return cached
            except AbletonError:
                pass  # that index is gone: the set changed
            logger.info("ableton: %r moved; looking it up by name", name)
        names = self._api.track_names()
        if name in names:
            index = names.index(name)
        else:
            index = self._api.create_midi_track()
            self._api.set_track_name(index, name)
            logger.info("ableton: created track %d %r", index + 1, name)
        self._tracks[part] = index
        return index
