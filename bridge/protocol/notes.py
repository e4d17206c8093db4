"""Notes and control changes on the wire: cutting them into chunks, their CRC, and collecting
chunks that arrive in any order (the clip upload, each result part's notes and controls)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from bridge.errors import BadMessageError
from bridge.protocol.fields import Args, check_values
from bridge.protocol.table import (
    CONTROL_ARGS,
    MAX_CONTROLS_PER_CHUNK,
    MAX_NOTES_PER_CHUNK,
    NOTE_ARGS,
    control_values,
    note_values,
)
from bridge.types import ClipControl, ClipNote

Item = TypeVar("Item", ClipNote, ClipControl)

_NOTE_STRUCT = struct.Struct(">BffBB")
_CONTROL_STRUCT = struct.Struct(">fBBB")


def chunk_notes(
    notes: Sequence[ClipNote], max_per_chunk: int = MAX_NOTES_PER_CHUNK
) -> list[tuple[ClipNote, ...]]:
    """`notes` in order, cut into chunks of at most `max_per_chunk` (no chunks for none)."""
    if not 1 <= max_per_chunk <= MAX_NOTES_PER_CHUNK:
        raise ValueError(f"max_per_chunk must be in 1..{MAX_NOTES_PER_CHUNK}, got {max_per_chunk}")
    return [tuple(notes[i:i + max_per_chunk]) for i in range(0, len(notes), max_per_chunk)]


def _crc32(items: Iterable[Any], args: Args, values: Callable[[Any], tuple[Any, ...]],
           packing: struct.Struct, item: str) -> str:
    crc = 0
    for index, one in enumerate(items):
        checked = check_values(args, values(one), f"{item} {index}")
        crc = zlib.crc32(packing.pack(*checked), crc)
    return f"{crc:08x}"


def crc32_of_notes(notes: Iterable[ClipNote]) -> str:
    """CRC-32 of the notes' canonical bytes, as 8 lowercase hex digits.

    Canonical form: for each note in order, `struct.pack(">BffBB", pitch, start_beats,
    duration_beats, velocity, channel)` — big-endian, times as the float32 values OSC carries,
    so sender and receiver agree bit for bit. Notes are validated first (BadMessageError).
    """
    return _crc32(notes, NOTE_ARGS, note_values, _NOTE_STRUCT, "note")


def crc32_of_controls(controls: Iterable[ClipControl]) -> str:
    """CRC-32 of control changes like `crc32_of_notes`, each as `struct.pack(">fBBB",
    start_beats, controller, value, channel)`."""
    return _crc32(controls, CONTROL_ARGS, control_values, _CONTROL_STRUCT, "control")


class _Chunks(Generic[Item]):
    """Items announced as n_items in n_chunks, arriving in any order; duplicates ignored."""

    noun: ClassVar[str]
    per_chunk: ClassVar[int]
    empty_chunk: ClassVar[bool]  # whether none come as one empty chunk (else as no chunks)

    def __init__(self, what: str, n_items: int, n_chunks: int) -> None:
        least = -(-n_items // self.per_chunk)
        most = n_items
        if self.empty_chunk:
            least, most = max(least, 1), max(most, 1)
        if not least <= n_chunks <= most:
            raise BadMessageError(
                f"{what}: {n_items} {self.noun} cannot come in {n_chunks} chunks "
                f"(need {least}..{most} chunks of at most {self.per_chunk} {self.noun})",
                "value",
            )
        self.what = what
        self.n_items = n_items
        self.n_chunks = n_chunks
        self._chunks: dict[int, tuple[Item, ...]] = {}
        self._received = 0

    def _crc32(self, items: tuple[Item, ...]) -> str:
        raise NotImplementedError

    def add(self, chunk: int, items: tuple[Item, ...]) -> bool:
        """Store one chunk; False for a duplicate (ignored, the first copy wins)."""
        if not 0 <= chunk < self.n_chunks:
            raise BadMessageError(
                f"{self.what}: chunk {chunk} is out of range 0..{self.n_chunks - 1}", "value"
            )
        if chunk in self._chunks:
            return False
        if self._received + len(items) > self.n_items:
            raise BadMessageError(
                f"{self.what}: more {self.noun} than the {self.n_items} announced", "value"
            )
        self._chunks[chunk] = items
        self._received += len(items)
        return True

    def missing(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.n_chunks) if i not in self._chunks)

    @property
    def complete(self) -> bool:
        return len(self._chunks) == self.n_chunks

    def finish(self, crc32: str) -> tuple[Item, ...]:
        """All items in chunk order, once every chunk is here and the CRC matches."""
        missing = self.missing()
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
            raise BadMessageError(
                f"{self.what}: {len(missing)} of {self.n_chunks} chunks missing ({shown})",
                "incomplete",
            )
        items = tuple(item for i in range(self.n_chunks) for item in self._chunks[i])
        if len(items) != self.n_items:
            raise BadMessageError(
                f"{self.what}: {len(items)} {self.noun} arrived, {self.n_items} were announced",
                "value",
            )
        actual = self._crc32(items)
        if actual != crc32:
            raise BadMessageError(
                f"{self.what}: CRC mismatch: announced {crc32}, the {self.noun} give {actual}",
                "crc",
            )
        return items


class NoteChunks(_Chunks[ClipNote]):
    """A clip's or a part's notes; none come as no chunks."""

    noun = "notes"
    per_chunk = MAX_NOTES_PER_CHUNK
    empty_chunk = False

    def _crc32(self, items: tuple[ClipNote, ...]) -> str:
        return crc32_of_notes(items)


class ControlChunks(_Chunks[ClipControl]):
    """A part's control changes; none come as one empty chunk, which says so."""

    noun = "controls"
    per_chunk = MAX_CONTROLS_PER_CHUNK
    empty_chunk = True

    def _crc32(self, items: tuple[ClipControl, ...]) -> str:
        return crc32_of_controls(items)

