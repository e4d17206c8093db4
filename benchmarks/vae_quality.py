"""Chord/texture VAE quality on held-out POP909 segments (split 2 of the segment file; songs
no model saw in training): reconstruction pitch/onset F1, and the chord-swap test for BOTH the
learned re-harmonizer and the rule-based `reharmonize_notes`.

    python3 -m benchmarks.vae_quality [--data .train/pop909_segments.npz] [--limit 600]

Chord swap: each held-out 2-bar segment (a "donor") is re-harmonized to the chords of another
held-out segment from a different song (a fixed seeded pairing). Only segments whose 8 beats
all carry a chord take part. Target chords become `Chord`s by matching their chroma to the
chord vocabulary (`engine.chords.INTERVALS`; unmatched ones take the closest quality), so both
re-harmonizers get identical chords. Measured per note onset:
- chord-tone ratio: share of output notes whose pitch class belongs to the target chord
  sounding at their onset (its tones or bass; goal >= 0.95);
- onset F1 vs the donor: the output's onset 16ths against the donor's, pooled (goal >= 0.9).
Rows: the learned re-harmonizer as the paper runs it, the same with decoding limited to the
target chord's pitch classes (`chord_tones_only`), and the rules; each also with the donor's own
chords as the target ("same chords": how much of the texture survives the round trip).
For reference the donors' own chord-tone ratio on their own chords is printed too: POP909
accompaniment is not all chord tones, which bounds what a faithful texture model can reach.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.arranger.placement import RenderedNote
from engine.arranger.plugins import DonorPhrase, Reharmonizer, reharmonize_all
from engine.arranger.reharmonize import reharmonize_notes
from engine.chords import INTERVALS, chord_pitch_classes
from engine.errors import LibraryError
from engine.models.segments import TEST, SegmentSet, load_segments
from engine.types import Chord, ChordEvent

GOAL_CHORD_TONES = 0.95
GOAL_ONSET_F1 = 0.9
DEFAULT_DATA = Path(".train/pop909_segments.npz")
BATCH = 256  # segments per learned call (one "song" of 256 two-bar phrases)


def chord_of(root: int, chroma: np.ndarray, bass: int) -> Chord:
    """The vocabulary chord whose tones best match `chroma` (Jaccard), rooted at `root`."""
    tones = {int(p) for p in np.flatnonzero(chroma)}

    def score(quality: str) -> float:
        mine = set(chord_pitch_classes(root, quality))
        return len(mine & tones) / len(mine | tones)

    quality = max(sorted(INTERVALS), key=score)
    return Chord(root, quality, bass if bass >= 0 else root)


def target_events(segments: SegmentSet, s: int, start_16th: int) -> list[ChordEvent]:
    """Segment s's per-beat chords as events from `start_16th`, equal beats merged."""
    events: list[ChordEvent] = []
    for b in range(8):
        chord = chord_of(int(segments.chord_root[s, b]), segments.chord_chroma[s, b],
                         int(segments.chord_bass[s, b]))
        if events and events[-1].chord == chord:
            last = events[-1]
            events[-1] = ChordEvent(chord, last.start_16th, last.duration_16th + 4)
        else:
            events.append(ChordEvent(chord, start_16th + 4 * b, 4))
    return events


def chord_tone_ratio(notes: Sequence[RenderedNote], chords: Sequence[ChordEvent]) -> tuple[
        int, int]:
    """(chord-tone notes, notes) by onset."""
    hits = total = 0
    for start, _, pitch, _ in notes:
        chord = next((c for c in chords if c.start_16th <= start < c.end_16th), None)
        if chord is None:
            continue
        total += 1
        tones = chord_pitch_classes(chord.chord.root_pc, chord.chord.quality)
        hits += pitch % 12 in tones or pitch % 12 == chord.chord.bass_pc
    return hits, total


def onset_f1(predicted: set[int], reference: set[int]) -> float:
    if not predicted and not reference:
        return 1.0
    return 2 * len(predicted & reference) / (len(predicted) + len(reference))


def swap_pairs(segments: SegmentSet, limit: int, seed: int = 0) -> list[tuple[int, int]]:
    """(donor, chord source) pairs of held-out segments with chords on every beat, the chord
    source from another song."""
    test = segments.indices(TEST)
    full = test[np.all(segments.chord_root[test] >= 0, axis=1)]
    rng = np.random.default_rng(seed)
    donors = rng.permutation(full)[:limit]
    pairs = []
    for d in donors:
        while True:
            c = int(rng.choice(full))
            if segments.song[c] != segments.song[d]:
                break
        pairs.append((int(d), c))
    return pairs


def run_swap(reharmonizer: Reharmonizer, segments: SegmentSet, pairs: Sequence[tuple[int, int]],
             own_chords: bool = False) -> dict[str, float]:
    """Chord-tone ratio and onset F1 of `reharmonizer` over the pairs (each pair a 2-bar phrase
    at its own place on one long timeline, BATCH pairs per call)."""
    hits = total = 0
    predicted: set[int] = set()
    reference: set[int] = set()
    seconds = 0.0
    for lo in range(0, len(pairs), BATCH):
        chunk = pairs[lo : lo + BATCH]
        phrases, chords = [], []
        for i, (d, c) in enumerate(chunk):
            start = 32 * i
            notes = segments.segment_notes(d).astype(np.int64)
            chroma = segments.chord_chroma[d].astype(bool)
            phrases.append(DonorPhrase(notes, chroma, segments.chord_root[d].astype(int), 0,
                                       start, 32))
            chords += target_events(segments, d if own_chords else c, start)
            reference |= {(lo + i) * 32 + int(o) for o in notes[:, 0]}
        began = time.perf_counter()
        outputs = reharmonize_all(reharmonizer, phrases, chords)
        seconds += time.perf_counter() - began
        for notes_out in outputs:  # starts are on the chunk's timeline (phrase i at 32·i)
            h, t = chord_tone_ratio(notes_out, chords)
            hits, total = hits + h, total + t
            predicted |= {lo * 32 + int(n[0]) for n in notes_out}
    return {"chord_tones": hits / max(total, 1), "onset_f1": onset_f1(predicted, reference),
            "notes": float(total), "seconds": seconds}


def donor_chord_tones(segments: SegmentSet, pairs: Sequence[tuple[int, int]]) -> float:
    hits = total = 0
    for d, _ in pairs:
        chords = target_events(segments, d, 0)
        notes = [(int(o), int(u), int(p), int(v)) for o, p, u, v in segments.segment_notes(d)]
        h, t = chord_tone_ratio(notes, chords)
        hits, total = hits + h, total + t
    return hits / max(total, 1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--weights", type=Path, help="VAE weights (default: the shipped ones)")
    parser.add_argument("--limit", type=int, default=600, help="held-out segments used")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import torch

    from engine.build.vae_training import reconstruction_f1, segment_tensors
    from engine.models.reharmonizer import LearnedReharmonizer, learned_reharmonizer

    try:
        segments = load_segments(args.data)
        learned = learned_reharmonizer(args.weights)
    except LibraryError as err:
        print(f"vae_quality: {err}", file=sys.stderr)
        sys.exit(2)
    model = getattr(learned, "model")  # noqa: B009 - the LearnedReharmonizer's VAE
    torch.set_grad_enabled(False)
    plain = LearnedReharmonizer(model)  # the paper's decoding
    pairs = swap_pairs(segments, args.limit, args.seed)
    donors = np.array([d for d, _ in pairs])
    recon = reconstruction_f1(model, segment_tensors(segments, donors, model.config.max_notes))
    print(f"held-out POP909 segments: {len(pairs)} (of {len(segments.indices(TEST))} in split 2,"
          f" chords on all beats); weights {args.weights or 'shipped'}")
    print(f"reconstruction (posterior means, greedy): pitch F1 {recon['pitch_f1']:.3f}, "
          f"onset F1 {recon['onset_f1']:.3f}")
    print(f"donors' own chord-tone ratio on their own chords: "
          f"{donor_chord_tones(segments, pairs):.3f}")
    print()
    print(f"{'chord swap':<38}{'chord tones':>12}{'/goal':>7}{'onset F1':>10}{'/goal':>7}"
          f"{'notes':>8}{'ms/seg':>8}")
    for name, reharmonizer in (("VAE, paper's decoding", plain),
                               ("VAE + chord-tone mask (learned)", learned),
                               ("rules (reharmonize_notes)", reharmonize_notes)):
        for label, own in (("", False), (" same chords", True)):
            r = run_swap(reharmonizer, segments, pairs, own_chords=own)
            print(f"{name + label:<38}{r['chord_tones']:>12.3f}"
                  f"{r['chord_tones'] / GOAL_CHORD_TONES:>7.2f}{r['onset_f1']:>10.3f}"
                  f"{r['onset_f1'] / GOAL_ONSET_F1:>7.2f}{int(r['notes']):>8}"
                  f"{1000 * r['seconds'] / len(pairs):>8.2f}")


if __name__ == "__main__":
    main()
