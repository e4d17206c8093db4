"""Crash-safe memory of each source's last clip and last result, as versioned JSON files.

One file per (source, kind) in `user_data_dir() / "sessions"`, written and read through
`bridge.jsonfile` (atomic and durable writes, bounded reads), so a crash leaves either the old
or the new file. A corrupt or unknown file is logged, counted and read as absent — restoring
never crashes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from bridge.errors import StoredFileError
from bridge.jsonfile import FileFormat, user_data_dir
from bridge.types import ChordSymbol, Clip, ClipControl, ClipNote, GenerateResult

logger = logging.getLogger(__name__)



def _with_no_controls(document: dict[str, Any]) -> dict[str, Any]:
    """Version 1 → 2: results gained their control changes; an old result had none."""
    payload = document.get("result")
    if document.get("kind") != "result" or not isinstance(payload, dict):
        return document  # a clip, or something the checks on reading refuse
    return {**document, "result": {**payload, "controls": {}}}


SCHEMA_VERSION = 2
# A result of MAX_PART_NOTES notes per part is tens of MB: the size limit only stops absurd
# files.
SESSION_FILE = FileFormat("session", "schema", SCHEMA_VERSION, {1: _with_no_controls},
                          max_bytes=256 * 1024 * 1024, compact=True)
Kind = Literal["clip", "result"]
_KINDS: tuple[Kind, ...] = ("clip", "result")
_SLUG_MAX = 40
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_T = TypeVar("_T")


class _CorruptError(ValueError):
    """A stored file that does not follow the schema (internal: turned into "absent")."""


# ---- frozen dataclasses <-> JSON ----------------------------------------------------------
# Notes are stored as compact arrays [pitch, start_beats, duration_beats, velocity, channel]:
# a 10,000-note clip stays a few hundred KB instead of megabytes of repeated keys; control
# changes likewise as [start_beats, controller, value, channel].


def _note_to_json(note: ClipNote) -> list[Any]:
    return [note.pitch, note.start_beats, note.duration_beats, note.velocity, note.channel]


def clip_to_json(clip: Clip) -> dict[str, Any]:
    return {
        "source": clip.source,
        "name": clip.name,
        "length_beats": clip.length_beats,
        "tempo_bpm": clip.tempo_bpm,
        "ts_num": clip.ts_num,
        "ts_den": clip.ts_den,
        "key_hint": clip.key_hint,
        "notes": [_note_to_json(n) for n in clip.notes],
    }


def result_to_json(result: GenerateResult) -> dict[str, Any]:
    return {
        "request_id": result.request_id,
        "source": result.source,
        "parts": {name: [_note_to_json(n) for n in notes] for name, notes in result.parts.items()},
        "chords": [[c.start_beats, c.duration_beats, c.symbol] for c in result.chords],
        # JSON-like values only; tuples come back as lists.
        "summary": dict(result.summary),
        "controls": {name: [[c.start_beats, c.controller, c.value, c.channel] for c in changes]
                     for name, changes in result.controls.items()},
    }


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _CorruptError(f"{what}: expected an integer, got {value!r:.40}")
    return value


def _float(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _CorruptError(f"{what}: expected a number, got {value!r:.40}")
    return float(value)


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise _CorruptError(f"{what}: expected a string, got {value!r:.40}")
    return value


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _CorruptError(f"{what}: expected an array, got {type(value).__name__}")
    return value


def _dict(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _CorruptError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _note_from_json(value: object, what: str) -> ClipNote:
    fields = _list(value, what)
    if len(fields) != 5:
        raise _CorruptError(f"{what}: expected 5 fields, got {len(fields)}")
    return ClipNote(
        pitch=_int(fields[0], f"{what}.pitch"),
        start_beats=_float(fields[1], f"{what}.start_beats"),
        duration_beats=_float(fields[2], f"{what}.duration_beats"),
        velocity=_int(fields[3], f"{what}.velocity"),
        channel=_int(fields[4], f"{what}.channel"),
    )


def _notes_from_json(value: object, what: str) -> tuple[ClipNote, ...]:
    return tuple(_note_from_json(n, f"{what}[{i}]") for i, n in enumerate(_list(value, what)))


def _control_from_json(value: object, what: str) -> ClipControl:
    fields = _list(value, what)
    if len(fields) != 4:
        raise _CorruptError(f"{what}: expected 4 fields, got {len(fields)}")
    return ClipControl(
        start_beats=_float(fields[0], f"{what}.start_beats"),
        controller=_int(fields[1], f"{what}.controller"),
        value=_int(fields[2], f"{what}.value"),
        channel=_int(fields[3], f"{what}.channel"),
    )


def clip_from_json(data: Mapping[str, Any]) -> Clip:
    """Raises ValueError (with the offending field) when `data` is not a stored clip."""
    try:
        key_hint = data["key_hint"]
        return Clip(
            source=_str(data["source"], "source"),
            name=_str(data["name"], "name"),
            length_beats=_float(data["length_beats"], "length_beats"),
            tempo_bpm=_float(data["tempo_bpm"], "tempo_bpm"),
            ts_num=_int(data["ts_num"], "ts_num"),
            ts_den=_int(data["ts_den"], "ts_den"),
            notes=_notes_from_json(data["notes"], "notes"),
            key_hint=None if key_hint is None else _str(key_hint, "key_hint"),
        )
    except KeyError as err:
        raise _CorruptError(f"missing field {err}") from err


def result_from_json(data: Mapping[str, Any]) -> GenerateResult:
    """Raises ValueError (with the offending field) when `data` is not a stored result."""
    try:
        parts = _dict(data["parts"], "parts")
        chords = _list(data["chords"], "chords")
        controls = _dict(data["controls"], "controls")
        return GenerateResult(
            request_id=_str(data["request_id"], "request_id"),
            source=_str(data["source"], "source"),
            parts={
                _str(name, "part name"): _notes_from_json(notes, f"parts.{name}")
                for name, notes in parts.items()
            },
            chords=tuple(_chord_from_json(c, f"chords[{i}]") for i, c in enumerate(chords)),
            summary=_dict(data["summary"], "summary"),
            controls={
                _str(name, "part name"): tuple(
                    _control_from_json(c, f"controls.{name}[{i}]")
                    for i, c in enumerate(_list(changes, f"controls.{name}")))
                for name, changes in controls.items()
            },
        )
    except KeyError as err:
        raise _CorruptError(f"missing field {err}") from err


def _chord_from_json(value: object, what: str) -> ChordSymbol:
    fields = _list(value, what)
    if len(fields) != 3:
        raise _CorruptError(f"{what}: expected 3 fields, got {len(fields)}")
    return ChordSymbol(
        start_beats=_float(fields[0], f"{what}.start_beats"),
        duration_beats=_float(fields[1], f"{what}.duration_beats"),
        symbol=_str(fields[2], f"{what}.symbol"),
    )


# ---- file names ---------------------------------------------------------------------------


def file_stem(source: str) -> str:
    """A safe, unique file stem for any source name: a readable slug of [A-Za-z0-9_-] (so no
    separators, dots or drive letters can escape the folder) plus a hash of the full name (so
    "osc:a/b" and "osc:a_b" stay apart)."""
    digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    slug = _UNSAFE.sub("_", source)[:_SLUG_MAX].strip("_") or "source"
    return f"{slug}-{digest}"


def _file_name(source: str, kind: Kind) -> str:
    return f"{file_stem(source)}.{kind}.json"


# ---- the store ----------------------------------------------------------------------------


class ClipStore:
    """Last clip and last result per source. Thread-safe: each write goes to its own temp file
    and is swapped in atomically; the last `os.replace` wins."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else user_data_dir() / "sessions"
        self._count_lock = threading.Lock()
        self._corrupt_files = 0

    @property
    def corrupt_files(self) -> int:
        """How many unreadable files loads have met so far (each is also logged)."""
        return self._corrupt_files

    def clip_path(self, source: str) -> Path:
        return self._path(source, "clip")

    def result_path(self, source: str) -> Path:
        return self._path(source, "result")

    def _path(self, source: str, kind: Kind) -> Path:
        return self.folder / _file_name(source, kind)

    # -- writing --

    def save_clip(self, source: str, clip: Clip) -> None:
        """Raises OSError when the disk refuses; the previous file then stays intact."""
        self._write(source, "clip", clip_to_json(clip))

    def save_result(self, source: str, result: GenerateResult) -> None:
        """Raises TypeError/ValueError when the summary is not JSON-like, OSError on disk errors;
        the previous file then stays intact."""
        self._write(source, "result", result_to_json(result))

    def _write(self, source: str, kind: Kind, payload: dict[str, Any]) -> None:
        document = {"kind": kind, "source": source, kind: payload}
        # Plain strings, not Path: pathlib interns every name it parses, and re-interning the
        # same name on every write churns the interpreter's global intern table.
        SESSION_FILE.save(os.path.join(self.folder, _file_name(source, kind)), document)

    # -- reading --

    def load_clip(self, source: str) -> Clip | None:
        """The last clip saved for `source`, or None when there is none or it is unreadable."""
        payload = self._read(self._path(source, "clip"), "clip", source)
        return None if payload is None else self._decode(payload, clip_from_json, source, "clip")

    def load_result(self, source: str) -> GenerateResult | None:
        """The last result saved for `source`, or None when there is none or it is unreadable."""
        payload = self._read(self._path(source, "result"), "result", source)
        if payload is None:
            return None
        return self._decode(payload, result_from_json, source, "result")

    def sources(self) -> list[str]:
        """Every source with a readable stored clip or result, sorted."""
        if not self.folder.is_dir():
            return []
        found: set[str] = set()
        for kind in _KINDS:
            for path in self.folder.glob(f"*.{kind}.json"):
                document = self._read_document(path, kind)
                if document is not None:
                    found.add(document["source"])
        return sorted(found)

    def _read(self, path: Path, kind: Kind, source: str) -> dict[str, Any] | None:
        document = self._read_document(path, kind)
        if document is None:
            return None
        if document["source"] != source:  # a copied/renamed file, or a hash collision
            self._corrupt(path, f"holds source {document['source']!r}, expected {source!r}")
            return None
        payload: dict[str, Any] = document[kind]
        return payload

    def _read_document(self, path: Path, kind: Kind) -> dict[str, Any] | None:
        """The checked top level of one file: schema, kind, source and an object payload."""
        try:
            document = SESSION_FILE.load(path)
            if document.get("kind") != kind:
                raise _CorruptError(f"kind {document.get('kind')!r}, expected {kind!r}")
            _str(document.get("source"), "source")
            _dict(document.get(kind), kind)
        except FileNotFoundError:
            return None
        except (StoredFileError, _CorruptError) as err:
            self._corrupt(path, str(err))
            return None
        return document

    def _decode(
        self, payload: dict[str, Any], decode: Callable[[Mapping[str, Any]], _T], source: str,
        kind: Kind,
    ) -> _T | None:
        try:
            return decode(payload)
        except ValueError as err:
            self._corrupt(self._path(source, kind), str(err))
            return None

    def _corrupt(self, path: Path, reason: str) -> None:
        with self._count_lock:
            self._corrupt_files += 1
        logger.warning("ignoring stored session file %s: %s", path, reason)
