"""Cheap checks of the arranger benchmarks: they import, and a tiny piece goes through the
metric bundle and the report. No benchmark figure is asserted."""

from __future__ import annotations

import importlib
import math

import numpy as np

from benchmarks import arrange_quality as aq
from benchmarks.eval_corpus import POP909, EvalItem, close_voicing
from engine.metrics.accompaniment import NO_CHORD, AccompanimentMetrics
from engine.types import Chord, ChordEvent, Melody, Meter, Note

TICKS_16TH = 120


def _tiny_item() -> EvalItem:
    """Two 4/4 bars of melody (C5 then D5 half notes, bar 2 an E5 whole note), C then G chords."""
    melody = Melody(
        notes=(Note(72, 0, 8 * TICKS_16TH), Note(74, 8 * TICKS_16TH, 8 * TICKS_16TH),
               Note(76, 16 * TICKS_16TH, 16 * TICKS_16TH)),
        ticks_per_beat=4 * TICKS_16TH,
        meter=Meter(4, 4),
    )
    human = close_voicing((0, 4, 7), 0, 16 * TICKS_16TH) + close_voicing(
        (7, 11, 2), 16 * TICKS_16TH, 16 * TICKS_16TH
    )
    return EvalItem(POP909, "tiny", melody, tuple(human), key=None,  # type: ignore[arg-type]
                    phrases="A1B1", pickup_16th=0, downbeat_16th=0, end_16th=32)


def _tiny_piano() -> tuple[np.ndarray, list[ChordEvent]]:
    rows = [(beat, pitch, 4, 70) for beat in (0, 4, 8, 12) for pitch in (48, 52, 55)]
    rows += [(16 + beat, pitch, 4, 70) for beat in (0, 8) for pitch in (43, 47, 50)]
    chords = [ChordEvent(Chord(0, "maj", 0), 0, 16), ChordEvent(Chord(7, "maj", 7), 16, 16)]
    return np.array(rows), chords


def test_benchmark_modules_import() -> None:
    for name in ("benchmarks.arrange_quality", "benchmarks.arrange_speed"):
        module = importlib.import_module(name)
        assert callable(module.main)


def test_requested_levels_cycle_covers_every_pair() -> None:
    pairs = {aq.requested_levels(i) for i in range(25)}
    assert len(pairs) == 25


def test_phrase_bars_from_a_phrase_string() -> None:
    assert aq.phrase_bars("A8B4a2") == [(0, 8), (8, 12), (12, 14)]


def test_arranger_targets_per_16th() -> None:
    _, chords = _tiny_piano()
    tones, roots = aq.arranger_targets(chords, 40)
    assert tones.shape == (40, 12) and roots.shape == (40,)
    assert roots[0] == 0 and roots[16] == 7 and roots[39] == NO_CHORD


def test_tiny_piece_goes_through_the_bundle_and_the_report() -> None:
    item = _tiny_item()
    rows, chords = _tiny_piano()
    tones, roots = aq.arranger_targets(chords, item.end_16th)
    metrics = aq.judge(item, rows, tones, roots)
    assert isinstance(metrics, AccompanimentMetrics)
    assert len(metrics.density_levels) == 2
    # short target arrays are padded: no tones, no roots → nothing to judge them on
    human = aq.judge(item, rows, tones[:0], roots[:0])
    assert math.isnan(human.chord_tone_ratio) and math.isnan(human.chord_recognizability)
    hits = aq.level_hits(metrics, metrics.density_levels, [0, 0])
    assert hits.phrases == 2 and hits.density_hit == 2

    result = aq.PieceResult(
        item.name, item.dataset, item.meter.name, metrics={aq.DEFAULT_LIB: metrics},
        levels={aq.DEFAULT_LIB: hits}, failures={aq.HUMAN_PIANO: "OSError: no data"},
        seconds_by_system={aq.DEFAULT_LIB: 0.01},
    )
    table = aq.summarise([result])
    report = aq.format_report(table, [result], ["a note"], 0.5)
    assert aq.TITLES[aq.DEFAULT_LIB] in report and "failures (1)" in report
    document = aq.report_json(table, [result], [], 0.5)
    assert document["pieces"][0]["name"] == item.name
