"""Style presets: versioned JSON files checked against presets/schema.json, the read-only factory
set and the user's own (save as, delete) in the user config directory, written atomically.

A preset file without `schema_version` is the version-0 draft format; loading migrates it step
by step (MIGRATIONS) to the current version. A corrupt or invalid file gives a PresetError that
names the file and the field, never a KeyError.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from engine.atomic_file import atomic_output
from engine.types import (
    ArrangeOptions,
    HarmonizeOptions,
    ModelChoice,
    Style,
    TextureLibraryName,
    Voicing,
    VoicingRegister,
)
from presets import FACTORY_DIR, SCHEMA_PATH

SCHEMA_VERSION = 1
CONFIG_DIR_ENV = "ACCOBRIDGE_CONFIG_DIR"
# the selector's order of the factory presets; factory files not listed follow by name
FACTORY_ORDER = ("Pop-standard", "Pop-complex", "Dark", "R&B", "Sparse ballad", "Busy pop")
PARTS = ("chords", "piano")

Json = dict[str, Any]


class PresetError(ValueError):
    """A preset file or name that cannot be used; the message names the file and field."""


def user_config_dir() -> Path:
    """$ACCOBRIDGE_CONFIG_DIR, else $XDG_CONFIG_HOME/accobridge, else ~/.config/accobridge."""
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "accobridge"


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and os.replace: a reader (or a crash)
    sees the old file or the new one, never half of one."""
    with atomic_output(path) as out:
        out.write(text.encode("utf-8"))


# --- the schema and our small validator (the subset of JSON Schema that schema.json uses) ----

@lru_cache(maxsize=1)
def preset_schema() -> Json:
    try:
        return cast(Json, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    except (OSError, ValueError) as err:
        raise PresetError(f"the preset schema {SCHEMA_PATH} cannot be read: {err}") from err


_PY_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: (isinstance(v, int | float) and not isinstance(v, bool)
                         and math.isfinite(v)),
}
_TYPE_WORDS = {"object": "an object", "array": "a list", "string": "a string",
               "boolean": "true or false", "null": "null", "integer": "a whole number",
               "number": "a number"}


def validate(value: Any, schema: Json, where: str = "") -> None:
    """Raise PresetError naming the first field of `value` that breaks `schema`."""
    name = f"field {where!r}" if where else "the preset"
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else list(types)
        if not any(_PY_TYPES[t](value) for t in allowed):
            words = " or ".join(_TYPE_WORDS[t] for t in allowed)
            raise PresetError(f"{name} must be {words}, got {value!r}")
    if "enum" in schema and value not in schema["enum"]:
        options = ", ".join(str(v) for v in schema["enum"])
        raise PresetError(f"{name} must be one of {options}; got {value!r}")
    if _PY_TYPES["number"](value):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise PresetError(f"{name} must be between {lo} and {hi}, got {value!r}")
    if isinstance(value, str):
        lo, hi = schema.get("minLength", 0), schema.get("maxLength")
        if len(value) < lo or (hi is not None and len(value) > hi):
            raise PresetError(f"{name} must have {lo}-{hi} characters, got {len(value)}")
        pattern = schema.get("pattern")
        if pattern is not None and not re.search(pattern, value):
            hint = schema.get("x-pattern-hint", f"the pattern {pattern}")
            raise PresetError(f"{name} may only use {hint}; got {value!r}")
    if isinstance(value, dict):
        props: Json = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                raise PresetError(f"field {_join(where, key)!r} is missing")
        if schema.get("additionalProperties") is False:
            for key in value:
                if key not in props:
                    raise PresetError(
                        f"unknown field {_join(where, key)!r} (allowed: {', '.join(props)})"
                    )
        for key, sub in props.items():
            if key in value:
                validate(value[key], sub, _join(where, key))
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise PresetError(f"{name} needs at least {schema['minItems']} item(s)")
        if schema.get("uniqueItems") and len({json.dumps(v) for v in value}) != len(value):
            raise PresetError(f"{name} lists an item twice: {value!r}")
        items = schema.get("items")
        if items is not None:
            for i, item in enumerate(value):
                validate(item, items, f"{where}[{i}]")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


# --- migrations: one function per old version, each returning the next version's document ---

def _v0_to_v1(doc: Json) -> Json:
    """The version-0 draft: `chord_style`, `texture_density`, `texture_polyphony`, `send`;
    no voicing, library or model fields (they take their defaults)."""
    renames = {"chord_style": "style", "texture_density": "density",
               "texture_polyphony": "polyphony", "send": "send_parts"}
    out = {renames.get(k, k): v for k, v in doc.items() if k != "schema_version"}
    out["schema_version"] = 1
    return out


MIGRATIONS: dict[int, Callable[[Json], Json]] = {0: _v0_to_v1}


def migrate(doc: Json) -> Json:
    """The document brought to SCHEMA_VERSION (a file without a version is version 0)."""
    version = doc.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise PresetError(f"field 'schema_version' must be a whole number, got {version!r}")
    if version > SCHEMA_VERSION:
        raise PresetError(
            f"schema_version {version} is newer than this AccoBridge reads ({SCHEMA_VERSION}); "
            "update AccoBridge"
        )
    while version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise PresetError(f"schema_version {version} is not a known preset format")
        doc = MIGRATIONS[version](doc)
        version = doc["schema_version"]
    return doc


def _defaults(schema: Json) -> Json:
    return {k: sub["default"] for k, sub in schema.get("properties", {}).items()
            if "default" in sub}


@dataclass(frozen=True)
class Preset:
    """One style preset; checked against the schema when made."""

    name: str
    factory: bool = False
    description: str = ""
    style: Style = "pop_standard"
    density: int | None = None
    polyphony: int | None = None
    alpha: float = 0.1
    beta: float = 0.5
    tonic_balance: float = 0.0
    colours: str = "melody"  # "melody" | "style"
    voicing: Voicing = field(default_factory=Voicing)
    library: str = "auto"  # "auto" | "default" | "pop909"
    send_parts: tuple[str, ...] = PARTS
    reharmonizer: str = "rules"  # "rules" | "learned"
    transition: str = "rules"

    def __post_init__(self) -> None:
        try:
            validate(self.to_json(), preset_schema())
        except PresetError as err:
            raise PresetError(f"preset {self.name!r}: {err}") from err

    def harmonize_options(self, base: HarmonizeOptions | None = None) -> HarmonizeOptions:
        """`base` with this preset's chord style, α, β, tonic balance, colours and voicing; the
        rest (key, phrases, pickup, per-phrase styles, seed, top_k, variant) kept."""
        return replace(base or HarmonizeOptions(), style=self.style, alpha=float(self.alpha),
                       beta=float(self.beta), tonic_balance=float(self.tonic_balance),
                       melody_colours=self.colours == "melody", voicing=self.voicing)

    def arrange_options(self, base: ArrangeOptions | None = None) -> ArrangeOptions:
        base = base or ArrangeOptions()
        library = None if self.library == "auto" else cast(TextureLibraryName, self.library)
        return replace(
            base, harmonize=self.harmonize_options(base.harmonize), density=self.density,
            polyphony=self.polyphony, library=library,
            reharmonizer=cast(ModelChoice, self.reharmonizer),
            transition=cast(ModelChoice, self.transition),
        )

    def to_json(self) -> Json:
        return {
            "schema_version": SCHEMA_VERSION, "name": self.name,
            "description": self.description, "style": self.style, "density": self.density,
            "polyphony": self.polyphony, "alpha": self.alpha, "beta": self.beta,
            "tonic_balance": self.tonic_balance, "colours": self.colours,
            "voicing": {"register": self.voicing.register, "bass": self.voicing.bass},
            "library": self.library, "send_parts": list(self.send_parts),
            "reharmonizer": self.reharmonizer, "transition": self.transition,
        }

    @classmethod
    def from_json(cls, data: Any, *, factory: bool = False) -> Preset:
        """A preset from a parsed file (any known schema_version; PresetError otherwise)."""
        if not isinstance(data, dict):
            raise PresetError(f"a preset is a JSON object, got {type(data).__name__}")
        label = f"preset {data['name']!r}: " if isinstance(data.get("name"), str) else ""
        try:
            doc = migrate(dict(data))
            schema = preset_schema()
            validate(doc, schema)
        except PresetError as err:
            raise PresetError(f"{label}{err}") from err
        doc = {**_defaults(schema), **doc}
        voicing = {**_defaults(schema["properties"]["voicing"]), **doc["voicing"]}
        return cls(
            name=doc["name"], factory=factory, description=doc["description"],
            style=doc["style"], density=doc["density"], polyphony=doc["polyphony"],
            alpha=float(doc["alpha"]), beta=float(doc["beta"]),
            tonic_balance=float(doc["tonic_balance"]), colours=doc["colours"],
            voicing=Voicing(cast(VoicingRegister, voicing["register"]), bool(voicing["bass"])),
            library=doc["library"], send_parts=tuple(doc["send_parts"]),
            reharmonizer=doc["reharmonizer"], transition=doc["transition"],
        )


def read_preset(path: Path, *, factory: bool = False) -> Preset:
    """One preset file; PresetError naming the file for anything unreadable or invalid."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Preset.from_json(data, factory=factory)
    except (OSError, UnicodeDecodeError) as err:
        raise PresetError(f"{path.name}: cannot be read ({err})") from err
    except json.JSONDecodeError as err:
        raise PresetError(f"{path.name}: not valid JSON ({err})") from err
    except PresetError as err:
        raise PresetError(f"{path.name}: {err}") from err


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-") or "preset"


class PresetStore:
    """The factory presets (read-only) and the user's, in `user_dir/presets`."""

    def __init__(self, user_dir: Path | None = None, factory_dir: Path | None = None) -> None:
        self.user_dir = user_dir if user_dir is not None else user_config_dir()
        self.preset_dir = self.user_dir / "presets"
        self.factory_dir = factory_dir if factory_dir is not None else FACTORY_DIR
        self.problems: list[str] = []
        self._files: dict[str, Path] = {}  # user preset name → its file, from the last scan

    def _read_dir(self, folder: Path, factory: bool) -> list[tuple[Preset, Path]]:
        found = []
        paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
        for path in paths:
            if path.name == "schema.json":
                continue
            try:
                found.append((read_preset(path, factory=factory), path))
            except PresetError as err:
                self.problems.append(f"{'factory' if factory else 'user'} preset {err}")
        return found

    def presets(self) -> list[Preset]:
        """Factory presets first (FACTORY_ORDER), then the user's by name; files that cannot
        be used are skipped and described in `problems`."""
        self.problems = []
        factory = [p for p, _ in self._read_dir(self.factory_dir, True)]
        rank = {name: i for i, name in enumerate(FACTORY_ORDER)}
        factory.sort(key=lambda p: (rank.get(p.name, len(rank)), p.name.casefold()))
        taken = {p.name.casefold() for p in factory}
        users: list[Preset] = []
        self._files = {}
        for preset, path in self._read_dir(self.preset_dir, False):
            if preset.name.casefold() in taken:
                self.problems.append(
                    f"user preset {path.name}: the name {preset.name!r} is already used; skipped"
                )
                continue
            taken.add(preset.name.casefold())
            users.append(preset)
            self._files[preset.name] = path
        users.sort(key=lambda p: p.name.casefold())
        return factory + users

    def get(self, name: str) -> Preset:
        presets = self.presets()
        for preset in presets:
            if preset.name == name:
                return preset
        for preset in presets:
            if preset.name.casefold() == name.casefold():
                return preset
        names = ", ".join(p.name for p in presets)
        raise PresetError(f"no preset named {name!r} (there are: {names})")

    def save_as(self, preset: Preset, name: str) -> Preset:
        """Store `preset` under `name` as a user preset (replacing a user preset of that name);
        factory names are refused. Returns the stored preset."""
        presets = self.presets()
        for other in presets:
            if other.factory and other.name.casefold() == name.strip().casefold():
                raise PresetError(
                    f"{other.name!r} is a factory preset and cannot be overwritten; "
                    "choose another name"
                )
        try:
            stored = replace(preset, name=name, factory=False)  # validates the name
        except PresetError as err:
            raise PresetError(f"cannot save as {name!r}: {err}") from err
        existing = {n.casefold(): path for n, path in self._files.items()}
        path = existing.get(name.casefold()) or self._free_path(name)
        text = json.dumps(stored.to_json(), indent=2, ensure_ascii=False) + "\n"
        try:
            atomic_write_text(path, text)
        except OSError as err:
            raise PresetError(f"cannot save preset {name!r} to {path}: {err}") from err
        return stored

    def _free_path(self, name: str) -> Path:
        """A file for a new preset: its slug, numbered when that file exists (another preset's,
        or a broken file that stays listed in `problems`)."""
        stem = _slug(name)
        path, n = self.preset_dir / f"{stem}.json", 2
        while path.exists():
            path, n = self.preset_dir / f"{stem}-{n}.json", n + 1
        return path

    def delete(self, name: str) -> None:
        preset = self.get(name)
        if preset.factory:
            raise PresetError(f"{preset.name!r} is a factory preset and cannot be deleted")
        path = self._files[preset.name]
        try:
            path.unlink()
        except OSError as err:
            raise PresetError(f"cannot delete preset {preset.name!r} ({path}): {err}") from err


__all__ = [
    "FACTORY_ORDER", "SCHEMA_VERSION", "Preset", "PresetError", "PresetStore",
    "atomic_write_text", "migrate", "preset_schema", "read_preset", "user_config_dir",
    "validate",
]
