"""Crash-safe memory of each source's last request: its clip and its result stored as ONE pair
keyed by request id, or the clip alone while (or because) it was never generated.

Files in `user_data_dir() / "sessions"`, written and read through `bridge.jsonfile` (atomic
writes, bounded reads that never wait on a FIFO), so a crash leaves either the old or the new
file:

- ``<source stem>.<request digest>.pair.json``: a finished request (clip + result), durable;
- ``<source stem>.<request digest>.clip.json``: a request whose job has started and not ended.
  Its job's ending replaces it with a pair (done) or deletes it (failed, cancelled,
  superseded: refused clips are not kept). One that survives was running when the process
  died: restore offers it as "not generated", never with an older request's result.

Per source at most one pair and one newer clip entry are kept; the whole store keeps the newest
MAX_SOURCES sources and MAX_STORE_BYTES. A corrupt, unknown, oversized, deeply nested or
non-regular file is logged, counted and read as absent; the others still restore. Temporary
files a crash left behind go on the store's first use (`sweep`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bridge.jsonfile import FileFormat, atomic_write_text, user_data_dir
from bridge.types import ChordSymbol, Clip, ClipControl, ClipNote, GenerateResult

logger = logging.getLogger(__name__)


def _with_no_controls(document: dict[str, Any]) -> dict[str, Any]:
    """Version 1 → 2: results gained their control changes; an old result had none."""
    payload = document.get("result")
    if document.get("kind") != "result" or not isinstance(payload, dict):
        return document  # a clip, or something the checks on reading refuse
    return {**document, "result": {**payload, "controls": {}}}


def _paired(document: dict[str, Any]) -> dict[str, Any]:
    """Version 2 → 3: a source's clip and result were separate files that need not belong
    together. An old clip becomes a request without a result (request id unknown: ""); an old
    result, whose clip is unknown, is left for the first use of the store to delete."""
    if document.get("kind") != "clip":
        return document
    return {"kind": "session", "source": document.get("source"), "request_id": "",
            "clip": document.get("clip"), "result": None}


SCHEMA_VERSION = 3
MAX_SOURCES = 32  # sources kept (the newest; the others' files go)
MAX_STORE_BYTES = 64 * 1024 * 1024  # all files together (the oldest go first)
# A 10,000-note clip with its parts is a few MB; larger files are refused, never read.
MAX_ENTRY_BYTES = 32 * 1024 * 1024
SESSION_FILE = FileFormat("session", "schema", SCHEMA_VERSION,
                          {1: _with_no_controls, 2: _paired},
                          max_bytes=MAX_ENTRY_BYTES, compact=True)
_SLUG_MAX = 40
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_ENTRY_NAME = re.compile(r"([A-Za-z0-9_-]+)\.([0-9a-f]{16})\.(pair|clip)\.json")
_LEGACY_NAME = re.compile(r"([A-Za-z0-9_-]+)\.(clip|result)\.json")  # schema 1 and 2
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


# The compact arrays' fields, in order, with their readers.
_Fields = tuple[tuple[str, Callable[[object, str], object]], ...]
_NOTE_FIELDS: _Fields = (("pitch", _int), ("start_beats", _float), ("duration_beats", _float),
                         ("velocity", _int), ("channel", _int))
_CONTROL_FIELDS: _Fields = (("start_beats", _float), ("controller", _int), ("value", _int),
                            ("channel", _int))
_CHORD_FIELDS: _Fields = (("start_beats", _float), ("duration_beats", _float), ("symbol", _str))


def _from_array(value: object, what: str, fields: _Fields, make: Callable[..., _T]) -> _T:
    items = _list(value, what)
    if len(items) != len(fields):
        raise _CorruptError(f"{what}: expected {len(fields)} fields, got {len(items)}")
    return make(**{name: read(item, f"{what}.{name}")
                   for (name, read), item in zip(fields, items, strict=True)})


def _notes_from_json(value: object, what: str) -> tuple[ClipNote, ...]:
    return tuple(_from_array(n, f"{what}[{i}]", _NOTE_FIELDS, ClipNote)
                 for i, n in enumerate(_list(value, what)))


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
            chords=tuple(_from_array(c, f"chords[{i}]", _CHORD_FIELDS, ChordSymbol)
                         for i, c in enumerate(chords)),
            summary=_dict(data["summary"], "summary"),
            controls={
                _str(name, "part name"): tuple(
                    _from_array(c, f"controls.{name}[{i}]", _CONTROL_FIELDS, ClipControl)
                    for i, c in enumerate(_list(changes, f"controls.{name}")))
                for name, changes in controls.items()
            },
        )
    except KeyError as err:
        raise _CorruptError(f"missing field {err}") from err


# ---- file names ---------------------------------------------------------------------------


def file_stem(source: str) -> str:
    """A safe, unique file stem for any source name: a readable slug of [A-Za-z0-9_-] (so no
    separators, dots or drive letters can escape the folder) plus a hash of the full name (so
    "osc:a/b" and "osc:a_b" stay apart)."""
    slug = _UNSAFE.sub("_", source)[:_SLUG_MAX].strip("_") or "source"
    return f"{slug}-{_digest(source)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def entry_name(source: str, request_id: str, generated: bool) -> str:
    """The file of one stored request: the source's stem, the request's digest, and whether
    it holds a result ("pair") or the clip alone ("clip")."""
    return f"{file_stem(source)}.{_digest(request_id)}.{'pair' if generated else 'clip'}.json"


# ---- the store ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredSession:
    """One stored request: its clip and, when it was generated, its result (whose request id is
    the same, checked on reading). `result` None: the job never finished ("not generated")."""

    source: str
    request_id: str
    clip: Clip
    result: GenerateResult | None


@dataclass(frozen=True)
class _Entry:
    name: str
    stem: str
    digest: str
    generated: bool
    mtime_ns: int
    size: int

    def newest_first(self) -> tuple[int, bool]:
        return (-self.mtime_ns, not self.generated)  # a tie: the pair was written last


class ClipStore:
    """Each source's last request (see the module doc). Thread-safe: writes and the trimming
    after them hold a lock; each file is swapped in atomically, so readers on other threads
    see whole files."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else user_data_dir() / "sessions"
        self._lock = threading.Lock()  # writes, trimming and the first-use sweep
        self._count_lock = threading.Lock()
        self._swept = False
        self._corrupt_files = 0
        self._warned: set[str] = set()  # non-regular names already logged

    @property
    def corrupt_files(self) -> int:
        """How many unreadable files reads have met so far (each is also logged)."""
        return self._corrupt_files

    def path(self, source: str, request_id: str, generated: bool) -> Path:
        return self.folder / entry_name(source, request_id, generated)

    # -- writing (the session's worker) --

    def save_clip(self, source: str, request_id: str, clip: Clip) -> None:
        """`request_id`'s job has started: keep its clip as "not generated" until it ends
        (`save_pair` or `discard`). Not fsynced: it guards against a crash of the process, and
        most live for one job. Raises OSError when the disk refuses, ValueError when the file
        would be over MAX_ENTRY_BYTES; the stored pair then stays."""
        self._write(source, request_id, clip, None)

    def save_pair(self, source: str, clip: Clip, result: GenerateResult) -> None:
        """`result` (of `clip`) is the source's last request now: its pair replaces the
        source's other files. Raises TypeError/ValueError when the summary is not JSON-like or
        the file would be too large, OSError on disk errors; the old files then stay."""
        self._write(source, result.request_id, clip, result)

    def discard(self, source: str, request_id: str) -> None:
        """`request_id`'s job ended without a result: its clip is not kept. Raises OSError
        when the disk refuses."""
        with self._lock:
            self._sweep_once()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.folder, entry_name(source, request_id, False)))

    def _write(self, source: str, request_id: str, clip: Clip,
               result: GenerateResult | None) -> None:
        document = {"kind": "session", "source": source, "request_id": request_id,
                    "clip": clip_to_json(clip),
                    "result": None if result is None else result_to_json(result)}
        text = SESSION_FILE.dumps(document)
        if len(text) > MAX_ENTRY_BYTES:
            raise ValueError(f"the stored request would be {len(text)} bytes; at most "
                             f"{MAX_ENTRY_BYTES} are kept")
        name = entry_name(source, request_id, result is not None)
        with self._lock:
            self._sweep_once()
            # Plain strings, not Path: pathlib interns every name it parses, and re-interning
            # the same name on every write churns the interpreter's global intern table.
            atomic_write_text(os.path.join(self.folder, name), text, durable=result is not None)
            stem = file_stem(source)
            for entry in self._entries():  # a pair replaces all; a clip, older clips
                if (entry.stem == stem and entry.name != name
                        and (result is not None or not entry.generated)):
                    self._unlink(entry.name)
            self._trim(keep=name)

    # -- reading (any thread) --

    def load(self, source: str) -> StoredSession | None:
        """`source`'s last request (a pair, or a newer clip that was never generated), or None
        when there is none or its files are unreadable."""
        stem = file_stem(source)
        return self._first_readable(e for e in self._listing() if e.stem == stem)

    def newest(self) -> StoredSession | None:
        """The most recently stored request of any source (what the panel offers to restore)."""
        return self._first_readable(self._listing())

    def stored_result(self, request_id: str,
                      source_ok: Callable[[str], bool] | None = None) -> GenerateResult | None:
        """The stored result of `request_id` (the newest, if several sources used that id),
        only of a source `source_ok` accepts; None when none is stored. Reads one file, found
        by name: cheap enough to answer a request for it after a restart."""
        digest = _digest(request_id)
        for entry in self._listing():
            if not (entry.generated and entry.digest == digest):
                continue
            stored = self._read(entry)
            if (stored is not None and stored.request_id == request_id
                    and (source_ok is None or source_ok(stored.source))):
                return stored.result
        return None

    def _listing(self) -> list[_Entry]:
        self.sweep()
        return self._entries(warn=True)

    def _first_readable(self, entries: Iterable[_Entry]) -> StoredSession | None:
        for entry in entries:
            stored = self._read(entry)
            if stored is not None:
                return stored
        return None

    def _read(self, entry: _Entry) -> StoredSession | None:
        path = os.path.join(self.folder, entry.name)
        if entry.size > MAX_ENTRY_BYTES:  # refused before opening it
            self._corrupt(path, f"is {entry.size} bytes; at most {MAX_ENTRY_BYTES} are read")
            return None
        try:
            document = SESSION_FILE.load(path)
            if document.get("kind") != "session":
                raise _CorruptError(f"kind {document.get('kind')!r}, expected 'session'")
            source = _str(document.get("source"), "source")
            request_id = _str(document.get("request_id"), "request_id")
            payload = document.get("result")
            if (file_stem(source), _digest(request_id)) != (entry.stem, entry.digest) \
                    or (payload is not None) != entry.generated:
                raise _CorruptError("its name does not match its content (copied or renamed?)")
            clip = clip_from_json(_dict(document.get("clip"), "clip"))
            result = None if payload is None else result_from_json(_dict(payload, "result"))
            if result is not None and result.request_id != request_id:
                raise _CorruptError(f"holds the result of {result.request_id!r}, "
                                    f"not of {request_id!r}")
        except FileNotFoundError:
            return None  # replaced or trimmed since the listing
        except (ValueError, RecursionError) as err:  # StoredFileError, _CorruptError included
            self._corrupt(path, str(err) if not isinstance(err, RecursionError)
                          else "nested too deeply")
            return None
        return StoredSession(source, request_id, clip, result)

    # -- the folder --

    def _entries(self, *, warn: bool = False) -> list[_Entry]:
        """The stored requests' files, newest first: regular files only (lstat; a symbolic
        link, FIFO or folder with such a name is skipped, logged once when `warn`)."""
        entries: list[_Entry] = []
        try:
            listing = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        except OSError as err:
            logger.warning("cannot list the session store %s: %s", self.folder, err)
            return []
        for item in listing:
            match = _ENTRY_NAME.fullmatch(item.name)
            if match is None:
                continue
            try:
                info = item.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                if warn and item.name not in self._warned:
                    self._warned.add(item.name)
                    self._corrupt(item.path, "is not a regular file")
                continue
            entries.append(_Entry(item.name, match[1], match[2], match[3] == "pair",
                                  info.st_mtime_ns, info.st_size))
        return sorted(entries, key=_Entry.newest_first)

    def _trim(self, keep: str) -> None:
        """Keep the newest MAX_SOURCES sources and MAX_STORE_BYTES (`keep` always)."""
        sources: set[str] = set()
        total = 0
        for entry in self._entries():
            sources.add(entry.stem)
            total += entry.size
            if entry.name != keep and (len(sources) > MAX_SOURCES or total > MAX_STORE_BYTES):
                self._unlink(entry.name)
                total -= entry.size

    def sweep(self) -> None:
        """Once (the first use does it, or the session's worker at start): delete temporary
        files a crash left, bring files of schema 1 and 2 to this one, and trim."""
        with self._lock:
            self._sweep_once()

    def _sweep_once(self) -> None:  # with the lock held
        if self._swept:
            return
        self._swept = True
        try:
            listing = [item for item in os.scandir(self.folder)
                       if item.is_file(follow_symlinks=False)]
        except OSError:  # no folder yet (or none possible: the writes will say so)
            return
        for item in listing:
            legacy = _LEGACY_NAME.fullmatch(item.name)
            if item.name.startswith(".") and item.name.endswith(".tmp"):
                logger.info("deleting %s, left by an interrupted write", item.path)
                self._unlink(item.name)
            elif legacy is not None:
                self._upgrade_legacy(item, legacy[2])
        self._trim(keep="")

    def _upgrade_legacy(self, item: os.DirEntry[str], kind: str) -> None:
        """A schema-2 clip file becomes a "not generated" request (its mtime kept, for
        ordering); a schema-2 result file, whose clip is unknown, goes."""
        if kind == "clip":
            try:
                document = SESSION_FILE.load(item.path)
                source = _str(document.get("source"), "source")
                clip = clip_from_json(_dict(document.get("clip"), "clip"))
                name = entry_name(source, "", False)
                atomic_write_text(os.path.join(self.folder, name), SESSION_FILE.dumps(
                    {**document, "clip": clip_to_json(clip)}), durable=True)
                mtime_ns = item.stat(follow_symlinks=False).st_mtime_ns
                os.utime(os.path.join(self.folder, name), ns=(mtime_ns, mtime_ns))
            except (OSError, ValueError, RecursionError) as err:
                self._corrupt(item.path, f"{err}; deleted")
        self._unlink(item.name)

    def _unlink(self, name: str) -> None:
        try:
            os.unlink(os.path.join(self.folder, name))
        except FileNotFoundError:
            pass
        except OSError as err:
            logger.warning("cannot delete %s from the session store: %s", name, err)

    def _corrupt(self, path: str, reason: str) -> None:
        with self._count_lock:
            self._corrupt_files += 1
        logger.warning("ignoring stored session file %s: %s", path, reason)
