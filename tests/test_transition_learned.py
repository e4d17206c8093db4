"""The learned donor transition (engine.models.transition): shape and range of its scores, its
memory and disk caches, and, on the shipped weights, that a donor's own next phrase scores
above random donors."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.errors import LibraryError
from engine.library.datasets import shared_data_dir
from engine.models import transition
from engine.models.contrastive import EncoderConfig, TextureEncoder, save_encoder

DATA = shared_data_dir()


def synthetic_donors(n: int = 9, seed: int = 0) -> SimpleNamespace:
    """A donor library's note table: n phrases of 1, 2, 4 or 8 bars, random notes."""
    rng = np.random.default_rng(seed)
    bars = rng.choice([1, 2, 4, 8], size=n)
    notes, offsets = [], [0]
    for b in bars:
        count = int(rng.integers(4, 30))
        rows = np.stack([rng.integers(0, 16 * b, count), rng.integers(36, 90, count),
                         rng.integers(1, 8, count), rng.integers(40, 110, count)], axis=1)
        notes.append(rows)
        offsets.append(offsets[-1] + count)
    return SimpleNamespace(notes=np.concatenate(notes).astype(np.int32),
                           note_offsets=np.array(offsets), bars=bars,
                           provenance={"source": "synthetic", "seed": seed})


@pytest.fixture
def tiny_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ACCOBRIDGE_DATA_DIR", str(tmp_path / "userdata"))
    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    save_encoder(TextureEncoder(EncoderConfig(4, 32, 16)), path, {"variant": "next"})
    return path


def test_scores_are_a_before_by_after_matrix_in_0_1(tiny_weights: Path) -> None:
    donors = synthetic_donors()
    score = transition.learned_transition(donors, tiny_weights)
    matrix = score(np.array([0, 3, 5]), np.array([1, 2, 4, 6, 8]))
    assert matrix.shape == (3, 5)
    assert np.all((matrix >= 0) & (matrix <= 1))
    # the cosine of a window with itself: a 1- or 2-bar donor's tail is its head
    short = int(np.flatnonzero(donors.bars <= 2)[0])
    assert score(np.array([short]), np.array([short]))[0, 0] == pytest.approx(1.0, abs=1e-3)


def test_supervised_weights_use_their_two_heads(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCOBRIDGE_DATA_DIR", str(tmp_path))
    torch.manual_seed(0)
    path = tmp_path / "sup.pt"
    save_encoder(TextureEncoder(EncoderConfig(4, 32, 16)), path, {"variant": "supervised"})
    donors = synthetic_donors()
    score = transition.learned_transition(donors, path)
    short = int(np.flatnonzero(donors.bars <= 2)[0])
    # before- and after-heads differ, so a window does not score 1 against itself
    assert score(np.array([short]), np.array([short]))[0, 0] < 0.99


def test_embeddings_are_cached_in_memory_and_on_disk(
    tiny_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    donors = synthetic_donors()
    first = transition.learned_transition(donors, tiny_weights)
    assert transition.learned_transition(donors, tiny_weights) is first
    cached = transition.cache_path(transition.weights_version(tiny_weights))
    assert cached.exists()
    transition._SCORERS.clear()

    def refuse(*_: object) -> None:
        raise AssertionError("embedded again despite the disk cache")

    monkeypatch.setattr(transition, "edge_embeddings", refuse)
    again = transition.learned_transition(donors, tiny_weights)
    pairs = (np.arange(9), np.arange(9))
    np.testing.assert_allclose(again(*pairs), first(*pairs), atol=2e-3)  # fp16 on disk
    # another library under the same weights is embedded anew, not read from the stale cache
    with pytest.raises(AssertionError, match="embedded again"):
        transition.learned_transition(synthetic_donors(seed=1), tiny_weights)


def test_missing_weights_raise_our_error(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="missing"):
        transition.learned_transition(synthetic_donors(), tmp_path / "none.pt")


# ------------------------------------------------------------------ shipped weights, real data


@pytest.fixture(scope="module")
def small_library(tmp_path_factory: pytest.TempPathFactory) -> object:
    if not transition.WEIGHTS.exists():
        pytest.skip("no shipped texture embedding weights (engine/data/models)")
    if DATA is None:
        pytest.skip("POP909 is not available (../shared/data or $ACCOBRIDGE_SHARED_DATA)")
    from engine.build.pop909_import import import_pop909
    from engine.library.pop909_textures import load_donor_library

    path = tmp_path_factory.mktemp("userdata") / "pop909_donors.npz"
    import_pop909(DATA / "pop909", out_path=path, limit=25)
    return load_donor_library(path)


def test_shipped_weights_prefer_a_donors_own_next_phrase(
    small_library: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCOBRIDGE_DATA_DIR", str(tmp_path))
    donors: object = small_library
    score = transition.learned_transition(donors)
    song = np.asarray(donors.song)  # type: ignore[attr-defined]
    phrase = np.asarray(donors.phrase_index)  # type: ignore[attr-defined]
    where = {(int(s), int(p)): i for i, (s, p) in enumerate(zip(song, phrase, strict=True))}
    pairs = [(i, where[(int(s), int(p) + 1)]) for i, (s, p) in enumerate(zip(song, phrase,
                                                                            strict=True))
             if (int(s), int(p) + 1) in where]
    assert len(pairs) > 50
    rng = np.random.default_rng(0)
    percentile = []
    for a, b in pairs:
        others = rng.choice(np.flatnonzero(song != song[a]), size=99, replace=False)
        scores = score(np.array([a]), np.concatenate([[b], others]))[0]
        percentile.append(float(np.mean(scores[0] > scores[1:])))
    # the true next phrase beats most random donors (chance: 0.5)
    assert np.mean(percentile) > 0.7


def test_blocked_scores_equal_the_direct_cosines() -> None:
    rng = np.random.default_rng(3)
    head, tail = rng.normal(size=(700, 128)), rng.normal(size=(700, 128))
    score = transition.LearnedTransition(head, tail)
    before, after = rng.integers(0, 700, 300), rng.integers(0, 700, 500)
    unit_t = tail / np.linalg.norm(tail, axis=1, keepdims=True)
    unit_h = head / np.linalg.norm(head, axis=1, keepdims=True)
    direct = np.clip(unit_t[before] @ unit_h[after].T, 0, 1)
    np.testing.assert_allclose(score(before, after), direct, atol=1e-5)
