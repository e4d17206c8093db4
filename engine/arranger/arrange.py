"""Arranging a harmonized melody (AccoMontage §3.3): choose the texture source, select and
render a texture per phrase, then keep the piano clear of the melody and shape it."""

from __future__ import annotations

from collections.abc import Mapping

from engine.arranger.authored import arrange_with_textures
from engine.arranger.donors import DONOR_BAR_16TH
from engine.arranger.placement import (
    RenderedNote,
    chord_at,
    end_on_final_chord,
    from_first_downbeat,
    held_pedal,
    keep_clear_of_melody,
    melody_contour,
    one_key_one_note,
    pedal_events,
    piano_velocity,
    shape_velocities,
    to_notes,
    under_the_melody,
)
from engine.arranger.thirds import sound_thirds
from engine.errors import BadInputError, LibraryError, OptionError
from engine.grid import melody_end_16th, melody_grid
from engine.types import (
    LEVELS,
    Arrangement,
    ArrangeOptions,
    Harmonization,
    MelodyAnalysis,
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
    velocities = [n.velocity for n in melody.notes]
    for phrase, notes, wants_pedal in zip(phrases, rendered, pedalled, strict=True):
        start = analysis.bar_start_16th(phrase.start_bar)
        clear = keep_clear_of_melody(notes, pitch, chords)
        # scaled phrase by phrase, so a locked phrase keeps its notes when others change
        contour = melody_contour(pitch, start, phrase.bars * bar16)
        piano.extend(under_the_melody(
            shape_velocities(clear, start, phrase.bars * bar16, contour=contour), velocities))
        if wants_pedal:
            spans.append((start, start + phrase.bars * bar16))
    ticks = melody.ticks_per_16th
    # Beginnings and endings (docs/musicianship.md): nothing before phrase 1's first bar line;
    # the figure and its pedal stop at the melody's last onset, where the final chord is held.
    piano = from_first_downbeat(piano, analysis.bar_start_16th(0))
    last = int(onset.nonzero()[0][-1]) if onset.any() else length
    pedal = pedal_events(chords, [(s, min(e, last)) for s, e in spans if s < last], ticks)
    if last < length:
        hold = _final_hold_16th(analysis, last)
        at = chord_at(chords, length)[last]
        final = chords[at].chord if at >= 0 else None
        piano = end_on_final_chord(
            piano, last, hold, final, int(pitch[last]), piano_velocity(velocities)
        )
        if final is not None:
            pedal += held_pedal(last, hold, ticks)
    piano = one_key_one_note(sound_thirds(piano, chords, pitch, analysis.meter.beat_16th))
    return Arrangement(
        harmonization=harmonization,
        textures=tuple(choices),
        piano_notes=tuple(sorted(to_notes(piano, ticks), key=lambda n: (n.start_tick, n.pitch))),
        pedal=tuple(pedal),
    )


def _final_hold_16th(analysis: MelodyAnalysis, last_onset_16th: int) -> int:
    """Where the final chord, struck at the melody's last onset, is let go: the end of that bar,
    and at least a beat later."""
    section = analysis.section_at(last_onset_16th)
    bar = section.meter.sixteenths_per_bar
    bar_end = section.start_16th + ((last_onset_16th - section.start_16th) // bar + 1) * bar
    return max(bar_end, last_onset_16th + section.meter.beat_16th)
