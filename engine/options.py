"""The one options codec: what a user may steer, checked once, and its JSON form.

`HarmonizeOptions` and `ArrangeOptions` (engine.types) call `check_harmonize` / `check_arrange`
on construction, so no path (CLI, OSC, REAPER spool, presets, panel) can build options the
engine would choke on: a bad value is an `OptionError` naming the field and what is allowed.
`to_json` / `from_json` give the flat JSON object of the OSC API (docs/osc-api.md: the names of
`/acco/generate`'s params_json): every front end maps its own names onto these and nothing else.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Mapping
from typing import Any, cast

from engine.errors import OptionError
from engine.types import (
    MODEL_CHOICES,
    MODES,
    STYLES,
    TEXTURE_LIBRARIES,
    VARIANTS,
    VOICING_REGISTERS,
    ArrangeOptions,
    HarmonizeOptions,
    Key,
    Voicing,
)

SCHEMA_VERSION = 1
STYLE_NAMES: tuple[str, ...] = STYLES
VARIANT_NAMES: tuple[str, ...] = VARIANTS
MODEL_NAMES: tuple[str, ...] = MODEL_CHOICES
LIBRARY_NAMES: tuple[str, ...] = TEXTURE_LIBRARIES
COLOUR_NAMES = ("melody", "style")
MODE_NAMES: tuple[str, ...] = MODES
REGISTER_NAMES: tuple[str, ...] = VOICING_REGISTERS
MAX_PHRASES_CHARS = 2000  # a phrase string ("A8A8B8B8…") of a very long song
MAX_PHRASE_STYLES = 512
MAX_PICKUP_16TH = 192  # a 12/4 bar; the analysis checks it against the melody's own bar
MAX_TOP_K = 50
MAX_KEY_CHARS = 16
SEED_RANGE = (-(2**31), 2**31 - 1)
LEVEL_RANGE = (0, 4)  # density / polyphony levels (algorithms.md §2.1)

HARMONIZE_NAMES = (
    "key", "mode", "phrases", "pickup", "style", "phrase_styles", "seed", "alpha", "beta",
    "variant", "top_k", "leading_tone", "colours", "tonic_balance", "structure", "scorer",
    "voicing",
)
ARRANGE_NAMES = ("density", "polyphony", "library", "reharmonizer", "transition")
JSON_NAMES = frozenset(("schema_version", *HARMONIZE_NAMES, *ARRANGE_NAMES))


# --- checks on Python values (construction) ---------------------------------------------------

_SHOWN = reprlib.Repr()  # a short, depth-bounded repr of whatever a client sent
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlist, _SHOWN.maxdict = 2, 40, 40, 4, 4


def _bad(field: str, allowed: str, value: object) -> OptionError:
    """The error naming the field, what it may be and (briefly: it may be huge) what it was."""
    return OptionError(f"option {field} must be {allowed}, got {_SHOWN.repr(value)}")


def choice(field: str, value: object, names: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in names:
        raise _bad(field, f"one of {', '.join(names)}", value)
    return value


def whole(field: str, value: object, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise _bad(field, f"a whole number {lo}..{hi}", value)
    return value


def unit(field: str, value: object) -> float:
    """A finite number in 0..1 (α, β, tonic balance): NaN and infinities are refused."""
    if (not isinstance(value, int | float) or isinstance(value, bool)
            or not math.isfinite(value) or not 0.0 <= value <= 1.0):
        raise _bad(field, "a number 0..1", value)
    return float(value)


def flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _bad(field, "true or false", value)
    return value


def text(field: str, value: object, max_chars: int) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= max_chars:
        raise _bad(field, f"a text of 1..{max_chars} characters", value)
    return value


def check_harmonize(options: HarmonizeOptions) -> None:
    """Every field of `options` has a type and value the engine can use."""
    if options.key is not None and not isinstance(options.key, Key):
        raise _bad("key", "a Key or None", options.key)
    if options.phrases is not None:
        text("phrases", options.phrases, MAX_PHRASES_CHARS)
    if options.pickup_16th is not None:
        whole("pickup", options.pickup_16th, 0, MAX_PICKUP_16TH)
    choice("style", options.style, STYLE_NAMES)
    if not isinstance(options.phrase_styles, tuple) or len(
            options.phrase_styles) > MAX_PHRASE_STYLES:
        raise _bad("phrase_styles", f"a tuple of at most {MAX_PHRASE_STYLES} styles",
                   options.phrase_styles)
    for style in options.phrase_styles:
        if style is not None:
            choice("phrase_styles", style, STYLE_NAMES)
    whole("seed", options.seed, *SEED_RANGE)
    unit("alpha", options.alpha)
    unit("beta", options.beta)
    unit("tonic_balance", options.tonic_balance)
    choice("variant", options.variant, VARIANT_NAMES)
    whole("top_k", options.top_k, 0, MAX_TOP_K)
    flag("leading_tone", options.fix_leading_tone)
    flag("colours (melody_colours)", options.melody_colours)
    flag("structure", options.musical_structure)
    choice("scorer", options.scorer, MODEL_NAMES)
    if not isinstance(options.voicing, Voicing):
        raise _bad("voicing", "a Voicing", options.voicing)
    flag("voicing.bass", options.voicing.bass)


def check_arrange(options: ArrangeOptions) -> None:
    if not isinstance(options.harmonize, HarmonizeOptions):
        raise _bad("harmonize", "HarmonizeOptions", options.harmonize)
    for name in ("density", "polyphony"):
        value = getattr(options, name)
        if value is not None:
            whole(name, value, *LEVEL_RANGE)
    if options.library is not None:
        choice("library", options.library, LIBRARY_NAMES)
    choice("reharmonizer", options.reharmonizer, MODEL_NAMES)
    choice("transition", options.transition, MODEL_NAMES)


# --- JSON ----------------------------------------------------------------------------------------

def harmonize_to_json(options: HarmonizeOptions) -> dict[str, Any]:
    key = options.key
    return {
        "schema_version": SCHEMA_VERSION,
        "key": None if key is None else key.pitch_name(key.tonic_pc),
        "mode": None if key is None else key.mode,
        "phrases": options.phrases,
        "pickup": options.pickup_16th,
        "style": options.style,
        "phrase_styles": list(options.phrase_styles),
        "seed": options.seed,
        "alpha": options.alpha,
        "beta": options.beta,
        "variant": options.variant,
        "top_k": options.top_k,
        "leading_tone": options.fix_leading_tone,
        "colours": "melody" if options.melody_colours else "style",
        "tonic_balance": options.tonic_balance,
        "structure": options.musical_structure,
        "scorer": options.scorer,
        "voicing": {"register": options.voicing.register, "bass": options.voicing.bass},
    }


def arrange_to_json(options: ArrangeOptions) -> dict[str, Any]:
    return {
        **harmonize_to_json(options.harmonize),
        "density": options.density,
        "polyphony": options.polyphony,
        "library": options.library,
        "reharmonizer": options.reharmonizer,
        "transition": options.transition,
    }


def _read(doc: Mapping[str, Any], name: str, read: Callable[[str, Any], Any],
          default: Any) -> Any:
    """`read(name, value)` of the document's value; absent or null keeps the default."""
    value = doc.get(name)
    return default if value is None else read(name, value)


def _number(name: str, value: Any) -> float:
    return unit(name, value)


def _styles(name: str, value: Any) -> tuple[str | None, ...]:
    if not isinstance(value, list | tuple) or len(value) > MAX_PHRASE_STYLES:
        raise _bad(name, f"a list of at most {MAX_PHRASE_STYLES} styles (null or \"\" keeps "
                         "the style)", value)
    return tuple(None if s in (None, "") else choice(name, s, STYLE_NAMES) for s in value)


def _voicing(name: str, value: Any) -> Any:
    if not isinstance(value, Mapping) or set(value) - {"register", "bass"}:
        raise _bad(name, 'an object {"register": low|middle|high, "bass": true|false}', value)
    register = choice(f"{name}.register", value.get("register", "middle"), REGISTER_NAMES)
    return Voicing(cast(Any, register), flag(f"{name}.bass", value.get("bass", True)))


def _document(doc: object, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise OptionError(f"options must be a JSON object, got {type(doc).__name__}")
    unknown = sorted(_SHOWN.repr(k) for k in doc if k not in allowed)
    if unknown:
        raise OptionError(f"unknown option(s): {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(allowed))})")
    version = doc.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise _bad("schema_version", str(SCHEMA_VERSION), version)
    return doc


def harmonize_from_json(doc: object, allowed: frozenset[str] | None = None) -> HarmonizeOptions:
    """HarmonizeOptions from the JSON names (absent or null: the default)."""
    from engine.analysis.key import parse_key
    names = allowed or frozenset(("schema_version", *HARMONIZE_NAMES))
    doc = _document(doc, names)
    default = HarmonizeOptions()
    mode = _read(doc, "mode", lambda n, v: choice(n, v, MODE_NAMES), None)
    key_name = _read(doc, "key", lambda n, v: text(n, v, MAX_KEY_CHARS), None)
    if mode is not None and key_name is None:
        raise OptionError("option mode needs option key")
    return HarmonizeOptions(
        key=None if key_name is None else parse_key(key_name, mode),
        phrases=_read(doc, "phrases", lambda n, v: text(n, v, MAX_PHRASES_CHARS), None),
        pickup_16th=_read(doc, "pickup", lambda n, v: whole(n, v, 0, MAX_PICKUP_16TH), None),
        style=_read(doc, "style", lambda n, v: choice(n, v, STYLE_NAMES), default.style),
        phrase_styles=_read(doc, "phrase_styles", _styles, ()),
        seed=_read(doc, "seed", lambda n, v: whole(n, v, *SEED_RANGE), default.seed),
        alpha=_read(doc, "alpha", _number, default.alpha),
        beta=_read(doc, "beta", _number, default.beta),
        variant=_read(doc, "variant", lambda n, v: choice(n, v, VARIANT_NAMES),
                      default.variant),
        top_k=_read(doc, "top_k", lambda n, v: whole(n, v, 0, MAX_TOP_K), default.top_k),
        fix_leading_tone=_read(doc, "leading_tone", flag, default.fix_leading_tone),
        melody_colours=_read(doc, "colours", lambda n, v: choice(n, v, COLOUR_NAMES),
                             "melody") == "melody",
        tonic_balance=_read(doc, "tonic_balance", _number, default.tonic_balance),
        musical_structure=_read(doc, "structure", flag, default.musical_structure),
        scorer=_read(doc, "scorer", lambda n, v: choice(n, v, MODEL_NAMES), default.scorer),
        voicing=_read(doc, "voicing", _voicing, default.voicing),
    )


def arrange_from_json(doc: object) -> ArrangeOptions:
    """ArrangeOptions from the JSON names: the harmonizer's plus the arranger's."""
    doc = _document(doc, JSON_NAMES)
    harmonize = harmonize_from_json({k: v for k, v in doc.items() if k not in ARRANGE_NAMES},
                                    JSON_NAMES)
    default = ArrangeOptions()

    def level(name: str, value: Any) -> int:
        return whole(name, value, *LEVEL_RANGE)

    return ArrangeOptions(
        harmonize=harmonize,
        density=_read(doc, "density", level, None),
        polyphony=_read(doc, "polyphony", level, None),
        library=_read(doc, "library", lambda n, v: choice(n, v, LIBRARY_NAMES), None),
        reharmonizer=_read(doc, "reharmonizer", lambda n, v: choice(n, v, MODEL_NAMES),
                           default.reharmonizer),
        transition=_read(doc, "transition", lambda n, v: choice(n, v, MODEL_NAMES),
                         default.transition),
    )


__all__ = [
    "ARRANGE_NAMES", "HARMONIZE_NAMES", "JSON_NAMES", "SCHEMA_VERSION", "arrange_from_json",
    "arrange_to_json", "check_arrange", "check_harmonize", "harmonize_from_json",
    "harmonize_to_json",
]
