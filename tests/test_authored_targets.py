"""The authored library's texture targets answer the song (engine/arranger/authored.py)."""

from __future__ import annotations

import numpy as np

from engine.arranger.authored import melody_targets, register_target
from engine.types import Phrase

BAR = 16


def onsets(every: int, bars: int = 8) -> np.ndarray:
    grid = np.zeros(bars * BAR, dtype=bool)
    grid[::every] = True
    return grid


def test_density_answers_how_many_notes_the_melody_sings_per_second() -> None:
    phrase = (Phrase("A", 0, 8),)
    # half notes at 70 BPM: 0.6 notes a second → a moving accompaniment (level 3)
    assert melody_targets(onsets(8), phrase, 0, BAR, tempo_bpm=70) == [3]
    # quarter notes at 100 BPM: 1.7 a second → the middle (2)
    assert melody_targets(onsets(4), phrase, 0, BAR, tempo_bpm=100) == [2]
    # a reel's 8ths at 120 BPM: 4 a second → a light texture (1)
    assert melody_targets(onsets(2), phrase, 0, BAR, tempo_bpm=120) == [1]


def test_a_busier_phrase_gets_a_lighter_texture_than_the_song() -> None:
    grid = np.concatenate([onsets(4, 4), onsets(2, 4)])  # quarters, then 8ths
    phrases = (Phrase("A", 0, 4), Phrase("B", 4, 4))
    calm, busy = melody_targets(grid, phrases, 0, BAR, tempo_bpm=90)
    assert calm == busy + 2


def test_polyphony_answers_the_melodys_register() -> None:
    assert register_target(np.array([60, 62, 64, -1])) == 1
    assert register_target(np.array([67, 69, 71])) == 2
    assert register_target(np.array([74, 76, 79])) == 3
    assert register_target(np.array([-1, -1])) == 2
