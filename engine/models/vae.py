"""The chord/texture disentanglement VAE (Wang et al., ISMIR 2020; algorithms.md §2.3) as the
re-harmonizer runs it: model, its tensors (2-bar segments as note grids and chord features),
greedy decoding, and saving/loading the weights. Training (sizes, loss, augmentation, scoring)
lives in engine/build/vae_training.py.

Scaled down from the paper so the shipped weights stay small and a 32-bar song decodes on a
2-core CPU in tens of milliseconds (the paper's 1024-unit GRUs give ~30M parameters):
- chord encoder: per-beat 36-d chord (one-hot root, chroma, one-hot bass) -> bi-GRU -> z_chd;
- texture encoder: (onset, duration/32) rolls 32x128 -> conv 4x12 stride 4x1 (10 channels) ->
  max-pool 1x4 -> per-beat linear 290 -> L -> bi-GRU -> z_txt (paper §3.2);
- PianoTree-style decoder: a time-level GRU over the 32 sixteenths from [z_chd, z_txt] and a
  step embedding; per step a note-level GRU emits pitches in ascending order (128 + EOS; SOS
  starts) and, for each pitch, duration as 5 binary digits (1..32 sixteenths).
  Departure from PianoTree, on purpose: the time-level GRU is not fed the previous step's
  decoded notes, so at inference all 32 steps' note-level decoding runs as one batch (at most
  `max_notes` sequential note steps instead of 32 x that) — the CPU inference goal.
- chord decoder: z_chd -> per-beat root (12 + none), chroma (12 bits), bass (12 + none).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from engine.atomic_file import atomic_output
from engine.errors import LibraryError
from engine.models.segments import SEGMENT_16TH, SEGMENT_BEATS

PITCHES = 128
EOS = 128
SOS = 129
DURATION_BITS = 5  # duration-1 in 0..31 as 5 binary digits (paper §3.3)
NO_CHORD = 12  # the root/bass class of a beat without a chord
CHORD_DIM = 36
WEIGHTS_FORMAT = 1
_BIT_VALUES = 2 ** torch.arange(DURATION_BITS - 1, -1, -1)  # MSB first


@dataclass(frozen=True)
class VaeConfig:
    """Sizes of the model (saved with the weights, so loading rebuilds the same network)."""

    z_chord: int = 128
    z_texture: int = 256
    chord_hidden: int = 192
    conv_channels: int = 10
    texture_linear: int = 256
    texture_hidden: int = 256
    time_hidden: int = 256
    step_embed: int = 16
    note_hidden: int = 160
    pitch_embed: int = 64
    max_notes: int = 16  # notes per 16th step (POP909 segments hold at most 15)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> VaeConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown VAE config fields {sorted(unknown)}")
        return cls(**{k: int(v) for k, v in values.items()})


# ------------------------------------------------------------------------------- tensors


@dataclass(frozen=True, eq=False)
class SegmentTensors:
    """2-bar segments as dense tensors: the note grid per 16th step (pitches ascending, -1
    after the last) and the per-beat chords. Rolls are built from the grid per batch, so
    transposition is a shift of the pitch grid."""

    pitch: Tensor  # (S, 32, max_notes) int16, -1 = no note
    duration: Tensor  # (S, 32, max_notes) uint8 1..32 (0 where no note)
    velocity: Tensor  # (S, 32, max_notes) uint8
    chord_root: Tensor  # (S, 8) int64, -1 = no chord
    chord_bass: Tensor  # (S, 8) int64
    chord_chroma: Tensor  # (S, 8, 12) float32

    def __len__(self) -> int:
        return int(self.pitch.shape[0])

    def to(self, device: torch.device) -> SegmentTensors:
        return SegmentTensors(*(t.to(device) for t in (
            self.pitch, self.duration, self.velocity, self.chord_root, self.chord_bass,
            self.chord_chroma)))

    def take(self, index: Tensor) -> SegmentTensors:
        return SegmentTensors(*(t[index] for t in (
            self.pitch, self.duration, self.velocity, self.chord_root, self.chord_bass,
            self.chord_chroma)))

def grid_from_notes(owner: np.ndarray, notes: np.ndarray, n_segments: int, max_notes: int,
                    chords: tuple[np.ndarray, ...]) -> SegmentTensors:
    """Note rows (onset_16th, pitch, duration_16th, velocity) of segment owner[i] -> tensors."""
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 4)
    owner = np.asarray(owner, dtype=np.int64)
    inside = (notes[:, 0] >= 0) & (notes[:, 0] < SEGMENT_16TH) & (notes[:, 1] >= 0) & (
        notes[:, 1] < PITCHES)
    notes, owner = notes[inside], owner[inside]
    # order by step, pitch, longest first; keep the first of each (step, pitch)
    order = np.lexsort((-notes[:, 2], notes[:, 1], notes[:, 0], owner))
    notes, owner = notes[order], owner[order]
    step = owner * SEGMENT_16TH + notes[:, 0]
    key = step * PITCHES + notes[:, 1]
    first = np.concatenate([[True], key[1:] != key[:-1]]) if len(key) else np.zeros(0, bool)
    notes, step = notes[first], step[first]
    new_step = np.concatenate([[True], step[1:] != step[:-1]]) if len(step) else first
    group_start = np.maximum.accumulate(np.where(new_step, np.arange(len(step)), 0))
    slot = np.arange(len(step)) - group_start
    keep = slot < max_notes
    step, slot, notes = step[keep], slot[keep], notes[keep]
    shape = (n_segments * SEGMENT_16TH, max_notes)
    pitch = np.full(shape, -1, dtype=np.int16)
    duration = np.zeros(shape, dtype=np.uint8)
    velocity = np.zeros(shape, dtype=np.uint8)
    pitch[step, slot] = notes[:, 1]
    duration[step, slot] = np.clip(notes[:, 2], 1, SEGMENT_16TH)
    velocity[step, slot] = np.clip(notes[:, 3], 0, 127)
    root, bass, chroma = chords
    grid = (n_segments, SEGMENT_16TH, max_notes)
    return SegmentTensors(
        torch.from_numpy(pitch.reshape(grid)), torch.from_numpy(duration.reshape(grid)),
        torch.from_numpy(velocity.reshape(grid)),
        torch.from_numpy(np.asarray(root, dtype=np.int64).reshape(n_segments, SEGMENT_BEATS)),
        torch.from_numpy(np.asarray(bass, dtype=np.int64).reshape(n_segments, SEGMENT_BEATS)),
        torch.from_numpy(np.asarray(chroma, dtype=np.float32).reshape(
            n_segments, SEGMENT_BEATS, 12)),
    )


def texture_input(pitch: Tensor, duration: Tensor) -> Tensor:
    """(B, 2, 32, 128) float: onset flags and duration/32 at each onset (the texture encoder's
    roll, §3.2)."""
    b = pitch.shape[0]
    roll = torch.zeros(b, 2, SEGMENT_16TH, PITCHES + 1, device=pitch.device)
    index = torch.where(pitch >= 0, pitch.long(), PITCHES)  # no note -> a spare column
    roll[:, 0].scatter_(2, index, 1.0)
    roll[:, 1].scatter_(2, index, duration.float() / SEGMENT_16TH)
    return roll[..., :PITCHES]


def chord_input(root: Tensor, chroma: Tensor, bass: Tensor) -> Tensor:
    """(B, 8, 36) per-beat chord features: one-hot root, chroma, one-hot bass (zeros = none)."""
    one_root = F.one_hot(torch.where(root >= 0, root, NO_CHORD), NO_CHORD + 1)[..., :12]
    one_bass = F.one_hot(torch.where(bass >= 0, bass, NO_CHORD), NO_CHORD + 1)[..., :12]
    return torch.cat([one_root.float(), chroma.float(), one_bass.float()], dim=-1)


def duration_bits(duration: Tensor) -> Tensor:
    """Durations 1..32 -> (…, 5) float bits of duration-1, MSB first."""
    value = (duration.long() - 1).clamp(0, 31)
    return ((value.unsqueeze(-1) // _BIT_VALUES.to(value.device)) % 2).float()


def bits_duration(bits: Tensor) -> Tensor:
    """(…, 5) 0/1 bits -> durations 1..32."""
    return (bits.long() * _BIT_VALUES.to(bits.device)).sum(-1) + 1


# --------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Posterior:
    mean: Tensor
    logvar: Tensor

    def sample(self) -> Tensor:
        return self.mean + torch.randn_like(self.mean) * torch.exp(0.5 * self.logvar)

    def kl(self) -> Tensor:
        """KL to N(0, I), summed over dimensions, mean over the batch."""
        return (-0.5 * (1 + self.logvar - self.mean**2 - self.logvar.exp()).sum(-1)).mean()


@dataclass(frozen=True)
class DecoderOutput:
    pitch_logits: Tensor  # (B·32, T, 129)
    duration_logits: Tensor  # (B·32, T, 5)
    chord_root: Tensor  # (B, 8, 13)
    chord_chroma: Tensor  # (B, 8, 12)
    chord_bass: Tensor  # (B, 8, 13)


class ChordEncoder(nn.Module):
    def __init__(self, config: VaeConfig) -> None:
        super().__init__()
        self.gru = nn.GRU(CHORD_DIM, config.chord_hidden, batch_first=True, bidirectional=True)
        self.mean = nn.Linear(2 * config.chord_hidden, config.z_chord)
        self.logvar = nn.Linear(2 * config.chord_hidden, config.z_chord)

    def forward(self, chords: Tensor) -> Posterior:
        _, last = self.gru(chords)
        h = torch.cat([last[0], last[1]], dim=-1)
        return Posterior(self.mean(h), self.logvar(h))


class TextureEncoder(nn.Module):
    """Paper §3.2: conv 4x12 stride 4x1 -> max-pool 1x4 -> per-beat linear -> bi-GRU."""

    def __init__(self, config: VaeConfig) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, config.conv_channels, kernel_size=(4, 12), stride=(4, 1))
        self.pool = nn.MaxPool2d(kernel_size=(1, 4), stride=(1, 4))
        width = config.conv_channels * ((PITCHES - 12 + 1) // 4)  # 10 x 29 = 290
        self.beat = nn.Sequential(nn.Linear(width, config.texture_linear), nn.ReLU(),
                                  nn.Linear(config.texture_linear, config.texture_linear),
                                  nn.ReLU())
        self.gru = nn.GRU(config.texture_linear, config.texture_hidden, batch_first=True,
                          bidirectional=True)
        self.mean = nn.Linear(2 * config.texture_hidden, config.z_texture)
        self.logvar = nn.Linear(2 * config.texture_hidden, config.z_texture)

    def forward(self, roll: Tensor) -> Posterior:
        x = self.pool(F.relu(self.conv(roll)))  # (B, C, 8, 29)
        x = x.permute(0, 2, 1, 3).flatten(2)  # (B, 8 beats, C·29)
        _, last = self.gru(self.beat(x))
        h = torch.cat([last[0], last[1]], dim=-1)
        return Posterior(self.mean(h), self.logvar(h))


class ChordTextureVae(nn.Module):
    def __init__(self, config: VaeConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        z = c.z_chord + c.z_texture
        self.chord_encoder = ChordEncoder(c)
        self.texture_encoder = TextureEncoder(c)
        self.step = nn.Embedding(SEGMENT_16TH, c.step_embed)
        self.time_init = nn.Linear(z, c.time_hidden)
        self.time_gru = nn.GRU(z + c.step_embed, c.time_hidden, batch_first=True)
        self.note_init = nn.Linear(c.time_hidden, c.note_hidden)
        self.pitch_embedding = nn.Embedding(SOS + 1, c.pitch_embed)
        self.note_gru = nn.GRU(c.pitch_embed + DURATION_BITS, c.note_hidden, batch_first=True)
        self.pitch_out = nn.Linear(c.note_hidden, PITCHES + 1)
        self.duration_out = nn.Sequential(
            nn.Linear(c.note_hidden + c.pitch_embed, c.note_hidden), nn.ReLU(),
            nn.Linear(c.note_hidden, DURATION_BITS))
        self.chord_out = nn.Linear(c.z_chord, SEGMENT_BEATS * (2 * (NO_CHORD + 1) + 12))

    # ---- encoding
    def encode(self, batch: SegmentTensors) -> tuple[Posterior, Posterior]:
        chords = chord_input(batch.chord_root, batch.chord_chroma, batch.chord_bass)
        return (self.chord_encoder(chords),
                self.texture_encoder(texture_input(batch.pitch, batch.duration)))

    # ---- decoding
    def time_states(self, z_chord: Tensor, z_texture: Tensor) -> Tensor:
        """(B·32, note_hidden) initial note-level states, one per 16th step."""
        z = torch.cat([z_chord, z_texture], dim=-1)
        b = z.shape[0]
        steps = self.step.weight.unsqueeze(0).expand(b, -1, -1)
        x = torch.cat([z.unsqueeze(1).expand(-1, SEGMENT_16TH, -1), steps], dim=-1)
        h, _ = self.time_gru(x, torch.tanh(self.time_init(z)).unsqueeze(0).contiguous())
        return torch.tanh(self.note_init(h.reshape(b * SEGMENT_16TH, -1)))

    def chord_logits(self, z_chord: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.chord_out(z_chord).view(-1, SEGMENT_BEATS, 2 * (NO_CHORD + 1) + 12)
        return out[..., :13], out[..., 13:25], out[..., 25:]

    def note_logits(self, state: Tensor, tokens: Tensor, bits: Tensor, current: Tensor,
                    lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher-forced note-level pass: `tokens`/`bits` are the inputs (SOS + previous
        notes), `current` the pitch whose duration each position predicts, `lengths` the
        positions that count per row (notes + EOS). Rows are packed, so the many empty steps
        cost one position, not the batch's longest."""
        x = torch.cat([self.pitch_embedding(tokens), bits], dim=-1)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        out, _ = self.note_gru(packed, state.unsqueeze(0).contiguous())
        h, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                total_length=tokens.shape[1])
        duration = self.duration_out(torch.cat([h, self.pitch_embedding(current)], dim=-1))
        return self.pitch_out(h), duration

    def forward(self, batch: SegmentTensors, teacher_forcing: float = 1.0,
                sample: bool = True) -> tuple[DecoderOutput, Posterior, Posterior, Tensor]:
        """Returns the decoder output, both posteriors and the target tokens (B·32, T)."""
        chord_post, texture_post = self.encode(batch)
        z_c = chord_post.sample() if sample else chord_post.mean
        z_t = texture_post.sample() if sample else texture_post.mean
        state = self.time_states(z_c, z_t)
        tokens_in, bits_in, target, current = note_sequences(batch.pitch, batch.duration)
        lengths = (target != -100).sum(-1)
        if teacher_forcing < 1.0:  # scheduled sampling, two-pass (Mihaylova & Martins 2019)
            with torch.no_grad():
                logits, dur = self.note_logits(state, tokens_in, bits_in, current, lengths)
                guess = logits.argmax(-1)
                guess_bits = (dur > 0).float()
            own = torch.rand(tokens_in.shape, device=tokens_in.device) >= teacher_forcing
            own[:, 0] = False  # SOS stays
            tokens_in = tokens_in.clone()
            bits_in = bits_in.clone()
            tokens_in[:, 1:] = torch.where(own[:, 1:], guess[:, :-1], tokens_in[:, 1:])
            bits_in[:, 1:] = torch.where(own[:, 1:, None], guess_bits[:, :-1], bits_in[:, 1:])
        pitch_logits, duration_logits = self.note_logits(state, tokens_in, bits_in, current,
                                                         lengths)
        root, chroma, bass = self.chord_logits(z_c)
        return (DecoderOutput(pitch_logits, duration_logits, root, chroma, bass),
                chord_post, texture_post, target)


def note_sequences(pitch: Tensor, duration: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per 16th step (rows B·32): inputs [SOS, p1..pn] with duration bits [0, d1..dn], targets
    [p1..pn, EOS, -100…] and the pitch each position's duration head sees (the target pitch;
    EOS where none). Truncated to the longest step in the batch + 1."""
    rows = pitch.reshape(-1, pitch.shape[-1]).long()
    dur = duration.reshape(-1, duration.shape[-1])
    count = (rows >= 0).sum(-1)
    length = int(count.max().item()) + 1 if rows.numel() else 1
    rows, dur = rows[:, : length - 1], dur[:, : length - 1]
    n = rows.shape[0]
    position = torch.arange(length, device=rows.device).unsqueeze(0)
    padded = torch.cat([rows, torch.full((n, 1), -1, device=rows.device)], dim=1)
    target = torch.where(padded >= 0, padded, torch.where(position == count.unsqueeze(1),
                                                          EOS, -100))
    tokens_in = torch.cat([torch.full((n, 1), SOS, device=rows.device),
                           torch.where(rows >= 0, rows, EOS)], dim=1)
    bits = duration_bits(torch.where(rows >= 0, dur.long(), 1)) * (rows >= 0).unsqueeze(-1)
    bits_in = torch.cat([torch.zeros(n, 1, DURATION_BITS, device=rows.device), bits], dim=1)
    current = torch.where(target >= 0, target, EOS)
    return tokens_in, bits_in, target, current


# ------------------------------------------------------------------------------ decoding


@torch.no_grad()
def decode(model: ChordTextureVae, z_chord: Tensor, z_texture: Tensor,
           max_notes: int | None = None, allowed_pcs: Tensor | None = None) -> np.ndarray:
    """Greedy decoding -> (n, 4) int64 rows (segment, onset_16th, pitch, duration_16th).

    All B·32 steps decode together; rows leave the batch at their EOS and the loop stops when
    none is left. Pitches within a step must rise (as in training), which also rules out
    repeats. `allowed_pcs` (B, 32, 12) bool, when given, limits each step to those pitch
    classes (constrained decoding: the chord-tone option of the re-harmonizer)."""
    limit = model.config.max_notes if max_notes is None else max_notes
    state = model.time_states(z_chord, z_texture)
    n = state.shape[0]
    device = state.device
    alive = torch.arange(n, device=device)
    token = torch.full((n,), SOS, dtype=torch.long, device=device)
    bits = torch.zeros(n, DURATION_BITS, device=device)
    floor = torch.full((n,), -1, dtype=torch.long, device=device)
    h = state.unsqueeze(0).contiguous()
    pitch_range = torch.arange(PITCHES + 1, device=device)
    banned = None
    if allowed_pcs is not None:
        classes = allowed_pcs.reshape(n, 12).to(device)[:, pitch_range[:PITCHES] % 12]
        banned = torch.cat([~classes, torch.zeros(n, 1, dtype=torch.bool, device=device)], 1)
    found: list[Tensor] = []
    for _ in range(limit):
        x = torch.cat([model.pitch_embedding(token), bits], dim=-1).unsqueeze(1)
        out, h = model.note_gru(x, h)
        out = out[:, 0]
        logits = model.pitch_out(out)
        logits = logits.masked_fill((pitch_range.unsqueeze(0) <= floor.unsqueeze(1))
                                    & (pitch_range.unsqueeze(0) < PITCHES), float("-inf"))
        if banned is not None:
            logits = logits.masked_fill(banned[alive], float("-inf"))
        pitch = logits.argmax(-1)
        go_on = pitch != EOS
        if not bool(go_on.any()):
            break
        keep = go_on.nonzero().squeeze(1)
        pitch, out, alive = pitch[keep], out[keep], alive[keep]
        h = h[:, keep]
        d_logits = model.duration_out(torch.cat([out, model.pitch_embedding(pitch)], dim=-1))
        bits = (d_logits > 0).float()
        found.append(torch.stack([alive, pitch, bits_duration(bits)], dim=1))
        token, floor = pitch, pitch
    if not found:
        return np.zeros((0, 4), dtype=np.int64)
    rows = torch.cat(found).cpu().numpy()
    segment, step = np.divmod(rows[:, 0], SEGMENT_16TH)
    notes = np.stack([segment, step, rows[:, 1], rows[:, 2]], axis=1)
    return notes[np.lexsort((notes[:, 2], notes[:, 1], notes[:, 0]))]


# -------------------------------------------------------------------------- save / load


def save_weights(model: ChordTextureVae, path: Path, meta: Mapping[str, Any] | None = None
                 ) -> None:
    """fp16 state dict + config (+ meta) via a temporary file and os.replace."""
    state = {k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else
                 v.detach().cpu()) for k, v in model.state_dict().items()}
    payload = {"format": WEIGHTS_FORMAT, "config": model.config.to_json(), "state": state,
               "meta": json.dumps(dict(meta or {}), sort_keys=True)}
    with atomic_output(path) as out:
        torch.save(payload, out)


def load_weights(path: Path, device: torch.device | None = None
                 ) -> tuple[ChordTextureVae, dict[str, Any]]:
    """The model (fp32, eval mode) and its meta; LibraryError for a missing or damaged file.
    `weights_only` loading: a weights file can hold tensors and strings, never code."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if int(payload["format"]) != WEIGHTS_FORMAT:
            raise ValueError(f"weights format {payload['format']}, expected {WEIGHTS_FORMAT}")
        config = VaeConfig.from_mapping(json.loads(payload["config"]))
        model = ChordTextureVae(config)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in payload["state"].items()})
        meta = json.loads(payload["meta"])
    except FileNotFoundError as err:
        raise LibraryError(f"VAE weights {path} not found") from err
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, EOFError,
            pickle.UnpicklingError) as err:
        raise LibraryError(f"VAE weights {path} are damaged or of another model ({err})") from err
    model.eval()
    return model.to(device or torch.device("cpu")), meta
