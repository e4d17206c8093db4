"""Style presets: the factory set against the schema, options they produce, migration of the
version-0 format, corrupt files, and the user store (save as, delete, atomic writes)."""

import json
import os
from dataclasses import replace

import pytest

from bridge.jsonfile import user_config_dir
from engine.demo import DEMO_TUNE, melody_from_steps
from engine.pipeline import arrange
from engine.types import ArrangeOptions, HarmonizeOptions, Key, Voicing
from presets import FACTORY_DIR
from ui.presets import (
    FACTORY_ORDER,
    SCHEMA_VERSION,
    Preset,
    PresetError,
    PresetStore,
    migrate,
    preset_schema,
    read_preset,
    validate,
)

V0_DRAFT = {
    "name": "Old dark", "chord_style": "dark", "texture_density": 1, "texture_polyphony": 3,
    "alpha": 0.3, "beta": 0.4, "send": ["chords"],
}


@pytest.fixture
def store(tmp_path):
    return PresetStore(user_dir=tmp_path / "config")


def test_factory_presets_load_in_order_and_cover_every_chord_style(store):
    presets = store.presets()
    assert store.problems == []
    assert [p.name for p in presets] == list(FACTORY_ORDER)
    assert all(p.factory for p in presets)
    assert {p.style for p in presets} == {"pop_standard", "pop_complex", "dark", "rnb"}
    files = sorted(p.name for p in FACTORY_DIR.glob("*.json") if p.name != "schema.json")
    for name in files:  # every shipped file is valid as written, at the current version
        doc = json.loads((FACTORY_DIR / name).read_text())
        assert doc["schema_version"] == SCHEMA_VERSION
        validate(doc, preset_schema())


def test_preset_options_keep_the_callers_song_facts(store):
    busy = store.get("Busy pop")
    base = HarmonizeOptions(key=Key(5, "major"), phrases="A8B8", pickup_16th=2, seed=4, top_k=3,
                            phrase_styles=("dark", None))
    h = busy.harmonize_options(base)
    assert (h.key, h.phrases, h.pickup_16th, h.seed, h.top_k, h.phrase_styles) == (
        Key(5, "major"), "A8B8", 2, 4, 3, ("dark", None))
    assert (h.style, h.alpha, h.beta, h.voicing) == ("pop_standard", 0.1, 0.5, Voicing("high"))
    assert (h.tonic_balance, h.melody_colours) == (0.0, True)
    a = busy.arrange_options(ArrangeOptions(harmonize=base))
    assert (a.density, a.polyphony, a.library, a.reharmonizer, a.transition) == (
        4, 3, None, "rules", "rules")
    assert a.harmonize == h
    assert store.get("r&b").harmonize_options().style == "rnb"  # names match case-blind


def test_texture_presets_change_the_piano_part(store, tmp_path, monkeypatch):
    monkeypatch.setenv("ACCOBRIDGE_DATA_DIR", str(tmp_path / "userdata"))
    melody = melody_from_steps(DEMO_TUNE)
    sparse = arrange(melody, store.get("Sparse ballad").arrange_options())
    busy = arrange(melody, store.get("Busy pop").arrange_options())
    assert {t.density_level for t in sparse.textures} == {0}
    assert {t.density_level for t in busy.textures} == {4}
    # the shipped POP909 donors' levels are quintiles of human playing: busier, not 3× as busy
    assert len(busy.piano_notes) > 1.25 * len(sparse.piano_notes)


def test_round_trip_through_json(store):
    preset = replace(store.get("Dark"), name="My dark", factory=False, density=2,
                     voicing=Voicing("high", bass=False), send_parts=("piano",),
                     library="pop909", reharmonizer="learned", colours="style",
                     tonic_balance=0.1)
    assert Preset.from_json(json.loads(json.dumps(preset.to_json()))) == preset
    options = preset.harmonize_options()
    assert (options.melody_colours, options.tonic_balance) == (False, 0.1)


def test_version_0_draft_is_migrated(tmp_path):
    assert migrate(dict(V0_DRAFT))["schema_version"] == SCHEMA_VERSION
    path = tmp_path / "old.json"
    path.write_text(json.dumps(V0_DRAFT))
    old = read_preset(path)
    assert (old.name, old.style, old.density, old.polyphony, old.alpha, old.beta) == (
        "Old dark", "dark", 1, 3, 0.3, 0.4)
    assert old.send_parts == ("chords",)
    # the fields version 0 lacked take the schema's defaults
    assert (old.voicing, old.library, old.reharmonizer, old.transition) == (
        Voicing(), "auto", "rules", "rules")
    assert (old.colours, old.tonic_balance) == ("melody", 0.0)


@pytest.mark.parametrize(("change", "message"), [
    ({"style": "jazz"}, "field 'style' must be one of pop_standard, pop_complex, dark, rnb"),
    ({"density": 7}, "field 'density' must be between 0 and 4, got 7"),
    ({"density": "busy"}, "field 'density' must be a whole number or null"),
    ({"alpha": True}, "field 'alpha' must be a number"),
    ({"voicing": {"register": "sky"}}, "field 'voicing.register' must be one of low, middle"),
    ({"send_parts": ["chords", "drums"]}, "field 'send_parts[1]' must be one of chords, piano"),
    ({"send_parts": []}, "field 'send_parts' needs at least 1"),
    ({"library": "nottingham"}, "field 'library' must be one of auto, default, pop909"),
    ({"colours": "loud"}, "field 'colours' must be one of melody, style"),
    ({"tonic_balance": 2}, "field 'tonic_balance' must be between 0 and 1, got 2"),
    ({"tempo": 120}, "unknown field 'tempo'"),
    ({"name": "a/b"}, "field 'name' may only use letters"),
    ({"schema_version": 9}, "schema_version 9 is newer"),
])
def test_schema_errors_name_the_field_and_allowed_values(change, message):
    doc = {**Preset("Base").to_json(), **change}
    with pytest.raises(PresetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Preset.from_json(doc)


def test_a_missing_required_field_is_named():
    doc = Preset("Base").to_json()
    del doc["style"]
    with pytest.raises(PresetError, match="field 'style' is missing"):
        Preset.from_json(doc)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"text"', "", '{"name": 3}'])
def test_corrupt_files_give_preset_errors_naming_the_file(tmp_path, text):
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(PresetError, match="broken.json"):
        read_preset(path)


def test_user_presets_save_list_and_delete(store):
    mine = replace(store.get("Pop-complex"), density=3, description="mine")
    saved = store.save_as(mine, "Verse comp")
    assert saved.name == "Verse comp" and not saved.factory
    assert (store.preset_dir / "verse-comp.json").is_file()
    store.save_as(store.get("Dark"), "Another")
    names = [p.name for p in store.presets()]
    assert names == [*FACTORY_ORDER, "Another", "Verse comp"]
    assert store.get("Verse comp") == saved
    # saving under the same name again replaces it
    store.save_as(replace(saved, density=1), "verse comp")
    again = store.get("Verse comp")
    assert (again.name, again.density) == ("verse comp", 1)
    assert len(list(store.preset_dir.glob("*.json"))) == 2
    store.delete("Another")
    assert [p.name for p in store.presets()][-1].casefold() == "verse comp"
    with pytest.raises(PresetError, match="no preset named 'Another'"):
        store.delete("Another")


def test_factory_presets_cannot_be_overwritten_or_deleted(store):
    dark = store.get("Dark")
    for name in ("Dark", "dark", "R&B"):
        with pytest.raises(PresetError, match="factory preset"):
            store.save_as(dark, name)
        with pytest.raises(PresetError, match="factory preset"):
            store.delete(name)
    with pytest.raises(PresetError, match="may only use"):
        store.save_as(dark, "../escape")
    with pytest.raises(PresetError, match="1-40 characters"):
        store.save_as(dark, "")
    assert not store.preset_dir.exists() or list(store.preset_dir.iterdir()) == []


def test_broken_user_files_are_skipped_and_reported(store):
    store.save_as(store.get("Dark"), "Good one")
    (store.preset_dir / "bad.json").write_text('{"schema_version": 1, "name": "Bad"')
    (store.preset_dir / "wrong.json").write_text(json.dumps({**V0_DRAFT, "chord_style": "x"}))
    (store.preset_dir / "clash.json").write_text(json.dumps({**Preset("Dark").to_json()}))
    names = [p.name for p in store.presets()]
    assert names == [*FACTORY_ORDER, "Good one"]
    assert len(store.problems) == 3
    joined = "\n".join(store.problems)
    assert "bad.json: not valid JSON" in joined
    assert "wrong.json: preset 'Old dark': field 'style' must be one of" in joined
    assert "clash.json" in joined and "already used" in joined


def test_a_failed_write_keeps_the_old_preset(store, monkeypatch):
    store.save_as(replace(store.get("Dark"), density=1), "Keep me")
    path = store.preset_dir / "keep-me.json"
    before = path.read_text()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(PresetError, match="disk full"):
        store.save_as(replace(store.get("Dark"), density=4), "Keep me")
    assert path.read_text() == before
    assert [p.name for p in store.preset_dir.iterdir()] == ["keep-me.json"]  # no temp left


def test_user_config_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ACCOBRIDGE_CONFIG_DIR", str(tmp_path / "a"))
    assert user_config_dir() == tmp_path / "a"
    monkeypatch.delenv("ACCOBRIDGE_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert user_config_dir() == tmp_path / "xdg" / "accobridge"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_config_dir() == tmp_path / "home" / ".config" / "accobridge"
    monkeypatch.setenv("ACCOBRIDGE_CONFIG_DIR", str(tmp_path / "cfg"))
    assert PresetStore().preset_dir == tmp_path / "cfg" / "presets"
