"""What goes wrong with MIDI ports: one that cannot be opened, or was lost."""

from __future__ import annotations

from bridge.errors import BridgeError


class MidiPortError(BridgeError, OSError):
    """A MIDI port could not be opened or was lost."""
