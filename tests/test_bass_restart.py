"""An alternating bass restarts on the new chord's bass after a change (engine/arranger/
texture_render.py `_bass_restart`, docs/musicianship.md): the stride texture's root … fifth
figure."""

from __future__ import annotations

from engine.arranger.texture_format import load_default_textures
from engine.arranger.texture_render import render_texture
from engine.types import Chord, ChordEvent, Meter


def stride():
    return next(t for t in load_default_textures() if t.name == "stride_basic")


def bass_at(notes, step: int) -> int:
    return min(p for s, _, p, _ in notes if s == step)


def test_the_fifth_comes_back_while_the_chord_stays() -> None:
    c = [ChordEvent(Chord(0, "maj", 0), 0, 16)]
    notes = render_texture(stride(), c, 0, 16, Meter(4, 4))
    assert bass_at(notes, 0) % 12 == 0 and bass_at(notes, 8) % 12 == 7  # C … G


def test_after_a_mid_bar_change_the_bass_restarts_on_the_new_root() -> None:
    c_then_f = [ChordEvent(Chord(0, "maj", 0), 0, 8), ChordEvent(Chord(5, "maj", 5), 8, 8)]
    notes = render_texture(stride(), c_then_f, 0, 16, Meter(4, 4))
    assert bass_at(notes, 0) % 12 == 0 and bass_at(notes, 8) % 12 == 5  # C … F, not F's C
    slash = [ChordEvent(Chord(0, "maj", 0), 0, 8), ChordEvent(Chord(0, "maj", 4), 8, 8)]
    assert bass_at(render_texture(stride(), slash, 0, 16, Meter(4, 4)), 8) % 12 == 4  # C/E
