"""The result: the messages that carry a `GenerateResult` to a client, and the client side's
state machine that assembles them again (any order, duplicates ignored).

Control changes (protocol 2) travel per part in `/acco/part/controls`; a bridge sends them,
an empty chunk included, for every part to a client that speaks 2, so such a client knows to
wait for them. A client of protocol 1, or of a bridge that speaks 1, gets none."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from bridge.errors import BadMessageError, BridgeError, ClipTooLargeError
from bridge.protocol.messages import (
    Chords,
    PartBegin,
    PartControls,
    PartEnd,
    PartNotes,
    ResultBegin,
    ResultMessage,
    Summary,
)
from bridge.protocol.notes import (
    ControlChunks,
    NoteChunks,
    chunk_notes,
    crc32_of_controls,
    crc32_of_notes,
)
from bridge.protocol.table import (
    CONTROLS_SINCE,
    MAX_CHORDS_PER_CHUNK,
    MAX_CONTROLS_PER_CHUNK,
    MAX_PART_CONTROLS,
    MAX_PART_NOTES,
    MAX_PARTS,
    MAX_SUMMARY_BYTES,
    MAX_SUMMARY_PIECE_BYTES,
    PROTOCOL_VERSION,
)
from bridge.types import PART_CHANNELS, PARTS, ClipControl, ClipNote, GenerateResult


def part_order(parts: Iterable[str]) -> list[str]:
    """Known parts in channel order (PARTS), then any others by name."""
    names = set(parts)
    return [p for p in PARTS if p in names] + sorted(names - set(PARTS))


def _summary_pieces(summary: Mapping[str, Any]) -> list[str]:
    try:
        text = json.dumps(dict(summary), ensure_ascii=True, separators=(",", ":"),
                          allow_nan=False, default=str)
    except (TypeError, ValueError) as err:
        text = json.dumps({"truncated": True, "error": f"summary not JSON: {err}"[:200]})
    if len(text) > MAX_SUMMARY_BYTES:
        scalars = {k: v for k, v in summary.items()
                   if isinstance(v, str | int | float | bool) and len(str(v)) < 200}
        text = json.dumps({**scalars, "truncated": True}, ensure_ascii=True, default=str)
    step = MAX_SUMMARY_PIECE_BYTES  # ASCII only: characters are bytes
    return [text[i:i + step] for i in range(0, len(text), step)]


def _pieces(items: Sequence[Any], size: int) -> list[tuple[Any, ...]]:
    """`items` in chunks of at most `size`; one empty chunk for none."""
    return [tuple(items[i:i + size]) for i in range(0, len(items), size)] or [()]


def result_messages(result: GenerateResult, proto: int = PROTOCOL_VERSION
                    ) -> list[ResultMessage]:
    """The messages that carry `result` to a client speaking protocol `proto`, in sending
    order. Each part's notes (and, from protocol 2, its control changes) go out on its channel
    from PART_CHANNELS (an unknown part is a BridgeError, code 3)."""
    rid = result.request_id
    names = part_order(result.parts)
    chord_chunks = _pieces(result.chords, MAX_CHORDS_PER_CHUNK)
    pieces = _summary_pieces(result.summary)
    messages: list[ResultMessage] = [ResultBegin(rid, len(names), len(chord_chunks), len(pieces))]
    for name in names:
        channel = PART_CHANNELS.get(name)
        if channel is None:
            raise BridgeError(
                f"result part {name!r} has no MIDI channel (known: {', '.join(PART_CHANNELS)})"
            )
        notes = tuple(n if n.channel == channel else replace(n, channel=channel)
                      for n in result.parts[name])
        chunks = chunk_notes(notes)
        messages.append(PartBegin(rid, name, name.capitalize(), channel, len(notes),
                                  len(chunks)))
        messages.extend(PartNotes(rid, name, i, chunk) for i, chunk in enumerate(chunks))
        if proto >= CONTROLS_SINCE:
            changes = tuple(c if c.channel == channel else replace(c, channel=channel)
                            for c in result.controls.get(name, ()))
            crc32 = crc32_of_controls(changes)
            control_chunks = _pieces(changes, MAX_CONTROLS_PER_CHUNK)
            messages.extend(PartControls(rid, name, i, len(control_chunks), len(changes), crc32,
                                         chunk) for i, chunk in enumerate(control_chunks))
        messages.append(PartEnd(rid, name, crc32_of_notes(notes)))
    messages.extend(Chords(rid, i, len(chord_chunks), chunk)
                    for i, chunk in enumerate(chord_chunks))
    messages.extend(Summary(rid, i, len(pieces), piece) for i, piece in enumerate(pieces))
    return messages


class _Part:
    """A part being received: its begin may come after some of its chunks."""

    def __init__(self) -> None:
        self.begin: PartBegin | None = None
        self.chunks: NoteChunks | None = None
        self.early: dict[int, tuple[ClipNote, ...]] = {}
        self.crc32: str | None = None
        self.notes: tuple[ClipNote, ...] | None = None
        self.control_chunks: ControlChunks | None = None
        self.controls_crc32 = ""
        self.controls: tuple[ClipControl, ...] | None = None

    def done(self, controls_expected: bool) -> bool:
        """Notes verified, and control changes too where some were announced or expected."""
        announced = controls_expected or self.control_chunks is not None
        return self.notes is not None and (self.controls is not None or not announced)


class _Pieces:
    """Numbered chunks of something announced with its chunk count."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.n_chunks: int | None = None
        self.items: dict[int, Any] = {}

    def add(self, chunk: int, n_chunks: int, item: Any) -> bool:
        if self.n_chunks is None:
            self.n_chunks = n_chunks
        if n_chunks != self.n_chunks or chunk >= n_chunks:
            raise BadMessageError(
                f"{self.what}: chunk {chunk} of {n_chunks} does not fit the announced "
                f"{self.n_chunks}", "value",
            )
        if chunk in self.items:
            return False
        self.items[chunk] = item
        return True

    @property
    def complete(self) -> bool:
        return self.n_chunks is not None and len(self.items) == self.n_chunks

    def ordered(self) -> list[Any]:
        return [self.items[i] for i in range(self.n_chunks or 0)]


class ResultAssembly:
    """One result on the client side, from messages in any order, duplicates ignored.
    Each part's CRC is checked as soon as the part is complete (BadMessageError, "crc").
    From a bridge speaking protocol 2 (`proto`) every part waits for its control changes; from
    one speaking 1, a part waits only for those it has begun to receive."""

    def __init__(self, request_id: str, proto: int = PROTOCOL_VERSION) -> None:
        self.request_id = request_id
        self.controls_expected = proto >= CONTROLS_SINCE
        self._header: ResultBegin | None = None
        self._parts: dict[str, _Part] = {}
        self._chords = _Pieces(f"result {request_id} chords")
        self._summary = _Pieces(f"result {request_id} summary")

    @property
    def started(self) -> bool:
        return bool(self._header or self._parts or self._chords.items or self._summary.items)

    def add(self, message: ResultMessage) -> bool:
        """Take one message; False if it brought nothing new."""
        if message.request_id != self.request_id:
            raise BadMessageError(
                f"message for {message.request_id} given to the result of {self.request_id}",
                "value",
            )
        match message:
            case ResultBegin():
                if self._header is not None:
                    return False
                self._header = message
                self._check_part_count()
                return True
            case Chords():
                return self._chords.add(message.chunk, message.n_chunks, message.chords)
            case Summary():
                return self._summary.add(message.chunk, message.n_chunks, message.text)
            case PartBegin() | PartNotes() | PartEnd() | PartControls():
                return self._add_part(message)
        raise BadMessageError(f"not a result message: {message!r}", "value")

    def _add_part(self, message: PartBegin | PartNotes | PartEnd | PartControls) -> bool:
        part = self._parts.get(message.part)
        if part is None:
            part = self._parts[message.part] = _Part()
            self._check_part_count()
        what = f"result {self.request_id} part {message.part}"
        if isinstance(message, PartControls):
            return self._add_controls(part, message, what)
        if part.notes is not None:
            return False  # complete and verified already
        new = False
        match message:
            case PartBegin():
                if part.begin is None:
                    if message.n_notes > MAX_PART_NOTES:
                        raise ClipTooLargeError(
                            f"{what}: {message.n_notes} notes; at most {MAX_PART_NOTES}"
                        )
                    part.begin = message
                    part.chunks = NoteChunks(what, message.n_notes, message.n_chunks)
                    for chunk, notes in sorted(part.early.items()):
                        part.chunks.add(chunk, notes)
                    part.early.clear()
                    new = True
            case PartNotes():
                if part.chunks is not None:
                    new = part.chunks.add(message.chunk, message.notes)
                elif message.chunk not in part.early:
                    if message.chunk >= MAX_PART_NOTES:
                        raise BadMessageError(f"{what}: chunk {message.chunk} out of range",
                                              "value")
                    part.early[message.chunk] = message.notes
                    new = True
            case PartEnd():
                if part.crc32 is None:
                    part.crc32 = message.crc32
                    new = True
        if part.chunks is not None and part.crc32 is not None and part.chunks.complete:
            part.notes = part.chunks.finish(part.crc32)
        return new

    @staticmethod
    def _add_controls(part: _Part, message: PartControls, what: str) -> bool:
        if part.controls is not None:
            return False  # complete and verified already
        what = f"{what} controls"
        if part.control_chunks is None:
            if message.n_controls > MAX_PART_CONTROLS:
                raise ClipTooLargeError(
                    f"{what}: {message.n_controls}; at most {MAX_PART_CONTROLS}"
                )
            part.control_chunks = ControlChunks(what, message.n_controls, message.n_chunks)
            part.controls_crc32 = message.crc32
        chunks = part.control_chunks
        if (message.n_chunks, message.n_controls, message.crc32) != (
                chunks.n_chunks, chunks.n_items, part.controls_crc32):
            raise BadMessageError(
                f"{what}: chunk {message.chunk} announces {message.n_controls} in "
                f"{message.n_chunks} chunks (CRC {message.crc32}), earlier ones "
                f"{chunks.n_items} in {chunks.n_chunks} (CRC {part.controls_crc32})", "value",
            )
        new = chunks.add(message.chunk, message.controls)
        if chunks.complete:
            part.controls = chunks.finish(part.controls_crc32)
        return new

    def _check_part_count(self) -> None:
        limit = self._header.n_parts if self._header is not None else MAX_PARTS
        if len(self._parts) > limit:
            raise BadMessageError(
                f"result {self.request_id}: {len(self._parts)} parts; {limit} announced",
                "value",
            )

    @property
    def complete(self) -> bool:
        return (
            self._header is not None
            and len(self._parts) == self._header.n_parts
            and all(p.done(self.controls_expected) for p in self._parts.values())
            and self._chords.complete and self._chords.n_chunks == self._header.n_chord_chunks
            and self._summary.complete
            and self._summary.n_chunks == self._header.n_summary_chunks
        )

    def describe_missing(self) -> str:
        """What is still missing, for timeout messages."""
        if self._header is None:
            return "no result yet" if not self.started else "result header missing"
        gaps = [f"part {name}" + (" controls" if p.notes is not None else "")
                for name, p in self._parts.items() if not p.done(self.controls_expected)]
        if len(self._parts) < self._header.n_parts:
            gaps.append(f"{self._header.n_parts - len(self._parts)} part(s) not begun")
        if not self._chords.complete:
            gaps.append("chord chunks")
        if not self._summary.complete:
            gaps.append("summary chunks")
        return "missing " + ", ".join(gaps) if gaps else "complete"

    def result(self, source: str) -> GenerateResult:
        """The assembled result (BadMessageError while incomplete or for a bad summary)."""
        if not self.complete:
            raise BadMessageError(
                f"result {self.request_id} is incomplete: {self.describe_missing()}",
                "incomplete",
            )
        text = "".join(self._summary.ordered())
        try:
            summary = json.loads(text)
        except json.JSONDecodeError as err:
            raise BadMessageError(f"result {self.request_id}: summary is not JSON: {err}",
                                  "value") from err
        if not isinstance(summary, dict):
            raise BadMessageError(f"result {self.request_id}: summary is not a JSON object",
                                  "value")
        names = part_order(self._parts)
        parts = {name: self._parts[name].notes or () for name in names}
        controls = {name: changes for name in names if (changes := self._parts[name].controls)}
        chords = tuple(c for chunk in self._chords.ordered() for c in chunk)
        return GenerateResult(self.request_id, source, parts, chords, summary, controls)
