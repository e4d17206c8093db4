"""Versioned JSON files, the one way settings, presets and the session store persist: a version
key with an upgrade chain, atomic writes under the user's umask, bounded reads that fail with
our error (never a KeyError, never a wait on a FIFO), schema checks with messages that name the
field, and the per-OS folders.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from bridge.errors import NewerFileError, StoredFileError

APP_NAME = "accobridge"
CONFIG_DIR_ENV = "ACCOBRIDGE_CONFIG_DIR"
DATA_DIR_ENV = "ACCOBRIDGE_DATA_DIR"  # the same variable engine.userdata honours
MAX_FILE_BYTES = 1024 * 1024
# Deeper than any file we write (a session file is 5 levels): beyond it, code that walks or
# prints a value (repr, jsonschema, dataclass checks) could meet a RecursionError.
MAX_JSON_DEPTH = 64

Json = dict[str, Any]
Upgrade = Callable[[Json], Json]


def user_config_dir() -> Path:
    """$ACCOBRIDGE_CONFIG_DIR, else the platform's config folder (Linux: $XDG_CONFIG_HOME or
    ~/.config; macOS: ~/Library/Application Support; Windows: %APPDATA%) / accobridge."""
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env)
    return platformdirs.user_config_path(APP_NAME, appauthor=False, roaming=True)


def user_data_dir() -> Path:
    """$ACCOBRIDGE_DATA_DIR, else the platform's data folder / accobridge (Linux:
    $XDG_DATA_HOME or ~/.local/share): where the engine keeps imported libraries too."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    return platformdirs.user_data_path(APP_NAME, appauthor=False, roaming=True)


def process_umask() -> int:
    """The process's umask (Linux: read from /proc, without touching it; elsewhere set and put
    back at once). The same reading as the engine's outputs use; bridge cannot import it."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str, *, durable: bool = True) -> None:
    """Write `text` (UTF-8) to a temporary file in the same folder, then `os.replace` it over
    `path`: a reader or a crash sees the old file or the new one, never half of one, and a
    failure leaves no temporary file. The temporary file is made with O_EXCL and the rename
    replaces a symbolic link at `path` rather than following it. Its mode is 0o666 less the
    umask, as `open` would give (mkstemp makes files owner-only). `durable` also fsyncs the
    file and (POSIX) the folder, so the new file survives a power cut; the spool's short-lived
    answers skip that."""
    folder = os.path.dirname(os.fspath(path)) or "."
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(os.fspath(path))
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            if hasattr(os, "fchmod"):  # POSIX; Windows has no umask bits to follow
                os.fchmod(file.fileno(), 0o666 & ~process_umask())
            file.write(text.encode("utf-8"))
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):  # already renamed or never created
            os.unlink(temp)
        raise
    if durable and os.name == "posix":  # Windows cannot open a folder; its rename is final
        folder_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(folder_fd)
        finally:
            os.close(folder_fd)


def _open_regular(path: str | os.PathLike[str]) -> int:
    """A read-only descriptor of `path`, which must be a regular file. O_NONBLOCK: opening a
    FIFO or a device returns at once instead of waiting for a writer; fstat then refuses it."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StoredFileError("is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_depth(document: object, max_depth: int) -> None:
    """StoredFileError when arrays and objects nest deeper than `max_depth` (no recursion)."""
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        children = (value.values() if isinstance(value, dict)
                    else value if isinstance(value, list) else ())
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > max_depth:
                    raise StoredFileError(f"nested more than {max_depth} levels deep")
                stack.append((child, depth + 1))


def read_json_object(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> Json:
    """The JSON object in `path`. FileNotFoundError passes through (a missing file is often
    fine); anything else wrong is a StoredFileError: unreadable, not a regular file (a FIFO
    is refused, never waited on), over `max_bytes`, not JSON, nested more than
    MAX_JSON_DEPTH levels, or not an object."""
    try:
        with os.fdopen(_open_regular(path), "rb") as file:
            size = os.fstat(file.fileno()).st_size
            data = file.read(max_bytes + 1) if size <= max_bytes else b""
    except FileNotFoundError:
        raise
    except OSError as err:
        raise StoredFileError(f"cannot be read ({err})") from err
    if max(size, len(data)) > max_bytes:  # refused before reading, or grown while read
        raise StoredFileError(f"is {max(size, len(data))} bytes; at most {max_bytes} are read")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise StoredFileError(f"cannot be read ({err})") from err
    except ValueError as err:  # json.JSONDecodeError
        raise StoredFileError(f"not valid JSON ({err})") from err
    except RecursionError as err:
        raise StoredFileError("not valid JSON (nested too deeply)") from err
    if not isinstance(document, dict):
        raise StoredFileError(f"not a JSON object (found {type(document).__name__})")
    _check_depth(document, MAX_JSON_DEPTH)
    return document


@dataclass(frozen=True)
class FileFormat:
    """One kind of versioned JSON file: the key holding its version, the version this build
    writes, and `upgrades[v]` turning a version-v document into version v + 1."""

    what: str  # "preset", "settings" …: for messages
    version_key: str
    version: int
    upgrades: Mapping[int, Upgrade] = field(default_factory=dict)
    unversioned: int | None = None  # the version of a file without the key (None: refused)
    max_bytes: int = MAX_FILE_BYTES
    compact: bool = False  # one line of ASCII (big files), else indented for people

    def read(self, path: str | os.PathLike[str]) -> Json:
        """The file's object as stored, not upgraded (see `read_json_object`)."""
        return read_json_object(path, self.max_bytes)

    def upgrade(self, document: Json) -> Json:
        """`document` brought to `version` through the upgrade chain. StoredFileError for a
        missing or unknown version, NewerFileError for a newer one."""
        key = self.version_key
        if key not in document and self.unversioned is None:
            raise StoredFileError(f"field {key!r} is missing")
        version = document.get(key, self.unversioned)
        if isinstance(version, bool) or not isinstance(version, int):
            raise StoredFileError(f"field {key!r} must be a whole number, got {version!r}")
        if version > self.version:
            raise NewerFileError(f"{key} {version} is newer than this AccoBridge reads "
                                 f"({self.version}); update AccoBridge", version)
        while version < self.version:
            step = self.upgrades.get(version)
            if step is None:
                raise StoredFileError(f"{key} {version} is not a known {self.what} format")
            document = {**step(document), key: version + 1}
            version += 1
        return document

    def load(self, path: str | os.PathLike[str]) -> Json:
        """Read and upgrade."""
        return self.upgrade(self.read(path))

    def dumps(self, document: Mapping[str, Any]) -> str:
        """The file's text, version key first. Raises TypeError/ValueError for values that are
        not JSON, before anything touches the disk."""
        stamped = {self.version_key: self.version,
                   **{k: v for k, v in document.items() if k != self.version_key}}
        if self.compact:
            return json.dumps(stamped, ensure_ascii=True, separators=(",", ":"))
        return json.dumps(stamped, indent=2, ensure_ascii=False) + "\n"

    def save(self, path: str | os.PathLike[str], document: Mapping[str, Any]) -> None:
        """Write atomically and durably (OSError when the disk refuses; the old file stays)."""
        atomic_write_text(path, self.dumps(document))


# ---- JSON Schema with messages for people ---------------------------------------------------

_TYPE_WORDS = {"object": "an object", "array": "a list", "string": "a string",
               "boolean": "true or false", "null": "null", "integer": "a whole number",
               "number": "a number"}


def _strict_validator(schema: Json) -> Any:
    """A Draft 2020-12 validator whose numbers are finite and whose integers are ints (the
    standard lets 1.0 be an integer and NaN a number)."""
    import jsonschema  # only where a schema is checked: bridge imports stay light

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine_many({
        "integer": lambda _, v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda _, v: (isinstance(v, int | float) and not isinstance(v, bool)
                                and math.isfinite(v)),
    })
    return jsonschema.validators.extend(base, type_checker=checker)(schema)


def check_schema(value: Any, schema: Json, what: str) -> None:
    """StoredFileError naming the first field of `value` that breaks `schema` and what is
    allowed there (`what` names the whole document: "the preset must be an object")."""
    error = next(iter(_strict_validator(schema).iter_errors(value)), None)
    if error is not None:
        raise StoredFileError(_describe(error, what))


def _field_name(path: Any) -> str:
    where = ""
    for step in path:
        where += f"[{step}]" if isinstance(step, int) else (f".{step}" if where else step)
    return where


def _describe(error: Any, what: str) -> str:
    where = _field_name(error.absolute_path)
    name = f"field {where!r}" if where else f"the {what}"
    rule, schema, value = error.validator, error.schema, error.instance
    if rule == "type":
        types = schema["type"]
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in ([types] if isinstance(types, str)
                                                              else types))
        return f"{name} must be {words}, got {value!r}"
    if rule == "enum":
        return f"{name} must be one of {', '.join(map(str, schema['enum']))}; got {value!r}"
    if rule in ("minimum", "maximum"):
        return (f"{name} must be between {schema.get('minimum')} and {schema.get('maximum')}, "
                f"got {value!r}")
    if rule in ("minLength", "maxLength"):
        return (f"{name} must have {schema.get('minLength', 0)}-{schema.get('maxLength')} "
                f"characters, got {len(value)}")
    if rule == "pattern":
        hint = schema.get("x-pattern-hint", f"the pattern {schema['pattern']}")
        return f"{name} may only use {hint}; got {value!r}"
    if rule == "required":
        missing = next(k for k in error.validator_value if k not in value)
        return f"field {_field_name([*error.absolute_path, missing])!r} is missing"
    if rule == "additionalProperties":
        known = schema.get("properties", {})
        extra = next(k for k in value if k not in known)
        return (f"unknown field {_field_name([*error.absolute_path, extra])!r} "
                f"(allowed: {', '.join(known)})")
    if rule == "minItems":
        return f"{name} needs at least {schema['minItems']} item(s)"
    if rule == "uniqueItems":
        return f"{name} lists an item twice: {value!r}"
    return f"{name}: {error.message}"
