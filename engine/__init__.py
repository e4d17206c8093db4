"""AccoBridge engine: melody analysis, harmonization and arrangement. No Qt, OSC or ports here.

This is the engine's front door: `ui` and `bridge` import only names listed here (a test
walks their imports). The value types and errors are plain imports; the working functions
load their modules on first use, so `import engine` stays cheap for the bridge and the CLI's
`--help` and never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import BadInputError, EngineError, LibraryError, OptionError
from engine.types import (
    LEVELS,
    MODEL_CHOICES,
    STYLES,
    SUPPORTED_METERS,
    TEXTURE_LIBRARIES,
    VARIANTS,
    VOICING_REGISTERS,
    Arrangement,
    ArrangeOptions,
    Chord,
    ChordEvent,
    Harmonization,
    HarmonizeOptions,
    Key,
    Melody,
    MelodyAnalysis,
    Meter,
    ModelChoice,
    Note,
    PedalEvent,
    Phrase,
    PhraseHarmony,
    ProgressionChoice,
    Style,
    TextureChoice,
    TextureLibraryName,
    Variant,
    Voicing,
    VoicingRegister,
)

if TYPE_CHECKING:  # the real signatures for type checkers; at run time `__getattr__` loads them
    from engine.analysis.key import parse_key
    from engine.atomic_file import atomic_output
    from engine.build.chord_templates import main as rebuild_chord_templates
    from engine.build.pop909_import import main as import_pop909
    from engine.chart import arrangement_chart, harmonization_chart
    from engine.chord_edit import (
        ChordSuggestion,
        parse_chord_symbol,
        replace_chord,
        suggest_chords,
    )
    from engine.chord_input import read_chord_events
    from engine.demo import demo_melody
    from engine.edits import (
        arrange_harmonization,
        choose_alternative,
        choose_texture,
        regenerate,
        regenerate_phrase,
        texture_candidates,
    )
    from engine.grid import melody_end_16th
    from engine.melody_source import melody_from_notes
    from engine.midi_io import read_melody as load_melody
    from engine.midi_io import write_song
    from engine.models.transition import main as embed_textures
    from engine.pipeline import (
        analyze_melody,
        arrange,
        harmonize,
        prepare,
        require_one_meter,
    )

# name → (module, attribute): loaded on first use
_LAZY: dict[str, tuple[str, str]] = {
    "analyze_melody": ("engine.pipeline", "analyze_melody"),
    "harmonize": ("engine.pipeline", "harmonize"),
    "arrange": ("engine.pipeline", "arrange"),
    "prepare": ("engine.pipeline", "prepare"),
    "require_one_meter": ("engine.pipeline", "require_one_meter"),
    "load_melody": ("engine.midi_io", "read_melody"),
    "melody_from_notes": ("engine.melody_source", "melody_from_notes"),
    "write_song": ("engine.midi_io", "write_song"),
    "parse_key": ("engine.analysis.key", "parse_key"),
    "harmonization_chart": ("engine.chart", "harmonization_chart"),
    "arrangement_chart": ("engine.chart", "arrangement_chart"),
    "read_chord_events": ("engine.chord_input", "read_chord_events"),
    "melody_end_16th": ("engine.grid", "melody_end_16th"),
    "demo_melody": ("engine.demo", "demo_melody"),
    "atomic_output": ("engine.atomic_file", "atomic_output"),
    "choose_alternative": ("engine.edits", "choose_alternative"),
    "regenerate": ("engine.edits", "regenerate"),
    "regenerate_phrase": ("engine.edits", "regenerate_phrase"),
    "arrange_harmonization": ("engine.edits", "arrange_harmonization"),
    "texture_candidates": ("engine.edits", "texture_candidates"),
    "choose_texture": ("engine.edits", "choose_texture"),
    "parse_chord_symbol": ("engine.chord_edit", "parse_chord_symbol"),
    "suggest_chords": ("engine.chord_edit", "suggest_chords"),
    "replace_chord": ("engine.chord_edit", "replace_chord"),
    "ChordSuggestion": ("engine.chord_edit", "ChordSuggestion"),
    # library maintenance (the CLI's `library` commands; argv lists like their own mains):
    # offline builders, loaded only when asked for
    "rebuild_chord_templates": ("engine.build.chord_templates", "main"),
    "import_pop909": ("engine.build.pop909_import", "main"),
    "embed_textures": ("engine.models.transition", "main"),
}

__all__ = [
    "LEVELS", "MODEL_CHOICES", "STYLES", "SUPPORTED_METERS", "TEXTURE_LIBRARIES", "VARIANTS",
    "VOICING_REGISTERS", "ArrangeOptions", "Arrangement", "BadInputError", "Chord", "ChordEvent",
    "ChordSuggestion", "EngineError", "Harmonization", "HarmonizeOptions", "Key", "LibraryError",
    "Melody", "MelodyAnalysis", "Meter", "ModelChoice", "Note", "OptionError", "PedalEvent",
    "Phrase", "PhraseHarmony", "ProgressionChoice", "Style", "TextureChoice", "TextureLibraryName",
    "Variant", "Voicing", "VoicingRegister", "analyze_melody", "arrange", "arrange_harmonization",
    "arrangement_chart", "atomic_output", "choose_alternative", "choose_texture", "demo_melody",
    "embed_textures", "harmonization_chart", "harmonize", "import_pop909", "load_melody",
    "melody_end_16th", "melody_from_notes", "parse_chord_symbol", "parse_key", "prepare",
    "read_chord_events", "rebuild_chord_templates", "regenerate", "regenerate_phrase",
    "replace_chord", "require_one_meter", "suggest_chords", "texture_candidates", "write_song",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from importlib import import_module

        module, attribute = _LAZY[name]
        value = getattr(import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
