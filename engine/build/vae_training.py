"""Training-only helpers for the chord/texture VAE (engine/models/vae.py): the model sizes to
train, segment files as tensors, the 12-transposition augmentation, the loss of §2.3 and the
reconstruction F1 the trainer and the benchmarks report. Nothing at run time imports this.

Loss: pitch CE + 0.5·duration BCE + β·KL (averaged over latent dimensions, as in the authors'
code) + chord reconstruction (root CE + chroma BCE + bass CE), as in §2.3; teacher forcing
is scheduled by the trainer (`train_vae`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from engine.models.segments import SEGMENT_16TH, SegmentSet
from engine.models.vae import (
    NO_CHORD,
    PITCHES,
    ChordTextureVae,
    SegmentTensors,
    VaeConfig,
    decode,
    duration_bits,
    grid_from_notes,
)

DURATION_WEIGHT = 0.5

CONFIGS: dict[str, VaeConfig] = {
    # a few minutes on a 2-core CPU
    "small": VaeConfig(z_chord=64, z_texture=128, chord_hidden=96, texture_linear=128,
                       texture_hidden=128, time_hidden=160, note_hidden=128, pitch_embed=48),
    "full": VaeConfig(),
}


# ------------------------------------------------------------------------------- tensors


def segment_tensors(segments: SegmentSet, which: np.ndarray | None = None,
                    max_notes: int = 16) -> SegmentTensors:
    """Dense grids of the chosen segments (all by default). Notes of one step are sorted by
    pitch; a repeated pitch at one step keeps its longest duration; more than `max_notes` at
    one step keep the lowest."""
    which = np.arange(len(segments)) if which is None else np.asarray(which)
    counts = np.diff(segments.note_offsets)[which]
    starts = segments.note_offsets[which]
    owner = np.repeat(np.arange(len(which)), counts)
    flat = np.repeat(starts, counts) + (np.arange(int(counts.sum())) - np.repeat(
        np.cumsum(counts) - counts, counts))
    notes = segments.notes[flat].astype(np.int64)
    return grid_from_notes(owner, notes, len(which), max_notes, _chords_of(segments, which))


def _chords_of(segments: SegmentSet, which: np.ndarray) -> tuple[np.ndarray, ...]:
    return (segments.chord_root[which], segments.chord_bass[which],
            segments.chord_chroma[which])


def transposed(batch: SegmentTensors, shift: Tensor) -> SegmentTensors:
    """Each segment moved by shift[s] semitones (notes and chords): the 12-transposition
    augmentation. Pitches leaving 0..127 are dropped."""
    has = batch.pitch >= 0
    moved = batch.pitch.long() + shift.view(-1, 1, 1)
    keep = has & (moved >= 0) & (moved < PITCHES)
    pitch = torch.where(keep, moved, -1).to(batch.pitch.dtype)
    k = shift.view(-1, 1) % 12
    root = torch.where(batch.chord_root >= 0, (batch.chord_root + k) % 12, -1)
    bass = torch.where(batch.chord_bass >= 0, (batch.chord_bass + k) % 12, -1)
    chroma = _roll_chroma(batch.chord_chroma, k.view(-1))
    return SegmentTensors(pitch, torch.where(keep, batch.duration, 0).to(batch.duration.dtype),
                          batch.velocity, root, bass, chroma)

def _roll_chroma(chroma: Tensor, k: Tensor) -> Tensor:
    """Per-segment roll of (S, 8, 12) chroma by k[s] pitch classes, by gather."""
    index = (torch.arange(12, device=chroma.device).view(1, 1, 12) - k.view(-1, 1, 1)) % 12
    return torch.gather(chroma, 2, index.expand(-1, chroma.shape[1], -1))


# ---------------------------------------------------------------------------------- loss


@dataclass(frozen=True)
class LossParts:
    total: Tensor
    pitch: float
    duration: float
    kl_chord: float
    kl_texture: float
    chord: float

    def as_dict(self) -> dict[str, float]:
        return {"total": float(self.total.detach()), "pitch": self.pitch,
                "duration": self.duration, "kl_chord": self.kl_chord,
                "kl_texture": self.kl_texture, "chord": self.chord}


def vae_loss(model: ChordTextureVae, batch: SegmentTensors, beta: float,
             teacher_forcing: float = 1.0, sample: bool = True) -> LossParts:
    """§2.3: pitch CE + 0.5·duration CE + β·KL + chord reconstruction."""
    out, chord_post, texture_post, target = model(batch, teacher_forcing, sample)
    pitch = F.cross_entropy(out.pitch_logits.reshape(-1, PITCHES + 1), target.reshape(-1),
                            ignore_index=-100)
    is_note = (target >= 0) & (target < PITCHES)
    rows = batch.duration.reshape(-1, batch.duration.shape[-1])[:, : target.shape[1] - 1]
    want = duration_bits(torch.cat([rows, torch.ones_like(rows[:, :1])], dim=1).long())
    if bool(is_note.any()):
        duration = F.binary_cross_entropy_with_logits(
            out.duration_logits[is_note], want[is_note], reduction="none").sum(-1).mean()
    else:
        duration = pitch.new_zeros(())
    root = torch.where(batch.chord_root >= 0, batch.chord_root, NO_CHORD)
    bass = torch.where(batch.chord_bass >= 0, batch.chord_bass, NO_CHORD)
    chord = (F.cross_entropy(out.chord_root.reshape(-1, 13), root.reshape(-1))
             + F.cross_entropy(out.chord_bass.reshape(-1, 13), bass.reshape(-1))
             + F.binary_cross_entropy_with_logits(out.chord_chroma, batch.chord_chroma,
                                                  reduction="none").sum(-1).mean())
    kl_c, kl_t = chord_post.kl(), texture_post.kl()
    # KL averaged over latent dimensions, as the authors' code does (kl_divergence(…).mean()):
    # the reconstruction terms are per-token means, and a per-segment KL summed over 256
    # dimensions outweighed them ~60x — it collapsed z_txt (KL -> 1 nat) in our first GPU run.
    kl = kl_c / chord_post.mean.shape[-1] + kl_t / texture_post.mean.shape[-1]
    total = pitch + DURATION_WEIGHT * duration + beta * kl + chord
    return LossParts(total, float(pitch.detach()), float(duration.detach()),
                     float(kl_c.detach()), float(kl_t.detach()), float(chord.detach()))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------ scoring


@torch.no_grad()
def reconstruct(model: ChordTextureVae, batch: SegmentTensors) -> np.ndarray:
    """Posterior means -> greedy decoding: rows (segment, onset_16th, pitch, duration_16th)."""
    chord_post, texture_post = model.encode(batch)
    return decode(model, chord_post.mean, texture_post.mean)


def grid_rows(batch: SegmentTensors) -> np.ndarray:
    """The batch's own notes as rows (segment, onset_16th, pitch, duration_16th)."""
    pitch = batch.pitch.cpu().numpy()
    segment, step, slot = np.nonzero(pitch >= 0)
    duration = batch.duration.cpu().numpy()[segment, step, slot]
    return np.stack([segment, step, pitch[segment, step, slot], duration], axis=1).astype(
        np.int64)


def f1(predicted: np.ndarray, reference: np.ndarray) -> float:
    """F1 of two sets given as integer key arrays (1.0 when both are empty)."""
    p, r = set(predicted.tolist()), set(reference.tolist())
    if not p and not r:
        return 1.0
    hit = len(p & r)
    return 2 * hit / (len(p) + len(r))


def note_keys(rows: np.ndarray) -> np.ndarray:
    """(segment, onset, pitch) -> one integer key per note."""
    return (rows[:, 0] * SEGMENT_16TH + rows[:, 1]) * PITCHES + rows[:, 2]


def onset_keys(rows: np.ndarray) -> np.ndarray:
    """(segment, onset) -> one key per onset step."""
    return rows[:, 0] * SEGMENT_16TH + rows[:, 1]


def reconstruction_f1(model: ChordTextureVae, tensors: SegmentTensors, batch_size: int = 256
                      ) -> dict[str, float]:
    """Pitch (onset+pitch) and onset F1 of greedy reconstructions, pooled over all notes."""
    predicted: list[np.ndarray] = []
    reference: list[np.ndarray] = []
    for start in range(0, len(tensors), batch_size):
        index = torch.arange(start, min(start + batch_size, len(tensors)),
                             device=tensors.pitch.device)
        batch = tensors.take(index)
        for rows, out in ((reconstruct(model, batch), predicted), (grid_rows(batch), reference)):
            rows = rows.copy()
            rows[:, 0] += start
            out.append(rows)
    pred, ref = np.concatenate(predicted), np.concatenate(reference)
    return {"pitch_f1": f1(note_keys(pred), note_keys(ref)),
            "onset_f1": f1(onset_keys(pred), onset_keys(ref))}
