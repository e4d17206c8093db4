"""The learned re-harmonizer (algorithms.md §2.3, Wang et al. 2020 §4): a donor phrase's
texture laid on new chords by the chord/texture VAE, behind the arranger's `Reharmonizer`
interface (engine/arranger/plugins.py).

Per 2-bar segment of the target phrase: the donor's notes there (transposed by the donor's
shift, tiled when the donor is shorter) give z_txt (posterior mean), the target chords per beat
give z_chd (posterior mean), and the decoder writes the new notes. All segments of all phrases
of a song go through one forward pass (`reharmonize_phrases`). Velocities are re-shaped from
the donor: a new note takes the mean velocity of the donor's onsets at its 16th, else the donor
beat's mean onset velocity (the sustain pedal is copied by the arranger). The weights ship in
engine/data/models; loading never downloads anything.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from engine.arranger.placement import RenderedNote, chord_at
from engine.arranger.plugins import DonorPhrase, Reharmonizer
from engine.chords import chord_pitch_classes
from engine.errors import LibraryError
from engine.models.device import choose_device
from engine.models.segments import SEGMENT_16TH, SEGMENT_BEATS
from engine.models.vae import ChordTextureVae, decode, grid_from_notes, load_weights
from engine.types import ChordEvent

WEIGHTS_PATH = Path(__file__).resolve().parents[1] / "data" / "models" / "chord_texture_vae.pt"
DEVICE_ENV = "ACCOBRIDGE_MODEL_DEVICE"  # cpu | cuda | auto (default: auto = CUDA if present)
WEIGHTS_ENV = "ACCOBRIDGE_VAE_WEIGHTS"  # other weights (e.g. your own training run)
INT8_ENV = "ACCOBRIDGE_VAE_INT8"  # "0": keep the CPU model in float32
BEAT_16TH = 4


class LearnedReharmonizer:
    """Implements `Reharmonizer` for one phrase and, batched, for all phrases of a song."""

    def __init__(self, model: ChordTextureVae, device: torch.device | None = None,
                 chord_tones_only: bool = False) -> None:
        """`chord_tones_only`: decode only pitch classes of the target chord (its tones and
        bass) at each beat — constrained decoding, our option beyond the paper."""
        self.model = model.eval()
        self.device = device or torch.device("cpu")
        self.chord_tones_only = chord_tones_only

    def __call__(
        self, notes: np.ndarray, source_chroma: np.ndarray, source_roots: np.ndarray, shift: int,
        chords: Sequence[ChordEvent], start_16th: int, length_16th: int,
    ) -> list[RenderedNote]:
        phrase = DonorPhrase(notes, source_chroma, source_roots, shift, start_16th, length_16th)
        return self.reharmonize_phrases([phrase], chords)[0]

    def reharmonize_phrases(
        self, phrases: Sequence[DonorPhrase], chords: Sequence[ChordEvent],
    ) -> list[list[RenderedNote]]:
        """Every phrase's donor laid on `chords`, all 2-bar segments in one forward pass."""
        donor_rows: list[np.ndarray] = []  # donor notes per segment, segment-relative
        targets: list[tuple[int, int, int]] = []  # (phrase, segment start 16th, phrase end)
        for p, phrase in enumerate(phrases):
            tiled = _tiled_notes(phrase)
            for k in range(-(-phrase.length_16th // SEGMENT_16TH)):
                lo = k * SEGMENT_16TH
                inside = tiled[(tiled[:, 0] >= lo) & (tiled[:, 0] < lo + SEGMENT_16TH)]
                if len(inside) == 0:
                    continue  # the donor rests here: so does the new texture
                rows = inside.copy()
                rows[:, 0] -= lo
                donor_rows.append(rows)
                targets.append((p, phrase.start_16th + lo, phrase.start_16th +
                                phrase.length_16th))
        out: list[list[RenderedNote]] = [[] for _ in phrases]
        if not targets:
            return out
        root, bass, chroma = _target_chords(chords, [t[1] for t in targets])
        # Repeated sections (same donor on the same chords) are decoded once.
        first: dict[bytes, int] = {}
        unique = [first.setdefault(b"|".join((rows.tobytes(), root[s].tobytes(),
                                              chroma[s].tobytes(), bass[s].tobytes())), s)
                  for s, rows in enumerate(donor_rows)]
        keep = sorted(set(unique))
        slot = {s: i for i, s in enumerate(keep)}
        owner = np.concatenate([np.full(len(donor_rows[s]), i) for i, s in enumerate(keep)])
        donor = np.concatenate([donor_rows[s] for s in keep])
        root, bass, chroma = root[keep], bass[keep], chroma[keep]
        batch = grid_from_notes(owner, donor, len(keep), self.model.config.max_notes,
                                (root, bass, chroma)).to(self.device)
        with torch.inference_mode(), _one_thread():
            chord_post, texture_post = self.model.encode(batch)
            allowed = None
            if self.chord_tones_only:
                tones = torch.from_numpy(chroma > 0) | torch.nn.functional.one_hot(
                    torch.from_numpy(np.where(bass >= 0, bass, 12)), 13)[..., :12].bool()
                # a beat without a chord allows everything
                tones |= torch.from_numpy(root < 0)[..., None]
                allowed = tones.repeat_interleave(BEAT_16TH, dim=1)  # beats -> 16ths
            decoded = decode(self.model, chord_post.mean, texture_post.mean,
                             allowed_pcs=allowed)
        velocity = _velocity_steps(owner, donor, len(keep))
        by_unique: list[list[tuple[int, int, int, int]]] = [[] for _ in keep]
        for u, onset, pitch, duration in decoded.tolist():
            by_unique[u].append((onset, pitch, duration, int(velocity[u, onset])))
        for s, (p, start, end) in enumerate(targets):
            for onset, pitch, duration, vel in by_unique[slot[unique[s]]]:
                absolute = start + onset
                if absolute < end:
                    out[p].append((absolute, min(duration, end - absolute), pitch, vel))
        for notes in out:
            notes.sort()
        return out


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One torch intra-op thread for the forward pass: a song is a small batch, and on a busy
    2-core machine two threads spin against each other (measured: arrange with the learned
    re-harmonizer 105 ms median on one thread, 2175 ms on two, benchmarks/vae_speed)."""
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


def _tiled_notes(phrase: DonorPhrase) -> np.ndarray:
    """The donor's notes transposed by its shift (the smaller move, as the rules do) and tiled
    or cut to the phrase length: rows (onset_16th, pitch, duration_16th, velocity)."""
    notes = np.asarray(phrase.notes, dtype=np.int64).reshape(-1, 4)
    donor_length = len(phrase.source_roots) * BEAT_16TH
    if len(notes) == 0 or donor_length == 0:
        return np.zeros((0, 4), dtype=np.int64)
    shift = phrase.shift - 12 if phrase.shift > 6 else phrase.shift
    notes = notes[notes[:, 0] < donor_length].copy()
    notes[:, 1] = np.clip(notes[:, 1] + shift, 0, 127)
    tiles = [notes + [offset, 0, 0, 0] for offset in range(0, phrase.length_16th, donor_length)]
    tiled = np.concatenate(tiles)
    return tiled[tiled[:, 0] < phrase.length_16th]


def _target_chords(chords: Sequence[ChordEvent], starts: Sequence[int]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per segment and beat: root, bass (-1 = none) and chroma of the chord sounding there."""
    # one row per chord event plus a last "no chord" row (index -1)
    root_of = np.array([c.chord.root_pc for c in chords] + [-1], dtype=np.int64)
    bass_of = np.array([c.chord.bass_pc for c in chords] + [-1], dtype=np.int64)
    chroma_of = np.zeros((len(chords) + 1, 12), dtype=np.float32)
    for i, event in enumerate(chords):
        chroma_of[i, sorted(chord_pitch_classes(event.chord.root_pc, event.chord.quality))] = 1
    end = max(starts) + SEGMENT_16TH
    at = chord_at(chords, end)
    beats = np.asarray(starts)[:, None] + BEAT_16TH * np.arange(SEGMENT_BEATS)[None, :]
    which = np.where(beats >= 0, at[np.clip(beats, 0, end - 1)], -1)
    return root_of[which], bass_of[which], chroma_of[which]


def _velocity_steps(owner: np.ndarray, donor: np.ndarray, segments: int) -> np.ndarray:
    """(segments, 32) velocity for a new note at each 16th: the mean of the donor's onsets at
    that 16th, else of the donor's onsets in that beat, else the latest beat before with
    onsets, else the segment's mean."""
    steps = segments * SEGMENT_16TH
    where = owner * SEGMENT_16TH + donor[:, 0]
    total = np.bincount(where, weights=donor[:, 3], minlength=steps)
    count = np.bincount(where, minlength=steps)
    beat_total = total.reshape(-1, BEAT_16TH).sum(1)
    beat_count = count.reshape(-1, BEAT_16TH).sum(1)
    seg_mean = (np.bincount(owner, weights=donor[:, 3], minlength=segments)
                / np.maximum(np.bincount(owner, minlength=segments), 1))
    beat_mean = np.where(beat_count > 0, beat_total / np.maximum(beat_count, 1), np.nan)
    beat_mean = beat_mean.reshape(segments, SEGMENT_BEATS)
    for b in range(SEGMENT_BEATS):  # forward fill within the segment, then the segment mean
        before = beat_mean[:, b - 1] if b else seg_mean
        beat_mean[:, b] = np.where(np.isnan(beat_mean[:, b]), before, beat_mean[:, b])
    per_step = np.repeat(beat_mean.reshape(-1), BEAT_16TH)
    exact = np.where(count > 0, total / np.maximum(count, 1), per_step)
    return np.clip(np.rint(exact), 1, 127).reshape(segments, SEGMENT_16TH)


@functools.lru_cache(maxsize=2)
def _load(path: str, device: str) -> ChordTextureVae:
    """The model; on CPU with its GRU and linear layers dynamically quantized to int8 unless
    $ACCOBRIDGE_VAE_INT8=0 (measured: a 32-bar song 30 ms instead of 56 ms on one thread, with
    the same held-out quality — benchmarks/vae_quality, README)."""
    model, _ = load_weights(Path(path), torch.device(device))
    if device != "cpu" or os.environ.get(INT8_ENV, "1") == "0":
        return model
    import warnings

    from torch import nn

    try:
        with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
            warnings.simplefilter("ignore")
            quantized = torch.ao.quantization.quantize_dynamic(
                model, {nn.GRU, nn.Linear}, dtype=torch.qint8)
    except (AttributeError, RuntimeError):  # a torch without it (or without int8 kernels)
        return model
    quantized.config = model.config
    return quantized


def learned_reharmonizer(weights: Path | None = None,
                         chord_tones_only: bool = True) -> Reharmonizer:
    """The shipped VAE (or `weights`, or $ACCOBRIDGE_VAE_WEIGHTS) as a re-harmonizer, the
    model loaded once per process (and device).

    `chord_tones_only` (default): decoding keeps to the target chord's pitch classes. Measured
    on 1,500 held-out POP909 segments (benchmarks/vae_quality), the paper's unconstrained
    decoding leaves 7.8 % of the notes outside the new chords (chord-tone ratio 0.922, goal
    0.95); constrained, 1.000 with the same rhythm fidelity (onset F1 0.997).

    Device: $ACCOBRIDGE_MODEL_DEVICE (cpu, cuda or auto; default auto: CUDA when present).
    LibraryError when the weights are missing or damaged."""
    if weights is None and os.environ.get(WEIGHTS_ENV):
        weights = Path(os.environ[WEIGHTS_ENV])
    path = Path(weights) if weights is not None else WEIGHTS_PATH
    if not path.is_file():
        raise LibraryError(
            f"the learned re-harmonizer's weights {path} are missing; reinstall AccoBridge or "
            "choose the rule-based re-harmonizer (reharmonizer='rules')")
    device = choose_device(os.environ.get(DEVICE_ENV, "auto"))
    key = (str(path), str(device), chord_tones_only)
    if key not in _REHARMONIZERS:
        _REHARMONIZERS[key] = LearnedReharmonizer(_load(str(path), str(device)),
                                                  torch.device(device), chord_tones_only)
    return _REHARMONIZERS[key]


_REHARMONIZERS: dict[tuple[str, str, bool], LearnedReharmonizer] = {}
