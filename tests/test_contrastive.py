"""Contrastive texture encoder: window rolls, NT-Xent, training steps, weights files and the
training command, on synthetic windows in the segment file's format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.build.train_contrastive import (
    Trainer,
    load_windows,
    main,
    next_windows,
)
from engine.errors import LibraryError
from engine.models.contrastive import (
    KEYS,
    LOWEST_KEY,
    EncoderConfig,
    NoteTable,
    TextureEncoder,
    edge_windows,
    embed,
    load_encoder,
    next_vs_random_loss,
    nt_xent,
    save_encoder,
)

TINY = EncoderConfig(conv_channels=4, hidden=32, projection=16)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors: torch's worker threads only wait on each other on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def synthetic_segments(songs: int = 12, bars: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays in `.train/pop909_segments.npz`'s format: each song keeps one texture (an onset
    pattern per bar, a voicing, a velocity) so neighbouring windows look alike; songs differ.
    Splits by song: the last two are held out (2), the one before is validation (1)."""
    rng = np.random.default_rng(seed)
    notes, offsets = [], [0]
    song, bar, split, phrase, phrase_bar = [], [], [], [], []
    for s in range(songs):
        steps = np.sort(rng.choice(16, size=rng.integers(1, 9), replace=False))
        voicing = 36 + rng.integers(0, 24) + np.cumsum(rng.integers(3, 8, size=rng.integers(1, 5)))
        velocity = int(rng.integers(40, 110))
        for b in range(bars - 1):
            rows = []
            for half in (0, 16):
                for step in steps:
                    duration = int(min(32 - half - step, rng.integers(1, 8)))
                    for p in voicing:
                        rows.append((half + step, int(p), duration, velocity))
            notes.extend(rows)
            offsets.append(offsets[-1] + len(rows))
            song.append(s + 1)
            bar.append(b)
            split.append(2 if s >= songs - 2 else 1 if s == songs - 3 else 0)
            phrase.append(b // 4)
            phrase_bar.append(b % 4)
    n = len(song)
    return {
        "notes": np.array(notes, dtype=np.uint8).reshape(-1, 4),
        "note_offsets": np.array(offsets, dtype=np.int64),
        "chord_root": np.zeros((n, 8), dtype=np.int8),
        "chord_bass": np.zeros((n, 8), dtype=np.int8),
        "chord_chroma": np.zeros((n, 8, 12), dtype=np.uint8),
        "song": np.array(song, dtype=np.int32),
        "bar": np.array(bar, dtype=np.int32),
        "phrase": np.array(phrase, dtype=np.int16),
        "phrase_bar": np.array(phrase_bar, dtype=np.int16),
        "split": np.array(split, dtype=np.uint8),
        "provenance": np.array(json.dumps({"source": "synthetic"})),
        "schema_version": np.array(1),
    }


def write_segments(path: Path, **kwargs: int) -> Path:
    np.savez(path, **synthetic_segments(**kwargs))  # type: ignore[arg-type]
    return path


# ------------------------------------------------------------------------------ rolls


def test_roll_places_notes_and_clips_what_lies_outside() -> None:
    notes = np.array([[0, 60, 4, 127], [31, 61, 8, 64], [5, 5, 2, 90], [40, 60, 1, 90],
                      [2, 100, 3, 50]])
    table = NoteTable(notes, np.array([0, 5]), torch.device("cpu"))
    roll = table.rolls(torch.tensor([0]))
    assert roll.shape == (1, 3, 32, KEYS)
    assert roll[0, 0].sum() == 3  # pitch 5 is below the keyboard, onset 40 past the window
    assert roll[0, :, 0, 60 - LOWEST_KEY].tolist() == [1.0, 4 / 32, 1.0]
    assert roll[0, 1, 31, 61 - LOWEST_KEY] == pytest.approx(1 / 32)  # duration clipped at 32
    assert roll[0, 2, 31, 61 - LOWEST_KEY] == pytest.approx(64 / 127)
    up = table.rolls(torch.tensor([0]), transpose=torch.tensor([12]),
                     velocity_scale=torch.tensor([0.5]))
    assert up[0, 0, 0, 72 - LOWEST_KEY] == 1.0
    assert up[0, 2, 0, 72 - LOWEST_KEY] == pytest.approx(63.5 / 127)
    assert up[0, 0].sum() == 2  # pitch 100 + 12 leaves the keyboard


def test_rolls_of_several_windows_keep_their_own_notes() -> None:
    notes = np.array([[0, 60, 1, 100], [1, 62, 1, 100], [2, 64, 1, 100], [3, 65, 1, 100]])
    table = NoteTable(notes, np.array([0, 1, 1, 4]), torch.device("cpu"))
    roll = table.rolls(torch.tensor([2, 1, 0]))
    assert roll[0, 0].nonzero().tolist() == [[1, 62 - LOWEST_KEY], [2, 64 - LOWEST_KEY],
                                             [3, 65 - LOWEST_KEY]]
    assert roll[1].sum() == 0
    assert roll[2, 0].nonzero().tolist() == [[0, 60 - LOWEST_KEY]]


def test_bad_offsets_are_refused() -> None:
    with pytest.raises(ValueError, match="offsets"):
        NoteTable(np.zeros((3, 4)), np.array([0, 2]), torch.device("cpu"))


def test_edge_windows_cut_first_and_last_two_bars() -> None:
    # phrase 0: 4 bars, notes at 0, 20, 40, 63; phrase 1: 1 bar, one note at 5
    notes = np.array([[0, 60, 4, 90], [20, 62, 4, 90], [40, 64, 4, 90], [63, 65, 1, 90],
                      [5, 67, 2, 90]])
    head, head_off, tail, tail_off = edge_windows(notes, np.array([0, 4, 5]), np.array([4, 1]))
    assert head_off.tolist() == [0, 2, 3]
    assert head[:, :2].tolist() == [[0, 60], [20, 62], [5, 67]]
    assert tail_off.tolist() == [0, 2, 3]
    assert tail[:, :2].tolist() == [[8, 64], [31, 65], [5, 67]]


def test_next_window_is_two_bars_later_in_the_same_song() -> None:
    song = np.array([1, 1, 1, 1, 2, 2, 2])
    bar = np.array([0, 1, 2, 4, 0, 2, 3])
    assert next_windows(song, bar).tolist() == [2, -1, 3, -1, 5, -1, -1]


# ------------------------------------------------------------------------------ losses


def test_nt_xent_equals_the_formula_on_a_hand_made_batch() -> None:
    z1 = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    z2 = torch.tensor([[0.8, 0.6], [-1.0, 1.0], [1.0, -0.5]])
    tau = 0.5
    views = [v / np.linalg.norm(v) for v in np.concatenate([z1.numpy(), z2.numpy()])]
    n = 3
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = {k: float(views[i] @ views[k]) / tau for k in range(2 * n) if k != i}
        total += -np.log(np.exp(sims[j]) / sum(np.exp(s) for s in sims.values()))
    assert float(nt_xent(z1, z2, tau)) == pytest.approx(total / (2 * n), rel=1e-5)


def test_nt_xent_is_low_for_matching_views_and_high_for_swapped_ones() -> None:
    z = torch.eye(4)
    matched = float(nt_xent(z, z, 0.1))
    swapped = float(nt_xent(z, z.roll(1, dims=0), 0.1))
    assert matched < 0.01 < 5.0 < swapped


def test_next_vs_random_loss_is_cross_entropy_over_the_candidates() -> None:
    torch.manual_seed(0)
    model = TextureEncoder(TINY)
    h_now, h_next, h_rand = torch.randn(2, 32), torch.randn(2, 32), torch.randn(2, 4, 32)
    loss = next_vs_random_loss(model, h_now, h_next, h_rand)
    with torch.no_grad():
        expected = 0.0
        for b in range(2):
            cands = torch.cat([h_next[b : b + 1], h_rand[b]])
            logits = model.after(cands) @ model.before(h_now[b])
            expected += float(-torch.log_softmax(logits, 0)[0])
    assert float(loss.detach()) == pytest.approx(expected / 2, rel=1e-5)


@pytest.mark.parametrize("variant", ["next", "augment", "supervised"])
def test_training_steps_lower_the_loss(variant: str, tmp_path: Path) -> None:
    data = load_windows(write_segments(tmp_path / "seg.npz"))
    trainer = Trainer(data, variant, torch.device("cpu"), seed=0, batch=32, lr=3e-3,
                      config=TINY)
    batch = trainer.anchors[0][:32]
    torch.manual_seed(1)
    trainer.gen.manual_seed(1)
    before = float(trainer.loss(batch).detach())
    for _ in range(15):
        trainer.step(batch)
    trainer.gen.manual_seed(1)
    after = float(trainer.loss(batch).detach())
    assert after < before - 0.1


# ------------------------------------------------------------------------------ weights


def test_weights_round_trip_in_fp16(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TextureEncoder(TINY)
    arrays = synthetic_segments(songs=3, bars=4)
    table = NoteTable(arrays["notes"], arrays["note_offsets"], torch.device("cpu"))
    path = tmp_path / "w.pt"
    save_encoder(model, path, {"variant": "next", "epochs": 3})
    loaded, meta = load_encoder(path)
    assert meta == {"variant": "next", "epochs": 3}
    assert loaded.config == TINY
    np.testing.assert_allclose(embed(loaded, table), embed(model, table), atol=5e-3)
    assert not np.allclose(embed(TextureEncoder(TINY), table), embed(model, table), atol=5e-3)


def test_unreadable_weights_raise_our_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a torch file")
    with pytest.raises(LibraryError, match="unreadable"):
        load_encoder(path)


def test_training_command_writes_weights_and_log(tmp_path: Path) -> None:
    data = write_segments(tmp_path / "seg.npz")
    out = tmp_path / "out"
    rc = main(["--data", str(data), "--positives", "next", "--device", "cpu",
               "--time-budget", "60", "--eval-reserve", "0", "--epochs", "2", "--batch", "16",
               "--conv-channels", "4", "--hidden", "32", "--projection", "16",
               "--probe-train", "200", "--probe-anchors", "20", "--seed", "3",
               "--out", str(out)])
    assert rc == 0
    log = json.loads((out / "contrastive_log.json").read_text())
    assert log["seed"] == 3 and log["variant"] == "next"
    assert [e["epoch"] for e in log["epochs"]] == [1, 2]
    assert set(log["final_metrics"]) >= {"rd_probe", "vn_probe", "next_top1"}
    assert 0.0 <= log["final_metrics"]["next_top1"] <= 1.0
    model, meta = load_encoder(out / "next.pt")
    assert len(meta["epochs"]) == 2 and meta["best_epoch"] in (1, 2)
    assert meta["command"].endswith(f"--out {out}")
    assert model.config.hidden == 32


def test_training_command_reports_a_missing_file(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--data", str(tmp_path / "none.npz"), "--positives", "augment",
               "--out", str(tmp_path)])
    assert rc == 2
    assert "none.npz" in capsys.readouterr().err
