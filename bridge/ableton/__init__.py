"""Ableton Live through AbletonOSC: `live_api` speaks AbletonOSC's OSC dialect, `adapter`
reads the selected Session clip and writes the generated parts into bridge-owned tracks."""

from bridge.ableton.adapter import BRIDGE_TRACK_NAMES, SOURCE, AbletonAdapter, ClipReadError
from bridge.ableton.live_api import AbletonError, AbletonPortError, LiveApi, LiveNote

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
