"""Candidate progressions per phrase and the phrase-level DP (AccoMontage2 §3.2, eq. 2–5).

Per phrase, every length-matched template is a candidate (score: eq. 2's micro term and a
meso of 1), plus the best concatenations of shorter templates (meso = the weakest junction,
eq. 3). The DP maximises, over one candidate per phrase,

    paper   (eq. 5): L(i,s) = β·micro + (1−β)·meso + max_t [ L(i−1,t) + α·macro(t→s) ]
    release        : S(i,s) = β·micro + (1−β)·meso + max_t [ 0.9·S(i−1,t) + α·T(t→s) ]

with macro = the junction score between t's last bar and s's first bar (eq. 4). Since the
junction score lies in [0, 1], a predecessor more than α below the best can never win; pruning
those keeps the DP exact while the work stays proportional to the few near-best states.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.harmonizer.index import LengthGroup, ModeIndex
from engine.harmonizer.micro import micro_scores
from engine.library.chord_templates import ChordTemplate
from engine.types import STYLES, Style, Variant

STYLE_PENALTY = 0.25  # off-style candidates stay available (sparse styles) but rarely win
JITTER = 0.02  # seeds other than 0 perturb local scores by up to this, to pick among near-equals
CONCAT_TOP_PER_PART = 24
CONCAT_KEEP = 48
RELEASE_JUNCTION_MIN = 0.875  # the release keeps only junctions scoring ≥ 0.875
RELEASE_DECAY = 0.9
RELEASE_CHROMATIC_PENALTY = 0.1
PART_LENGTHS = (8, 4, 2, 1)


@dataclass(frozen=True)
class SearchParams:
    alpha: float = 0.1
    beta: float = 0.5
    variant: Variant = "paper"
    seed: int = 0

    @property
    def decay(self) -> float:
        return RELEASE_DECAY if self.variant == "release" else 1.0


@dataclass(frozen=True)
class PhraseCandidates:
    """Candidates of one phrase as aligned arrays; `parts[j]` are template j's pieces."""

    parts: tuple[tuple[ChordTemplate, ...], ...]
    micro: np.ndarray
    meso: np.ndarray
    local: np.ndarray  # β·micro + (1−β)·meso, style penalty and seed jitter included
    first_bar: np.ndarray
    last_bar: np.ndarray
    style: np.ndarray

    def __len__(self) -> int:
        return len(self.parts)


def splits(bars: int) -> list[tuple[int, ...]]:
    """Ways to fill `bars` with shorter template lengths: 2 parts, else 3, else greedy 8s."""
    two: list[tuple[int, ...]] = [
        (a, bars - a) for a in PART_LENGTHS if a < bars and bars - a in PART_LENGTHS
    ]
    if two:
        return two
    three: list[tuple[int, ...]] = [
        (a, b, bars - a - b)
        for a in PART_LENGTHS
        for b in PART_LENGTHS
        if bars - a - b > 0 and bars - a - b in PART_LENGTHS and a >= b >= bars - a - b
    ]
    if three:
        return three[:4]
    greedy: list[int] = []
    while sum(greedy) < bars:
        greedy.append(next(n for n in PART_LENGTHS if n <= bars - sum(greedy)))
    return [tuple(greedy)]


def _style_penalty(style_idx: np.ndarray, wanted: int) -> np.ndarray:
    return np.where(style_idx == wanted, 0.0, STYLE_PENALTY)


def _concatenations(
    index: ModeIndex, slot_table: np.ndarray, bars: int, wanted: int, params: SearchParams
) -> list[tuple[tuple[tuple[LengthGroup, int], ...], float, float, float]]:
    """Best concatenations of shorter templates: [(parts, micro, meso, local)] (§3.2.2)."""
    spb = index.slots_per_bar
    found: list[tuple[tuple[tuple[LengthGroup, int], ...], float, float, float]] = []
    for split in splits(bars):
        if any(n not in index.groups for n in split):
            continue
        # per part: the best templates by micro on that part's bars
        beams: list[list[tuple[tuple[tuple[LengthGroup, int], ...], float, float, float]]] = []
        offset = 0
        for n in split:
            group = index.groups[n]
            mic = micro_scores(slot_table[offset * spb : (offset + n) * spb], group.rows)
            ranked = mic - _style_penalty(group.style, wanted)
            top = np.argsort(-ranked, kind="stable")[:CONCAT_TOP_PER_PART]
            beams.append([(((group, int(i)),), float(mic[i] * n), 1.0, 0.0) for i in top])
            offset += n
        paths = beams[0]
        for beam in beams[1:]:
            joined = []
            for parts, mic_sum, meso, _ in paths:
                last_group, last_i = parts[-1]
                following, scores = index.junctions.scores(
                    int(last_group.last_bar[last_i]), params.variant
                )
                lookup = dict(zip(following.tolist(), scores.tolist(), strict=True))
                for (part,), part_mic, _, _ in beam:
                    group, i = part
                    junction = lookup.get(int(group.first_bar[i]), 0.0)
                    if params.variant == "release" and junction < RELEASE_JUNCTION_MIN:
                        continue
                    joined.append((parts + (part,), mic_sum + part_mic, min(meso, junction), 0.0))
            joined.sort(key=lambda p: -(p[1] / bars * params.beta + (1 - params.beta) * p[2]))
            paths = joined[:CONCAT_TOP_PER_PART]
        for parts, mic_sum, meso, _ in paths:
            micro = mic_sum / bars
            off_style = any(int(g.style[i]) != wanted for g, i in parts)
            local = params.beta * micro + (1 - params.beta) * meso - (STYLE_PENALTY * off_style)
            found.append((parts, micro, meso, local))
    found.sort(key=lambda f: -f[3])
    return found[:CONCAT_KEEP]


def phrase_candidates(
    index: ModeIndex, slot_table: np.ndarray, bars: int, style: Style, params: SearchParams,
    phrase_no: int = 0,
) -> PhraseCandidates:
    """Score all candidates for one phrase (eq. 2 micro, eq. 3 meso)."""
    wanted = STYLES.index(style)
    parts: list[tuple[ChordTemplate, ...]] = []
    micro: list[np.ndarray] = []
    meso: list[np.ndarray] = []
    local: list[np.ndarray] = []
    first: list[np.ndarray] = []
    last: list[np.ndarray] = []
    styles: list[np.ndarray] = []
    group = index.groups.get(bars)
    if group is not None:
        mic = micro_scores(slot_table, group.rows)
        mes = np.ones(len(group.templates))
        if params.variant == "release":
            mes = mes - RELEASE_CHROMATIC_PENALTY * group.chromatic
        parts.extend((t,) for t in group.templates)
        micro.append(mic)
        meso.append(mes)
        local.append(
            params.beta * mic + (1 - params.beta) * mes - _style_penalty(group.style, wanted)
        )
        first.append(group.first_bar)
        last.append(group.last_bar)
        styles.append(group.style)
    concats = _concatenations(index, slot_table, bars, wanted, params)
    if concats:
        parts.extend(tuple(g.templates[i] for g, i in c[0]) for c in concats)
        micro.append(np.array([c[1] for c in concats]))
        meso.append(np.array([c[2] for c in concats]))
        local.append(np.array([c[3] for c in concats]))
        first.append(np.array([c[0][0][0].first_bar[c[0][0][1]] for c in concats], dtype=np.intp))
        last.append(np.array([c[0][-1][0].last_bar[c[0][-1][1]] for c in concats], dtype=np.intp))
        styles.append(np.array(
            [wanted if all(int(g.style[i]) == wanted for g, i in c[0]) else int(c[0][0][0].style[
                c[0][0][1]]) for c in concats], dtype=np.intp))
    if not parts:
        raise LookupError(f"no {bars}-bar templates or concatenations in the {index.meter} library")
    local_all = np.concatenate(local)
    if params.seed:
        rng = np.random.default_rng([params.seed, phrase_no])
        local_all = local_all + rng.uniform(0.0, JITTER, len(local_all))
    return PhraseCandidates(
        parts=tuple(parts),
        micro=np.concatenate(micro),
        meso=np.concatenate(meso),
        local=local_all,
        first_bar=np.concatenate(first),
        last_bar=np.concatenate(last),
        style=np.concatenate(styles),
    )


@dataclass(frozen=True)
class SearchResult:
    chosen: tuple[int, ...]  # candidate index per phrase
    totals: tuple[float, ...]  # DP score of the chosen path up to each phrase
    score: float


def _best_incoming(
    index: ModeIndex, prev_scores: np.ndarray, prev_last: np.ndarray, cur_first: np.ndarray,
    params: SearchParams,
) -> tuple[np.ndarray, np.ndarray]:
    """max_t [decay·L(i−1,t) + α·macro(t→s)] and its argmax t, for every current candidate s."""
    weighted = params.decay * prev_scores
    top = int(np.argmax(weighted))
    best = np.full(len(cur_first), weighted[top])
    arg = np.full(len(cur_first), top, dtype=np.intp)
    # Only predecessors within α of the best can gain from a junction (macro ≤ 1): exact prune.
    near = np.nonzero(weighted >= weighted[top] - params.alpha)[0]
    by_bar: dict[int, int] = {}
    for t in near[np.argsort(-weighted[near], kind="stable")]:
        by_bar.setdefault(int(prev_last[t]), int(t))
    n_bars = len(index.bar_ids)
    junction_row = np.zeros(n_bars)
    for bar, t in by_bar.items():
        following, scores = index.junctions.scores(bar, params.variant)
        if not len(following):
            continue
        junction_row[following] = scores
        value = weighted[t] + params.alpha * junction_row[cur_first]
        better = value > best
        best[better] = value[better]
        arg[better] = t
        junction_row[following] = 0.0
    return best, arg


def run_dp(index: ModeIndex, phrases: list[PhraseCandidates], params: SearchParams) -> SearchResult:
    """Viterbi over phrases (eq. 5); ties resolve to the lower candidate index."""
    scores = phrases[0].local.copy()
    backs: list[np.ndarray] = []
    history = [scores]
    for prev, cur in zip(phrases, phrases[1:], strict=False):
        incoming, arg = _best_incoming(index, scores, prev.last_bar, cur.first_bar, params)
        scores = cur.local + incoming
        backs.append(arg)
        history.append(scores)
    j = int(np.argmax(scores))
    path = [j]
    for arg in reversed(backs):
        j = int(arg[j])
        path.append(j)
    path.reverse()
    totals = tuple(float(h[c]) for h, c in zip(history, path, strict=True))
    return SearchResult(chosen=tuple(path), totals=totals, score=totals[-1])


def junction(index: ModeIndex, a_last: int, b_first: int, params: SearchParams) -> float:
    return index.junctions.score(a_last, b_first, params.variant)


def alternatives(
    index: ModeIndex, phrases: list[PhraseCandidates], result: SearchResult, i: int, k: int,
    params: SearchParams,
) -> list[tuple[int, float]]:
    """Top-k other candidates for phrase i with the path score if swapped in (paper form)."""
    cands = phrases[i]
    contribution = cands.local.copy()
    for neighbour, forward in ((i - 1, True), (i + 1, False)):
        if not 0 <= neighbour < len(phrases):
            continue
        other = phrases[neighbour]
        c = result.chosen[neighbour]
        if forward:
            following, scores = index.junctions.scores(int(other.last_bar[c]), params.variant)
            row = np.zeros(len(index.bar_ids))
            row[following] = scores
            contribution += params.alpha * row[cands.first_bar]
        else:
            bonus = _into(index, cands.last_bar, int(other.first_bar[c]), params)
            contribution += params.alpha * bonus
    chosen = result.chosen[i]
    base = result.score - contribution[chosen]
    order = [int(j) for j in np.argsort(-contribution, kind="stable") if j != chosen][:k]
    return [(j, float(base + contribution[j])) for j in order]


def _into(index: ModeIndex, last_bars: np.ndarray, first: int, params: SearchParams) -> np.ndarray:
    """Junction score from each of `last_bars` into bar `first`, via distinct bars only."""
    out = np.zeros(len(last_bars))
    for bar in np.unique(last_bars):
        out[last_bars == bar] = junction(index, int(bar), first, params)
    return out


def path_score(
    index: ModeIndex, phrases: list[PhraseCandidates], path: tuple[int, ...], params: SearchParams
) -> float:
    """Score of one explicit path by the recurrence itself — the brute-force reference."""
    total = 0.0
    for i, j in enumerate(path):
        step = float(phrases[i].local[j])
        if i:
            prev = phrases[i - 1]
            t = path[i - 1]
            step += params.alpha * junction(
                index, int(prev.last_bar[t]), int(phrases[i].first_bar[j]), params
            )
        total = params.decay * total + step if i else step
    return total


__all__ = [
    "PhraseCandidates", "SearchParams", "SearchResult", "alternatives", "path_score",
    "phrase_candidates", "run_dp", "splits",
]
