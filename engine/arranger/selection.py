"""Texture selection: one texture (or donor phrase) per melody phrase by Viterbi over
fitness and transition scores (AccoMontage §3.3, algorithms.md §2.2):

    score_i(j) = max_k [ score_{i−1}(k) + w_T·E_i[k, j] ] + w_F·fitness_i(j)

E_i[k, j] = −inf forbids a transition (no backwards jumps within a donor song). The
prefilter (requested density/polyphony level) enters as −1 on non-matching candidates of
*every* phrase, not only the first as in the release.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from typing import TypeVar

import numpy as np

from engine.errors import BadInputError

T = TypeVar("T")

TRANSITION_WEIGHT = 0.7  # the paper's 0.7 / 0.3 split
FITNESS_WEIGHT = 0.3
PREFILTER_PENALTY = 1.0


def prefilter(levels: np.ndarray, wanted: int | None) -> np.ndarray:
    """−1 for candidates whose level is not the requested one (0 when nothing is requested)."""
    if wanted is None:
        return np.zeros(len(levels))
    return np.where(levels == wanted, 0.0, -PREFILTER_PENALTY)


def viterbi(
    fitness: Sequence[np.ndarray], transitions: Sequence[np.ndarray],
    transition_weight: float = TRANSITION_WEIGHT, fitness_weight: float = FITNESS_WEIGHT,
) -> tuple[list[int], float]:
    """Best candidate per phrase; `transitions[i−1]` is E_i with shape (n_{i−1}, n_i)."""
    score = fitness_weight * np.asarray(fitness[0], dtype=float)
    backs: list[np.ndarray] = []
    for fit, trans in zip(fitness[1:], transitions, strict=True):
        total = score[:, None] + transition_weight * trans
        back = np.argmax(total, axis=0)
        best = total[back, np.arange(total.shape[1])]
        score = best + fitness_weight * np.asarray(fit, dtype=float)
        backs.append(back)
    j = int(np.argmax(score))
    best_score = float(score[j])
    path = [j]
    for back in reversed(backs):
        j = int(back[j])
        path.append(j)
    path.reverse()
    return path, best_score


def rank_between(
    fitness: np.ndarray, from_before: np.ndarray | None, to_after: np.ndarray | None,
    transition_weight: float = TRANSITION_WEIGHT, fitness_weight: float = FITNESS_WEIGHT,
) -> np.ndarray:
    """One phrase's candidates scored as `viterbi` scores them with both neighbours' choices
    fixed: w_F·fitness + w_T·(E from the phrase before's choice + E to the phrase after's);
    `from_before`/`to_after` are those rows of E (None at the song's ends)."""
    score = fitness_weight * np.asarray(fitness, dtype=float)
    for transition in (from_before, to_after):
        if transition is not None:
            score = score + transition_weight * np.asarray(transition, dtype=float)
    return score


def pin(fitness: np.ndarray, keep: int | None = None, drop: int | None = None) -> np.ndarray:
    """Fitness with candidates ruled out (−inf): all but `keep` for a locked phrase, `drop`
    for a phrase that must change texture (unless it is the only candidate)."""
    out = np.asarray(fitness, dtype=float).copy()
    if keep is not None:
        out[np.arange(len(out)) != keep] = -np.inf
    if drop is not None and len(out) > 1:
        out[drop] = -np.inf
    return out


def share_by_label(
    chosen: Sequence[T], labels: Sequence[Hashable], locked: Collection[int] = (),
    changing: Collection[int] = (),
) -> list[T]:
    """Phrases with one label play one texture, the first's. A locked phrase keeps its own and
    sets its label's texture first; a phrase being re-arranged (`changing`) keeps its new one."""
    first: dict[Hashable, T] = {}
    for i in sorted(locked):
        first.setdefault(labels[i], chosen[i])
    out = list(chosen)
    for i, label in enumerate(labels):
        if i not in locked and i not in changing:
            out[i] = first.setdefault(label, chosen[i])
    return out


def lock_indices(
    locked: Mapping[int, str], lookup: Mapping[str, int], what: str
) -> dict[int, int]:
    """Phrase index → candidate index of each locked texture name."""
    out: dict[int, int] = {}
    for i, name in locked.items():
        if name not in lookup:
            raise BadInputError(
                f"phrase {i + 1}'s locked texture {name!r} is not in the {what}; unlock it"
            )
        out[i] = lookup[name]
    return out
