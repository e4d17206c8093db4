"""Chooses, per ArrangeOptions, between the rule-based arranger parts and the torch models of
engine/models (algorithms.md §2.2–2.3). torch is imported only when a learned part is asked for,
so the rule-based path never pays for it."""

from __future__ import annotations

from typing import Any

from engine.arranger.plugins import RULE_BASED_REHARMONIZER, Reharmonizer, TransitionScorer
from engine.types import ArrangeOptions


def reharmonizer_for(options: ArrangeOptions) -> Reharmonizer:
    if options.reharmonizer == "learned":
        from engine.models.reharmonizer import learned_reharmonizer

        return learned_reharmonizer()
    return RULE_BASED_REHARMONIZER


def transition_for(options: ArrangeOptions, donors: Any) -> TransitionScorer | None:
    """None means the donors' own rule-based texture continuity."""
    if options.transition == "learned":
        from engine.models.transition import learned_transition

        return learned_transition(donors)
    return None
