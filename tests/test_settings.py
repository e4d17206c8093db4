"""Panel settings: round trip, defaults for what is missing or wrong (with a warning each),
migration of version 1 files, atomic saves."""

import json
import os
from dataclasses import fields, replace

import pytest

from ui.services import ServiceConfig
from ui.settings import (
    SETTINGS_VERSION,
    Settings,
    SettingsError,
    load_settings,
    save_settings,
    settings_path,
)


def test_round_trip(tmp_path):
    path = tmp_path / "cfg" / "settings.json"
    chosen = Settings(osc_enabled=False, osc_port=17123, listen_host="0.0.0.0", ableton=True,
                      ableton_send_port=11500, reaper_spool="", midi=True, midi_end="cc:64",
                      theme="light", preset="Busy pop", live_mode=True, debounce_ms=300,
                      window_geometry="AdnQywADAAA=", last_export_dir="/music/exports")
    save_settings(chosen, path)
    assert load_settings(path) == (chosen, [])
    assert json.loads(path.read_text())["version"] == SETTINGS_VERSION


def test_missing_file_gives_the_defaults(tmp_path):
    assert load_settings(tmp_path / "none.json") == (Settings(), [])


@pytest.mark.parametrize("text", ["{broken", "[1, 2]", "", "\xff\xfe",
                                  pytest.param('{"theme": ' + "[" * 200 + "]" * 200 + "}",
                                               id="deep")])
def test_corrupt_file_gives_the_defaults_and_one_warning(tmp_path, text):
    path = tmp_path / "settings.json"
    path.write_bytes(text.encode("latin-1"))
    settings, warnings = load_settings(path)
    assert settings == Settings()
    assert len(warnings) == 1 and "using the default settings" in warnings[0]


def test_bad_values_fall_back_field_by_field(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({
        "version": SETTINGS_VERSION, "osc_port": 70000, "ableton_reply_port": "11001",
        "debounce_ms": 9000, "theme": "neon", "midi_end": "cc:200", "live_mode": "yes",
        "listen_host": "", "reaper_spool": 5, "preset": "Dark", "midi": True, "colour": "red",
    }))
    settings, warnings = load_settings(path)
    # the good values survive, every bad one is the default
    assert (settings.preset, settings.midi) == ("Dark", True)
    defaults = Settings()
    for name in ("osc_port", "ableton_reply_port", "debounce_ms", "theme", "midi_end",
                 "live_mode", "listen_host", "reaper_spool"):
        assert getattr(settings, name) == getattr(defaults, name)
        assert sum(f"setting {name!r}" in w for w in warnings) == 1
    assert any("port number 1-65535, got 70000" in w for w in warnings)
    assert any("unknown setting 'colour'" in w for w in warnings)
    assert len(warnings) == 9


def test_version_1_files_are_upgraded(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"osc_port": 17002, "listen": "0.0.0.0", "dark_theme": False,
                                "debounce_s": 0.25, "preset": "R&B"}))
    settings, warnings = load_settings(path)
    assert warnings == []
    assert (settings.osc_port, settings.listen_host, settings.theme, settings.debounce_ms,
            settings.preset) == (17002, "0.0.0.0", "light", 250, "R&B")


def test_a_newer_file_is_read_with_a_warning(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": SETTINGS_VERSION + 1, "osc_port": 17009}))
    settings, warnings = load_settings(path)
    assert settings.osc_port == 17009
    assert len(warnings) == 1 and "newer AccoBridge" in warnings[0]


def test_a_failed_save_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "settings.json"
    save_settings(Settings(osc_port=17001), path)
    before = path.read_bytes()

    def failing_fsync(fd):
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="no space left"):
        save_settings(Settings(osc_port=17002), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]  # no temp file left


@pytest.mark.parametrize(("field", "value", "message"), [
    ("osc_port", 0, "setting 'osc_port' must be a port number 1-65535, got 0"),
    ("debounce_ms", -1, "setting 'debounce_ms' must be a whole number 0-5000"),
    ("theme", "blue", "setting 'theme' must be dark or light"),
    ("midi_end", "bars:0", "setting 'midi_end' must be stop, loop, cc:NN"),
])
def test_settings_are_checked_when_made(field, value, message):
    with pytest.raises(SettingsError, match=message):
        replace(Settings(), **{field: value})


def test_service_config_carries_every_adapter_setting():
    settings = Settings(osc_enabled=False, osc_port=17100, ableton=True, ableton_host="10.0.0.2",
                        ableton_send_port=12000, ableton_reply_port=12001, reaper_spool="/tmp/s",
                        midi=True, midi_end="bars:8")
    config = settings.service_config()
    for f in fields(ServiceConfig):
        if f.name == "midi_meter":  # the panel's meter is its analysis editor's, not a setting
            continue
        assert getattr(config, f.name) == getattr(settings, f.name)


def test_settings_live_in_the_user_config_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("ACCOBRIDGE_CONFIG_DIR", str(tmp_path))
    assert settings_path() == tmp_path / "settings.json"
    save_settings(Settings(theme="light"))
    assert load_settings()[0].theme == "light"
