"""Arranging a harmonized melody (AccoMontage §3.3): choose the texture source, select and
render a texture per phrase, then keep the piano clear of the melody and shape it."""

from __future__ import annotations

from collections.abc import Mapping

from engine.arranger.authored import arrange_with_textures
from engine.arranger.donors import DONOR_BAR_16TH
from engine.arranger.placement import (
    RenderedNote,
    keep_clear_of_melody,
    pedal_events,
    shape_velocities,
    to_notes,
)
from engine.errors import BadInputError, LibraryError, OptionError
from engine.grid import melody_end_16th, melody_grid
from engine.types import (
    LEVELS,
    Arrangement,
    ArrangeOptions,
    Harmonization,
    Meter,
    TextureChoice,
    TextureLibraryName,
)

__all__ = ["arrange_piano"]


def _check_level(name: str, value: int | None) -> None:
    if value is not None and not 0 <= value < LEVELS:
        raise OptionError(f"{name} level must be 0-{LEVELS - 1}, got {value}")


def _library_name(
    requested: TextureLibraryName | None, donors_available: bool, meter: Meter
) -> TextureLibraryName:
    """The user's choice; unasked, POP909 donors when imported and the meter is theirs (4/4)."""
    if requested == "pop909" and not donors_available:
        raise LibraryError(
            "the POP909 texture library is not imported; run "
            "`accobridge library import-pop909 PATH` or use --library default"
        )
    if requested is None:
        usable = donors_available and meter.sixteenths_per_bar == DONOR_BAR_16TH
        return "pop909" if usable else "default"
    return requested


def _check_locks(
    library: TextureLibraryName, n_phrases: int, *locks: Mapping[int, TextureChoice]
) -> None:
    for lock in locks:
        for i, choice in lock.items():
            if not 0 <= i < n_phrases:
                raise BadInputError(
                    f"cannot keep the texture of phrase {i + 1}: the melody has {n_phrases} phrases"
                )
            if choice.library != library:
                raise BadInputError(
                    f"phrase {i + 1}'s texture is from the {choice.library} library but this "
                    f"arrangement uses the {library} library; unlock it or choose {choice.library}"
                )


def arrange_piano(
    harmonization: Harmonization, options: ArrangeOptions, donors: object | None = None,
    locked: Mapping[int, TextureChoice] | None = None,
    changing: Mapping[int, TextureChoice] | None = None,
) -> Arrangement:
    """Piano part for a harmonized melody (AccoMontage §3.3). `locked` phrases (by index) keep
    their texture choice; each `changing` phrase gets a texture other than the one given."""
    _check_level("density", options.density)
    _check_level("polyphony", options.polyphony)
    analysis, melody = harmonization.analysis, harmonization.melody
    library = _library_name(options.library, donors is not None, analysis.meter)
    locked, changing = locked or {}, changing or {}
    _check_locks(library, len(analysis.phrases), locked, changing)
    bar16 = analysis.meter.sixteenths_per_bar
    length = max(melody_end_16th(melody), analysis.bar_start_16th(analysis.total_bars))
    pitch, onset = melody_grid(melody, length)
    chords = harmonization.chords
    phrases = analysis.phrases
    if library == "pop909":
        from engine.arranger.donors import arrange_with_donors
        from engine.arranger.learned import reharmonizer_for, transition_for

        rendered, choices, pedalled = arrange_with_donors(
            donors, harmonization, options, pitch, onset,
            transition=transition_for(options, donors),
            reharmonizer=reharmonizer_for(options), locked=locked, changing=changing,
        )
    else:
        rendered, choices, pedalled = arrange_with_textures(
            harmonization, options, pitch, onset, locked, changing
        )
    piano: list[RenderedNote] = []
    spans = []
    for phrase, notes, wants_pedal in zip(phrases, rendered, pedalled, strict=True):
        start = analysis.bar_start_16th(phrase.start_bar)
        clear = keep_clear_of_melody(notes, pitch, chords)
        piano.extend(shape_velocities(clear, start, phrase.bars * bar16))
        if wants_pedal:
            spans.append((start, start + phrase.bars * bar16))
    ticks = melody.ticks_per_16th
    return Arrangement(
        harmonization=harmonization,
        textures=tuple(choices),
        piano_notes=tuple(sorted(to_notes(piano, ticks), key=lambda n: (n.start_tick, n.pitch))),
        pedal=tuple(pedal_events(chords, spans, ticks)),
    )
