"""Training the learned chord model (`engine.models.chord_model`) on the training split of
POP909 + Nottingham (`engine.build.chord_data`), with its provenance.

Splits: held-out songs (`is_held_out`) are never trained on; a seeded 5% of the remaining songs
of each corpus is the validation split (model selection), the rest trains.
Sampling: every epoch draws songs with replacement, uniformly within a corpus and with the
corpora weighted so each gives a set share of the slots (`--nottingham-share`, default half;
POP909 has 2.4× Nottingham's slots, folk tunes are the main target).
Weights: an exponential moving average of the trained weights (decay EMA_DECAY per step) is what
is scored each epoch and shipped (the best epoch by mean validation root accuracy).
Augmentation (per draw):
- register: the melody's height feature moves by −6..+5 semitones (the pitch classes are
  key-relative already, so this is the transposition that still changes an input);
- key: where the song's melody-only key estimate (`estimate_key`, what "auto key" gives the
  harmonizer) differs from the human key — 16% of POP909 songs, 7% of Nottingham tunes, mostly
  the relative major/minor or a fifth away — half the draws use the estimate, and 10% of all
  draws use the relative, dominant or subdominant key; targets are re-read relative to the key
  given. The model so learns to trust the melody over a wrong key, and the DP gets sensible
  scores when the detector errs.

Run: `python3 -m engine.build.train_chord_model --out engine/data/models/melody_chords.pt
[--seed 0] [--time-budget S] [--device cpu|cuda|auto]` (builds .train/chord_songs.npz first
when it is missing) -> the weights and a provenance JSON beside them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.atomic_file import atomic_output
from engine.build.chord_data import (
    DATASETS,
    NO_CHORD,
    NOTTINGHAM,
    POP909,
    ChordCorpus,
    ChordSong,
    load_corpus,
    read_corpus,
    relative_rows,
    save_corpus,
)
from engine.build.provenance import git_commit
from engine.errors import BadInputError, LibraryError
from engine.library.datasets import is_held_out
from engine.models.chord_model import (
    HEIGHT_CHANNEL,
    ChordModel,
    ChordNet,
    ChordNetConfig,
    save_model,
    song_features,
)
from engine.models.device import choose_device, seed_everything
from engine.types import Key

COMMAND = "python3 -m engine.build.train_chord_model"
DEFAULT_CORPUS = Path(".train/chord_songs.npz")
VALID_SHARE = 0.05
AUTO_KEY_SHARE = 0.5  # of the draws of a song whose estimated key differs from the human one
KEY_NOISE_SHARE = 0.1  # of all draws: the relative, dominant or subdominant key instead
REGISTER_SHIFT = 6  # semitones, −6..+5
LR_START, LR_END = 3e-3, 1e-4
WEIGHT_DECAY = 1e-2
EMA_DECAY = 0.995  # per step: a half-life of ~140 steps, about 4 epochs
NOTTINGHAM_SHARE = 0.5
GRAD_CLIP = 1.0
EPOCH_SLOTS = 200_000
BATCH_SLOTS = 6_000
FINAL_RESERVE_S = 60.0  # wall time kept for the final scoring


@dataclass(frozen=True)
class Example:
    """One song as the network sees it under one key: features and target rows."""

    notes: np.ndarray
    slots: np.ndarray
    rows: np.ndarray
    slots_per_bar: int


def example(song: ChordSong, key: Key, register_shift: int = 0) -> Example:
    notes, slots = song_features(song.pitch_16th, key.tonic_pc, key.mode,
                                 song.sixteenths_per_bar, song.beat_16th, song.phrases)
    if register_shift:
        sounding = notes[:, 12] == 0
        notes[sounding, HEIGHT_CHANNEL] += register_shift / 12.0
    return Example(notes, slots, relative_rows(song.chords, key.tonic_pc),
                   song.sixteenths_per_bar // 2)


def neighbour_keys(key: Key) -> list[Key]:
    """The keys a detector confuses most: relative major/minor, dominant, subdominant."""
    relative = (Key((key.tonic_pc + 9) % 12, "minor") if key.mode == "major"
                else Key((key.tonic_pc + 3) % 12, "major"))
    return [relative, Key((key.tonic_pc + 7) % 12, key.mode),
            Key((key.tonic_pc + 5) % 12, key.mode)]


def training_key(song: ChordSong, rng: np.random.Generator) -> Key:
    draw = rng.random()
    if song.auto_key != song.key and draw < AUTO_KEY_SHARE:
        return song.auto_key
    if draw >= 1.0 - KEY_NOISE_SHARE:
        options = neighbour_keys(song.key)
        return options[int(rng.integers(len(options)))]
    return song.key


@dataclass(frozen=True)
class Batch:
    notes: torch.Tensor  # (B, 2S, F)
    slots: torch.Tensor  # (B, S, F)
    rows: torch.Tensor  # (B, S) long, −100 on padding
    bars: torch.Tensor  # (B,)
    slots_per_bar: int

    def to(self, device: torch.device) -> Batch:
        return Batch(self.notes.to(device), self.slots.to(device), self.rows.to(device),
                     self.bars, self.slots_per_bar)


def collate(examples: Sequence[Example]) -> Batch:
    """Pad songs of one meter to the longest (whole bars)."""
    spb = examples[0].slots_per_bar
    if any(e.slots_per_bar != spb for e in examples):
        raise ValueError("a batch must hold one meter")
    longest = max(len(e.rows) for e in examples)
    notes = np.zeros((len(examples), 2 * longest, examples[0].notes.shape[1]), np.float32)
    slots = np.zeros((len(examples), longest, examples[0].slots.shape[1]), np.float32)
    rows = np.full((len(examples), longest), -100, np.int64)
    for i, e in enumerate(examples):
        notes[i, : len(e.notes)] = e.notes
        slots[i, : len(e.rows)] = e.slots
        rows[i, : len(e.rows)] = e.rows
    bars = torch.tensor([len(e.rows) // spb for e in examples])
    return Batch(torch.from_numpy(notes), torch.from_numpy(slots), torch.from_numpy(rows),
                 bars, spb)


def batches(examples: Sequence[Example], batch_slots: int) -> Iterator[Batch]:
    """Examples grouped by meter, sorted by length (little padding), cut at `batch_slots`."""
    by_meter: dict[int, list[Example]] = {}
    for e in examples:
        by_meter.setdefault(e.slots_per_bar, []).append(e)
    for group in by_meter.values():
        group.sort(key=lambda e: len(e.rows))
        chunk: list[Example] = []
        for e in group:
            if chunk and len(e.rows) * (len(chunk) + 1) > batch_slots:
                yield collate(chunk)
                chunk = []
            chunk.append(e)
        if chunk:
            yield collate(chunk)


def batch_loss(net: ChordNet, batch: Batch) -> torch.Tensor:
    logits = net(batch.notes, batch.slots, batch.slots_per_bar, batch.bars)
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                       batch.rows.reshape(-1), ignore_index=-100)


def train_step(net: ChordNet, optimizer: torch.optim.Optimizer, batch: Batch) -> float:
    net.train()
    loss = batch_loss(net, batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP)
    optimizer.step()
    return float(loss.detach())


# ----------------------------------------------------------------------------------- scoring


def _roots(rows: np.ndarray, tonic_pc: int) -> np.ndarray:
    """Absolute root pc of relative rows (−1: no chord)."""
    return np.where(rows == NO_CHORD, -1, (rows // 6 + tonic_pc) % 12)


@dataclass
class Tally:
    songs: int = 0
    slots: int = 0
    slot_hits: int = 0
    root_slots: int = 0
    root_hits: int = 0
    final_songs: int = 0
    final_hits: int = 0
    tonic_hits: int = 0  # baseline "always I": the given key's tonic on every slot
    tonic_final_hits: int = 0
    nll: float = 0.0

    def add(self, other: Tally) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self) -> dict[str, float]:
        def share(a: float, b: float) -> float:
            return round(a / b, 4) if b else math.nan

        return {"songs": self.songs, "slots": self.slots,
                "slot_acc": share(self.slot_hits, self.slots),
                "root_acc": share(self.root_hits, self.root_slots),
                "final_root_acc": share(self.final_hits, self.final_songs),
                "nll": share(self.nll, self.slots),
                "always_I_root_acc": share(self.tonic_hits, self.root_slots),
                "always_I_final_root_acc": share(self.tonic_final_hits, self.final_songs)}


def score_song(log_probs: np.ndarray, song: ChordSong, key: Key) -> Tally:
    """Argmax-row scores of one song's log-probabilities (given relative to `key`), judged in
    absolute pitch classes against the human chords."""
    truth = song.rows()
    best = log_probs.argmax(axis=1)
    given = relative_rows(song.chords, key.tonic_pc)
    human_root = _roots(truth, song.key.tonic_pc)
    root = _roots(best, key.tonic_pc)
    judged = np.flatnonzero(human_root >= 0)
    tally = Tally(songs=1, slots=len(truth), slot_hits=int((best == given).sum()),
                  root_slots=len(judged), root_hits=int((root[judged] == human_root[judged]).sum()),
                  tonic_hits=int((human_root[judged] == key.tonic_pc).sum()),
                  nll=float(-log_probs[np.arange(len(given)), given].sum()))
    if judged.size:
        last = judged[-1]
        tally.final_songs = 1
        tally.final_hits = int(root[last] == human_root[last])
        tally.tonic_final_hits = int(human_root[last] == key.tonic_pc)
    return tally


def evaluate(model: ChordModel, songs: Sequence[ChordSong], auto_key: bool = False
             ) -> dict[str, dict[str, float]]:
    """Scores per corpus and pooled, the key given as the human one (or the estimated one)."""
    tallies = {d: Tally() for d in (*DATASETS, "all")}
    for song in songs:
        key = song.auto_key if auto_key else song.key
        log_probs = model.slot_log_probs(song.pitch_16th, key.tonic_pc, key.mode,
                                         song.sixteenths_per_bar, song.beat_16th, song.phrases)
        tally = score_song(log_probs, song, key)
        tallies[song.dataset].add(tally)
        tallies["all"].add(tally)
    return {d: t.summary() for d, t in tallies.items() if t.songs}


# ---------------------------------------------------------------------------------- training


def split_songs(corpus: ChordCorpus, seed: int) -> dict[str, list[ChordSong]]:
    """train / valid (a seeded VALID_SHARE of each corpus's training songs) / held_out."""
    rng = np.random.default_rng(seed)
    split: dict[str, list[ChordSong]] = {"train": [], "valid": [], "held_out": []}
    for dataset in DATASETS:
        songs = [s for s in corpus.songs if s.dataset == dataset]
        split["held_out"] += [s for s in songs if is_held_out(dataset, s.song_id)]
        pool = [s for s in songs if not is_held_out(dataset, s.song_id)]
        chosen = set(rng.permutation(len(pool))[: round(VALID_SHARE * len(pool))].tolist())
        split["valid"] += [s for i, s in enumerate(pool) if i in chosen]
        split["train"] += [s for i, s in enumerate(pool) if i not in chosen]
    return split


def draw_epoch(songs: Sequence[ChordSong], rng: np.random.Generator,
               epoch_slots: int = EPOCH_SLOTS,
               nottingham_share: float = NOTTINGHAM_SHARE) -> list[Example]:
    """Balanced draws (Nottingham `nottingham_share` of the slots, POP909 the rest) with key
    and register augmentation."""
    totals = {d: sum(s.n_slots for s in songs if s.dataset == d) for d in DATASETS}
    share = {NOTTINGHAM: nottingham_share, POP909: 1.0 - nottingham_share}
    present = [d for d in DATASETS if totals[d]]
    weights = np.array([share[s.dataset] / totals[s.dataset] for s in songs])
    weights /= weights.sum()
    mean_slots = float(sum(share[d] * totals[d] / sum(1 for s in songs if s.dataset == d)
                           for d in present) / sum(share[d] for d in present))
    picks = rng.choice(len(songs), size=max(1, round(epoch_slots / mean_slots)), p=weights)
    return [example(songs[i], training_key(songs[i], rng),
                    int(rng.integers(-REGISTER_SHIFT, REGISTER_SHIFT))) for i in picks]


def _count(songs: Sequence[ChordSong]) -> dict[str, dict[str, int]]:
    return {d: {"songs": sum(1 for s in songs if s.dataset == d),
                "slots": sum(s.n_slots for s in songs if s.dataset == d)} for d in DATASETS}


def _write_json(path: Path, value: Any) -> None:
    with atomic_output(path) as out:
        out.write(json.dumps(value, indent=1, sort_keys=True).encode())


def train(args: argparse.Namespace, command: str,
          say: Callable[[str], None] = print) -> dict[str, Any]:
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    seed_everything(args.seed)
    rng = np.random.default_rng(args.seed)
    corpus, corpus_provenance = _corpus(args.corpus, args.data)
    split = split_songs(corpus, args.split_seed)
    config = ChordNetConfig(channels=args.channels, bar_hidden=args.bar_hidden,
                            dropout=args.dropout)
    net = ChordNet(config).to(device)
    ema = {k: v.detach().clone() for k, v in net.state_dict().items()}
    optimizer = torch.optim.AdamW(net.parameters(), lr=LR_START, weight_decay=args.weight_decay)
    out: Path = args.out
    log: dict[str, Any] = {
        "model": "melody-conditioned chord model: per-8th chord_table row log-probabilities "
                 "(engine/models/chord_model.py; dilated conv over slots + bi-GRU over bars)",
        "command": command, "seed": args.seed, "split_seed": args.split_seed,
        "git_commit": git_commit(),
        "config": asdict(config), "parameters": sum(p.numel() for p in net.parameters()),
        "device": f"{device} ({platform.processor() or platform.machine()})"
                  + (f" {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""),
        "threads": args.threads, "torch": torch.__version__, "python": platform.python_version(),
        "data": {"corpus": str(args.corpus), "corpus_provenance": corpus_provenance,
                 "skipped": corpus.skipped,
                 "split": "held_out: engine.library.datasets.is_held_out; valid: a seeded "
                          f"{VALID_SHARE:.0%} of each corpus's other songs; train: the rest",
                 **{name: _count(songs) for name, songs in split.items()}},
        "labels": "human chords named by engine.chord_names.name_chord (pitch classes + bass) "
                  "at the first 16th of each 8th, reduced to their triad (engine.chords.triad_of)",
        "sampling": {"epoch_slots": args.epoch_slots, "batch_slots": args.batch_slots,
                     "nottingham_share_of_slots": args.nottingham_share},
        "augmentation": {"register_shift_semitones": [-REGISTER_SHIFT, REGISTER_SHIFT - 1],
                         "auto_key_share": AUTO_KEY_SHARE, "key_noise_share": KEY_NOISE_SHARE,
                         "why": "inputs are key-relative, so transposition only moves the "
                                "height feature; the melody-only key estimate (what auto key "
                                "gives the harmonizer) is wrong for 16% of POP909 and 7% of "
                                "Nottingham songs, so the model is shown those keys (and "
                                "neighbour keys) to learn to read the melody over the key"},
        "optimiser": {"name": "AdamW", "lr": [LR_START, LR_END], "schedule": "cosine over the "
                      "time budget", "weight_decay": args.weight_decay, "grad_clip": GRAD_CLIP,
                      "ema_decay": EMA_DECAY, "shipped": "EMA weights of the best epoch"},
        "time_budget_s": args.time_budget, "epochs": [],
    }
    say(f"chord model: {log['parameters']:,} parameters on {log['device']}, "
        f"{args.threads} threads; train {_count(split['train'])}; "
        f"startup {time.perf_counter() - started:.1f} s")
    budget = max(args.time_budget - FINAL_RESERVE_S, 1.0) if args.time_budget else None
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    epoch = 0
    stop = False
    while epoch < args.epochs and not stop:
        epoch += 1
        losses = []
        drawn = draw_epoch(split["train"], rng, args.epoch_slots, args.nottingham_share)
        for batch in batches(drawn, args.batch_slots):
            elapsed = time.perf_counter() - started
            progress = min(1.0, elapsed / budget) if budget else (epoch - 1) / args.epochs
            if budget and elapsed >= budget:
                stop = True
                break
            lr = LR_END + 0.5 * (LR_START - LR_END) * (1 + math.cos(math.pi * progress))
            for group in optimizer.param_groups:
                group["lr"] = lr
            losses.append(train_step(net, optimizer, batch.to(device)))
            with torch.no_grad():
                for name, value in net.state_dict().items():
                    if value.dtype.is_floating_point:
                        ema[name].mul_(EMA_DECAY).add_(value, alpha=1.0 - EMA_DECAY)
        if not losses:
            break
        model = ChordModel(_cpu_copy(ema, config))
        valid = evaluate(model, split["valid"])
        # model selection: mean root accuracy of the corpora (−train loss without a valid split)
        parts = [valid[d]["root_acc"] for d in DATASETS if d in valid]
        target = float(np.mean(parts)) if parts else -float(np.mean(losses))
        record = {"epoch": epoch, "elapsed_s": round(time.perf_counter() - started, 1),
                  "train_loss": round(float(np.mean(losses)), 4),
                  "valid_root_acc": {d: v["root_acc"] for d, v in valid.items()},
                  "valid_nll": valid.get("all", {}).get("nll"), "complete": not stop}
        log["epochs"].append(record)
        say(f"epoch {epoch} ({record['elapsed_s']} s): loss {record['train_loss']:.3f}; valid "
            + "; ".join(f"{d} root {v['root_acc']:.3f} slot {v['slot_acc']:.3f} final "
                        f"{v['final_root_acc']:.3f}" for d, v in valid.items()))
        if best is None or target > best[0]:
            best = (target, {k: v.detach().cpu().clone() for k, v in ema.items()})
            log["best_epoch"] = epoch
    if best is None:
        raise BadInputError("no training step ran (time budget too small?)")
    final = ChordNet(config)
    final.load_state_dict(best[1])
    model = ChordModel(final)
    log["final"] = {"epoch": log["best_epoch"], "epochs_run": epoch,
                    **_final_scores(model, split)}
    log["elapsed_s"] = round(time.perf_counter() - started, 1)
    _save(final, out, log)
    held = log["final"]["held_out"]
    say(f"done in {log['elapsed_s']} s (best epoch {log['best_epoch']}/{epoch}): held-out "
        + "; ".join(f"{d} root {v['root_acc']:.3f} (always I {v['always_I_root_acc']:.3f}) "
                    f"final {v['final_root_acc']:.3f}" for d, v in held.items())
        + f" -> {out} ({log['bytes']:,} bytes)")
    return log


def _corpus(path: Path, data: Path | None) -> tuple[ChordCorpus, dict[str, Any]]:
    """The cached corpus, built from the shared data first when the cache is missing."""
    if path.is_file():
        return load_corpus(path)
    corpus = read_corpus(data)
    if not corpus.songs:
        raise BadInputError("no songs: ../shared/data (or --data) is missing")
    provenance = {"git_commit": git_commit()}
    save_corpus(corpus, path, provenance)
    return corpus, provenance


def build_ensemble(members: Sequence[Path], args: argparse.Namespace, command: str,
                   say: Callable[[str], None] = print) -> dict[str, Any]:
    """One weights file holding several trained runs (their probabilities are averaged), scored
    on the members' common validation split and the held-out split, with every member's
    provenance (minus its per-epoch records)."""
    from engine.models.chord_model import read_model

    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    runs = [read_model(path) for path in members]
    logs = [run.provenance for run in runs]
    # runs from before --split-seed existed split by their --seed
    split_seeds = {int(log.get("split_seed", log.get("seed", -1))) for log in logs}
    if len(split_seeds) != 1 or -1 in split_seeds:
        raise BadInputError(f"members must share one validation split, got {split_seeds}")
    split_seed = split_seeds.pop()
    corpus, corpus_provenance = _corpus(args.corpus, args.data)
    split = split_songs(corpus, split_seed)
    nets = [net for run in runs for net in run.nets]
    model = ChordModel(nets)
    log: dict[str, Any] = {
        "model": f"ensemble of {len(nets)} melody-conditioned chord models (mean probability)",
        "command": command, "git_commit": git_commit(), "split_seed": split_seed,
        "parameters": sum(p.numel() for net in nets for p in net.parameters()),
        "members": [{k: v for k, v in member.items() if k != "epochs"} | {"file": str(path)}
                    for member, path in zip(logs, members, strict=True)],
        "data": {"corpus": str(args.corpus), "corpus_provenance": corpus_provenance,
                 **{name: _count(songs) for name, songs in split.items()}},
    }
    log["final"] = _final_scores(model, split)
    log["elapsed_s"] = round(time.perf_counter() - started, 1)
    _save(nets, args.out, log)
    held = log["final"]["held_out"]
    say(f"ensemble of {len(nets)}: held-out "
        + "; ".join(f"{d} root {v['root_acc']:.3f} final {v['final_root_acc']:.3f} nll "
                    f"{v['nll']:.3f}" for d, v in held.items())
        + f" -> {args.out} ({log['bytes']:,} bytes)")
    return log


def _final_scores(model: ChordModel, split: dict[str, list[ChordSong]]) -> dict[str, Any]:
    """The shipped model's scores: validation, held-out (given and auto key), and the micro
    rule's best row on the held-out songs for comparison."""
    return {
        "valid": evaluate(model, split["valid"]),
        "held_out": evaluate(model, split["held_out"]),
        "held_out_auto_key": evaluate(model, split["held_out"], auto_key=True),
        "held_out_micro_rule": _micro_baseline(split["held_out"]),
    }


def _save(nets: ChordNet | Sequence[ChordNet], out: Path, log: dict[str, Any]) -> None:
    """The weights, then their provenance JSON beside them (size and hash included)."""
    save_model(nets, out, {k: log[k] for k in ("command", "git_commit") if k in log})
    log["weights"] = out.name
    log["bytes"] = out.stat().st_size
    log["sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    _write_json(out.with_suffix(".json"), log)


def _cpu_copy(state: dict[str, torch.Tensor], config: ChordNetConfig) -> ChordNet:
    copy = ChordNet(config)
    copy.load_state_dict({k: v.detach().cpu() for k, v in state.items()})
    return copy.eval()


def _micro_baseline(songs: Sequence[ChordSong]) -> dict[str, float]:
    """Root accuracy of the rule alone: the best `chord_table` row of each slot (ours)."""
    from engine.harmonizer.micro import chord_table, slot_scores

    hits = total = 0
    for song in songs:
        pcs = np.where(song.pitch_16th >= 0, (song.pitch_16th - song.key.tonic_pc) % 12, -1)
        best = slot_scores(pcs, chord_table(song.key.mode)).argmax(axis=1)
        human = song.rows()
        judged = human != NO_CHORD
        hits += int((best[judged] // 6 == human[judged] // 6).sum())
        total += int(judged.sum())
    return {"root_acc": round(hits / total, 4) if total else math.nan}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=COMMAND, description="Train the learned chord model.")
    parser.add_argument("--out", type=Path, required=True, help="weights file (.pt); the "
                        "provenance JSON goes beside it")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS,
                        help="cached corpus (.npz), built from --data when missing")
    parser.add_argument("--data", type=Path, default=None, help="shared data folder")
    parser.add_argument("--seed", type=int, default=0, help="initialisation and draws")
    parser.add_argument("--split-seed", type=int, default=0,
                        help="picks the validation songs (keep it when training ensemble members)")
    parser.add_argument("--time-budget", type=float, default=900.0,
                        help="wall seconds for the whole run, final scoring included (0: none)")
    parser.add_argument("--epochs", type=int, default=1000, help="most epochs")
    parser.add_argument("--epoch-slots", type=int, default=EPOCH_SLOTS)
    parser.add_argument("--batch-slots", type=int, default=BATCH_SLOTS)
    parser.add_argument("--channels", type=int, default=ChordNetConfig.channels)
    parser.add_argument("--bar-hidden", type=int, default=ChordNetConfig.bar_hidden)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--weight-decay", type=float, default=WEIGHT_DECAY)
    parser.add_argument("--nottingham-share", type=float, default=NOTTINGHAM_SHARE,
                        help="share of the drawn slots from Nottingham (the rest: POP909)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    parser.add_argument("--ensemble", type=Path, nargs="+", metavar="RUN_PT",
                        help="instead of training: put these trained runs (same validation "
                        "split) into one weights file at --out and score the ensemble")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: on a shared "
                        "2-core machine, 2 threads ran 6x slower than 1 under load)")
    args = parser.parse_args(argv)
    if args.time_budget and args.time_budget <= FINAL_RESERVE_S:
        parser.error(f"--time-budget must exceed {FINAL_RESERVE_S:.0f} s")
    given = list(sys.argv[1:] if argv is None else argv)
    say = lambda message: print(message, flush=True)  # noqa: E731
    try:
        if args.ensemble:
            build_ensemble(args.ensemble, args, " ".join([COMMAND, *given]), say)
        else:
            train(args, " ".join([COMMAND, *given]), say)
    except (BadInputError, LibraryError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
