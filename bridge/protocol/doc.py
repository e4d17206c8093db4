"""docs/osc-api.md, rendered from the protocol table: the addresses, the value limits and the
rules. `python3 -m bridge.protocol.doc` writes it; a test fails when the file is stale."""

from __future__ import annotations

import sys
from pathlib import Path

from bridge.errors import ErrorCode
from bridge.protocol.table import (
    CONTROLS_SINCE,
    MAX_CONTROLS_PER_CHUNK,
    MAX_MISSING_PER_NACK,
    MAX_NOTES_PER_CHUNK,
    MAX_PACKET_BYTES,
    MAX_PEERS,
    MAX_REQUESTS,
    MAX_STATS_COUNTERS,
    MESSAGES,
    OLDEST_PROTOCOL,
    PROTOCOL_VERSION,
)
from bridge.types import MAX_CLIP_BARS, MAX_CLIP_NOTES

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "osc-api.md"


def protocol_table() -> str:
    """The message table in Markdown."""
    rows = ["| Address | Direction | Arguments | Meaning |", "|---|---|---|---|"]
    rows += [f"| `{s.address}` | {s.direction} | `{s.signature()}` | {s.doc} |"
             for s in MESSAGES]
    return "\n".join(rows)


def value_table() -> str:
    """Every argument name with its OSC type and allowed values, in Markdown."""
    seen: dict[tuple[str, str], list[str]] = {}
    kinds: dict[str, set[str]] = {}
    for spec in MESSAGES:
        fields = list(spec.args) + (list(spec.group.args) if spec.group else [])
        for name, field in fields:
            key = (name, f"{field.tag} | {field.describe()}")
            seen.setdefault(key, []).append(spec.address)
            kinds.setdefault(name, set()).add(key[1])
    rows = ["| Argument | Type | Allowed |", "|---|---|---|"]
    for (name, kind), addresses in seen.items():
        variants = [seen[(name, k)] for k in sorted(kinds[name])]
        where = ""
        if len(variants) > 1:  # the common variant says "elsewhere", the others say where
            common = max(variants, key=len)
            where = (" (elsewhere)" if addresses is common
                     else f" (in {', '.join(f'`{a}`' for a in addresses)})")
        rows.append(f"| {name}{where} | {kind} |")
    return "\n".join(rows)


def error_code_table() -> str:
    """`bridge.errors.ErrorCode` in Markdown."""
    rows = ["| Code | Name |", "|---|---|"]
    rows += [f"| {code.value} | `{code.name}` |" for code in ErrorCode]
    return "\n".join(rows)


# The rules are prose; every number in them comes from the code.
_RULES = f"""\
- UDP, one OSC message per datagram (no bundles), every datagram at most {MAX_PACKET_BYTES:,}
  bytes (macOS's default UDP limit): a worst case of every message fits, see
  `tests/test_protocol.py`.
- Times are float32 beats (quarter notes) from the clip start; a note is the group
  `(i:pitch f:start_beats f:duration_beats i:velocity i:channel)`, channels numbered 1-16.
- Protocol versions {OLDEST_PROTOCOL}..{PROTOCOL_VERSION}: the bridge answers `hello` with the
  lower of its version and the client's, and speaks that version to the client from then on.
- Replies go to the sender's host at the `reply_port` of its own `/acco/hello` (matched by
  sender address, host and port), else to the sender's own address. A request's replies go
  where its `clip/begin`'s went, whatever hellos come later.
- A request belongs to the address (host and port) that sent its `clip/begin`: every other
  message about it (`clip/notes` … `result/get`) must come from there, or is refused with a
  short error (code {ErrorCode.BAD_INPUT.value}; none for `clip/notes`). A client with a
  request in flight keeps its place among the bridge's {MAX_PEERS} remembered peers however
  many others say hello; when all of them have work in flight, a new `hello` gets an error.
- A request the bridge no longer holds (after a restart, or once {MAX_REQUESTS} newer ones
  have pushed it out) is answered from the session store: `result/get` sends the stored
  result when the request was uploaded by a client of the asker's name — the `client` of the
  asker's `hello` since this start, else its host (the source is
  `osc:<client>:<clip source>`). So after a restart, say `hello` with the same name before
  asking; the asker then owns the request. Anything else gets an error without the result.
- `stats/get` is answered with one `stats` message: the bridge's non-zero counters (at most
  {MAX_STATS_COUNTERS}), e.g. `received`, `bad_parse`, `rejected_not_owner`, `hellos`.
- Clip upload: `clip/begin`, then `clip/notes` chunks (≤ {MAX_NOTES_PER_CHUNK} notes, any order,
  duplicates ignored), then `clip/end` with the CRC. The bridge answers `ack`, or `nack` listing
  missing chunk indices (at most {MAX_MISSING_PER_NACK} per nack; re-send them and `clip/end`
  again). An empty `nack` means "no such upload": start again with `clip/begin`. An upload idle
  for longer than the server's upload timeout is dropped with error code
  {ErrorCode.TIMEOUT.value}. Clips of more than {MAX_CLIP_NOTES:,} notes or {MAX_CLIP_BARS} bars
  are refused with code {ErrorCode.TOO_LARGE.value}.
- `generate` must follow the `ack` (the uploaded clip waits the same timeout); `params_json` is
  a JSON object of options. The bridge answers `status` (queued, running, done, failed,
  superseded, cancelled) and, on success, the result: `result/begin`, per part `part/begin`,
  `part/notes` chunks, `part/controls` chunks (protocol {CONTROLS_SINCE}), `part/end`, then
  `chords` and `summary` chunks (the summary pieces concatenate to one JSON object).
  `result/get` asks for the whole result again; clients ignore duplicates. A repeated
  `generate` or `clip/end` is answered again, not re-run.
- Control changes (the piano's sustain pedal: controller 64, 127 down, 0 up) come in
  `part/controls` chunks of at most {MAX_CONTROLS_PER_CHUNK}, on the part's channel; each chunk
  repeats the part's `n_chunks`, `n_controls` and CRC, and a part without any sends one empty
  chunk, so a protocol-{CONTROLS_SINCE} client knows each part is complete only with them.
- CRC: `crc32_of_notes` — zlib CRC-32 of the notes in upload order, each as the 11 bytes
  `struct.pack(">BffBB", pitch, start_beats, duration_beats, velocity, channel)` (the float32
  values that travel), as 8 lowercase hex digits. `crc32_of_controls` likewise, each control
  as the 7 bytes `struct.pack(">fBBB", start_beats, controller, value, channel)`."""


def osc_api_markdown() -> str:
    """The whole of docs/osc-api.md."""
    return "\n\n".join([
        "# AccoBridge OSC API",
        "<!-- Generated from bridge/protocol/table.py by `python3 -m bridge.protocol.doc`; "
        "do not edit by hand. -->",
        "Every message, in either direction. Arguments are `type:name` (OSC type tags `i` "
        "int32, `f` float32, `s` string); `(…)×m..n` is a group repeated m to n times at the "
        "end of the message.",
        protocol_table(),
        "## Value limits",
        "Checked by `encode` and `decode` alike; a violation is a `BadMessageError` "
        "(error code 1).",
        value_table(),
        "## Rules",
        _RULES,
        "## Error codes",
        "`bridge.errors.ErrorCode`, sent in `/acco/error`.",
        error_code_table(),
    ]) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write docs/osc-api.md (or the path given)."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DOC_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(osc_api_markdown(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
