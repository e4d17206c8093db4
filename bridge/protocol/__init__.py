"""Our OSC API as data: one table of addresses and argument types, and pure functions on it.

- `fields`: the argument types (Int, Float, Text) and repeated groups;
- `messages`: one frozen dataclass per address;
- `table`: the table itself (`MESSAGES`) and the limits;
- `codec`: `encode`/`decode` between datagrams and messages;
- `notes`: note chunks and their CRC;
- `upload`: the clip upload (client messages, bridge-side state machine);
- `result`: the result (bridge messages, client-side state machine);
- `doc`: docs/osc-api.md, rendered from the table.

The names below are the package's public face; import them from `bridge.protocol`.
"""

from bridge.protocol.codec import CODEC, decode, encode
from bridge.protocol.fields import FLOAT32_MAX, INT32_MAX, Args, Field, Float, Group, Int, Text
from bridge.protocol.messages import (
    Ack,
    Cancel,
    Chords,
    ClipBegin,
    ClipEnd,
    ClipNotes,
    ErrorReply,
    Generate,
    Hello,
    HelloOk,
    Message,
    Nack,
    PartBegin,
    PartControls,
    PartEnd,
    PartNotes,
    Ping,
    Pong,
    ResultBegin,
    ResultGet,
    ResultMessage,
    Stats,
    StatsGet,
    Status,
    StatusGet,
    Summary,
)
from bridge.protocol.notes import (
    ControlChunks,
    NoteChunks,
    chunk_notes,
    crc32_of_controls,
    crc32_of_notes,
)
from bridge.protocol.result import ResultAssembly, part_order, result_messages
from bridge.protocol.table import (
    BY_ADDRESS,
    BY_TYPE,
    MAX_CHORDS_PER_CHUNK,
    MAX_CONTROLS_PER_CHUNK,
    MAX_MISSING_PER_NACK,
    MAX_NOTES_PER_CHUNK,
    MAX_PACKET_BYTES,
    MAX_PARAMS_BYTES,
    MAX_PART_CONTROLS,
    MAX_PART_NOTES,
    MAX_PARTS,
    MAX_PEERS,
    MAX_REQUESTS,
    MAX_STATS_COUNTERS,
    MAX_SUMMARY_BYTES,
    MAX_SUMMARY_PIECE_BYTES,
    MESSAGES,
    OLDEST_PROTOCOL,
    PROTOCOL_VERSION,
    REQUEST_ID,
    MessageSpec,
)
from bridge.protocol.upload import ClipUpload, check_clip_size, clip_messages

__all__ = [
    "BY_ADDRESS", "BY_TYPE", "CODEC", "FLOAT32_MAX", "INT32_MAX", "MAX_CHORDS_PER_CHUNK",
    "MAX_CONTROLS_PER_CHUNK", "MAX_MISSING_PER_NACK", "MAX_NOTES_PER_CHUNK",
    "MAX_PACKET_BYTES", "MAX_PARAMS_BYTES", "MAX_PARTS", "MAX_PART_CONTROLS", "MAX_PART_NOTES",
    "MAX_PEERS", "MAX_REQUESTS", "MAX_STATS_COUNTERS", "MAX_SUMMARY_BYTES",
    "MAX_SUMMARY_PIECE_BYTES", "MESSAGES", "OLDEST_PROTOCOL", "PROTOCOL_VERSION", "REQUEST_ID",
    "Ack", "Args", "Cancel", "Chords", "ClipBegin", "ClipEnd", "ClipNotes", "ClipUpload",
    "ControlChunks", "ErrorReply", "Field", "Float", "Generate", "Group", "Hello", "HelloOk",
    "Int", "Message", "MessageSpec", "Nack", "NoteChunks", "PartBegin", "PartControls",
    "PartEnd", "PartNotes", "Ping", "Pong", "ResultAssembly", "ResultBegin", "ResultGet",
    "ResultMessage", "Stats", "StatsGet", "Status", "StatusGet", "Summary", "Text",
    "check_clip_size", "chunk_notes", "clip_messages", "crc32_of_controls", "crc32_of_notes",
    "decode", "encode", "part_order", "result_messages",
]
