"""Probes and retrieval on frozen texture features (engine.build.probes) and the probe
benchmark's table, on synthetic data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_contrastive import synthetic_segments, write_segments

from benchmarks import texture_probes
from engine.arranger.descriptors import onset_roll, rhythmic_density, voice_number
from engine.build import probes
from engine.build.train_contrastive import main as train_main
from engine.build.train_contrastive import next_windows


def test_linear_probe_reads_a_linearly_coded_level_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 600)
    x = rng.normal(size=(600, 8))
    x[:, 3] += 6.0 * y  # the level is coded along one direction
    assert probes.linear_probe(x[:400], y[:400], x[400:], y[400:]) > 0.9
    noise = rng.normal(size=(600, 8))
    assert probes.linear_probe(noise[:400], y[:400], noise[400:], y[400:]) < 0.4


def test_retrieval_finds_the_true_next_and_ties_score_chance() -> None:
    rng = np.random.default_rng(1)
    n = 400
    z = rng.normal(size=(n, 16))
    anchors = np.arange(0, 200)
    following = anchors + 200
    z[following] = z[anchors] + 0.01 * rng.normal(size=(200, 16))
    pool = np.arange(n)
    assert probes.retrieval_top1(z, z, anchors, following, pool) == 1.0
    constant = np.ones((n, 4))
    assert probes.retrieval_top1(constant, constant, anchors, following, pool) == \
        pytest.approx(0.01)
    unrelated = rng.normal(size=(n, 16))
    assert probes.retrieval_top1(unrelated, unrelated, anchors, following, pool) < 0.05


def test_handcrafted_features_follow_the_descriptors() -> None:
    arrays = synthetic_segments(songs=3, bars=4)
    notes, offsets = arrays["notes"].astype(np.int64), arrays["note_offsets"]
    windows = np.arange(len(arrays["song"]))
    features = probes.handcrafted_features(notes, offsets, windows)
    for w in (0, 4, 8):
        rows = notes[offsets[w] : offsets[w + 1]]
        roll = onset_roll(rows, 32)
        assert features[w, 0] == pytest.approx(rhythmic_density(roll))
        assert features[w, 1] == pytest.approx(voice_number(roll) / 4)
        assert features[w, 2:34].sum() == pytest.approx(1.0)
        assert features[w, 34] == pytest.approx(rows[:, 1].mean() / 127)
        assert features[w, 36] == pytest.approx(rows[:, 1].min() / 127)
        assert features[w, 38] == pytest.approx(len(rows) / 32)


def test_probe_set_levels_are_quintiles_and_anchors_are_held_out() -> None:
    arrays = synthetic_segments(songs=30, bars=10)
    split = arrays["split"].astype(np.int64)
    nxt = next_windows(arrays["song"], arrays["bar"])
    ps = probes.probe_set(arrays["notes"].astype(np.int64), arrays["note_offsets"], split, nxt)
    assert np.all(split[ps.train] == 0) and np.all(split[ps.test] == 2)
    assert np.all(split[ps.anchors] == 2) and np.all(split[ps.following] == 2)
    assert np.all(arrays["bar"][ps.following] == arrays["bar"][ps.anchors] + 2)
    # songs have one texture each, so quintiles are coarse; still several levels are used
    assert len(np.unique(ps.rd_train)) >= 3
    assert set(ps.needed.tolist()) >= set(ps.test.tolist()) | set(ps.pool.tolist())


def test_probe_benchmark_prints_every_row(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    data = write_segments(tmp_path / "seg.npz", songs=16, bars=8)
    weights = tmp_path / "w"
    for variant in ("next", "supervised"):
        assert train_main(["--data", str(data), "--positives", variant, "--device", "cpu",
                           "--epochs", "1", "--batch", "16", "--conv-channels", "4",
                           "--hidden", "32", "--projection", "16", "--no-eval",
                           "--out", str(weights)]) == 0
    capsys.readouterr()
    rc = texture_probes.main(["--data", str(data), "--weights-dir", str(weights),
                              "--device", "cpu", "--probe-train", "100", "--anchors", "20",
                              "--json", str(tmp_path / "r.json")])
    assert rc == 0
    out = capsys.readouterr().out
    for title in ("next-window positives", "supervised", "hand-crafted", "onset profile",
                  "random-init", "majority"):
        assert title in out
    assert "no weights" in out  # augment.pt was not trained


def test_groove_windows_compare_neighbours_within_and_across_phrases() -> None:
    from benchmarks.groove_consistency import window_similarity

    eighths = np.tile([1.0, 0.0], 64)  # 8 bars of 8ths ...
    profile = eighths.copy()
    profile[64:] = np.tile([1.0, 0, 0, 0], 16)  # ... the last 4 bars in quarters
    within, across = window_similarity(profile, [(0, 4), (4, 8)])
    assert within == [pytest.approx(1.0), pytest.approx(1.0)]
    assert across == [pytest.approx(8 / (4 * np.sqrt(8)))]
    # a 1-bar last phrase reads zero-padded bars past the end, and is skipped when silent
    within, across = window_similarity(profile[:80], [(0, 4), (4, 5)])
    assert len(within) == 1 and across == [pytest.approx(4 / (4 * 2))]
