"""The chord/texture VAE (algorithms.md §2.3): tensors, shapes, a training step that lowers the
loss, decoding, save/load, the training command, and the learned re-harmonizer behind the
arranger's interface (with tiny untrained or briefly trained models, and the shipped weights
when present)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.arranger.plugins import DonorPhrase, reharmonize_all
from engine.build.provenance import write_npz_atomically
from engine.build.vae_training import grid_rows, transposed, vae_loss
from engine.errors import LibraryError
from engine.models.reharmonizer import WEIGHTS_PATH, LearnedReharmonizer, learned_reharmonizer
from engine.models.vae import (
    EOS,
    SOS,
    ChordTextureVae,
    VaeConfig,
    bits_duration,
    decode,
    duration_bits,
    grid_from_notes,
    load_weights,
    note_sequences,
    save_weights,
    texture_input,
)
from engine.types import Chord, ChordEvent

TINY = VaeConfig(z_chord=8, z_texture=16, chord_hidden=16, conv_channels=4, texture_linear=16,
                 texture_hidden=16, time_hidden=24, step_embed=4, note_hidden=24,
                 pitch_embed=8, max_notes=6)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one intra-op thread is faster than two fighting a busy machine's cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _chords(n: int, root: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    chroma = np.zeros((n, 8, 12), dtype=np.float32)
    chroma[:, :, [root, (root + 4) % 12, (root + 7) % 12]] = 1
    full = np.full((n, 8), root)
    return full, full, chroma


def _batch():
    # segment 0: C-E-G at 16th 0 (8 long), G at 4; segment 1: a repeated C (deduped: longest)
    owner = np.array([0, 0, 0, 0, 1, 1])
    notes = np.array([[0, 64, 8, 80], [0, 60, 8, 90], [0, 67, 8, 70], [4, 67, 2, 60],
                      [8, 48, 4, 50], [8, 48, 12, 55]])
    return grid_from_notes(owner, notes, 2, TINY.max_notes, _chords(2))


def test_grid_sorts_steps_by_pitch_and_keeps_the_longest_repeat():
    batch = _batch()
    assert batch.pitch.shape == (2, 32, 6)
    assert batch.pitch[0, 0, :4].tolist() == [60, 64, 67, -1]
    assert batch.velocity[0, 0, :3].tolist() == [90, 80, 70]
    assert batch.pitch[1, 8, :2].tolist() == [48, -1] and int(batch.duration[1, 8, 0]) == 12
    rows = grid_rows(batch)
    assert rows.tolist() == [[0, 0, 60, 8], [0, 0, 64, 8], [0, 0, 67, 8], [0, 4, 67, 2],
                             [1, 8, 48, 12]]
    roll = texture_input(batch.pitch, batch.duration)
    assert roll.shape == (2, 2, 32, 128) and float(roll[0, 0].sum()) == 4
    assert float(roll[1, 1, 8, 48]) == pytest.approx(12 / 32)


def test_duration_bits_round_trip_and_note_sequences():
    durations = torch.arange(1, 33)
    assert torch.equal(bits_duration(duration_bits(durations)), durations)
    assert duration_bits(torch.tensor([1, 32])).tolist() == [[0] * 5, [1] * 5]
    batch = _batch()
    tokens, bits, target, current = note_sequences(batch.pitch, batch.duration)
    assert tokens.shape == (64, 4)  # longest step: 3 notes + EOS
    assert tokens[0].tolist() == [SOS, 60, 64, 67] and target[0].tolist() == [60, 64, 67, EOS]
    assert target[1].tolist() == [EOS, -100, -100, -100]  # an empty step: only EOS counts
    assert bits[0, 1].tolist() == [0, 0, 1, 1, 1]  # the duration 8 of the previous note
    assert current[0].tolist() == [60, 64, 67, EOS]


def test_transposition_moves_notes_and_chords_together():
    batch = transposed(_batch(), torch.tensor([3, -5]))
    assert batch.pitch[0, 0, :3].tolist() == [63, 67, 70]
    assert batch.chord_root[0, 0] == 3 and batch.chord_root[1, 0] == 7
    assert torch.nonzero(batch.chord_chroma[1, 0]).view(-1).tolist() == [2, 7, 11]


def test_shapes_and_a_training_step_lower_the_loss():
    torch.manual_seed(0)
    model = ChordTextureVae(TINY)
    batch = _batch()
    chord_post, texture_post = model.encode(batch)
    assert chord_post.mean.shape == (2, 8) and texture_post.mean.shape == (2, 16)
    out, _, _, target = model(batch, teacher_forcing=0.5)
    assert out.pitch_logits.shape == (64, target.shape[1], 129)
    assert out.duration_logits.shape == (64, target.shape[1], 5)
    assert out.chord_root.shape == (2, 8, 13) and out.chord_chroma.shape == (2, 8, 12)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = vae_loss(model, batch, beta=0.01, sample=False)
    for _ in range(40):
        loss = vae_loss(model, batch, beta=0.01)
        optimizer.zero_grad()
        loss.total.backward()
        optimizer.step()
    last = vae_loss(model, batch, beta=0.01, sample=False)
    assert float(last.total.detach()) < 0.6 * float(first.total.detach())
    assert last.pitch < first.pitch and last.chord < first.chord


def test_decoding_rises_in_pitch_within_a_step_and_stays_in_range():
    torch.manual_seed(1)
    model = ChordTextureVae(TINY).eval()
    rows = decode(model, torch.randn(3, 8), torch.randn(3, 16))
    assert rows.shape[1] == 4
    assert set(rows[:, 0].tolist()) <= {0, 1, 2}
    assert rows[:, 1].min() >= 0 and rows[:, 1].max() < 32
    assert rows[:, 3].min() >= 1 and rows[:, 3].max() <= 32
    for (segment, step), group in _groups(rows):
        assert np.all(np.diff(group[:, 2]) > 0), (segment, step)
        assert len(group) <= TINY.max_notes


def _groups(rows: np.ndarray):
    keys = rows[:, 0] * 32 + rows[:, 1]
    for key in np.unique(keys):
        yield divmod(int(key), 32), rows[keys == key]


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(2)
    model = ChordTextureVae(TINY).eval()
    path = tmp_path / "vae.pt"
    save_weights(model, path, {"seed": 2})
    loaded, meta = load_weights(path)
    assert meta == {"seed": 2} and loaded.config == TINY
    z_c, z_t = torch.randn(2, 8), torch.randn(2, 16)
    # fp16 storage: the decoded notes match the fp32 model's (weights rounded, argmax kept)
    state = {k: v.half().float() for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert np.array_equal(decode(model, z_c, z_t), decode(loaded, z_c, z_t))
    with pytest.raises(LibraryError, match="not found"):
        load_weights(tmp_path / "none.pt")
    path.write_bytes(b"garbage")
    with pytest.raises(LibraryError, match="damaged"):
        load_weights(path)


# ----------------------------------------------------------------------- the re-harmonizer


def _event(root: int, quality: str, start: int, length: int) -> ChordEvent:
    return ChordEvent(Chord(root, quality, root), start, length)


def _donor() -> np.ndarray:
    """One 4-bar C-major donor: bass C on beats 1, chord C-E-G on the off-beats."""
    rows = []
    for bar in range(4):
        rows.append((bar * 16, 36, 4, 90))
        for beat in (1, 2, 3):
            rows += [(bar * 16 + beat * 4, p, 2, 60 + beat) for p in (60, 64, 67)]
    return np.array(rows)


def test_learned_reharmonizer_stays_inside_the_phrase():
    torch.manual_seed(3)
    model = ChordTextureVae(TINY)
    reharmonizer = LearnedReharmonizer(model)
    donor = _donor()
    chroma = np.zeros((16, 12), dtype=bool)
    chroma[:, [0, 4, 7]] = True
    chords = [_event(9, "min", 64, 32), _event(5, "maj", 96, 32)]
    # a 3-bar phrase from 16th 64: tiles and cuts the donor, last segment half used
    notes = reharmonizer(donor, chroma, np.zeros(16, int), 2, chords, 64, 48)
    assert notes, "an untrained model still writes notes for a non-empty donor"
    for start, duration, pitch, velocity in notes:
        assert 64 <= start < 112 and start + duration <= 112 and duration >= 1
        assert 0 <= pitch < 128 and 1 <= velocity <= 127
    # batched over phrases == one by one
    phrases = [DonorPhrase(donor, chroma, np.zeros(16, int), 2, 64, 48),
               DonorPhrase(donor[:4], chroma[:4], np.zeros(4, int), 0, 112, 16)]
    batched = reharmonize_all(reharmonizer, phrases, chords)
    assert batched[0] == notes
    assert batched[1] == reharmonizer(donor[:4], chroma[:4], np.zeros(4, int), 0, chords,
                                      112, 16)
    # an empty donor gives an empty phrase
    assert reharmonizer(np.zeros((0, 4), int), chroma, np.zeros(16, int), 0, chords, 64, 32) == []


def test_repeated_sections_decode_alike():
    torch.manual_seed(5)
    reharmonizer = LearnedReharmonizer(ChordTextureVae(TINY))
    chroma = np.zeros((8, 12), dtype=bool)
    chroma[:, [0, 4, 7]] = True
    donor = _donor()[_donor()[:, 0] < 32]
    chords = [_event(7, "7", 0, 256)]
    first, second = reharmonize_all(reharmonizer, [
        DonorPhrase(donor, chroma, np.zeros(8, int), 0, 0, 32),
        DonorPhrase(donor, chroma, np.zeros(8, int), 0, 96, 32)], chords)
    assert first and [(s + 96, d, p, v) for s, d, p, v in first] == second


def test_chord_tone_option_keeps_to_the_target_chords():
    torch.manual_seed(4)
    reharmonizer = LearnedReharmonizer(ChordTextureVae(TINY), chord_tones_only=True)
    chroma = np.zeros((16, 12), dtype=bool)
    chroma[:, [0, 4, 7]] = True
    chords = [_event(9, "min", 0, 32), _event(2, "min", 32, 32)]
    notes = reharmonizer(_donor(), chroma, np.zeros(16, int), 0, chords, 0, 64)
    assert notes
    tones = {0: {9, 0, 4}, 1: {2, 5, 9}}
    assert all(pitch % 12 in tones[start // 32] for start, _, pitch, _ in notes)


def test_velocities_follow_the_donor():
    from engine.models.reharmonizer import _velocity_steps

    owner = np.array([0, 0, 0])
    donor = np.array([[0, 36, 4, 100], [4, 60, 2, 40], [5, 64, 2, 60]])
    velocity = _velocity_steps(owner, donor, 1)
    assert velocity[0, 0] == 100 and velocity[0, 4] == 40 and velocity[0, 5] == 60
    assert velocity[0, 6] == 50  # the beat's mean onset velocity
    assert velocity[0, 1] == 100 and velocity[0, 31] == 50  # beats without onsets: carried on


def test_learned_reharmonizer_reports_missing_weights(tmp_path):
    with pytest.raises(LibraryError, match="missing.*rules"):
        learned_reharmonizer(tmp_path / "none.pt")


@pytest.mark.skipif(not WEIGHTS_PATH.is_file(), reason="no shipped VAE weights")
def test_shipped_weights_load_and_follow_new_chords():
    reharmonizer = learned_reharmonizer()
    assert reharmonizer is learned_reharmonizer()  # loaded once
    assert WEIGHTS_PATH.stat().st_size < 16 * 2**20
    provenance = json.loads(WEIGHTS_PATH.with_suffix(".json").read_text())
    assert {"command", "seed", "epochs", "final", "git_commit", "device"} <= set(provenance)
    donor = _donor()
    chroma = np.zeros((16, 12), dtype=bool)
    chroma[:, [0, 4, 7]] = True
    chords = [_event(9, "min", 0, 32), _event(2, "min", 32, 32)]  # Am | Dm, 2 bars each
    tones = {0: {9, 0, 4}, 1: {2, 5, 9}}
    donor_onsets = {int(o) for o in donor[:, 0]}
    plain = LearnedReharmonizer(getattr(reharmonizer, "model"))  # noqa: B009
    # C-E-G has no tone of Dm: a plain VAE above 0.6 follows the new chords (measured 0.7)
    for chosen, least in ((reharmonizer, 1.0), (plain, 0.6)):
        notes = chosen(donor, chroma, np.zeros(16, int), 0, chords, 0, 64)
        assert len(notes) >= 20 and all(0 <= n[0] < 64 and n[0] + n[1] <= 64 for n in notes)
        assert np.mean([n[2] % 12 in tones[n[0] // 32] for n in notes]) >= least
        onsets = {n[0] for n in notes}
        assert 2 * len(onsets & donor_onsets) / (len(onsets) + len(donor_onsets)) >= 0.9


# ------------------------------------------------------------------ the training command


def _tiny_segments(path: Path) -> None:
    rng = np.random.default_rng(0)
    notes, offsets, songs = [], [0], []
    for s in range(24):
        rows = np.array([[o, 48 + (s % 5) + 12 * (o % 2), 2, 80] for o in range(0, 32, 4)])
        notes.append(rows)
        offsets.append(offsets[-1] + len(rows))
        songs.append(s // 4)
    root = rng.integers(0, 12, (24, 8))
    chroma = np.zeros((24, 8, 12), dtype=np.uint8)
    for i in range(24):
        for b in range(8):
            chroma[i, b, [root[i, b], (root[i, b] + 4) % 12, (root[i, b] + 7) % 12]] = 1
    write_npz_atomically(path, {
        "notes": np.concatenate(notes).astype(np.uint8), "note_offsets": np.array(offsets),
        "chord_root": root.astype(np.int8), "chord_bass": root.astype(np.int8),
        "chord_chroma": chroma, "song": np.array(songs, np.int32),
        "bar": np.arange(24, dtype=np.int32) % 4, "phrase": np.zeros(24, np.int16),
        "phrase_bar": np.zeros(24, np.int16),
        "split": np.array([0] * 16 + [1] * 4 + [2] * 4, np.uint8),
        "provenance": np.array("{}"), "schema_version": np.array(1),
    })


@pytest.mark.slow  # a fresh interpreter importing torch, then two epochs
def test_training_command_writes_weights_and_log(tmp_path):
    data = tmp_path / "seg.npz"
    _tiny_segments(data)
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "engine.build.train_vae", "--data", str(data), "--config",
         "small", "--epochs", "2", "--batch-size", "8", "--seed", "0", "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["chord_texture_vae.pt", "vae_log.json"]
    log = json.loads((out / "vae_log.json").read_text())
    assert [e["epoch"] for e in log["epochs"]] == [1, 2]
    assert log["data"]["train_segments"] == 16 and log["data"]["valid_segments"] == 4
    assert {"pitch_f1", "onset_f1"} <= set(log["final"]["valid_reconstruction"])
    assert log["seed"] == 0 and "--config small" in log["command"]
    model, meta = load_weights(out / "chord_texture_vae.pt")
    assert meta["epochs"] == 2 and model.config.z_texture == 128


def test_training_path_imports_no_midi_library():
    code = ("import sys, engine.build.train_vae, engine.models.reharmonizer; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mido', 'rtmidi')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"


# ------------------------------------------------------------------- the arranger, end to end


@pytest.mark.slow  # imports a small POP909 donor library first
@pytest.mark.skipif(not WEIGHTS_PATH.is_file(), reason="no shipped VAE weights")
def test_arrange_with_the_learned_reharmonizer(tmp_path, monkeypatch):
    from engine.build.pop909_import import import_pop909
    from engine.chords import chord_pitch_classes
    from engine.demo import DEMO_TUNE, melody_from_steps
    from engine.library.datasets import shared_data_dir
    from engine.pipeline import arrange
    from engine.types import ArrangeOptions

    data = shared_data_dir()
    if data is None or not (data / "pop909").is_dir():
        pytest.skip("POP909 not found (set ACCOBRIDGE_SHARED_DATA or put it in ../shared/data)")
    import_pop909(data / "pop909", out_path=tmp_path / "pop909_donors.npz", limit=12)
    monkeypatch.setenv("ACCOBRIDGE_DATA_DIR", str(tmp_path))
    melody = melody_from_steps(DEMO_TUNE * 2)
    result = {choice: arrange(melody, ArrangeOptions(library="pop909", reharmonizer=choice))
              for choice in ("rules", "learned")}
    learned = result["learned"]
    assert learned.textures == result["rules"].textures  # same donors, only re-harmonized anew
    assert len(learned.piano_notes) > 50
    chords = learned.harmonization.chords
    inside = 0
    for note in learned.piano_notes:
        start = int(note.start_tick // melody.ticks_per_16th)
        chord = next((c for c in chords if c.start_16th <= start < c.end_16th), None)
        assert chord is not None, start  # no note outside the song's chords
        tones = chord_pitch_classes(chord.chord.root_pc, chord.chord.quality)
        inside += note.pitch % 12 in tones | {chord.chord.bass_pc}
    # the arranger's own placement may move a few notes away from melody clashes
    assert inside / len(learned.piano_notes) >= 0.9
