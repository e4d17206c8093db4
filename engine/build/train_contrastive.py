"""Training the contrastive texture encoder (McCallum et al. ISMIR 2022 applied to 2-bar piano
windows; algorithms.md §2.2) on the POP909 segment set of `engine.models.segments`.

Variants (`--positives`):
- next: NT-Xent, the positive of a window is the next 2 bars of its song (one shared random
  transposition for the pair, independent velocity jitter);
- augment: NT-Xent, the positive is the same window under another transposition (±6
  semitones), velocity jitter (×0.8–1.2) and 10% note dropout (SimCLR's augmentation views);
- supervised: the released arranger's transition model: the true next window must beat 4
  random ones under two linear heads (cross-entropy over 5 candidates).

Writes DIR/<variant>.pt (fp16, every epoch) and DIR/contrastive_log.json (command, seed,
per-epoch losses, final held-out metrics). Needs numpy and torch only.

Run: `python3 -m engine.build.train_contrastive --data .train/pop909_segments.npz
--positives next --device cuda --time-budget 80 --seed 0 --out DIR`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.build import probes
from engine.build.provenance import git_commit
from engine.models.contrastive import (
    EncoderConfig,
    NoteTable,
    TextureEncoder,
    embed,
    next_vs_random_loss,
    nt_xent,
    pick_device,
    save_encoder,
    transition_vectors,
)

VARIANTS = ("next", "augment", "supervised")
TEMPERATURE = 0.1
NEGATIVES = 4  # the supervised baseline's random candidates (algorithms.md §2.2)
MAX_SHIFT = 6  # transposition augmentation: −5..+6 semitones
VELOCITY_JITTER = 0.2
KEEP = 0.9  # note dropout of the augment views


@dataclass(frozen=True)
class TrainingWindows:
    """What the encoder needs of the segment file (`engine.models.segments`), plus each
    window's next non-overlapping window."""

    notes: np.ndarray  # (n, 4) int64 onset_16th, pitch, duration_16th, velocity
    offsets: np.ndarray  # (S+1,)
    song: np.ndarray  # (S,)
    bar: np.ndarray  # (S,)
    split: np.ndarray  # (S,) 0 train, 1 valid, 2 test (held-out songs)
    next_window: np.ndarray  # (S,) the window 2 bars later in the same song, −1 if none
    provenance: str

    def __len__(self) -> int:
        return len(self.song)


def next_windows(song: np.ndarray, bar: np.ndarray) -> np.ndarray:
    """For each window, the index of the window of the same song starting 2 bars later."""
    key = song.astype(np.int64) * 1_000_000 + bar.astype(np.int64)
    order = np.argsort(key, kind="stable")
    want = key + 2
    pos = np.clip(np.searchsorted(key[order], want), 0, len(key) - 1)
    found = key[order][pos] == want
    return np.where(found, order[pos], -1)


def load_windows(path: Path) -> TrainingWindows:
    """The segment file's windows (LibraryError, an OSError, when missing or damaged)."""
    from engine.models.segments import load_segments

    segments = load_segments(path)
    song, bar = segments.song.astype(np.int64), segments.bar.astype(np.int64)
    return TrainingWindows(
        notes=segments.notes.astype(np.int64), offsets=segments.note_offsets.astype(np.int64),
        song=song, bar=bar, split=segments.split.astype(np.int64),
        next_window=next_windows(song, bar), provenance=json.dumps(dict(segments.provenance)),
    )


# ------------------------------------------------------------------------------ training


class Trainer:
    """One variant's model, optimiser and batch recipe."""

    def __init__(self, data: TrainingWindows, variant: str, device: torch.device, seed: int,
                 batch: int, lr: float, config: EncoderConfig) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown positives {variant!r}; choose from {', '.join(VARIANTS)}")
        torch.manual_seed(seed)
        self.data, self.variant, self.device, self.batch = data, variant, device, batch
        self.table = NoteTable(data.notes, data.offsets, device)
        self.model = TextureEncoder(config).to(device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=1e-4)
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        needs_next = variant != "augment"
        ok = data.next_window >= 0 if needs_next else np.ones(len(data), dtype=bool)
        self.anchors = {s: np.flatnonzero((data.split == s) & ok) for s in (0, 1)}
        self.train_pool = np.flatnonzero(data.split == 0)

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, device=self.device, generator=self.gen)

    def _shift(self, n: int) -> torch.Tensor:
        return torch.randint(-MAX_SHIFT + 1, MAX_SHIFT + 1, (n,), device=self.device,
                             generator=self.gen)

    def loss(self, anchors: np.ndarray) -> torch.Tensor:
        n = len(anchors)
        a = torch.as_tensor(anchors, device=self.device)
        vel = (1 - VELOCITY_JITTER, 1 + VELOCITY_JITTER)
        m, t = self.model, self.table
        if self.variant == "augment":
            one = t.rolls(a, self._shift(n), self._uniform(n, *vel), KEEP, self.gen)
            two = t.rolls(a, self._shift(n), self._uniform(n, *vel), KEEP, self.gen)
            return nt_xent(m.project(m(one)), m.project(m(two)), TEMPERATURE)
        nxt = torch.as_tensor(self.data.next_window[anchors], device=self.device)
        shift = self._shift(n)
        now = m(t.rolls(a, shift, self._uniform(n, *vel)))
        then = m(t.rolls(nxt, shift, self._uniform(n, *vel)))
        if self.variant == "next":
            return nt_xent(m.project(now), m.project(then), TEMPERATURE)
        others = torch.as_tensor(self.rng.choice(self.train_pool, size=n * NEGATIVES),
                                 device=self.device)
        rand = m(t.rolls(others, shift.repeat_interleave(NEGATIVES),
                         self._uniform(n * NEGATIVES, *vel)))
        return next_vs_random_loss(m, now, then, rand.view(n, NEGATIVES, -1))

    def step(self, anchors: np.ndarray) -> float:
        self.model.train()
        self.opt.zero_grad()
        loss = self.loss(anchors)
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    @torch.no_grad()
    def valid_loss(self, batches: int = 8) -> float:
        self.model.eval()
        rng = np.random.default_rng(1)  # the same validation batches every epoch
        pool = self.anchors[1]
        if len(pool) < 2:
            return float("nan")
        losses = [float(self.loss(rng.choice(pool, size=min(self.batch, len(pool)),
                                             replace=False))) for _ in range(batches)]
        return float(np.mean(losses))


def final_metrics(
    model: TextureEncoder, variant: str, data: TrainingWindows, probe_set: probes.ProbeSet,
    device: torch.device, seed: int,
) -> dict[str, float]:
    """Probes on h and retrieval with the transition vectors, on held-out songs."""
    table = NoteTable(data.notes, data.offsets, device)
    ids = probe_set.needed
    rep = embed(model, table, ids, projected=False)
    h = probes.by_window(ids, rep, len(data))
    query, candidate = transition_vectors(model, variant, table, ids, rep)
    return probes.judge(
        probe_set, h, probes.by_window(ids, query, len(data)),
        probes.by_window(ids, candidate, len(data)), seed=seed, device=str(device),
    )


def train(args: argparse.Namespace, command: str) -> dict[str, Any]:
    began = time.monotonic()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    data = load_windows(args.data)
    config = EncoderConfig(conv_channels=args.conv_channels, hidden=args.hidden,
                           projection=args.projection)
    trainer = Trainer(data, args.positives, device, args.seed, args.batch, args.lr, config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log: dict[str, Any] = {
        "command": command, "variant": args.positives, "seed": args.seed, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "git_commit": git_commit(), "data": str(args.data),
        "data_provenance": data.provenance, "windows": len(data),
        "train_anchors": len(trainer.anchors[0]), "batch": args.batch, "lr": args.lr,
        "temperature": TEMPERATURE, "config": asdict(config),
        "epochs": [],
    }
    weights = out / f"{args.positives}.pt"
    log_path = args.log or out / "contrastive_log.json"
    budget = args.time_budget - args.eval_reserve
    steps_per_epoch = max(1, len(trainer.anchors[0]) // args.batch)
    if args.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, args.max_steps_per_epoch)
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    stopped = False
    for epoch in range(1, args.epochs + 1):
        order = trainer.rng.permutation(trainer.anchors[0])
        losses = []
        for s in range(steps_per_epoch):
            if time.monotonic() - began > budget:
                stopped = True
                break
            losses.append(trainer.step(order[s * args.batch : (s + 1) * args.batch]))
        if not losses:
            break
        entry = {"epoch": epoch, "steps": len(losses), "train_loss": float(np.mean(losses)),
                 "valid_loss": trainer.valid_loss(), "seconds": time.monotonic() - began}
        log["epochs"].append(entry)
        print(json.dumps(entry), flush=True)
        if best is None or not entry["valid_loss"] >= best[0]:  # NaN (no valid set): keep last
            state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            best = (entry["valid_loss"], epoch, state)
        save_encoder(trainer.model, weights, _meta(log))
        log_path.write_text(json.dumps(log, indent=1))
        if stopped:
            break
    if best is not None:  # the epoch with the lowest validation loss is the one shipped
        trainer.model.load_state_dict(best[2])
        log["best_epoch"] = best[1]
    if args.eval:
        probe_set = probes.probe_set(data.notes, data.offsets, data.split, data.next_window,
                                     seed=args.seed, max_train=args.probe_train,
                                     max_anchors=args.probe_anchors)
        log["final_metrics"] = final_metrics(trainer.model, args.positives, data, probe_set,
                                             device, args.seed)
        log["final_metrics"]["chance_top1"] = 1.0 / probes.CANDIDATES
        print(json.dumps({"final": log["final_metrics"]}), flush=True)
    log["seconds"] = time.monotonic() - began
    save_encoder(trainer.model, weights, _meta(log))
    log_path.write_text(json.dumps(log, indent=1))
    return log


def _meta(log: dict[str, Any]) -> dict[str, Any]:
    keep = ("command", "variant", "seed", "device", "device_name", "git_commit", "data",
            "temperature", "config", "best_epoch", "final_metrics", "epochs")
    meta = {k: log[k] for k in keep if k in log}
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m engine.build.train_contrastive",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(".train/pop909_segments.npz"))
    parser.add_argument("--positives", choices=VARIANTS, required=True)
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda")
    parser.add_argument("--time-budget", type=float, default=600.0,
                        help="seconds for the whole run, evaluation included")
    parser.add_argument("--eval-reserve", type=float, default=15.0,
                        help="seconds of the budget kept for the final evaluation")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--max-steps-per-epoch", type=int, default=0, help="0: a full pass")
    parser.add_argument("--batch", type=int, default=256, help="N pairs (2N views)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--conv-channels", type=int, default=EncoderConfig.conv_channels)
    parser.add_argument("--hidden", type=int, default=EncoderConfig.hidden)
    parser.add_argument("--projection", type=int, default=EncoderConfig.projection)
    parser.add_argument("--probe-train", type=int, default=20000)
    parser.add_argument("--probe-anchors", type=int, default=2000)
    parser.add_argument("--no-eval", dest="eval", action="store_false")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for torch (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--log", type=Path, default=None,
                        help="training log (default: OUT/contrastive_log.json)")
    args = parser.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    command = " ".join(["python3 -m engine.build.train_contrastive", *given])
    try:
        train(args, command)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
