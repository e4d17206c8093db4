"""The bridge-owned tracks in Live and writing a generated part into them.

Ownership: the bridge writes only to tracks named exactly "AccoBridge Chords" and "AccoBridge
Piano" (found by name, created at the end of the set when missing, the user's selection given
back), in the scene of the melody clip; any other track's clips are never touched. Every write
is read back (in the same burst) and compared; a mismatch is error code 4 (DAW_WRITE_FAILED).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from bridge.ableton.errors import AbletonError, WriteVerifyError
from bridge.ableton.live_api import LiveApi
from bridge.ableton.live_requests import write_request
from bridge.ableton.live_values import NoteRead, SlotRef
from bridge.ableton.note_transfer import ALL_NOTES, note_chunks
from bridge.ableton.notes import compare_notes, live_notes
from bridge.ableton.osc_client import Request
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
    each track's index between writes; used from one thread (the Ableton adapter's).

    A write takes two bursts (two ticks) once the tracks are known: the tracks' names and clip
    lengths, checked before anything is written; then, for every part at once, clearing or
    (re)creating the clip, naming it, adding the notes and reading them back."""

    def __init__(self, live_api: LiveApi) -> None:
        self._api = live_api
        self._tracks: dict[str, int] = {}  # part -> bridge track index

    def write_parts(self, parts: Mapping[str, Sequence[ClipNote]], scene: int,
                    length_beats: float) -> tuple[WrittenPart, ...]:
        """Write each part into its bridge-owned track's clip in `scene`, then compare what
        Live holds with what was written (WriteVerifyError on a difference)."""
        wanted = {part: live_notes(notes) for part, notes in parts.items()}
        slots = self._locate(list(wanted), scene)
        requests: list[Request] = []
        chunks: dict[str, int] = {}
        for part, notes in wanted.items():
            track, existing = slots[part]
            # Only this bridge-owned slot is ever cleared, replaced or created.
            if existing is not None and math.isclose(existing, length_beats, abs_tol=1e-4):
                requests.append(write_request("/live/clip/remove/notes", track, scene,
                                              *ALL_NOTES))
            else:
                if existing is not None:
                    requests.append(write_request("/live/clip_slot/delete_clip", track, scene))
                requests.append(write_request("/live/clip_slot/create_clip", track, scene,
                                              float(length_beats)))
            requests.append(write_request("/live/clip/set/name", track, scene,
                                          BRIDGE_TRACK_NAMES[part]))
            added = note_chunks(track, scene, notes)
            requests += [Request("/live/clip/add/notes", args, 2, reply=False) for args in added]
            chunks[part] = len(added)
        reads = [NoteRead(slots[part][0], scene, length_beats, len(notes))
                 for part, notes in wanted.items()]
        _, backs = self._api.burst(requests, reads)
        written = []
        for (part, notes), back in zip(wanted.items(), backs, strict=True):
            track = slots[part][0]
            problem = compare_notes(notes, back)
            if problem is not None:
                raise WriteVerifyError(
                    f"{BRIDGE_TRACK_NAMES[part]} ({SlotRef(track, scene)}): wrote {len(notes)} "
                    f"notes in {chunks[part]} message(s), read back {len(back)}: {problem}")
            written.append(WrittenPart(part, track, scene, len(notes), chunks[part]))
        return tuple(written)

    def _locate(self, parts: Sequence[str], scene: int) -> dict[str, tuple[int, float | None]]:
        """Each part's track and the length of its clip in `scene` (None: empty slot), checked
        in one burst: the remembered tracks while they still have their names, else looked up
        by name (and created when missing)."""
        for _ in range(2):
            if all(part in self._tracks for part in parts):
                requests = []
                for part in parts:
                    requests += [Request("/live/track/get/name", (self._tracks[part],), 1),
                                 Request("/live/track/get/clips/length", (self._tracks[part],), 1)]
                try:
                    replies = self._api.ask(requests)
                except AbletonError:
                    replies = []  # an index is gone: the set changed
                found = {}
                for part, name, lengths in zip(parts, replies[0::2], replies[1::2], strict=True):
                    if name != (BRIDGE_TRACK_NAMES[part],) or lengths is None:
                        break
                    if scene >= len(lengths):
                        raise AbletonError(f"scene {scene + 1} no longer exists; generate again")
                    length = lengths[scene]
                    found[part] = (self._tracks[part],
                                   None if length is None else float(length))
                if len(found) == len(parts):
                    return found
                logger.info("ableton: the bridge tracks moved; looking them up by name")
            self._find_or_create(parts)
        raise AbletonError("the AccoBridge tracks keep changing; generate again")

    def _find_or_create(self, parts: Sequence[str]) -> None:
        """Look the parts' tracks up by name; create the missing ones at the end of the set and
        give the user's selection back (Live selects a new track)."""
        names = self._api.track_names()
        missing = [part for part in parts if BRIDGE_TRACK_NAMES[part] not in names]
        selection = self._api.selection() if missing else None
        for part in parts:
            name = BRIDGE_TRACK_NAMES[part]
            if name in names:
                self._tracks[part] = names.index(name)
                continue
            index = self._api.create_midi_track()
            self._api.set_track_name(index, name)
            logger.info("ableton: created track %d %r", index + 1, name)
            self._tracks[part] = index
        if selection is not None:
            self._api.select(selection.track, selection.scene)
