"""Judging frozen texture embeddings (McCallum et al. ISMIR 2022 §4: shallow probes on frozen
embeddings): linear probes for rhythmic-density and voice-number levels, next-window retrieval
top-1 among 100, and the hand-crafted texture features they are compared with.

RD and VN are algorithms.md §2.1's descriptors (engine.arranger.descriptors) of each 2-bar
window; levels are 5 equal-population quintiles of the training windows' values
(`pop909_import.quintile_cutpoints`). Needs numpy and torch only (runs on the GPU machine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.arranger.descriptors import level, onset_roll, rhythmic_density, voice_number
from engine.build.pop909_import import quintile_cutpoints

WINDOW_16TH = 32
BEAT_16TH = 4
CANDIDATES = 100  # the true next window + 99 random ones
PROBE_STEPS = 300
PROBE_LR = 0.05
PROBE_WEIGHT_DECAY = 1e-4


def window_notes(notes: np.ndarray, offsets: np.ndarray, w: int) -> np.ndarray:
    return np.asarray(notes[offsets[w] : offsets[w + 1]], dtype=np.int64)


def window_descriptors(
    notes: np.ndarray, offsets: np.ndarray, windows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(RD, VN) of each window, exactly as the descriptors module defines them."""
    rd = np.zeros(len(windows))
    vn = np.zeros(len(windows))
    for i, w in enumerate(np.asarray(windows).tolist()):
        roll = onset_roll(window_notes(notes, offsets, w), WINDOW_16TH)
        rd[i] = rhythmic_density(roll)
        vn[i] = voice_number(roll, beat_16th=BEAT_16TH)
    return rd, vn


def levels(values: np.ndarray, cutpoints: np.ndarray) -> np.ndarray:
    cuts = [float(c) for c in cutpoints]
    return np.array([level(float(v), cuts) for v in values], dtype=np.int64)


def handcrafted_features(
    notes: np.ndarray, offsets: np.ndarray, windows: np.ndarray
) -> np.ndarray:
    """Hand-crafted texture features per window (the baseline): RD, VN, the 32-step onset
    profile (share of the window's onsets at each 16th), register (mean, std, lowest, highest
    pitch / 127), note count / 32, mean duration / 32, mean velocity / 127."""
    windows = np.asarray(windows, dtype=np.int64)
    rd, vn = window_descriptors(notes, offsets, windows)
    counts = np.asarray(offsets[windows + 1] - offsets[windows], dtype=np.int64)
    owner = np.repeat(np.arange(len(windows)), counts)
    rows = np.concatenate(
        [np.asarray(notes[offsets[w] : offsets[w + 1]], dtype=np.float64).reshape(-1, 4)
         for w in windows.tolist()] or [np.zeros((0, 4))]
    )
    onset = np.clip(rows[:, 0], 0, WINDOW_16TH - 1).astype(np.int64)
    profile = np.zeros((len(windows), WINDOW_16TH))
    np.add.at(profile, (owner, onset), 1.0)
    safe = np.maximum(counts, 1)
    profile /= safe[:, None]

    def mean(values: np.ndarray) -> np.ndarray:
        return np.bincount(owner, weights=values, minlength=len(windows)) / safe

    pitch = rows[:, 1]
    mean_pitch = mean(pitch)
    std_pitch = np.sqrt(np.maximum(mean(pitch**2) - mean_pitch**2, 0.0))
    low = np.full(len(windows), 127.0)
    high = np.zeros(len(windows))
    np.minimum.at(low, owner, pitch)
    np.maximum.at(high, owner, pitch)
    low[counts == 0] = 0.0
    register = np.stack([mean_pitch, std_pitch, low, high], axis=1) / 127.0
    extra = np.stack([counts / 32.0, mean(rows[:, 2]) / 32.0, mean(rows[:, 3]) / 127.0], axis=1)
    return np.concatenate([rd[:, None], vn[:, None] / 4.0, profile, register, extra], axis=1)


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Zero mean, unit variance by the training rows' statistics."""
    mu = train.mean(axis=0)
    sd = train.std(axis=0)
    sd = np.where(sd > 1e-8, sd, 1.0)
    return [(x - mu) / sd for x in (train, *others)]


def linear_probe(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
    classes: int = 5, seed: int = 0, device: str = "cpu",
) -> float:
    """Test accuracy of a multinomial logistic regression on standardized frozen features
    (full-batch Adam, small L2): the shallow probe of McCallum et al. §4."""
    xtr, xte = standardize(np.asarray(train_x, np.float64), np.asarray(test_x, np.float64))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: threads only wait on each other (35x on a
    try:  # loaded 2-core machine)
        return _fit_probe(xtr, np.asarray(train_y), xte, np.asarray(test_y), classes, seed,
                          device)
    finally:
        torch.set_num_threads(threads)


def _fit_probe(xtr: np.ndarray, train_y: np.ndarray, xte: np.ndarray, test_y: np.ndarray,
               classes: int, seed: int, device: str) -> float:
    gen = torch.Generator().manual_seed(seed)
    dev = torch.device(device)
    x = torch.as_tensor(xtr, dtype=torch.float32, device=dev)
    y = torch.as_tensor(train_y, dtype=torch.long, device=dev)
    weight = (torch.randn(x.shape[1], classes, generator=gen) * 0.01).to(dev).requires_grad_()
    bias = torch.zeros(classes, device=dev, requires_grad=True)
    opt = torch.optim.Adam([weight, bias], lr=PROBE_LR, weight_decay=PROBE_WEIGHT_DECAY)
    for _ in range(PROBE_STEPS):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight + bias, y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        xt = torch.as_tensor(xte, dtype=torch.float32, device=dev)
        guess = (xt @ weight + bias).argmax(dim=1).cpu().numpy()
    return float(np.mean(guess == np.asarray(test_y)))


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def retrieval_top1(
    query: np.ndarray, candidate: np.ndarray, anchors: np.ndarray, following: np.ndarray,
    pool: np.ndarray, seed: int = 0, candidates: int = CANDIDATES,
) -> float:
    """Share of anchors whose true next window has the highest cosine among `candidates`
    (it + random others from `pool`, never the anchor or its next). Rows of `query` and
    `candidate` are indexed by window id. Ties share the win (a tie with k others scores
    1/(k+1)), so constant features score chance, not 100%."""
    rng = np.random.default_rng(seed)
    q, c = _unit(query), _unit(candidate)
    pool = np.asarray(pool)
    hits = 0.0
    for a, b in zip(np.asarray(anchors).tolist(), np.asarray(following).tolist(), strict=True):
        others = rng.choice(pool, size=min(candidates + 1, len(pool)), replace=False)
        others = others[(others != a) & (others != b)][: candidates - 1]
        true = float(q[a] @ c[b])
        scores = c[others] @ q[a]
        best = scores.max() if len(scores) else -np.inf
        if true > best + 1e-9:
            hits += 1.0
        elif true >= best - 1e-9:
            hits += 1.0 / (1 + int(np.sum(np.abs(scores - true) <= 1e-9)))
    return hits / max(len(anchors), 1)


@dataclass(frozen=True)
class ProbeSet:
    """Windows and labels a set of embeddings is judged on (one per dataset, shared by rows)."""

    train: np.ndarray  # window ids the probes are fitted on
    test: np.ndarray  # held-out window ids the probes are scored on
    rd_train: np.ndarray  # level labels
    rd_test: np.ndarray
    vn_train: np.ndarray
    vn_test: np.ndarray
    anchors: np.ndarray  # held-out windows with a next window ...
    following: np.ndarray  # ... and that window
    pool: np.ndarray  # held-out windows the 99 random candidates come from
    rd_cuts: np.ndarray
    vn_cuts: np.ndarray

    @property
    def needed(self) -> np.ndarray:
        """Every window id a row's features are read at."""
        return np.unique(np.concatenate([self.train, self.test, self.pool]))

    @property
    def majority(self) -> tuple[float, float]:
        """Test accuracy of always guessing the commonest training level (RD, VN)."""
        rd = np.bincount(self.rd_train, minlength=5).argmax()
        vn = np.bincount(self.vn_train, minlength=5).argmax()
        return float(np.mean(self.rd_test == rd)), float(np.mean(self.vn_test == vn))


def probe_set(
    notes: np.ndarray, offsets: np.ndarray, split: np.ndarray, next_window: np.ndarray,
    max_train: int = 20000, max_test: int = 10000, max_anchors: int = 2000, seed: int = 0,
) -> ProbeSet:
    """Sample probe windows: fitted on training-split windows (split 0), scored on held-out
    songs (split 2); retrieval anchors are held-out windows with a next window."""
    rng = np.random.default_rng(seed)

    def sample(ids: np.ndarray, most: int) -> np.ndarray:
        return np.sort(rng.choice(ids, size=min(most, len(ids)), replace=False))

    train = sample(np.flatnonzero(split == 0), max_train)
    held = np.flatnonzero(split == 2)
    test = sample(held, max_test)
    with_next = held[next_window[held] >= 0]
    anchors = sample(with_next, max_anchors)
    rd_tr, vn_tr = window_descriptors(notes, offsets, train)
    rd_te, vn_te = window_descriptors(notes, offsets, test)
    rd_cuts, vn_cuts = quintile_cutpoints(rd_tr), quintile_cutpoints(vn_tr)
    return ProbeSet(
        train=train, test=test, rd_train=levels(rd_tr, rd_cuts), rd_test=levels(rd_te, rd_cuts),
        vn_train=levels(vn_tr, vn_cuts), vn_test=levels(vn_te, vn_cuts), anchors=anchors,
        following=next_window[anchors], pool=held, rd_cuts=rd_cuts, vn_cuts=vn_cuts,
    )


def by_window(ids: np.ndarray, values: np.ndarray, windows: int) -> np.ndarray:
    """Rows of `values` (one per id) placed at their window ids in a (windows, d) array."""
    out = np.zeros((windows, values.shape[1]), dtype=np.float32)
    out[np.asarray(ids)] = values
    return out


def judge(
    probes: ProbeSet, features: np.ndarray, query: np.ndarray, candidate: np.ndarray,
    seed: int = 0, device: str = "cpu",
) -> dict[str, float]:
    """RD and VN probe accuracy on `features` (rows by window id) and retrieval top-1 with
    `query`/`candidate` vectors (what the row's transition score would compare)."""
    return {
        "rd_probe": linear_probe(features[probes.train], probes.rd_train,
                                 features[probes.test], probes.rd_test, seed=seed, device=device),
        "vn_probe": linear_probe(features[probes.train], probes.vn_train,
                                 features[probes.test], probes.vn_test, seed=seed, device=device),
        "next_top1": retrieval_top1(query, candidate, probes.anchors, probes.following,
                                    probes.pool, seed=seed),
    }
