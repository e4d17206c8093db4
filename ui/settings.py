"""The panel's persisted settings (Picard style): one typed, validated record with a version
number, a table of rules per field, upgrade hooks for older files, atomic saves (the file work
is `bridge.jsonfile`'s).

Loading never fails: a missing file gives the defaults; a corrupt file, a wrongly typed or
out-of-range value, or an unknown key gives the default for that field and a warning the panel
shows, so one bad value never costs the user their other settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bridge.errors import NewerFileError, StoredFileError
from bridge.jsonfile import FileFormat, user_config_dir

if TYPE_CHECKING:
    from ui.services import ServiceConfig

# 1: the first panel build's file (flag-style names, `dark_theme`, debounce in seconds)
# 2: field names as ServiceConfig and `accobridge serve` use them, `theme`, `debounce_ms`
SETTINGS_VERSION = 2
Theme = Literal["dark", "light"]


class SettingsError(ValueError):
    """A setting value outside its allowed range; the message names the field."""


@dataclass(frozen=True)
class Settings:
    version: int = SETTINGS_VERSION
    osc_enabled: bool = True
    osc_port: int = 17000
    listen_host: str = "127.0.0.1"
    ableton: bool = False
    ableton_host: str = "127.0.0.1"
    ableton_send_port: int = 11000
    ableton_reply_port: int = 11001
    reaper_spool: str | None = None  # None: off; "": REAPER's default spool folder
    midi: bool = False
    midi_end: str = "stop"  # stop | loop | cc:NN | bars:N, as `serve --midi-end`
    theme: Theme = "dark"
    preset: str = "Pop-standard"
    live_mode: bool = False
    debounce_ms: int = 150
    window_geometry: str = ""  # QWidget.saveGeometry() as base64
    last_export_dir: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            problem = check_value(f.name, getattr(self, f.name))
            if problem:
                raise SettingsError(problem)

    def service_config(self) -> ServiceConfig:
        """The bridge adapters these settings ask for (ui.services starts them)."""
        from ui.services import ServiceConfig

        return ServiceConfig(
            osc_enabled=self.osc_enabled, osc_port=self.osc_port, listen_host=self.listen_host,
            ableton=self.ableton, ableton_host=self.ableton_host,
            ableton_send_port=self.ableton_send_port,
            ableton_reply_port=self.ableton_reply_port, reaper_spool=self.reaper_spool,
            midi=self.midi, midi_end=self.midi_end,
        )


# --- one rule per field: (accepts the value?, what is allowed, in words) ---------------------

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _port(v: Any) -> bool:
    return _is_int(v) and 1 <= v <= 65535


def _host(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip()) and " " not in v.strip()


def _midi_end(v: Any) -> bool:
    from bridge.midi.capture import EndOn

    try:
        EndOn.parse(v)
    except (ValueError, AttributeError):
        return False
    return True


_BOOL = (lambda v: isinstance(v, bool), "true or false")
_TEXT = (lambda v: isinstance(v, str), "text")
_PORT = (_port, "a port number 1-65535")
_HOST = (_host, "a host name or address such as 127.0.0.1")
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "version": (_is_int, "a whole number"),
    "osc_enabled": _BOOL,
    "osc_port": _PORT,
    "listen_host": _HOST,
    "ableton": _BOOL,
    "ableton_host": _HOST,
    "ableton_send_port": _PORT,
    "ableton_reply_port": _PORT,
    "reaper_spool": (lambda v: v is None or isinstance(v, str), "a folder, \"\" or null (off)"),
    "midi": _BOOL,
    "midi_end": (_midi_end, "stop, loop, cc:NN (0-119) or bars:N"),
    "theme": (lambda v: v in ("dark", "light"), "dark or light"),
    "preset": (lambda v: isinstance(v, str) and bool(v.strip()), "a preset name"),
    "live_mode": _BOOL,
    "debounce_ms": (lambda v: _is_int(v) and 0 <= v <= 5000, "a whole number 0-5000"),
    "window_geometry": _TEXT,
    "last_export_dir": _TEXT,
}


def check_value(name: str, value: Any) -> str | None:
    """None when `value` is allowed for setting `name`, else a message naming both."""
    accepts, allowed = RULES[name]
    if accepts(value):
        return None
    return f"setting {name!r} must be {allowed}, got {value!r}"


# --- upgrade hooks: UPGRADES[v] turns a version-v document into version v + 1 --------------

def _upgrade_1_to_2(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    if "listen" in out:
        out["listen_host"] = out.pop("listen")
    if "dark_theme" in out:
        dark = out.pop("dark_theme")  # a non-boolean stays as it is and fails its check
        out["theme"] = ("dark" if dark else "light") if isinstance(dark, bool) else dark
    if "debounce_s" in out:
        seconds = out.pop("debounce_s")
        is_number = isinstance(seconds, int | float) and not isinstance(seconds, bool)
        out["debounce_ms"] = round(seconds * 1000) if is_number else seconds
    return out


UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _upgrade_1_to_2}
# the first build wrote no version
SETTINGS_FILE = FileFormat("settings", "version", SETTINGS_VERSION, UPGRADES, unversioned=1)


def settings_path() -> Path:
    return user_config_dir() / "settings.json"


def load_settings(path: Path | None = None) -> tuple[Settings, list[str]]:
    """(settings, warnings): the defaults where the file is missing, unreadable or wrong."""
    path = path if path is not None else settings_path()
    defaults = Settings()
    try:
        doc = SETTINGS_FILE.read(path)
    except FileNotFoundError:
        return defaults, []
    except StoredFileError as err:
        return defaults, [f"{path}: {err}; using the default settings"]
    warnings: list[str] = []
    try:
        doc = SETTINGS_FILE.upgrade(doc)
    except NewerFileError as err:
        warnings.append(
            f"{path}: written by a newer AccoBridge (settings version {err.version}); settings "
            "it added are ignored and will be lost on save"
        )
    except StoredFileError as err:
        warnings.append(f"{path}: {err}; read as current")
    values: dict[str, Any] = {}
    known = {f.name for f in fields(Settings)}
    for key, value in doc.items():
        if key == "version":
            continue
        if key not in known:
            warnings.append(f"{path}: unknown setting {key!r} ignored")
            continue
        problem = check_value(key, value)
        if problem:
            default = getattr(defaults, key)
            warnings.append(f"{path}: {problem}; using {default!r}")
            continue
        values[key] = value
    return replace(defaults, **values), warnings


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write atomically (temp file + os.replace): a failed save leaves the old file whole."""
    SETTINGS_FILE.save(path if path is not None else settings_path(), asdict(settings))


__all__ = [
    "SETTINGS_VERSION", "Settings", "SettingsError", "check_value", "load_settings",
    "save_settings", "settings_path",
]
