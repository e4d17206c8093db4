"""Ableton Live through AbletonOSC: `osc_client` is the request/reply transport, `live_api`
Live's typed calls on it (with `live_values`, `live_requests` and `note_transfer`), `notes`
converts notes both ways, `tracks` writes the bridge-owned tracks, and `adapter` reads the
selected Session clip, runs it through the session and writes the result (live mode included);
`errors` holds what can go wrong."""

from bridge.ableton.adapter import AbletonAdapter
from bridge.ableton.errors import AbletonError, AbletonPortError, ClipReadError
from bridge.ableton.live_api import LiveApi
from bridge.ableton.live_values import LiveNote
from bridge.ableton.notes import SOURCE
from bridge.ableton.tracks import BRIDGE_TRACK_NAMES

__all__ = [
    "BRIDGE_TRACK_NAMES",
    "SOURCE",
    "AbletonAdapter",
    "AbletonError",
    "AbletonPortError",
    "ClipReadError",
    "LiveApi",
    "LiveNote",
]
