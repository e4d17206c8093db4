"""Virtual MIDI ports for the DAW: melody in (with clock and song position), generated parts
out in time with the DAW's clock.

- `clock`: the clock follower (pure) and the decoded `MidiEvent`;
- `capture`: note events -> a `bridge.types.Clip` take (pure);
- `sender`: the thread that streams results (chords channel 2, piano channel 3);
- `wire`: raw bytes -> `MidiEvent`, backend stamps -> arrival times (pure);
- `ports`: the only module importing python-rtmidi (backends, port listing, the ports);
- `watchdog`: the ports' reader and watchdog threads, whatever the backend;
- `adapter`: `MidiAdapter` wires them to a `bridge.session.Session`.

Importing this package loads no MIDI backend; `MidiAdapter` is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.midi.adapter import MidiAdapter

__all__ = ["MidiAdapter"]


def __getattr__(name: str) -> Any:
    if name == "MidiAdapter":
        from bridge.midi.adapter import MidiAdapter

        return MidiAdapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
