"""The one options codec (engine/options.py): options check themselves on construction and
round-trip through the OSC API's JSON names, so every front end accepts the same values."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from typing import Any

import pytest

from engine import (
    ArrangeOptions,
    HarmonizeOptions,
    Key,
    OptionError,
    Voicing,
)
from engine.options import ARRANGE_NAMES, HARMONIZE_NAMES

# one value per field, none of them the default
CHANGED = ArrangeOptions(
    harmonize=HarmonizeOptions(
        key=Key(10, "minor"), phrases="A8B8", pickup_16th=4, style="dark",
        phrase_styles=("rnb", None), seed=7, alpha=0.3, beta=0.9, variant="paper", top_k=12,
        fix_leading_tone=False, melody_colours=False, tonic_balance=0.25,
        musical_structure=False, scorer="rules", voicing=Voicing("high", False),
    ),
    density=3, polyphony=0, library="pop909", reharmonizer="learned", transition="learned",
)


def test_every_field_round_trips_through_json() -> None:
    default_h, changed_h = HarmonizeOptions(), CHANGED.harmonize
    for f in fields(HarmonizeOptions):  # the fixture really moves every field
        assert getattr(changed_h, f.name) != getattr(default_h, f.name), f.name
    for f in fields(ArrangeOptions):
        assert getattr(CHANGED, f.name) != getattr(ArrangeOptions(), f.name), f.name
    doc = json.loads(json.dumps(CHANGED.to_json()))  # through real JSON text
    assert ArrangeOptions.from_json(doc) == CHANGED
    assert HarmonizeOptions.from_json(json.loads(json.dumps(changed_h.to_json()))) == changed_h
    assert ArrangeOptions.from_json({}) == ArrangeOptions()
    assert set(doc) == {"schema_version", *HARMONIZE_NAMES, *ARRANGE_NAMES}


def test_a_missing_or_null_name_keeps_the_default() -> None:
    assert ArrangeOptions.from_json({"density": None, "key": None}) == ArrangeOptions()
    assert HarmonizeOptions.from_json({"style": "rnb"}) == HarmonizeOptions(style="rnb")


@pytest.mark.parametrize(("change", "needle"), [
    ({"alpha": float("nan")}, "alpha must be a number 0..1"),
    ({"beta": float("inf")}, "beta must be a number 0..1"),
    ({"tonic_balance": 2}, "tonic_balance must be a number 0..1"),
    ({"style": "polka"}, "style must be one of pop_standard"),
    ({"variant": "x"}, "variant must be one of ours, paper, release"),
    ({"top_k": -1}, "top_k must be a whole number 0..50"),
    ({"seed": 1.5}, "seed must be a whole number"),
    ({"pickup_16th": True}, "pickup must be a whole number"),
    ({"phrase_styles": ["dark"]}, "phrase_styles must be a tuple"),
    ({"phrase_styles": ("dark", "x")}, "phrase_styles must be one of"),
    ({"phrases": ""}, "phrases must be a text of 1..2000 characters"),
    ({"scorer": "neural"}, "scorer must be one of rules, learned"),
    ({"melody_colours": "yes"}, "colours"),
    ({"key": "C"}, "key must be a Key or None"),
])
def test_construction_refuses_what_the_engine_cannot_use(change: dict[str, Any],
                                                         needle: str) -> None:
    with pytest.raises(OptionError, match=needle):
        replace(HarmonizeOptions(), **change)


@pytest.mark.parametrize(("change", "needle"), [
    ({"density": 5}, "density must be a whole number 0..4"),
    ({"polyphony": -1}, "polyphony must be a whole number 0..4"),
    ({"library": "../../../etc"}, "library must be one of default, pop909"),
    ({"transition": "x"}, "transition must be one of rules, learned"),
    ({"harmonize": {}}, "harmonize must be HarmonizeOptions"),
])
def test_arrange_options_check_their_own_fields(change: dict[str, Any], needle: str) -> None:
    with pytest.raises(OptionError, match=needle):
        replace(ArrangeOptions(), **change)


@pytest.mark.parametrize(("doc", "needle"), [
    ([], "options must be a JSON object"),
    ({"colour": "blue"}, "unknown option"),
    ({"schema_version": 2}, "schema_version must be 1"),
    ({"key": "C", "mode": 5}, "mode must be one of major, minor"),
    ({"key": "H"}, "unknown key 'H'"),
    ({"key": "C" * 500}, "key must be a text of 1..16 characters"),
    ({"mode": "minor"}, "mode needs option key"),
    ({"density": 1e999}, "density must be a whole number 0..4"),
    ({"seed": "7"}, "seed must be a whole number"),
    ({"alpha": True}, "alpha must be a number 0..1"),
    ({"phrase_styles": "dark"}, "phrase_styles must be a list"),
    ({"phrase_styles": ["dark"] * 600}, "phrase_styles must be a list of at most 512"),
    ({"voicing": {"register": "up"}}, "voicing.register must be one of low, middle, high"),
    ({"voicing": {"pedal": 1}}, "voicing must be an object"),
    ({"phrases": [["A8"]]}, "phrases must be a text"),
])
def test_bad_json_names_the_field(doc: Any, needle: str) -> None:
    with pytest.raises(OptionError, match=needle):
        ArrangeOptions.from_json(doc)


def test_deep_or_huge_values_are_refused_without_walking_them() -> None:
    deep: Any = []
    for _ in range(100_000):  # deeper than the interpreter could recurse
        deep = [deep]
    with pytest.raises(OptionError, match="phrase_styles must be"):
        ArrangeOptions.from_json({"phrase_styles": deep})
    with pytest.raises(OptionError, match="unknown option"):
        ArrangeOptions.from_json({"x" * 10_000: 1})


def test_harmonize_json_refuses_the_arrangers_names() -> None:
    with pytest.raises(OptionError, match="unknown option.*density"):
        HarmonizeOptions.from_json({"density": 2})
