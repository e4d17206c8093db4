"""Frozen texture embeddings judged on held-out POP909 songs: `python -m benchmarks.texture_probes`.

Rows (McCallum et al. ISMIR 2022's protocol on 2-bar piano windows): the contrastive encoder with
next-window positives, with augmentation positives, the supervised next-vs-4-random baseline
(algorithms.md §2.2), hand-crafted texture features (RD, VN, onset profile, register, counts;
and the same without RD and VN, which are the probes' own targets), the arranger's rule-based
transition vector (the 32-step onset-count profile) and a random-init encoder. Columns:
linear-probe accuracy for the RD and VN level (5 equal-population levels of the training
windows; fitted on training songs, scored on held-out songs) and next-window retrieval top-1
among 100 held-out candidates (cosine; chance 1%).
Needs `.train/pop909_segments.npz` (`python3 -m engine.build.segments build`) and the trained
weights (`engine.build.train_contrastive`); missing rows are reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROWS = ("next", "augment", "supervised", "handcrafted", "handcrafted_no_rdvn",
        "rules_onset_profile", "random_init")
TITLES = {
    "next": "NT-Xent, next-window positives",
    "augment": "NT-Xent, augmentation positives",
    "supervised": "supervised next-vs-4-random",
    "handcrafted": "hand-crafted features",
    "handcrafted_no_rdvn": "hand-crafted without RD, VN",
    "rules_onset_profile": "rule transition (onset profile)",
    "random_init": "random-init encoder",
    "majority": "majority level / chance",
}
DEFAULT_DIRS = (Path(".train/gpu_out/contrastive"), Path(".train/cpu_contrastive"))


def onset_profiles(notes: np.ndarray, offsets: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Onset count per 16th of each window: what the rule-based transition compares."""
    counts = offsets[windows + 1] - offsets[windows]
    owner = np.repeat(np.arange(len(windows)), counts)
    rows = np.concatenate([notes[offsets[w] : offsets[w + 1], 0] for w in windows.tolist()])
    out = np.zeros((len(windows), 32))
    np.add.at(out, (owner, np.clip(rows, 0, 31)), 1.0)
    return out


def run(args: argparse.Namespace) -> dict[str, dict[str, float | str]]:
    import torch

    from engine.build import probes
    from engine.build.train_contrastive import load_windows
    from engine.models.contrastive import (
        EncoderConfig,
        NoteTable,
        TextureEncoder,
        embed,
        load_encoder,
        pick_device,
        transition_vectors,
    )

    data = load_windows(args.data)
    device = pick_device(args.device)
    probe_set = probes.probe_set(data.notes, data.offsets, data.split, data.next_window,
                                 max_train=args.probe_train, max_anchors=args.anchors,
                                 seed=args.seed)
    ids = probe_set.needed
    n = len(data)
    table = NoteTable(data.notes, data.offsets, device)
    results: dict[str, dict[str, float | str]] = {}
    rd_major, vn_major = probe_set.majority
    results["majority"] = {"rd_probe": rd_major, "vn_probe": vn_major,
                           "next_top1": 1.0 / probes.CANDIDATES}
    config = EncoderConfig()

    def judge(
        features: np.ndarray, query: np.ndarray, candidate: np.ndarray
    ) -> dict[str, float | str]:
        return dict(probes.judge(probe_set, probes.by_window(ids, features, n),
                            probes.by_window(ids, query, n), probes.by_window(ids, candidate, n),
                            seed=args.seed, device=str(device)))

    for variant in ("next", "augment", "supervised"):
        path = args.weights_dir / f"{variant}.pt"
        if not path.exists():
            results[variant] = {"missing": str(path)}
            continue
        model, meta = load_encoder(path, device)
        config = model.config
        h = embed(model, table, ids, projected=False)
        query, candidate = transition_vectors(model, variant, table, ids, h)
        results[variant] = {**judge(h, query, candidate),
                            "epochs": float(len(meta.get("epochs", [])))}
    hand = probes.handcrafted_features(data.notes, data.offsets, ids)
    mu, sd = hand.mean(axis=0), np.where(hand.std(axis=0) > 1e-8, hand.std(axis=0), 1.0)
    standard = (hand - mu) / sd  # cosine retrieval on standardized features
    results["handcrafted"] = judge(hand, standard, standard)
    # RD and VN are the probes' own targets: without them, what the other features carry
    results["handcrafted_no_rdvn"] = judge(hand[:, 2:], standard[:, 2:], standard[:, 2:])
    profile = onset_profiles(data.notes, data.offsets, ids)
    results["rules_onset_profile"] = judge(profile, profile, profile)
    torch.manual_seed(args.seed)
    random_model = TextureEncoder(config).to(device)
    h = embed(random_model, table, ids, projected=False)
    z, _ = transition_vectors(random_model, "next", table, ids, h)
    results["random_init"] = judge(h, z, z)
    return results


def format_table(results: dict[str, dict[str, float | str]], probe_note: str) -> str:
    lines = [f"{'':<36}{'RD probe':>10}{'VN probe':>10}{'next top-1':>12}"]
    for row in (*ROWS, "majority"):
        r = results.get(row, {})
        if "missing" in r:
            lines.append(f"{TITLES[row]:<36}  (no weights: {r['missing']})")
            continue
        if not r:
            continue
        cells = "".join(f"{float(r[k]):>{w}.3f}" for k, w in
                        (("rd_probe", 10), ("vn_probe", 10), ("next_top1", 12)))
        lines.append(f"{TITLES[row]:<36}{cells}")
    lines.append(probe_note)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.texture_probes",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(".train/pop909_segments.npz"))
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="folder with next.pt, augment.pt, supervised.pt (default: "
                        + " or ".join(str(d) for d in DEFAULT_DIRS) + ")")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--probe-train", type=int, default=20000)
    parser.add_argument("--anchors", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"no segment file {args.data}: build it with `python3 -m engine.build.segments "
              "build --data PATH --out FILE`", file=sys.stderr)
        return 1
    if args.weights_dir is None:
        args.weights_dir = next((d for d in DEFAULT_DIRS if d.exists()), DEFAULT_DIRS[-1])
    began = time.perf_counter()
    results = run(args)
    note = (f"probes: logistic regression on frozen features, fitted on {args.probe_train} "
            f"training-song windows, scored on held-out songs; retrieval: {args.anchors} "
            f"held-out anchors, 1 true next + 99 random held-out windows; weights from "
            f"{args.weights_dir}; {time.perf_counter() - began:.0f} s")
    print(format_table(results, note))
    if args.json is not None:
        args.json.write_text(json.dumps({"results": results, "note": note}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
