"""Style presets: versioned JSON files checked against presets/schema.json, the read-only factory
set and the user's own (save as, delete) in the user config directory, written atomically
(`bridge.jsonfile` does the file work).

A preset file without `schema_version` is the version-0 draft format; loading migrates it step
by step (MIGRATIONS) to the current version. A corrupt or invalid file gives a PresetError that
names the file and the field, never a KeyError.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from bridge.errors import StoredFileError
from bridge.jsonfile import FileFormat, check_schema, read_json_object, user_config_dir
from engine import (
    ArrangeOptions,
    HarmonizeOptions,
    OptionError,
    Style,
    Voicing,
    VoicingRegister,
)
from presets import FACTORY_DIR, SCHEMA_PATH

SCHEMA_VERSION = 1
# the selector's order of the factory presets; factory files not listed follow by name
FACTORY_ORDER = ("Pop-standard", "Pop-complex", "Dark", "R&B", "Sparse ballad", "Busy pop")
PARTS = ("chords", "piano")

Json = dict[str, Any]


class PresetError(ValueError):
    """A preset file or name that cannot be used; the message names the file and field."""


# --- the schema ------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def preset_schema() -> Json:
    try:
        return read_json_object(SCHEMA_PATH)
    except (OSError, StoredFileError) as err:
        raise PresetError(f"the preset schema {SCHEMA_PATH} cannot be read: {err}") from err


def validate(value: Any, schema: Json) -> None:
    """Raise PresetError naming the first field of `value` that breaks `schema` and what is
    allowed there."""
    try:
        check_schema(value, schema, "preset")
    except StoredFileError as err:
        raise PresetError(str(err)) from err


# --- migrations: one function per old version, each returning the next version's document ---

def _v0_to_v1(doc: Json) -> Json:
    """The version-0 draft: `chord_style`, `texture_density`, `texture_polyphony`, `send`;
    no voicing, library or model fields (they take their defaults)."""
    renames = {"chord_style": "style", "texture_density": "density",
               "texture_polyphony": "polyphony", "send": "send_parts"}
    return {renames.get(k, k): v for k, v in doc.items()}


MIGRATIONS: dict[int, Callable[[Json], Json]] = {0: _v0_to_v1}
PRESET_FILE = FileFormat("preset", "schema_version", SCHEMA_VERSION, MIGRATIONS, unversioned=0)


def migrate(doc: Json) -> Json:
    """The document brought to SCHEMA_VERSION (a file without a version is version 0)."""
    try:
        return PRESET_FILE.upgrade(doc)
    except StoredFileError as err:
        raise PresetError(str(err)) from err


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
            self.arrange_options()
        except (PresetError, OptionError) as err:
            raise PresetError(f"preset {self.name!r}: {err}") from err

    def engine_options(self) -> Json:
        """This preset's settings under the engine's JSON option names (engine/options.py):
        the engine's one codec reads them, so a preset holds nothing the engine refuses."""
        return {
            "style": self.style, "alpha": self.alpha, "beta": self.beta,
            "tonic_balance": self.tonic_balance, "colours": self.colours,
            "voicing": {"register": self.voicing.register, "bass": self.voicing.bass},
            "density": self.density, "polyphony": self.polyphony,
            "library": None if self.library == "auto" else self.library,
            "reharmonizer": self.reharmonizer, "transition": self.transition,
        }

    def harmonize_options(self, base: HarmonizeOptions | None = None) -> HarmonizeOptions:
        """`base` with this preset's chord style, α, β, tonic balance, colours and voicing; the
        rest (key, phrases, pickup, per-phrase styles, seed, top_k, variant) kept."""
        return self.arrange_options(ArrangeOptions(base or HarmonizeOptions())).harmonize

    def arrange_options(self, base: ArrangeOptions | None = None) -> ArrangeOptions:
        """`base` with every setting this preset holds."""
        return ArrangeOptions.from_json({**(base or ArrangeOptions()).to_json(),
                                         **self.engine_options()})

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


# --- the panel's controls: preset fields under the names a producer knows ---------------------

LEVEL_WORDS = ("sparse", "light", "medium", "busy", "very busy")  # density/polyphony 0-4


@dataclass(frozen=True)
class PresetControl:
    """One preset field as a panel control: its producer's name, what it does, and the
    choices as (label, value) pairs; `value_of(preset)` and `change(value)` (the keyword
    arguments for `dataclasses.replace`) translate between the control and the field."""

    field: str
    label: str
    tip: str
    choices: tuple[tuple[str, Any], ...]

    def value_of(self, preset: Preset) -> Any:
        if self.field == "register":
            return preset.voicing.register
        if self.field == "colours":
            return preset.colours == "melody"
        return getattr(preset, self.field)

    def change(self, preset: Preset, value: Any) -> dict[str, Any]:
        if self.field == "register":
            return {"voicing": replace(preset.voicing, register=value)}
        if self.field == "colours":
            return {"colours": "melody" if value else "style"}
        return {self.field: value}


def _levels(words: tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    return (("Auto (follow the melody)", None),) + tuple(
        (f"{i} · {word}", i) for i, word in enumerate(words))


PRESET_CONTROLS = (
    PresetControl("density", "Complexity",
                  "How many notes the piano plays: rhythmic density of the accompaniment "
                  "(Auto follows the melody's own)", _levels(LEVEL_WORDS)),
    PresetControl("polyphony", "Fullness",
                  "How many voices the piano plays at once: thin lines to full chords "
                  "(Auto follows the melody)",
                  _levels(("single line", "two voices", "three voices", "full", "very full"))),
    PresetControl("register", "Register",
                  "Where the chords of the Chords track sit: a fifth lower, middle or a fifth "
                  "higher (the melody stays on top)",
                  (("Low", "low"), ("Middle", "middle"), ("High", "high"))),
    PresetControl("style", "Style",
                  "The harmonic language of the chord choice: plain pop, richer pop chords, "
                  "dark minor colours or R&B extensions",
                  (("Pop standard", "pop_standard"), ("Pop complex", "pop_complex"),
                   ("Dark", "dark"), ("R&B", "rnb"))),
    PresetControl("colours", "Colour from melody",
                  "On: the melody picks each chord's colour (sevenths, ninths where it sings "
                  "them). Off: the style's fixed colours", (("on", True), ("off", False))),
)


def read_preset(path: Path, *, factory: bool = False) -> Preset:
    """One preset file; PresetError naming the file for anything unreadable or invalid."""
    try:
        return Preset.from_json(PRESET_FILE.read(path), factory=factory)
    except OSError as err:
        raise PresetError(f"{path.name}: cannot be read ({err})") from err
    except (StoredFileError, PresetError) as err:
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
        try:
            PRESET_FILE.save(path, stored.to_json())
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

    def rename(self, name: str, new_name: str) -> Preset:
        """A user preset under a new name: written under the new name first, the old file
        removed after, so a failure leaves at least one of them."""
        preset = self.get(name)
        if preset.factory:
            raise PresetError(f"{preset.name!r} is a factory preset and cannot be renamed; "
                              "use Save as… for a copy")
        if new_name.strip().casefold() != preset.name.casefold() and any(
                p.name.casefold() == new_name.strip().casefold() for p in self.presets()):
            raise PresetError(f"a preset named {new_name.strip()!r} exists already")
        old_path = self._files[preset.name]
        stored = self.save_as(preset, new_name.strip())
        if stored.name.casefold() != preset.name.casefold():  # else the same file, rewritten
            try:
                old_path.unlink()
            except OSError as err:
                raise PresetError(f"renamed, but the old file {old_path} stayed: {err}") \
                    from err
        return stored

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
    "FACTORY_ORDER", "PRESET_CONTROLS", "PRESET_FILE", "SCHEMA_VERSION", "Preset",
    "PresetControl", "PresetError", "PresetStore",
    "migrate", "preset_schema", "read_preset", "validate",
]
