"""The shipped demo melody, composed for AccoBridge (no dataset content): 16 bars in F major,
4/4, two 8-bar phrases (A B), used by `accobridge demo` and the README's first command."""

from __future__ import annotations

from engine.types import Key, Melody, Meter, Note

TICKS_PER_BEAT = 480
REST = 0
# (pitch, length in 16ths) bar by bar; REST = silence
DEMO_TUNE: tuple[tuple[int, int], ...] = (
    (72, 4), (69, 4), (65, 4), (69, 4),  (67, 6), (69, 2), (70, 4), (67, 4),
    (69, 4), (72, 4), (77, 6), (76, 2),  (74, 8), (72, 4), (REST, 4),
    (70, 4), (74, 4), (72, 4), (70, 4),  (69, 4), (72, 4), (69, 4), (65, 4),
    (67, 4), (69, 4), (70, 4), (64, 4),  (65, 12), (REST, 4),
    (74, 4), (74, 2), (76, 2), (77, 4), (74, 4),  (72, 6), (69, 2), (65, 8),
    (70, 4), (70, 2), (72, 2), (74, 4), (70, 4),  (69, 12), (REST, 4),
    (67, 4), (69, 4), (70, 4), (74, 4),  (72, 4), (69, 4), (65, 4), (69, 4),
    (67, 6), (65, 2), (67, 4), (64, 4),  (65, 12), (REST, 4),
)


def melody_from_steps(
    steps: tuple[tuple[int, int], ...] | list[tuple[int, int]], meter: Meter = Meter(4, 4),
    tempo_bpm: float = 96.0, key: Key | None = None, start_16th: int = 0,
) -> Melody:
    """A Melody from (pitch, 16ths) pairs, pitch 0 = rest; also the tests' melody builder."""
    ticks = TICKS_PER_BEAT // 4
    notes = []
    pos = start_16th
    for pitch, length in steps:
        if pitch != REST:
            notes.append(Note(pitch, pos * ticks, length * ticks, 90))
        pos += length
    return Melody(
        notes=tuple(notes), ticks_per_beat=TICKS_PER_BEAT, meter=meter, tempo_bpm=tempo_bpm,
        tempo_changes=((0, round(60_000_000 / tempo_bpm)),), key_signature=key,
    )


def demo_melody() -> Melody:
    return melody_from_steps(DEMO_TUNE, key=Key(5, "major"))
