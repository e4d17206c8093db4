"""Candidate progressions per phrase and the phrase-level DP (AccoMontage2 §3.2, eq. 2–5).

Per phrase, every length-matched template is a candidate (score: eq. 2's micro term and a
meso of 1), plus the best concatenations of shorter templates (meso = the weakest junction,
eq. 3). The DP maximises, over one candidate per phrase,

    paper   (eq. 5): L(i,s) = β·micro + (1−β)·meso + max_t [ L(i−1,t) + α·macro(t→s) ]
    release        : S(i,s) = β·micro + (1−β)·meso + max_t [ 0.9·S(i−1,t) + α·T(t→s) ]

with macro = the junction score between t's last bar and s's first bar (eq. 4). Ours adds a
tonic-balance term to the local score, γ·(1 − share of the candidate's slots on the tonic):
the micro table's row I scores five of the seven scale degrees at .7 or more, so a held tonic
is never far from the best fit and the plain search parks on it (half the beats on the held-out
songs against 27% under POP909's human chords; benchmarks/harmony_quality). Since the
junction score lies in [0, 1], a predecessor more than α below the best can never win; pruning
those keeps the DP exact while the work stays proportional to the few near-best states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from engine.harmonizer.index import LengthGroup, ModeIndex
from engine.harmonizer.micro import micro_scores
from engine.library.chord_templates import ChordTemplate
from engine.types import STYLES, Style, Variant

T = TypeVar("T", float, np.ndarray)
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
    variant: Variant = "ours"
    seed: int = 0
    tonic_balance: float = 0.0  # γ of the tonic-balance term (ours only)

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


def tonic_balance_term(params: SearchParams, tonic_share: T) -> T:
    """Ours: γ·(1 − tonic share) of a candidate (module docstring); 0 for the paper's variants."""
    if params.variant != "ours" or not params.tonic_balance:
        return tonic_share * 0.0
    return params.tonic_balance * (1.0 - tonic_share)


def _style_penalty(style_idx: np.ndarray, wanted: int) -> np.ndarray:
    return np.where(style_idx == wanted, 0.0, STYLE_PENALTY)


Concatenation = tuple[tuple[tuple[LengthGroup, int], ...], float, float, float]


def _concatenations(
    index: ModeIndex, slot_table: np.ndarray, bars: int, wanted: int, params: SearchParams
) -> list[Concatenation]:
    """Best concatenations of shorter templates: [(parts, micro, meso, local)] (§3.2.2).

    A beam per split: the best templates for each part by micro, joined part by part keeping
    the best partial paths; meso is the weakest junction so far (eq. 3)."""
    spb = index.slots_per_bar
    junction = index.junctions.matrix(params.variant)
    found: list[Concatenation] = []
    for split in splits(bars):
        if any(n not in index.groups for n in split):
            continue
        paths: list[tuple[tuple[LengthGroup, int], ...]] = [()]
        mic_sum, meso, tonic = np.zeros(1), np.ones(1), np.zeros(1)
        off, last = np.zeros(1, dtype=bool), np.zeros(1, dtype=np.intp)
        offset = 0
        for n in split:
            group = index.groups[n]
            mic = micro_scores(slot_table[offset * spb : (offset + n) * spb], group.rows) * n
            part_off = group.style != wanted
            top = np.argsort(-(mic - STYLE_PENALTY * n * part_off), kind="stable")
            top = top[:CONCAT_TOP_PER_PART]
            # (paths × parts) matrices of the joined candidates
            joined_mic = mic_sum[:, None] + mic[top][None, :]
            if offset:
                link = junction[last][:, group.first_bar[top]]
                joined_meso = np.minimum(meso[:, None], link)
            else:
                link = np.ones((1, len(top)))
                joined_meso = np.ones((1, len(top)))
            joined_off = off[:, None] | part_off[top][None, :]
            joined_tonic = tonic[:, None] + group.tonic_slots[top][None, :]
            rank = (params.beta * joined_mic / bars + (1 - params.beta) * joined_meso
                    - STYLE_PENALTY * joined_off
                    + tonic_balance_term(params, joined_tonic / ((offset + n) * spb)))
            if params.variant == "release" and offset:
                # The release keeps only strong junctions; it would fail on a phrase none can
                # fill (7, 15 bars …), so then we fall back to the weak ones, scored as they are.
                strong = link >= RELEASE_JUNCTION_MIN
                if strong.any():
                    rank = np.where(strong, rank, -np.inf)
            flat = np.argsort(-rank, axis=None, kind="stable")[:CONCAT_TOP_PER_PART]
            flat = flat[np.isfinite(rank.ravel()[flat])]
            rows, cols = np.unravel_index(flat, rank.shape)
            paths = [paths[r] + ((group, int(top[c])),) for r, c in zip(rows, cols, strict=True)]
            mic_sum, meso = joined_mic[rows, cols], joined_meso[rows, cols]
            tonic = joined_tonic[rows, cols]
            off, last = joined_off[rows, cols], group.last_bar[top[cols]]
            offset += n
        for k, parts in enumerate(paths):
            micro = float(mic_sum[k]) / bars
            local = (params.beta * micro + (1 - params.beta) * float(meso[k])
                     - STYLE_PENALTY * bool(off[k])
                     + tonic_balance_term(params, float(tonic[k]) / (bars * spb)))
            found.append((parts, micro, float(meso[k]), local))
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
        parts.extend(group.singles)
        micro.append(mic)
        meso.append(mes)
        local.append(
            params.beta * mic + (1 - params.beta) * mes - _style_penalty(group.style, wanted)
            + tonic_balance_term(params, group.tonic_slots / (bars * index.slots_per_bar))
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


def with_extra(
    cands: PhraseCandidates, micro: float, meso: float, local: float, first_bar: int,
    last_bar: int, style: int,
) -> PhraseCandidates:
    """The candidates plus one more (a locked progression), appended last with no parts."""
    return PhraseCandidates(
        parts=cands.parts + ((),),
        micro=np.append(cands.micro, micro),
        meso=np.append(cands.meso, meso),
        local=np.append(cands.local, local),
        first_bar=np.append(cands.first_bar, first_bar),
        last_bar=np.append(cands.last_bar, last_bar),
        style=np.append(cands.style, style),
    )


def only(cands: PhraseCandidates, j: int) -> PhraseCandidates:
    """Candidate j alone: a locked phrase offers the DP nothing else."""
    keep = slice(j, j + 1)
    return PhraseCandidates(
        parts=cands.parts[keep], micro=cands.micro[keep], meso=cands.meso[keep],
        local=cands.local[keep], first_bar=cands.first_bar[keep], last_bar=cands.last_bar[keep],
        style=cands.style[keep],
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
    # Only predecessors within α of the best can gain from a junction (macro ≤ 1): exact prune.
    near = np.nonzero(weighted >= weighted[top] - params.alpha)[0]
    near = near[np.argsort(-weighted[near], kind="stable")]
    # the best predecessor per distinct last bar is all that matters for the junction term
    _, first_seen = np.unique(prev_last[near], return_index=True)
    near = near[np.sort(first_seen)]
    junction = index.junctions.matrix(params.variant)
    value = weighted[near][:, None] + params.alpha * junction[prev_last[near]][:, cur_first]
    best_row = np.argmax(value, axis=0)  # ties → the better-scored predecessor
    return value[best_row, np.arange(len(cur_first))], near[best_row]


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


def alternatives(
    index: ModeIndex, phrases: list[PhraseCandidates], result: SearchResult, i: int, k: int,
    params: SearchParams,
) -> list[tuple[int, float]]:
    """Top-k other candidates for phrase i with the path score if swapped in (paper form)."""
    cands = phrases[i]
    junction = index.junctions.matrix(params.variant)
    contribution = cands.local.copy()
    if i > 0:
        before = phrases[i - 1].last_bar[result.chosen[i - 1]]
        contribution += params.alpha * junction[before, cands.first_bar]
    if i + 1 < len(phrases):
        after = phrases[i + 1].first_bar[result.chosen[i + 1]]
        contribution += params.alpha * junction[cands.last_bar, after]
    chosen = result.chosen[i]
    base = result.score - contribution[chosen]
    if k + 1 < len(contribution):  # only the best k+1 need ordering (ties: lower index first)
        top = np.argpartition(-contribution, k)[: k + 1]
        cutoff = contribution[top].min()
        ranked = np.flatnonzero(contribution >= cutoff)
        ranked = ranked[np.argsort(-contribution[ranked], kind="stable")]
    else:
        ranked = np.argsort(-contribution, kind="stable")
    order = [int(j) for j in ranked if j != chosen][:k]
    return [(j, float(base + contribution[j])) for j in order]


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
            step += params.alpha * index.junctions.score(
                int(prev.last_bar[t]), int(phrases[i].first_bar[j]), params.variant
            )
        total = params.decay * total + step if i else step
    return total


__all__ = [
    "PhraseCandidates", "SearchParams", "SearchResult", "alternatives", "only", "path_score",
    "phrase_candidates", "run_dp", "splits", "tonic_balance_term", "with_extra",
]
