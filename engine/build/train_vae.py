"""Training the chord/texture VAE (algorithms.md §2.3) on the POP909 segment file: the fixed
song split of `engine.models.segments`, 12-transposition augmentation on the fly, β annealed up
to 0.1 and teacher forcing decaying 0.7 -> 0.05 over the run, a wall-clock budget, and a
checkpoint (fp16 weights + log) after every epoch so a killed run still leaves weights.

Run: `python3 -m engine.build.train_vae --data .train/pop909_segments.npz --config full
--device cuda --time-budget 300 --seed 0 --out DIR` -> DIR/chord_texture_vae.pt and
DIR/vae_log.json. Imports numpy and torch only (no mido): it runs on a bare GPU machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.atomic_file import atomic_output
from engine.build.provenance import git_commit
from engine.build.vae_training import (
    CONFIGS,
    parameter_count,
    reconstruction_f1,
    segment_tensors,
    transposed,
    vae_loss,
)
from engine.errors import BadInputError, LibraryError
from engine.models.device import choose_device, seed_everything
from engine.models.segments import TEST, TRAIN, VALID, load_segments
from engine.models.vae import ChordTextureVae, SegmentTensors, save_weights

WEIGHTS_FILE = "chord_texture_vae.pt"
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "models"
LOG_FILE = "vae_log.json"
BETA_MAX = 0.1
# β is 0 for the first BETA_START of the run (the encoders first learn to carry information, so
# the decoder learns to use z: an early KL collapsed z_txt in trial runs), then rises linearly
# to BETA_MAX at BETA_FULL.
BETA_START, BETA_FULL = 0.1, 0.6
TEACHER_FORCING = (0.7, 0.05)  # start, end (linear over the run)
LR_START, LR_END = 1e-3, 1e-4
GRAD_CLIP = 1.0
FINAL_EVAL_RESERVE_S = 20.0  # wall time kept back for the final scores and the last save
F1_SEGMENTS = 512  # valid segments decoded for the per-run reconstruction F1
CPU_VALID_SEGMENTS = 512  # the per-epoch valid loss on CPU uses the first ones only (speed)


def schedule(progress: float) -> tuple[float, float, float]:
    """(β, teacher forcing, learning rate) at `progress` 0..1 of the run."""
    p = min(max(progress, 0.0), 1.0)
    beta = BETA_MAX * min(1.0, max(0.0, p - BETA_START) / (BETA_FULL - BETA_START))
    forcing = TEACHER_FORCING[0] + (TEACHER_FORCING[1] - TEACHER_FORCING[0]) * p
    lr = LR_START * (LR_END / LR_START) ** p
    return beta, forcing, lr


def random_shifts(n: int, generator: torch.Generator) -> torch.Tensor:
    """One of the 12 transpositions (−6..+5 semitones) per segment."""
    return torch.randint(-6, 6, (n,), generator=generator)


def _mean(parts: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([p[k] for p in parts])) for k in parts[0]} if parts else {}


@torch.no_grad()
def evaluate(model: ChordTextureVae, tensors: SegmentTensors, beta: float,
             batch_size: int) -> dict[str, float]:
    """Loss parts on `tensors` with posterior means and full teacher forcing."""
    model.eval()
    parts = []
    for start in range(0, len(tensors), batch_size):
        batch = tensors.take(torch.arange(start, min(start + batch_size, len(tensors)),
                                          device=tensors.pitch.device))
        parts.append(vae_loss(model, batch, beta, 1.0, sample=False).as_dict())
    model.train()
    return _mean(parts)


def _write_json(path: Path, value: Any) -> None:
    with atomic_output(path) as out:
        out.write(json.dumps(value, indent=1, sort_keys=True).encode())


def train(args: argparse.Namespace, command: str) -> dict[str, Any]:
    started = time.perf_counter()
    device = choose_device(args.device)
    generator = seed_everything(args.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    config = CONFIGS[args.config]
    segments = load_segments(args.data)
    train_index = segments.indices(TRAIN)
    valid_index = segments.indices(VALID)
    if args.limit_train:
        train_index = train_index[: args.limit_train]
    valid_limit = args.valid_segments or (0 if device.type == "cuda" else CPU_VALID_SEGMENTS)
    if valid_limit:
        valid_index = valid_index[:valid_limit]
    if len(train_index) == 0 or len(valid_index) == 0:
        raise BadInputError(f"{args.data}: no train or valid segments")
    train_set = segment_tensors(segments, train_index, config.max_notes).to(device)
    valid_set = segment_tensors(segments, valid_index, config.max_notes).to(device)
    model = ChordTextureVae(config).to(device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR_START)
    batch_size = args.batch_size or (512 if device.type == "cuda" else 64)
    per_epoch = min(args.epoch_segments or len(train_index), len(train_index))
    steps_per_epoch = max(1, per_epoch // batch_size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log: dict[str, Any] = {
        "command": command, "seed": args.seed, "config_name": args.config,
        "config": json.loads(config.to_json()), "parameters": parameter_count(model),
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})"
                                 if device.type == "cuda" else f" ({platform.processor()})"),
        "torch": torch.__version__, "python": platform.python_version(),
        "git_commit": args.git_commit or git_commit(),
        "data": {"file": str(args.data), "segments_provenance": dict(segments.provenance),
                 "train_segments": len(train_index), "valid_segments": len(valid_index),
                 "test_segments": int(len(segments.indices(TEST))),
                 "split": "segments.split: 0 train, 1 valid (seeded 5% of songs), "
                          "2 test (is_held_out)"},
        "batch_size": batch_size, "segments_per_epoch": steps_per_epoch * batch_size,
        "time_budget_s": args.time_budget, "max_epochs": args.epochs,
        "schedule": {"beta_max": BETA_MAX, "beta_ramp": [BETA_START, BETA_FULL],
                     "teacher_forcing": list(TEACHER_FORCING), "lr": [LR_START, LR_END]},
        "epochs": [],
    }
    say = (lambda message: print(message, flush=True)) if not args.quiet else (lambda m: None)
    say(f"VAE {args.config}: {log['parameters']:,} parameters on {log['device']}; "
        f"{len(train_index)} train / {len(valid_index)} valid segments; batch {batch_size}; "
        f"startup {time.perf_counter() - started:.1f} s")
    train_budget = (args.time_budget - FINAL_EVAL_RESERVE_S) if args.time_budget else None
    total_steps = steps_per_epoch * args.epochs
    step = 0
    epoch = 0
    stop = False
    beta = 0.0
    while epoch < args.epochs and not stop:
        order = train_index_order(len(train_index), generator)[: steps_per_epoch * batch_size]
        parts = []
        for b in range(steps_per_epoch):
            elapsed = time.perf_counter() - started
            progress = step / total_steps
            if train_budget:
                progress = max(progress, elapsed / train_budget)
                if elapsed >= train_budget:
                    stop = True
                    break
            beta, forcing, lr = schedule(progress)
            for group in optimizer.param_groups:
                group["lr"] = lr
            index = order[b * batch_size : (b + 1) * batch_size].to(device)
            batch = transposed(train_set.take(index),
                               random_shifts(len(index), generator).to(device))
            loss = vae_loss(model, batch, beta, forcing)
            optimizer.zero_grad(set_to_none=True)
            loss.total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            optimizer.step()
            parts.append(loss.as_dict())
            step += 1
        if not parts:
            break
        epoch += 1
        valid = evaluate(model, valid_set, beta, batch_size)
        train_parts = _mean(parts)
        record: dict[str, Any] = {
            "epoch": epoch, "steps": step,
            "elapsed_s": round(time.perf_counter() - started, 1),
            "beta": round(beta, 4), "teacher_forcing": round(schedule(progress)[1], 3),
            "train": train_parts, "valid": valid, "complete": len(parts) == steps_per_epoch,
        }
        log["epochs"].append(record)
        say(f"epoch {epoch} ({record['elapsed_s']} s, {step} steps): train "
            f"{train_parts['total']:.3f} (pitch {train_parts['pitch']:.3f}) valid "
            f"{valid['total']:.3f} (pitch {valid['pitch']:.3f}, dur {valid['duration']:.3f}, "
            f"chord {valid['chord']:.3f}, KL {valid['kl_chord']:.1f}/{valid['kl_texture']:.1f})")
        _checkpoint(model, out, log)
    model.eval()
    scores = reconstruction_f1(model, valid_set.take(torch.arange(
        min(F1_SEGMENTS, len(valid_set)), device=device)))
    log["final"] = {"epochs": epoch, "steps": step,
                    "train": log["epochs"][-1]["train"] if log["epochs"] else {},
                    "valid": log["epochs"][-1]["valid"] if log["epochs"] else {},
                    "valid_reconstruction": scores,
                    "elapsed_s": round(time.perf_counter() - started, 1)}
    _checkpoint(model, out, log)
    say(f"done: {epoch} epochs, {step} steps, valid reconstruction pitch F1 "
        f"{scores['pitch_f1']:.3f}, onset F1 {scores['onset_f1']:.3f}; "
        f"{log['final']['elapsed_s']} s -> {out}")
    return log


def train_index_order(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randperm(n, generator=generator)


def _checkpoint(model: ChordTextureVae, out: Path, log: dict[str, Any]) -> None:
    meta = {k: log[k] for k in ("command", "seed", "config_name", "git_commit", "device")}
    meta["epochs"] = len(log["epochs"])
    save_weights(model, out / WEIGHTS_FILE, meta)
    _write_json(out / LOG_FILE, log)


def ship(run_dir: Path, dest_dir: Path = SHIPPED_DIR) -> Path:
    """Copy a run's weights into the package (engine/data/models) with a provenance JSON
    beside them: command, data split, seed, epochs, final losses, git commit, device."""
    import hashlib
    import shutil

    log = json.loads((run_dir / LOG_FILE).read_text())
    weights = run_dir / WEIGHTS_FILE
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / WEIGHTS_FILE
    shutil.copyfile(weights, target)
    data = dict(log["data"])
    segments = data.pop("segments_provenance", {})
    provenance = {
        "model": "chord/texture disentanglement VAE (Wang et al. ISMIR 2020), algorithms.md §2.3",
        "weights": WEIGHTS_FILE, "bytes": target.stat().st_size,
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "command": log["command"], "seed": log["seed"], "config_name": log["config_name"],
        "config": log["config"], "parameters": log["parameters"], "device": log["device"],
        "torch": log["torch"], "git_commit": log["git_commit"], "data": data,
        "segments": {k: segments.get(k) for k in (
            "segments", "songs_used", "segments_per_split", "songs_per_split", "seed",
            "git_commit", "created")},
        "batch_size": log["batch_size"], "schedule": log["schedule"],
        "time_budget_s": log["time_budget_s"], "epochs": log["final"]["epochs"],
        "steps": log["final"]["steps"], "elapsed_s": log["final"]["elapsed_s"],
        "final": log["final"],
    }
    _write_json(target.with_suffix(".json"), provenance)
    return target


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python3 -m engine.build.train_vae",
                                     description="Train the chord/texture VAE (§2.3).")
    parser.add_argument("--data", type=Path, help="segment .npz (required for training)")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="small")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    parser.add_argument("--time-budget", type=float, default=0.0,
                        help="wall seconds for the whole run, final scoring included (0: none)")
    parser.add_argument("--epochs", type=int, default=1000, help="most epochs")
    parser.add_argument("--epoch-segments", type=int, default=0,
                        help="segments per epoch (0: the whole train split)")
    parser.add_argument("--batch-size", type=int, default=0, help="0: 512 on CUDA, 64 on CPU")
    parser.add_argument("--valid-segments", type=int, default=0,
                        help="use only the first N valid segments (0: all on CUDA, "
                        f"{CPU_VALID_SEGMENTS} on CPU)")
    parser.add_argument("--limit-train", type=int, default=0, help="first N train segments")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--git-commit", default="", help="recorded in the log (default: HEAD)")
    parser.add_argument("--out", type=Path, help="output folder (required for training)")
    parser.add_argument("--ship", type=Path, metavar="RUN_DIR",
                        help="instead of training: copy RUN_DIR's weights into "
                        "engine/data/models with their provenance JSON")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    if args.ship is not None:
        print(f"shipped {ship(args.ship)}")
        return
    if args.data is None or args.out is None:
        parser.error("--data and --out are required for training")
    if args.time_budget and args.time_budget <= FINAL_EVAL_RESERVE_S:
        parser.error(f"--time-budget must exceed {FINAL_EVAL_RESERVE_S:.0f} s")
    try:
        train(args, " ".join(["python3 -m engine.build.train_vae", *given]))
    except (BadInputError, LibraryError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
