"""The learned chord model: log-probabilities of every `chord_table` row for every 8th-note slot
of a melody, for the template DP to score candidates with (issue item 4).

Input features (`song_features`, numpy, shared by training and inference), all key-relative:
- per 16th: the melody's pitch class above the tonic (one-hot 12) or rest, an onset flag (the
  pitch changes), its height ((pitch − 66) / 12, 0 at rests);
- per 8th slot: metric strength (downbeat, half bar, beat, quarter of a 2/2 bar, other 8th), last
  slot of the bar, place in the bar; bars since the phrase start and to the phrase end (one-hot,
  capped at 7), first / last phrase, phrase length; slots per bar (4, 6, 8, 9, 12) and compound
  beat; minor mode.
Network (`ChordNet`): the two 16ths of a slot and its position features → linear → a residual
dilated conv stack over slots (local context, ±30 slots) → bar pooling (mean, max) → a
bidirectional GRU over bars (the whole song) → broadcast back to the slots → linear + two conv
blocks → 73 logits (72 rows root × triad, 1 no-chord). The GRU runs per bar, not per slot: 32
steps for 32 bars keeps a song's forward pass within a few ms on one CPU thread.

torch is imported here, so only code that asks for the learned scorer imports this module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.errors import BadInputError, LibraryError

WEIGHTS_PATH = Path(__file__).resolve().parents[1] / "data" / "models" / "melody_chords.pt"
N_TRIADS = 6  # len(engine.chords.TRIADS)
NO_CHORD_ROW = 12 * N_TRIADS
CHORD_ROWS = NO_CHORD_ROW + 1
PHRASE_CAP = 8  # bars since / to a phrase boundary, one-hot 0..7 (7 = "7 or more")
SLOTS_PER_BAR = (4, 6, 8, 9, 12)  # 2/4; 3/4, 6/8; 4/4, 2/2; 9/8; 12/8
HEIGHT_CENTRE = 66
HEIGHT_CHANNEL = 14
NOTE_FEATURES = 15  # 12 pitch classes, rest, onset, height
SLOT_FEATURES = 5 + 2 + 2 * PHRASE_CAP + 3 + len(SLOTS_PER_BAR) + 1 + 1


def song_features(
    melody_pitch_16th: np.ndarray, tonic_pc: int, mode: str, sixteenths_per_bar: int,
    beat_16th: int, phrases: Sequence[tuple[int, int]],
) -> tuple[np.ndarray, np.ndarray]:
    """(per-16th features (T, NOTE_FEATURES), per-slot features (T/2, SLOT_FEATURES)), float32.

    The melody must already span whole bars (T a multiple of `sixteenths_per_bar`)."""
    pitch = np.asarray(melody_pitch_16th, dtype=np.int64)
    length = len(pitch)
    bar16 = sixteenths_per_bar
    sounding = pitch >= 0
    notes = np.zeros((length, NOTE_FEATURES), dtype=np.float32)
    notes[np.flatnonzero(sounding), (pitch[sounding] - tonic_pc) % 12] = 1.0
    notes[~sounding, 12] = 1.0
    previous = np.concatenate(([-1], pitch[:-1]))
    notes[:, 13] = sounding & (pitch != previous)
    notes[:, HEIGHT_CHANNEL] = np.where(sounding, (pitch - HEIGHT_CENTRE) / 12.0, 0.0)

    n_slots = length // 2
    slot_bar = bar16 // 2
    pos = (np.arange(n_slots) % slot_bar) * 2  # 16ths into the bar
    beats = bar16 // beat_16th
    strength = np.full(n_slots, 4)
    strength[(pos % 4 == 0) & (beat_16th == 8)] = 3
    strength[pos % beat_16th == 0] = 2
    strength[(pos == bar16 // 2) & (beats % 2 == 0)] = 1
    strength[pos == 0] = 0
    slots = np.zeros((n_slots, SLOT_FEATURES), dtype=np.float32)
    slots[np.arange(n_slots), strength] = 1.0
    slots[:, 5] = pos == bar16 - 2
    slots[:, 6] = pos / bar16
    bar_of_slot = np.arange(n_slots) // slot_bar
    since = np.zeros(length // bar16, dtype=np.int64)
    until = np.zeros_like(since)
    first = np.zeros(len(since), dtype=bool)
    last = np.zeros_like(first)
    size = np.zeros(len(since))
    for i, (start, bars) in enumerate(phrases):
        lo, hi = max(start, 0), min(start + bars, len(since))
        if lo >= hi:
            continue
        index = np.arange(lo, hi)
        since[lo:hi] = np.minimum(index - start, PHRASE_CAP - 1)
        until[lo:hi] = np.minimum(start + bars - 1 - index, PHRASE_CAP - 1)
        first[lo:hi] = i == 0
        last[lo:hi] = i == len(phrases) - 1
        size[lo:hi] = min(bars, 16) / 8.0
    col = 7
    slots[np.arange(n_slots), col + since[bar_of_slot]] = 1.0
    col += PHRASE_CAP
    slots[np.arange(n_slots), col + until[bar_of_slot]] = 1.0
    col += PHRASE_CAP
    slots[:, col] = first[bar_of_slot]
    slots[:, col + 1] = last[bar_of_slot]
    slots[:, col + 2] = size[bar_of_slot]
    col += 3
    meter = min(range(len(SLOTS_PER_BAR)), key=lambda k: abs(SLOTS_PER_BAR[k] - slot_bar))
    slots[:, col + meter] = 1.0
    col += len(SLOTS_PER_BAR)
    slots[:, col] = beat_16th == 6
    slots[:, col + 1] = mode == "minor"
    return notes, slots


@dataclass(frozen=True)
class ChordNetConfig:
    channels: int = 96
    bar_hidden: int = 64
    local_dilations: tuple[int, ...] = (1, 2, 4, 8)
    post_dilations: tuple[int, ...] = (1, 2)
    dropout: float = 0.1

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ChordNetConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        for name in ("local_dilations", "post_dilations"):
            if name in known:
                known[name] = tuple(known[name])
        return cls(**known)


class _ResidualConv(nn.Module):
    def __init__(self, channels: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.out = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (x + self.dropout(self.out(torch.relu(self.conv(x))))) * mask


class ChordNet(nn.Module):
    """Melody + position features per slot → chord-row logits per slot (module docstring)."""

    def __init__(self, config: ChordNetConfig) -> None:
        super().__init__()
        c = config.channels
        self.config = config
        self.inp = nn.Linear(2 * NOTE_FEATURES + SLOT_FEATURES, c)
        self.local = nn.ModuleList(
            _ResidualConv(c, d, config.dropout) for d in config.local_dilations)
        self.pool = nn.Linear(2 * c, c)
        self.bars = nn.GRU(c, config.bar_hidden, batch_first=True, bidirectional=True)
        self.merge = nn.Linear(c + 2 * config.bar_hidden, c)
        self.post = nn.ModuleList(
            _ResidualConv(c, d, config.dropout) for d in config.post_dilations)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(c, CHORD_ROWS)

    def forward(self, notes: torch.Tensor, slots: torch.Tensor, slots_per_bar: int,
                bars: torch.Tensor | None = None) -> torch.Tensor:
        """notes (B, 2S, NOTE_FEATURES), slots (B, S, SLOT_FEATURES) → logits (B, S, 73).

        S is a whole number of bars; `bars` (B,) gives each song's length in bars when a
        batch is padded (None: no padding)."""
        batch, n_slots = slots.shape[:2]
        n_bars = n_slots // slots_per_bar
        x = torch.cat([notes.reshape(batch, n_slots, 2 * NOTE_FEATURES), slots], dim=2)
        if bars is None:
            mask = torch.ones(batch, 1, n_slots, dtype=x.dtype, device=x.device)
        else:
            index = torch.arange(n_slots, device=x.device)[None, :]
            mask = (index < (bars * slots_per_bar)[:, None]).to(x.dtype)[:, None, :]
        h = self.dropout(torch.relu(self.inp(x))).transpose(1, 2) * mask  # (B, C, S)
        for block in self.local:
            h = block(h, mask)
        per_bar = h.reshape(batch, h.shape[1], n_bars, slots_per_bar)
        pooled = torch.relu(self.pool(torch.cat(
            [per_bar.mean(dim=3), per_bar.amax(dim=3)], dim=1).transpose(1, 2)))
        if bars is None:
            context, _ = self.bars(pooled)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(
                pooled, bars.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = self.bars(packed)
            context, _ = nn.utils.rnn.pad_packed_sequence(
                out, batch_first=True, total_length=n_bars)
        context = context.repeat_interleave(slots_per_bar, dim=1)  # (B, S, 2H)
        h = torch.relu(self.merge(torch.cat([h.transpose(1, 2), context], dim=2)))
        h = h.transpose(1, 2) * mask
        for block in self.post:
            h = block(h, mask)
        logits: torch.Tensor = self.head(self.dropout(h.transpose(1, 2)))
        return logits


class ChordModel:
    """Trained `ChordNet`s in eval mode with their provenance; see `slot_log_probs`. Several
    nets (independently trained members) are an ensemble: their probabilities are averaged."""

    def __init__(self, net: ChordNet | Sequence[ChordNet],
                 provenance: dict[str, Any] | None = None) -> None:
        self.nets = tuple(n.eval() for n in ([net] if isinstance(net, ChordNet) else net))
        if not self.nets:
            raise ValueError("a chord model needs at least one net")
        self.provenance = provenance or {}

    @property
    def net(self) -> ChordNet:
        """The first (or only) member."""
        return self.nets[0]

    def slot_log_probs(
        self, melody_pitch_16th: np.ndarray, tonic_pc: int, mode: str,
        sixteenths_per_bar: int, beat_16th: int, phrases: Sequence[tuple[int, int]],
    ) -> np.ndarray:
        """(n_slots, CHORD_ROWS) float32 log-probabilities over `chord_table` rows per 8th.

        `melody_pitch_16th`: absolute MIDI pitch per 16th (−1 rest) from phrase 1's downbeat,
        whole bars long (a ragged end is padded with rests and its slots cut off again);
        `phrases`: (start bar, bars) on that grid. Same input, same output, bit for bit."""
        pitch = np.asarray(melody_pitch_16th)
        if pitch.ndim != 1:
            raise BadInputError("melody_pitch_16th must be one pitch per 16th")
        if sixteenths_per_bar < 2 or sixteenths_per_bar % 2 or beat_16th < 1:
            raise BadInputError(
                f"unsupported bar of {sixteenths_per_bar} 16ths / beat of {beat_16th}")
        n_slots = (len(pitch) + 1) // 2
        bars = max(1, -(-len(pitch) // sixteenths_per_bar))
        padded = np.full(bars * sixteenths_per_bar, -1, dtype=np.int64)
        padded[: len(pitch)] = pitch
        notes, slots = song_features(padded, tonic_pc % 12, mode, sixteenths_per_bar, beat_16th,
                                     phrases)
        with torch.inference_mode():
            notes_t, slots_t = torch.from_numpy(notes)[None], torch.from_numpy(slots)[None]
            members = torch.stack([
                torch.log_softmax(net(notes_t, slots_t, sixteenths_per_bar // 2)[0, :n_slots],
                                  dim=1) for net in self.nets])
            # mean of the members' probabilities, in the log domain
            log_probs = torch.logsumexp(members, dim=0) - math.log(len(self.nets))
        result: np.ndarray = log_probs.numpy().astype(np.float32, copy=False)
        return result


def save_model(net: ChordNet | Sequence[ChordNet], path: Path, meta: dict[str, Any]) -> None:
    """fp32 weights + config of each member + a short meta record, written atomically."""
    import io

    from engine.atomic_file import atomic_output

    buffer = io.BytesIO()
    members = [
        {"config": asdict(n.config),
         "state_dict": {k: v.detach().cpu().float().contiguous()
                        for k, v in n.state_dict().items()}}
        for n in ([net] if isinstance(net, ChordNet) else net)
    ]
    torch.save({"members": members, "meta": meta}, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as out:
        out.write(buffer.getvalue())


def read_model(path: Path) -> ChordModel:
    """A `ChordModel` from `path` (and its provenance JSON beside it, when present)."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        nets = []
        for member in saved.get("members", [saved]):  # a single-net file has no "members"
            net = ChordNet(ChordNetConfig.from_dict(member["config"]))
            net.load_state_dict(member["state_dict"])
            nets.append(net)
    except (OSError, KeyError, RuntimeError) as err:
        raise LibraryError(f"cannot load the chord model {path}: {err}") from err
    provenance_path = path.with_suffix(".json")
    provenance = (json.loads(provenance_path.read_text()) if provenance_path.is_file()
                  else dict(saved.get("meta", {})))
    return ChordModel(nets, provenance)


@lru_cache(maxsize=4)
def load_chord_model(path: Path = WEIGHTS_PATH) -> ChordModel:
    """The shipped model (engine/data/models/melody_chords.pt), loaded once per process."""
    return read_model(path)


__all__ = ["CHORD_ROWS", "NO_CHORD_ROW", "ChordModel", "ChordNet", "ChordNetConfig",
           "load_chord_model", "read_model", "save_model", "song_features"]
