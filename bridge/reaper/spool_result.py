"""The body of a spool ``result`` file (see `bridge.reaper.spool_format`): the request, the
summary, each part's notes and control changes on its channel, and the chord chart — written
from a `GenerateResult` and read back into one, with the same limits both ways."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bridge.errors import BadMessageError
from bridge.protocol import (
    MAX_PART_CONTROLS,
    MAX_PART_NOTES,
    MAX_PARTS,
    MAX_SUMMARY_BYTES,
    REQUEST_ID,
    part_order,
)
from bridge.reaper.spool_syntax import (
    CHANNEL,
    CONTROL_VALUE,
    CONTROLLER,
    DURATION_BEATS,
    MAX_RESULT_CHORDS,
    PART_NAME,
    SOURCE,
    START_BEATS,
    SUMMARY,
    SYMBOL,
    LineReader,
    check_field,
    check_value,
    note_line,
    number,
    one_line,
    read_float,
    read_int,
    read_json_object,
    read_note,
    read_text,
    require_fields,
    split_values,
)
from bridge.types import PART_CHANNELS, ChordSymbol, ClipControl, ClipNote, GenerateResult


def _summary_line(summary: Mapping[str, Any]) -> str:
    # A summary is informative only: whatever cannot be written is replaced, never fatal.
    try:
        text = json.dumps(dict(summary), ensure_ascii=True, separators=(",", ":"),
                          allow_nan=False, default=str)
    except (TypeError, ValueError):
        return '{"truncated":true}'
    return text if len(text) <= MAX_SUMMARY_BYTES else '{"truncated":true}'


def _control_line(control: ClipControl, what: str, channel: int) -> str:
    for name, field_, value in (("start_beats", START_BEATS, control.start_beats),
                                ("controller", CONTROLLER, control.controller),
                                ("value", CONTROL_VALUE, control.value)):
        check_value(field_, value, f"{what} {name}")
    return f"control {number(control.start_beats)} {control.controller} {control.value} {channel}"


def _check_count(owner: str, count: int, items: str, limit: int) -> None:
    if count > limit:
        raise BadMessageError(f"{owner} has {count} {items}; at most {limit}", "size")


def result_lines(result: GenerateResult) -> list[str]:
    """The lines of a ``result`` body. Each part's notes and control changes go out on its
    channel from PART_CHANNELS; an unknown part, an invalid note, control change or chord, or
    too many of them is a BadMessageError."""
    check_value(REQUEST_ID, result.request_id, "result request")
    names = part_order(result.parts)
    _check_count("result", len(names), "parts", MAX_PARTS)
    body = [f"request {result.request_id}", f"source {one_line(result.source, SOURCE.max_bytes)}",
            f"summary {_summary_line(result.summary)}"]
    for name in names:
        channel = PART_CHANNELS.get(name)
        if channel is None:
            raise BadMessageError(
                f"result part {name!r} has no MIDI channel (known: {', '.join(PART_CHANNELS)})",
                "part",
            )
        notes, controls = result.parts[name], result.controls.get(name, ())
        _check_count(f"part {name}", len(notes), "notes", MAX_PART_NOTES)
        _check_count(f"part {name}", len(controls), "control changes", MAX_PART_CONTROLS)
        body.append(f"part {name} {channel}")
        body.extend(note_line(note, f"part {name} note {i}", channel)
                    for i, note in enumerate(notes))
        body.extend(_control_line(control, f"part {name} control {i}", channel)
                    for i, control in enumerate(controls))
    _check_count("result", len(result.chords), "chords", MAX_RESULT_CHORDS)
    for i, chord in enumerate(result.chords):
        symbol = one_line(chord.symbol, SYMBOL.max_bytes)
        for name, field_, value in (("start_beats", START_BEATS, chord.start_beats),
                                    ("duration_beats", DURATION_BEATS, chord.duration_beats),
                                    ("symbol", SYMBOL, symbol)):
            check_value(field_, value, f"chord {i} {name}")
        body.append(f"chord {number(chord.start_beats)} {number(chord.duration_beats)} "
                    f"{symbol}")
    return body


def _read_control(text: str, line: int) -> ClipControl:
    start, controller, value, channel = split_values(text, 4, line, "control")
    return ClipControl(
        read_float(start, START_BEATS, line, "control start_beats"),
        read_int(controller, CONTROLLER, line, "control controller"),
        read_int(value, CONTROL_VALUE, line, "control value"),
        read_int(channel, CHANNEL, line, "control channel"),
    )


class _Part:
    def __init__(self) -> None:
        self.notes: list[ClipNote] = []
        self.controls: list[ClipControl] = []


def read_result(reader: LineReader) -> GenerateResult:
    """A ``result`` body, from the line after ``kind result`` through ``end``."""
    found, key, rest = reader.fields(("request", "source", "summary"), ("part", "chord", "end"))
    require_fields(found, ("request",), reader)
    summary = found.get("summary")
    parts: dict[str, _Part] = {}
    chords: list[ChordSymbol] = []
    current: _Part | None = None
    while key != "end":
        line = reader.number
        if key == "part":
            if chords:
                raise reader.fail("parts must come before the chords", "order")
            name_text, channel = split_values(rest, 2, line, "part")
            name = check_field(PART_NAME, name_text, line, "part name")
            read_int(channel, CHANNEL, line, "part channel")
            if name in parts:
                raise reader.fail(f"part {name!r} given twice", "duplicate")
            if len(parts) == MAX_PARTS:
                raise reader.fail(f"more than {MAX_PARTS} parts", "size")
            current = parts[name] = _Part()
        elif key in ("note", "control"):
            if current is None or chords:
                raise reader.fail(f"a {key} must follow its 'part' line", "order")
            if key == "note":
                if len(current.notes) == MAX_PART_NOTES:
                    raise reader.fail(f"a part has more than {MAX_PART_NOTES} notes", "size")
                current.notes.append(read_note(rest, line))
            else:
                if len(current.controls) == MAX_PART_CONTROLS:
                    raise reader.fail(
                        f"a part has more than {MAX_PART_CONTROLS} control changes", "size")
                current.controls.append(_read_control(rest, line))
        elif key == "chord":
            if len(chords) == MAX_RESULT_CHORDS:
                raise reader.fail(f"more than {MAX_RESULT_CHORDS} chords", "size")
            start, duration, symbol = (rest.split(" ", 2) + ["", ""])[:3]
            chords.append(ChordSymbol(read_float(start, START_BEATS, line, "chord start_beats"),
                                      read_float(duration, DURATION_BEATS, line,
                                                 "chord duration_beats"),
                                      check_field(SYMBOL, symbol, line, "chord symbol")))
        else:
            raise reader.fail(
                f"expected 'part', 'note', 'control', 'chord' or 'end', got {key!r}", "order")
        key, rest = reader.next()
    return GenerateResult(
        request_id=read_text(found, "request", REQUEST_ID),
        source=read_text(found, "source", SOURCE) if "source" in found else "",
        parts={name: tuple(part.notes) for name, part in parts.items()},
        chords=tuple(chords),
        summary=({} if summary is None
                 else read_json_object(summary.value, SUMMARY, summary.number, "summary")),
        controls={name: tuple(part.controls) for name, part in parts.items() if part.controls},
    )
