"""The learned chord model (engine.models.chord_model): the training-data reader, the features,
the network's output and determinism, a training step, the training command, and musical sanity
with the shipped weights (tiny untrained models where the weights are not needed)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import mido
import numpy as np
import pytest
import torch

from engine.build.chord_data import (
    ChordCorpus,
    ChordSong,
    chord_rows_per_8th,
    load_corpus,
    read_corpus,
    read_nottingham_tune,
    read_pop909_song,
    relative_rows,
    save_corpus,
)
from engine.build.train_chord_model import (
    batch_loss,
    batches,
    build_ensemble,
    example,
    score_song,
    train,
    train_step,
)
from engine.harmonizer.micro import NO_CHORD_ROW, chord_row
from engine.library.datasets import shared_data_dir
from engine.models.chord_model import (
    CHORD_ROWS,
    SLOT_FEATURES,
    WEIGHTS_PATH,
    ChordModel,
    ChordNet,
    ChordNetConfig,
    load_chord_model,
    read_model,
    save_model,
    song_features,
)
from engine.types import Key

TINY = ChordNetConfig(channels=16, bar_hidden=8, local_dilations=(1, 2), post_dilations=(1,))
needs_weights = pytest.mark.skipif(not WEIGHTS_PATH.is_file(),
                                   reason=f"no shipped weights at {WEIGHTS_PATH}")
C, D, E, F, G, A, B = 60, 62, 64, 65, 67, 69, 71
C_MAJOR = Key(0, "major")


def grid(notes: list[tuple[int, int]]) -> np.ndarray:
    """(pitch, 16ths) pairs laid end to end (pitch −1: rest) as a pitch per 16th."""
    return np.concatenate([np.full(length, pitch, dtype=np.int64) for pitch, length in notes])


def tiny_model(seed: int = 0) -> ChordModel:
    torch.manual_seed(seed)
    return ChordModel(ChordNet(TINY))


def song(pitch: np.ndarray, chords: np.ndarray, key: Key = C_MAJOR, bar: int = 16,
         dataset: str = "nottingham", song_id: str = "tune") -> ChordSong:
    bars = len(pitch) // bar
    return ChordSong(dataset, song_id, pitch, chords, key, key, bar, 4,
                     tuple((s, min(8, bars - s)) for s in range(0, bars, 8)))


# ---------------------------------------------------------------------------- the data reader


def test_chord_rows_name_what_sounds_at_each_8th() -> None:
    # C major for a bar, then G over its B bass (G/B) for half a bar, then silence
    chords = [(0, 16, frozenset({0, 4, 7}), 0), (16, 24, frozenset({7, 11, 2}), 11)]
    rows = chord_rows_per_8th(chords, 0, 16)
    assert rows[:8].tolist() == [chord_row(0, "maj")] * 8
    assert rows[8:12].tolist() == [chord_row(7, "maj")] * 4
    assert rows[12:].tolist() == [NO_CHORD_ROW] * 4
    # relative to A minor: C is ♭III, G is ♭VII
    assert relative_rows(rows[[0, 8, 12]], 9).tolist() == [
        chord_row(3, "maj"), chord_row(10, "maj"), NO_CHORD_ROW]


def _pop909_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "001"
    folder.mkdir()
    (folder / "analyzed_key.txt").write_text("C:maj\n")
    (folder / "human_label1.txt").write_text("i1A2\n")
    # an instrumental bar, then two vocal bars: C for one bar, G for a bar
    (folder / "finalized_chord.txt").write_text(
        "N [] 0 4\nC:maj [0, 4, 7] 0 4\nG:maj [2, 7, 11] 7 4\n")
    (folder / "melody.txt").write_text("0 16\n64 8\n67 8\n71 8\n74 8\n")
    return folder


def test_pop909_reader_labels_a_g_chord_over_c_major_as_v(tmp_path: Path) -> None:
    item = read_pop909_song(_pop909_folder(tmp_path))
    assert item.key == Key(0, "major")
    assert item.sixteenths_per_bar == 16 and item.phrases == ((0, 2),)
    assert item.pitch_16th.tolist() == [64] * 8 + [67] * 8 + [71] * 8 + [74] * 8
    rows = item.rows()
    assert rows.tolist() == [chord_row(0, "maj")] * 8 + [chord_row(7, "maj")] * 8


def test_nottingham_reader_reads_key_meter_and_chords(tmp_path: Path) -> None:
    for part in ("melody", "chords"):
        (tmp_path / part).mkdir()

    def write(path: Path, notes: list[tuple[int, int, int]], key: str) -> None:
        midi = mido.MidiFile(ticks_per_beat=480)
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("time_signature", numerator=3, denominator=4))
        track.append(mido.MetaMessage("key_signature", key=key))
        events = sorted([(s, 1, p) for s, _, p in notes] + [(s + d, 0, p) for s, d, p in notes])
        now = 0
        for tick, on, pitch in events:
            kind = "note_on" if on else "note_off"
            track.append(mido.Message(kind, note=pitch, velocity=80 if on else 0,
                                      time=tick - now))
            now = tick
        midi.tracks.append(track)
        midi.save(path)

    beat = 480
    # G major, 3/4: two bars of melody; D/F# then G
    write(tmp_path / "melody" / "waltz.mid",
          [(0, 3 * beat, 66), (3 * beat, 3 * beat, 67)], "G")
    write(tmp_path / "chords" / "waltz.mid",
          [(0, 3 * beat, 54), (0, 3 * beat, 57), (0, 3 * beat, 62),
           (3 * beat, 3 * beat, 55), (3 * beat, 3 * beat, 59), (3 * beat, 3 * beat, 62)], "G")
    item = read_nottingham_tune(tmp_path, "waltz")
    assert item.key == Key(7, "major")
    assert item.sixteenths_per_bar == 12 and item.phrases == ((0, 2),)
    assert item.rows().tolist() == [chord_row(7, "maj")] * 6 + [chord_row(0, "maj")] * 6


def test_corpus_cache_round_trips(tmp_path: Path) -> None:
    one = song(grid([(C, 16)]), np.full(8, chord_row(0, "maj"), dtype=np.int16))
    path = tmp_path / "songs.npz"
    save_corpus(ChordCorpus((one, one), {"nottingham": {"meter": 1}}), path, {"note": "x"})
    corpus, provenance = load_corpus(path)
    assert provenance == {"note": "x"} and corpus.skipped == {"nottingham": {"meter": 1}}
    assert len(corpus.songs) == 2
    back = corpus.songs[1]
    assert np.array_equal(back.pitch_16th, one.pitch_16th)
    assert np.array_equal(back.chords, one.chords)
    assert (back.key, back.phrases, back.sixteenths_per_bar) == (one.key, one.phrases, 16)


# ------------------------------------------------------------------------------- the network


def test_features_mark_positions_and_phrases() -> None:
    pitch = grid([(C, 4), (-1, 4), (E, 8)] * 4)  # 4 bars of 4/4
    notes, slots = song_features(pitch, 0, "minor", 16, 4, [(0, 2), (2, 2)])
    assert notes.shape == (64, 15) and slots.shape == (32, SLOT_FEATURES)
    assert notes[0, 0] == 1 and notes[4, 12] == 1 and notes[8, 4] == 1
    assert notes[:, 13].sum() == 8  # one onset per note
    assert slots[0, 0] == 1 and slots[4, 1] == 1 and slots[2, 2] == 1 and slots[1, 4] == 1
    assert slots[7, 5] == 1 and slots[6, 5] == 0  # last 8th of the bar
    assert slots[:, -1].all()  # minor


def test_slot_log_probs_shape_and_normalisation() -> None:
    model = tiny_model()
    pitch = grid([(C, 4), (D, 4), (E, 8), (-1, 16)] * 4)  # 8 bars of 4/4
    out = model.slot_log_probs(pitch, 0, "major", 16, 4, [(0, 4), (4, 4)])
    assert out.shape == (64, CHORD_ROWS) and out.dtype == np.float32
    assert np.allclose(np.exp(out).sum(axis=1), 1.0, atol=1e-5)
    ragged = model.slot_log_probs(pitch[:-6], 0, "major", 16, 4, [(0, 4), (4, 4)])
    assert ragged.shape == (61, CHORD_ROWS)  # padded to whole bars, cut back


def test_slot_log_probs_is_deterministic() -> None:
    pitch = grid([(G, 6), (A, 2), (B, 4)] * 8)  # 8 bars of 3/4
    first = tiny_model().slot_log_probs(pitch, 7, "major", 12, 4, [(0, 8)])
    again = tiny_model().slot_log_probs(pitch, 7, "major", 12, 4, [(0, 8)])
    assert first.tobytes() == again.tobytes()


def test_padded_batch_scores_like_a_single_song() -> None:
    model = tiny_model()
    short = song(grid([(C, 8), (E, 8)] * 2), np.zeros(16, np.int16))
    long = song(grid([(G, 4), (F, 4), (E, 8)] * 6), np.zeros(48, np.int16))
    batch = next(batches([example(short, short.key), example(long, long.key)], 10_000))
    with torch.no_grad():
        padded = torch.log_softmax(model.net(batch.notes, batch.slots, 8, batch.bars), dim=2)
    alone = model.slot_log_probs(short.pitch_16th, 0, "major", 16, 4, short.phrases)
    assert np.allclose(padded[0, :16].numpy(), alone, atol=1e-5)


def test_a_training_step_lowers_the_loss() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    songs = []
    for _ in range(4):  # chords follow the melody's pitch class: C → I, G → V
        notes = rng.choice([C, G], size=16)
        pitch = np.repeat(notes, 4)
        rows = np.where(notes.repeat(2) == C, chord_row(0, "maj"), chord_row(7, "maj"))
        songs.append(song(pitch, rows.astype(np.int16)))
    batch = next(batches([example(s, s.key) for s in songs], 10_000))
    net = ChordNet(TINY)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2)
    with torch.no_grad():
        before = float(batch_loss(net.eval(), batch))
    for _ in range(20):
        train_step(net, optimizer, batch)
    with torch.no_grad():
        after = float(batch_loss(net.eval(), batch))
    assert after < before * 0.5


def test_scores_are_judged_in_absolute_pitch_classes() -> None:
    item = song(grid([(C, 16)]), np.full(8, chord_row(0, "maj"), dtype=np.int16))
    log_probs = np.full((8, CHORD_ROWS), -10.0, dtype=np.float32)
    log_probs[:, chord_row(3, "maj")] = 0.0  # ♭III of A minor = C major
    tally = score_song(log_probs, item, Key(9, "minor"))
    assert (tally.root_hits, tally.root_slots, tally.final_hits, tally.slot_hits) == (8, 8, 1, 8)
    assert tally.tonic_hits == 0  # "always I" in A minor says A


def test_save_and_read_round_trip(tmp_path: Path) -> None:
    model = tiny_model()
    path = tmp_path / "m.pt"
    save_model(model.net, path, {"note": "test"})
    back = read_model(path)
    assert back.provenance == {"note": "test"}
    pitch = grid([(C, 8), (E, 8)] * 2)
    assert np.array_equal(back.slot_log_probs(pitch, 0, "major", 16, 4, [(0, 2)]),
                          model.slot_log_probs(pitch, 0, "major", 16, 4, [(0, 2)]))


def test_training_command_writes_weights_and_provenance(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    songs = []
    for i, dataset in enumerate(["pop909", "nottingham"] * 3):
        notes = rng.choice([C, E, G], size=32)
        songs.append(song(np.repeat(notes, 4), np.full(64, chord_row(0, "maj"), np.int16),
                          dataset=dataset, song_id=f"s{i}"))
    corpus = tmp_path / "songs.npz"
    save_corpus(ChordCorpus(tuple(songs), {}), corpus, {})
    out = tmp_path / "model.pt"
    args = argparse.Namespace(out=out, corpus=corpus, data=None, seed=0, split_seed=0,
                              time_budget=0.0,
                              epochs=2, epoch_slots=200, batch_slots=1000, channels=8,
                              bar_hidden=4, device="cpu", threads=1, dropout=0.1,
                              weight_decay=0.0, nottingham_share=0.5)
    log = train(args, "test", lambda message: None)
    provenance = json.loads(out.with_suffix(".json").read_text())
    assert provenance["sha256"] == log["sha256"] and provenance["bytes"] == out.stat().st_size
    assert {"valid", "held_out", "held_out_auto_key"} <= set(provenance["final"])
    assert provenance["data"]["train"]["pop909"]["songs"] + provenance["data"]["held_out"][
        "pop909"]["songs"] + provenance["data"]["valid"]["pop909"]["songs"] == 3
    single = read_model(out).slot_log_probs(songs[0].pitch_16th, 0, "major", 16, 4,
                                            songs[0].phrases)
    assert single.shape == (64, CHORD_ROWS)
    # the same run twice as an ensemble scores like the run alone
    both = tmp_path / "both.pt"
    build_ensemble([out, out], argparse.Namespace(**{**vars(args), "out": both}), "test",
                   lambda message: None)
    pair = read_model(both)
    assert len(pair.nets) == 2 and len(pair.provenance["members"]) == 2
    assert np.allclose(pair.slot_log_probs(songs[0].pitch_16th, 0, "major", 16, 4,
                                           songs[0].phrases), single, atol=1e-6)


def test_an_ensemble_averages_its_members_probabilities() -> None:
    a, b = tiny_model(0), tiny_model(1)
    pitch = grid([(C, 8), (E, 8), (G, 16)] * 2)
    call = (pitch, 0, "major", 16, 4, [(0, 4)])
    mean = np.log((np.exp(a.slot_log_probs(*call)) + np.exp(b.slot_log_probs(*call))) / 2)
    assert np.allclose(ChordModel([a.net, b.net]).slot_log_probs(*call), mean, atol=1e-5)


# ------------------------------------------------------------------ the shipped weights


@needs_weights
def test_shipped_weights_are_small_and_have_provenance() -> None:
    assert WEIGHTS_PATH.stat().st_size <= 10 * 1024 * 1024
    provenance = load_chord_model().provenance
    assert provenance["sha256"] and provenance["command"].startswith(
        "python3 -m engine.models.train_chord_model")
    assert load_chord_model() is load_chord_model()  # cached


@needs_weights
def test_shipped_model_ends_a_c_major_tune_with_v_i() -> None:
    # four bars: C E G E | F A G F | E C D B | C (held)
    pitch = grid([(C, 4), (E, 4), (G, 4), (E, 4), (F, 4), (A, 4), (G, 4), (F, 4),
                  (E, 4), (C, 4), (D, 4), (B - 12, 4), (C, 16)])
    out = load_chord_model().slot_log_probs(pitch, 0, "major", 16, 4, [(0, 4)])
    best = out.argmax(axis=1)
    assert best[-1] == chord_row(0, "maj")  # ends on I
    assert best[0] == chord_row(0, "maj")  # opens on I (the melody opens on the tonic triad)
    assert best[-9] == chord_row(7, "maj")  # V under the B before the final C


@needs_weights
def test_shipped_model_harmonizes_a_raised_seventh_in_minor_with_v() -> None:
    gis = 68
    # A minor: A C E C | B G# (downbeat, held) | A (held)
    pitch = grid([(A, 4), (C + 12, 4), (E + 12, 4), (C + 12, 4), (B, 8), (gis, 8), (A, 16)])
    out = load_chord_model().slot_log_probs(pitch, 9, "minor", 16, 4, [(0, 3)])
    best = out.argmax(axis=1)
    g_sharp_slot = 12  # bar 2, beat 3
    assert best[g_sharp_slot] in (chord_row(7, "maj"), chord_row(11, "dim"))
    assert best[g_sharp_slot] != chord_row(0, "min")
    # ends on the tonic root (the shipped model leans to A major there, a Picardy third, ~0.6)
    assert best[-1] in (chord_row(0, "min"), chord_row(0, "maj"))


@pytest.mark.skipif(shared_data_dir() is None, reason="../shared/data is absent")
def test_real_songs_read_with_chords_that_fit_their_melodies() -> None:
    corpus = read_corpus(limit=4)
    assert {s.dataset for s in corpus.songs} == {"pop909", "nottingham"}
    for item in corpus.songs:
        assert len(item.pitch_16th) == 2 * item.n_slots
        assert len(item.pitch_16th) == item.sixteenths_per_bar * sum(b for _, b in item.phrases)
        rows = item.rows()
        sounding = (item.pitch_16th[::2] >= 0) & (rows != NO_CHORD_ROW)
        # the melody sits on a tone of its chord's root or fifth far more than by chance
        interval = (item.pitch_16th[::2][sounding] - item.key.tonic_pc - rows[sounding] // 6) % 12
        assert np.isin(interval, (0, 3, 4, 7)).mean() > 0.4, item.song_id
