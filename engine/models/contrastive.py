"""Contrastive texture embeddings of 2-bar piano windows (McCallum et al., ISMIR 2022, applied to
symbolic texture; algorithms.md §2.2): the window roll, the encoder, NT-Xent, weights files.

A window is 2 bars on the 16th grid (32 steps) of accompaniment notes (onset_16th, pitch,
duration_16th, velocity), onsets relative to the window start. The encoder sees three
channels at each onset (struck, duration/32 as in the VAE's duration roll §2.3, velocity/127)
over the 88 piano keys; one conv over (time, pitch) with a 4-step × 12-key kernel (as the
chord/texture VAE's texture encoder) learns voicing and rhythm shapes independent of register.
Rolls are built on the model's device from the flat note table, so a GPU never waits on numpy.
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
import torch.nn.functional as F
from torch import nn

from engine.errors import LibraryError

WINDOW_16TH = 32  # 2 bars of 4/4
LOWEST_KEY = 21  # A0
KEYS = 88
CHANNELS = 3  # struck, duration/32, velocity/127
WEIGHTS_FORMAT = 1


@dataclass(frozen=True)
class EncoderConfig:
    """Sizes of the texture encoder; saved with the weights so a file rebuilds its own model."""

    conv_channels: int = 16
    hidden: int = 256  # representation h (probes use it)
    projection: int = 128  # z, where NT-Xent compares views (the transition uses it)


def pick_device(name: str = "auto") -> torch.device:
    """"auto": CUDA when present, else CPU; anything else is passed to torch as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# ------------------------------------------------------------------------------ rolls


class NoteTable:
    """Windows as a flat note table on one device: window w owns rows offsets[w]:offsets[w+1].

    Notes with an onset outside the window are dropped and durations clipped at its end, so
    donor phrase edges and dataset windows read the same way."""

    def __init__(self, notes: np.ndarray, offsets: np.ndarray, device: torch.device) -> None:
        notes = np.asarray(notes, dtype=np.int64).reshape(-1, 4)
        offsets = np.asarray(offsets, dtype=np.int64)
        if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(notes):
            raise ValueError("note offsets do not index the note table")
        self.device = device
        self.notes = torch.as_tensor(notes, device=device)
        self.offsets = torch.as_tensor(offsets, device=device)
        self.windows = len(offsets) - 1

    def rolls(
        self, windows: torch.Tensor, transpose: torch.Tensor | None = None,
        velocity_scale: torch.Tensor | None = None, keep: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """(B, 3, 32, 88) float rolls of `windows`; optional per-window transposition
        (semitones) and velocity scale, and note dropout keeping each note with p=`keep`."""
        windows = windows.to(self.device)
        b = len(windows)
        start, stop = self.offsets[windows], self.offsets[windows + 1]
        counts = stop - start
        owner = torch.repeat_interleave(torch.arange(b, device=self.device), counts)
        first = torch.repeat_interleave(start - torch.cumsum(counts, 0) + counts, counts)
        rows = self.notes[first + torch.arange(len(owner), device=self.device)]
        onset, pitch, duration, velocity = rows.unbind(1)
        if transpose is not None:
            pitch = pitch + transpose.to(self.device)[owner]
        vel = velocity.float()
        if velocity_scale is not None:
            vel = vel * velocity_scale.to(self.device)[owner]
        ok = (onset >= 0) & (onset < WINDOW_16TH) & (pitch >= LOWEST_KEY)
        ok &= pitch < LOWEST_KEY + KEYS
        if keep < 1.0:
            ok &= torch.rand(len(owner), device=self.device, generator=generator) < keep
        owner, onset, pitch = owner[ok], onset[ok], pitch[ok] - LOWEST_KEY
        duration = torch.minimum(duration[ok], WINDOW_16TH - onset).clamp(min=1)
        roll = torch.zeros(b, CHANNELS, WINDOW_16TH, KEYS, device=self.device)
        roll[owner, 0, onset, pitch] = 1.0
        roll[owner, 1, onset, pitch] = duration.float() / WINDOW_16TH
        roll[owner, 2, onset, pitch] = (vel[ok] / 127.0).clamp(0.0, 1.0)
        return roll


def edge_windows(
    notes: np.ndarray, offsets: np.ndarray, bars: np.ndarray, bar_16th: int = 16
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every phrase's first and last 2 bars as windows: (head notes, head offsets, tail notes,
    tail offsets), onsets relative to each window (a 1-bar phrase is its own head and tail)."""
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 4)
    offsets = np.asarray(offsets, dtype=np.int64)
    n = len(offsets) - 1
    owner = np.repeat(np.arange(n), np.diff(offsets))
    tail_start = np.maximum(np.asarray(bars, dtype=np.int64) * bar_16th - WINDOW_16TH, 0)
    out = []
    for shift in (np.zeros(n, dtype=np.int64), tail_start):
        rel = notes.copy()
        rel[:, 0] -= shift[owner]
        inside = (rel[:, 0] >= 0) & (rel[:, 0] < WINDOW_16TH)
        out.append(rel[inside])
        out.append(np.concatenate([[0], np.cumsum(np.bincount(owner[inside], minlength=n))]))
    return out[0], out[1], out[2], out[3]


# ------------------------------------------------------------------------------ model


class TextureEncoder(nn.Module):
    """Roll → representation h (probes) → projection z (NT-Xent, transitions).

    `before`/`after` are the two linear heads of the next-vs-random baseline (algorithms.md
    §2.2: a window's "what comes next" and "what came before" views); the contrastive variants
    train only the shared projection."""

    def __init__(self, config: EncoderConfig = EncoderConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.conv_channels
        self.conv = nn.Conv2d(CHANNELS, c, kernel_size=(4, 12), stride=(4, 1))
        self.pool = nn.MaxPool2d(kernel_size=(1, 4))
        flat = c * (WINDOW_16TH // 4) * ((KEYS - 11) // 4)
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, config.hidden),
        )
        self.projection = nn.Sequential(
            nn.ReLU(), nn.Linear(config.hidden, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, config.projection),
        )
        self.before = nn.Linear(config.hidden, config.projection)
        self.after = nn.Linear(config.hidden, config.projection)

    def forward(self, roll: torch.Tensor) -> torch.Tensor:
        """h, the representation (B, hidden)."""
        return self.body(self.pool(F.relu(self.conv(roll))))

    def project(self, h: torch.Tensor) -> torch.Tensor:
        """z, unit length (B, projection)."""
        return F.normalize(self.projection(h), dim=-1)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent (Chen et al. 2020, eq. 1; McCallum et al. §3.2): 2N views, view i's
    positive is its pair, the other 2N−2 views are negatives, cosine similarity over τ."""
    z = F.normalize(torch.cat([z1, z2]), dim=-1)
    n = len(z1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def next_vs_random_loss(
    model: TextureEncoder, h_now: torch.Tensor, h_next: torch.Tensor, h_random: torch.Tensor
) -> torch.Tensor:
    """The released arranger's transition model (algorithms.md §2.2): the true next window must
    beat K random ones; score = <before-head(now), after-head(candidate)>, cross-entropy over
    the K+1 candidates. h_random is (B, K, hidden)."""
    query = model.before(h_now)  # (B, P)
    candidates = torch.cat([h_next[:, None], h_random], dim=1)  # (B, K+1, hidden)
    logits = torch.einsum("bp,bkp->bk", query, model.after(candidates))
    return F.cross_entropy(logits, torch.zeros(len(query), dtype=torch.long, device=query.device))


# ------------------------------------------------------------------------------ weights


def save_encoder(model: TextureEncoder, path: Path, meta: Mapping[str, Any]) -> None:
    """fp16 weights + config + provenance in one torch file (tensors and JSON text only, so
    `torch.load(weights_only=True)` reads it); written beside and moved over `path`."""
    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items()}
    blob = {
        "format": WEIGHTS_FORMAT,
        "config": json.dumps(asdict(model.config)),
        "meta": json.dumps(dict(meta)),
        "state": state,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    torch.save(blob, temp)
    temp.replace(path)


def load_encoder(
    path: Path, device: torch.device | None = None
) -> tuple[TextureEncoder, dict[str, Any]]:
    """(model in eval mode, float32, on `device`; its provenance). LibraryError if unreadable."""
    try:
        blob = torch.load(Path(path), map_location="cpu", weights_only=True)
        if int(blob["format"]) != WEIGHTS_FORMAT:
            raise ValueError(f"weights format {blob['format']}, expected {WEIGHTS_FORMAT}")
        model = TextureEncoder(EncoderConfig(**json.loads(blob["config"])))
        model.load_state_dict({k: v.float() for k, v in blob["state"].items()})
        meta = json.loads(blob["meta"])
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, EOFError,
            pickle.UnpicklingError) as err:
        raise LibraryError(f"texture embedding weights {path} are unreadable ({err})") from err
    model.eval()
    return model.to(device or torch.device("cpu")), meta


@torch.no_grad()
def embed(
    model: TextureEncoder, table: NoteTable, windows: np.ndarray | None = None,
    batch: int = 2048, projected: bool = True,
) -> np.ndarray:
    """Embeddings of `windows` (default: all) as float32 numpy: z (unit) or h."""
    ids = torch.arange(table.windows) if windows is None else torch.as_tensor(windows)
    was_training = model.training
    model.eval()
    parts = []
    for i in range(0, len(ids), batch):
        h = model(table.rolls(ids[i : i + batch]))
        parts.append((model.project(h) if projected else h).float().cpu())
    model.train(was_training)
    size = model.config.projection if projected else model.config.hidden
    return torch.cat(parts).numpy() if parts else np.zeros((0, size), dtype=np.float32)


def transition_vectors(
    model: TextureEncoder, variant: str, table: NoteTable, windows: np.ndarray,
    h: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(query, candidate) vectors whose cosine scores "candidate follows query": the shared
    projection z for the contrastive variants, the before/after heads for supervised.
    `h`: the windows' representations when already computed (saves the encoder pass)."""
    if h is None:
        h = embed(model, table, windows, projected=False)
    rep = torch.as_tensor(h, device=table.device)
    with torch.no_grad():
        if variant != "supervised":
            z = model.project(rep).cpu().numpy()
            return z, z
        return model.before(rep).cpu().numpy(), model.after(rep).cpu().numpy()
