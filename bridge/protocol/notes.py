"""Notes on the wire: cutting them into chunks, their CRC, and collecting chunks that arrive
in any order (both the clip upload and each result part use it)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence

from bridge.errors import BadMessageError
from bridge.protocol.fields import check_values
from bridge.protocol.table import MAX_NOTES_PER_CHUNK, NOTE_ARGS, note_values
from bridge.types import ClipNote

_NOTE_STRUCT = struct.Struct(">BffBB")


def chunk_notes(
    notes: Sequence[ClipNote], max_per_chunk: int = MAX_NOTES_PER_CHUNK
) -> list[tuple[ClipNote, ...]]:
    """`notes` in order, cut into chunks of at most `max_per_chunk` (no chunks for none)."""
    if not 1 <= max_per_chunk <= MAX_NOTES_PER_CHUNK:
        raise ValueError(f"max_per_chunk must be in 1..{MAX_NOTES_PER_CHUNK}, got {max_per_chunk}")
    return [tuple(notes[i:i + max_per_chunk]) for i in range(0, len(notes), max_per_chunk)]


def crc32_of_notes(notes: Iterable[ClipNote]) -> str:
    """CRC-32 of the notes' canonical bytes, as 8 lowercase hex digits.

    Canonical form: for each note in order, `struct.pack(">BffBB", pitch, start_beats,
    duration_beats, velocity, channel)` — big-endian, times as the float32 values OSC carries,
    so sender and receiver agree bit for bit. Notes are validated first (BadMessageError).
    """
    crc = 0
    for index, note in enumerate(notes):
        values = check_values(NOTE_ARGS, note_values(note), f"note {index}")
        crc = zlib.crc32(_NOTE_STRUCT.pack(*values), crc)
    return f"{crc:08x}"


class NoteChunks:
    """Notes announced as n_notes in n_chunks, arriving in any order; duplicates ignored."""

    def __init__(self, what: str, n_notes: int, n_chunks: int) -> None:
        least = -(-n_notes // MAX_NOTES_PER_CHUNK)
        if not least <= n_chunks <= n_notes:
            raise BadMessageError(
                f"{what}: {n_notes} notes cannot come in {n_chunks} chunks "
                f"(need {least}..{n_notes} chunks of 1..{MAX_NOTES_PER_CHUNK} notes)", "value",
            )
        self.what = what
        self.n_notes = n_notes
        self.n_chunks = n_chunks
        self._chunks: dict[int, tuple[ClipNote, ...]] = {}
        self._received = 0

    def add(self, chunk: int, notes: tuple[ClipNote, ...]) -> bool:
        """Store one chunk; False for a duplicate (ignored, the first copy wins)."""
        if not 0 <= chunk < self.n_chunks:
            raise BadMessageError(
                f"{self.what}: chunk {chunk} is out of range 0..{self.n_chunks - 1}", "value"
            )
        if chunk in self._chunks:
            return False
        if self._received + len(notes) > self.n_notes:
            raise BadMessageError(
                f"{self.what}: more notes than the {self.n_notes} announced", "value"
            )
        self._chunks[chunk] = notes
        self._received += len(notes)
        return True

    def missing(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.n_chunks) if i not in self._chunks)

    @property
    def complete(self) -> bool:
        return len(self._chunks) == self.n_chunks

    def finish(self, crc32: str) -> tuple[ClipNote, ...]:
        """All notes in chunk order, once every chunk is here and the CRC matches."""
        missing = self.missing()
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
            raise BadMessageError(
                f"{self.what}: {len(missing)} of {self.n_chunks} chunks missing ({shown})",
                "incomplete",
            )
        notes = tuple(note for i in range(self.n_chunks) for note in self._chunks[i])
        if len(notes) != self.n_notes:
            raise BadMessageError(
                f"{self.what}: {len(notes)} notes arrived, {self.n_notes} were announced",
                "value",
            )
        actual = crc32_of_notes(notes)
        if actual != crc32:
            raise BadMessageError(
                f"{self.what}: CRC mismatch: announced {crc32}, the notes give {actual}", "crc"
            )
        return notes

