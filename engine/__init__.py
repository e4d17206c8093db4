"""AccoBridge engine: melody analysis, harmonization and arrangement. No Qt, OSC or ports here.

Public face: `load_melody`, `analyze_melody`, `harmonize`, `arrange`, `write_song` and the
value types.
"""

from __future__ import annotations

from engine.errors import BadInputError, EngineError
from engine.types import (
    STYLES,
    Chord,
    ChordEvent,
    Harmonization,
    HarmonizeOptions,
    Key,
    Melody,
    MelodyAnalysis,
    Meter,
    Note,
    Phrase,
)

__all__ = [
    "STYLES", "BadInputError", "Chord", "ChordEvent", "EngineError", "Harmonization",
    "HarmonizeOptions", "Key", "Melody", "MelodyAnalysis", "Meter", "Note", "Phrase",
    "analyze_melody", "arrange", "harmonize", "load_melody", "write_song",
]


def __getattr__(name: str) -> object:
    # Lazy: `import engine` stays cheap for the bridge and the CLI's --help.
    if name in ("harmonize", "analyze_melody", "arrange"):
        from engine import pipeline

        return getattr(pipeline, name)
    if name in ("load_melody", "write_song"):
        from engine import midi_io

        return midi_io.read_melody if name == "load_melody" else midi_io.write_song
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
