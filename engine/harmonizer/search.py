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

from dataclasses import dataclass, replace
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
    # How many times wider than 0..1 the slot scores are (1 + the learned scorer's weight):
    # the style penalty and the seed jitter grow with it, or they would stop steering
    slot_scale: float = 1.0

    @property
    def decay(self) -> float:
        return RELEASE_DECAY if self.variant == "release" else 1.0


@dataclass(frozen=True)
class PhraseCandidates:
    """Candidates of one phrase as aligned arrays; `parts[j]` are template j's pieces."""

    parts: tuple[tuple[ChordTemplate, ...], ...]
    micro: np.ndarray
    meso: np.ndarray
    local: np.ndarray  # eq. 5's local score (`local_score`), ours' terms and seed jitter in
    first_bar: np.ndarray
    last_bar: np.ndarray
    style: np.ndarray
    rows: np.ndarray  # (candidates, slots) chord_table row of every 8th: what ours' terms read

    def __len__(self) -> int:
        return len(self.parts)

    def plus(self, bonus: np.ndarray) -> PhraseCandidates:
        """The same candidates with `bonus` added to their local scores (ours' terms)."""
        return replace(self, local=self.local + bonus)


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


def meso_score(weakest_junction: T, chromatic: T, params: SearchParams) -> T:
    """Eq. 3: 1 for a single template (`weakest_junction` 1), the weakest junction score of a
    concatenation; the release takes 0.1 off a candidate with a chromatic root."""
    if params.variant == "release":
        return weakest_junction - RELEASE_CHROMATIC_PENALTY * chromatic
    return weakest_junction


def macro_score(index: ModeIndex, last_bar: np.ndarray, first_bar: np.ndarray,
                params: SearchParams) -> np.ndarray:
    """Eq. 4: the junction score from each candidate's last bar to each next one's first bar
    (a matrix: rows = `last_bar`, columns = `first_bar`)."""
    return index.junctions.matrix(params.variant)[np.ix_(np.atleast_1d(last_bar),
                                                         np.atleast_1d(first_bar))]


def local_score(micro: T, meso: T, params: SearchParams, off_style: T, tonic_share: T) -> T:
    """Eq. 5's local part β·micro + (1−β)·meso, less the off-style penalty, plus ours' tonic
    balance; ours' musical-structure terms are added per phrase (`structure.py`)."""
    return (params.beta * micro + (1 - params.beta) * meso
            - STYLE_PENALTY * params.slot_scale * off_style
            + tonic_balance_term(params, tonic_share))


Concatenation = tuple[tuple[tuple[LengthGroup, int], ...], float, float, float]


def _concatenations(
    index: ModeIndex, slot_table: np.ndarray, bars: int, wanted: int, params: SearchParams
) -> list[Concatenation]:
    """Best concatenations of shorter templates: [(parts, micro, meso, local)] (§3.2.2).

    A beam per split: the best templates for each part by micro, joined part by part keeping
    the best partial paths; meso is the weakest junction so far (eq. 3)."""
    spb = index.slots_per_bar
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
            top = np.argsort(-(mic - STYLE_PENALTY * params.slot_scale * n * part_off),
                             kind="stable")
            top = top[:CONCAT_TOP_PER_PART]
            # (paths × parts) matrices of the joined candidates
            joined_mic = mic_sum[:, None] + mic[top][None, :]
            if offset:
                link = macro_score(index, last, group.first_bar[top], params)
                joined_meso = np.minimum(meso[:, None], link)
            else:
                link = np.ones((1, len(top)))
                joined_meso = np.ones((1, len(top)))
            joined_off = off[:, None] | part_off[top][None, :]
            joined_tonic = tonic[:, None] + group.tonic_slots[top][None, :]
            rank = local_score(joined_mic / bars, meso_score(joined_meso, 0.0, params), params,
                               joined_off, joined_tonic / ((offset + n) * spb))
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
            weakest = meso_score(float(meso[k]), 0.0, params)
            local = local_score(micro, weakest, params, float(off[k]),
                                float(tonic[k]) / (bars * spb))
            found.append((parts, micro, weakest, local))
    found.sort(key=lambda f: -f[3])
    return found[:CONCAT_KEEP]


def phrase_candidates(
    index: ModeIndex, slot_table: np.ndarray, bars: int, style: Style, params: SearchParams,
    phrase_no: int = 0,
) -> PhraseCandidates:
    """Score all candidates for one phrase (eq. 2 micro, eq. 3 meso, eq. 5's local score)."""
    wanted = STYLES.index(style)
    parts: list[tuple[ChordTemplate, ...]] = []
    micro: list[np.ndarray] = []
    meso: list[np.ndarray] = []
    local: list[np.ndarray] = []
    first: list[np.ndarray] = []
    last: list[np.ndarray] = []
    styles: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    group = index.groups.get(bars)
    if group is not None:
        mic = micro_scores(slot_table, group.rows)
        mes = meso_score(np.ones(len(group.templates)), group.chromatic, params)
        parts.extend(group.singles)
        micro.append(mic)
        meso.append(mes)
        local.append(local_score(mic, mes, params, group.style != wanted,
                                 group.tonic_slots / (bars * index.slots_per_bar)))
        first.append(group.first_bar)
        last.append(group.last_bar)
        styles.append(group.style)
        rows.append(group.rows)
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
        rows.append(np.array([np.concatenate([g.rows[i] for g, i in c[0]]) for c in concats],
                             dtype=np.intp))
    if not parts:
        raise LookupError(f"no {bars}-bar templates or concatenations in the {index.meter} library")
    local_all = np.concatenate(local)
    if params.seed:
        rng = np.random.default_rng([params.seed, phrase_no])
        local_all = local_all + rng.uniform(0.0, JITTER * params.slot_scale, len(local_all))
    return PhraseCandidates(
        parts=tuple(parts),
        micro=np.concatenate(micro),
        meso=np.concatenate(meso),
        local=local_all,
        first_bar=np.concatenate(first),
        last_bar=np.concatenate(last),
        style=np.concatenate(styles),
        rows=np.concatenate(rows),
    )


def with_extra(
    cands: PhraseCandidates, micro: float, meso: float, local: float, first_bar: int,
    last_bar: int, style: int, rows: np.ndarray,
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
        rows=np.concatenate([cands.rows, rows[None, :]]),
    )


def only(cands: PhraseCandidates, j: int) -> PhraseCandidates:
    """Candidate j alone: a locked phrase offers the DP nothing else."""
    keep = slice(j, j + 1)
    return PhraseCandidates(
        parts=cands.parts[keep], micro=cands.micro[keep], meso=cands.meso[keep],
        local=cands.local[keep], first_bar=cands.first_bar[keep], last_bar=cands.last_bar[keep],
        style=cands.style[keep], rows=cands.rows[keep],
    )


@dataclass(frozen=True)
class SearchResult:
    chosen: tuple[int, ...]  # candidate index per phrase
    totals: tuple[float, ...]  # DP score of the chosen path up to each phrase
    score: float
    # per phrase, every candidate's best prefix score L(i, ·) (eq. 5)
    prefixes: tuple[np.ndarray, ...] = ()


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
    value = weighted[near][:, None] + params.alpha * macro_score(index, prev_last[near],
                                                                 cur_first, params)
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
    return SearchResult(chosen=tuple(path), totals=totals, score=totals[-1],
                        prefixes=tuple(history))


def prefix_scores(
    index: ModeIndex, phrases: list[PhraseCandidates], result: SearchResult, i: int,
    params: SearchParams,
) -> np.ndarray:
    """Every candidate's best prefix score L(i, ·) (eq. 5) for phrase i, also where the DP saw
    only one (a locked phrase): its local score plus the best way in from the DP's phrase i−1.
    A phrase the DP saw as one candidate has its lock last in `phrases`."""
    cands = phrases[i]
    if i == 0:
        return cands.local.copy()
    before = phrases[i - 1]
    prev = result.prefixes[i - 1]
    prev_last = before.last_bar if len(prev) == len(before) else before.last_bar[-1:]
    incoming, _ = _best_incoming(index, prev, prev_last, cands.first_bar, params)
    return cands.local + incoming


def alternatives(
    index: ModeIndex, phrases: list[PhraseCandidates], result: SearchResult, i: int, k: int,
    params: SearchParams,
) -> list[tuple[int, float]]:
    """Top-k other candidates for phrase i with the whole-path score if swapped in."""
    cands = phrases[i]
    # the path score weighs phrase i's step (local + incoming junction) by decay^(n−1−i) and
    # its outgoing junction (the next step's) by decay^(n−2−i); decay is 1 but in the release
    n = len(phrases)
    contribution = cands.local.copy()
    if i > 0:
        before = phrases[i - 1].last_bar[result.chosen[i - 1]]
        contribution += params.alpha * macro_score(index, before, cands.first_bar, params)[0]
    contribution *= params.decay ** (n - 1 - i)
    if i + 1 < n:
        after = phrases[i + 1].first_bar[result.chosen[i + 1]]
        contribution += (params.decay ** (n - 2 - i) * params.alpha
                         * macro_score(index, cands.last_bar, after, params)[:, 0])
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
            step += params.alpha * float(
                macro_score(index, prev.last_bar[t], phrases[i].first_bar[j], params)[0, 0]
            )
        total = params.decay * total + step if i else step
    return total


__all__ = [
    "PhraseCandidates", "SearchParams", "SearchResult", "alternatives", "local_score",
    "macro_score", "meso_score", "only", "path_score", "phrase_candidates", "prefix_scores",
    "run_dp", "splits",
    "tonic_balance_term", "with_extra",
]
