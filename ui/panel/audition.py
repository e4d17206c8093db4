"""Audition, Qt-free: what is on screen played through a MIDI output or the built-in preview
(FluidSynth with a General MIDI soundfont, optional), at the clip's tempo, on threads of its
own. The GUI thread only sends commands and reads the position (the playhead).

The timing is the bridge's `Sender` (sleep to 2 ms before each message, then spin; note-offs,
pedal up and all-notes-off when stopped), played by a clock of our own: a `ClockSnapshot` that
starts now at the clip's tempo, moved back to the loop's start at each pass. The player's
thread builds each schedule (sorting thousands of messages is no job for the GUI thread),
starts the clock and wakes at the end of the range to loop or stop.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bridge.midi.clock import TICKS_PER_BEAT, ClockSnapshot
from bridge.midi.sender import CONTROL, NOTE_OFF, NOTE_ON, SPIN_S, Scheduled, Sender, SendFunction
from bridge.types import PART_CHANNELS, SUSTAIN_PEDAL

logger = logging.getLogger(__name__)

PARTS = ("melody", "chords", "piano")  # what can be muted or soloed, in channel order 1-3
CHANNELS = tuple(PART_CHANNELS[p] for p in PARTS)
LEAD_S = 0.05  # the first notes of a play are this far ahead of the command
ALL_NOTES_OFF = 123
DEFAULT_TEMPO_BPM = 120.0
SOUNDFONTS = (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
              Path("/usr/share/sounds/sf2/default-GM.sf2"))
# General MIDI programs of the preview (0-based): a flute-like lead, strings, grand piano
PREVIEW_PROGRAMS = {"melody": 73, "chords": 48, "piano": 0}
PREVIEW_START_S = 0.5  # a fluidsynth that cannot open its audio device has exited by then


# ---- what plays ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PartNote:
    pitch: int
    start_beats: float
    length_beats: float
    velocity: int


@dataclass(frozen=True)
class Performance:
    """What audition plays: each part's notes and control changes (the piano's pedal) in
    beats from the clip's start, the tempo and where the song ends."""

    notes: Mapping[str, tuple[PartNote, ...]]
    controls: Mapping[str, tuple[tuple[float, int, int], ...]]  # (beats, controller, value)
    tempo_bpm: float
    length_beats: float

    def seconds_per_tick(self) -> float:
        tempo = self.tempo_bpm if self.tempo_bpm > 0 else DEFAULT_TEMPO_BPM
        return 60.0 / (tempo * TICKS_PER_BEAT)


def performance_of(melody: Any, tracks: Sequence[tuple[str, int, Sequence[Any]]],
                   controls: Mapping[str, Sequence[tuple[int, int, int]]],
                   length_beats: float) -> Performance:
    """A `Performance` of what `PanelDocument.song_tracks()` gives (the melody, the (name,
    channel, notes) tracks and their (tick, controller, value) controls, in the melody's
    ticks), i.e. exactly what Save .mid writes."""
    tpb = melody.ticks_per_beat

    def beats(notes: Iterable[Any]) -> tuple[PartNote, ...]:
        return tuple(PartNote(n.pitch, n.start_tick / tpb, n.duration_tick / tpb,
                              max(1, min(127, n.velocity))) for n in notes)

    parts = {"melody": beats(melody.notes)}
    parts.update((name.lower(), beats(notes)) for name, _channel, notes in tracks)
    cc = {name.lower(): tuple((tick / tpb, number, value) for tick, number, value in changes)
          for name, changes in controls.items()}
    end = max([length_beats] + [n.start_beats + n.length_beats
                                for notes in parts.values() for n in notes])
    return Performance(MappingProxyType(parts), MappingProxyType(cc),
                       float(getattr(melody, "tempo_bpm", 0.0)) or DEFAULT_TEMPO_BPM, end)


def schedule(performance: Performance, start: float, end: float) -> list[Scheduled]:
    """The messages of `performance` in [start, end): notes that start there (a note-off at
    `end` at the latest), the control changes there, and each controller as it stands at
    `start` (a pedal held down into a loop is down from its first beat). Sorted as the sender
    plays them (its own sort of a sorted list is then quick)."""
    messages: list[Scheduled] = []
    for part, notes in performance.notes.items():
        channel = PART_CHANNELS[part]
        for n in notes:
            if start <= n.start_beats < end:
                messages.append(Scheduled(n.start_beats, NOTE_ON, channel, n.pitch, n.velocity))
                messages.append(Scheduled(min(n.start_beats + n.length_beats, end), NOTE_OFF,
                                          channel, n.pitch))
    for part, changes in performance.controls.items():
        channel = PART_CHANNELS[part]
        standing: dict[int, int] = {}
        for at, number, value in sorted(changes):
            if at < start:
                standing[number] = value
            elif at < end:
                messages.append(Scheduled(at, CONTROL, channel, number, value))
        messages.extend(Scheduled(start, CONTROL, channel, number, value)
                        for number, value in standing.items() if value >= 64)
    messages.sort(key=lambda m: (m.beats, m.kind, m.channel, m.number, m.value))  # its order
    return messages


@dataclass(frozen=True)
class Mix:
    """Which parts are heard: the soloed ones if any, else all but the muted ones."""

    muted: frozenset[str] = frozenset()
    soloed: frozenset[str] = frozenset()

    def audible(self, part: str) -> bool:
        return part in self.soloed if self.soloed else part not in self.muted

    def channels(self) -> frozenset[int]:
        return frozenset(PART_CHANNELS[p] for p in PARTS if self.audible(p))


# ---- the player -------------------------------------------------------------------------------

@dataclass
class _Run:
    """One play: what it plays (made on the player's thread), from where, the loop; the
    range and the clock it was started with once the player's thread started it."""

    make: Callable[[], Performance]
    start_beats: float
    loop: tuple[float, float] | None
    performance: Performance | None = None
    span: tuple[float, float] = (0.0, 0.0)
    snapshot: ClockSnapshot | None = None


class Player:
    """Plays `Performance`s through `send` (raw MIDI bytes -> whether it went out; called
    from the player's threads only, never the GUI's). `play`, `stop`, `set_mix` and `close`
    return at once; `position()` is the song position now (None when stopped).

    Channels: melody 1, chords 2, piano 3. Stop (or the end of the song) sends note-offs for
    what sounds, then pedal up and all-notes-off on those channels."""

    def __init__(self, send: SendFunction, *, clock: Callable[[], float] = time.monotonic,
                 lead_s: float = LEAD_S, realtime: bool = False) -> None:
        self._out = send
        self._now = clock
        self._lead_s = lead_s
        self._mix = Mix()
        self._audible = self._mix.channels()
        self._cond = threading.Condition()
        self._commands: deque[tuple[str, Any]] = deque()
        self._run: _Run | None = None
        self._generation = 0
        self._closed = False
        self.sender = Sender(self._mixed, clock=clock, realtime=realtime,
                             silence_channels=CHANNELS)
        self._thread = threading.Thread(target=self._loop, name="accobridge-audition",
                                        daemon=True)
        self._thread.start()

    # ---- any thread ---------------------------------------------------------------------

    def play(self, performance: Performance | Callable[[], Performance],
             start_beats: float = 0.0, loop: tuple[float, float] | None = None) -> None:
        """Play from `start_beats` to the end; with `loop` (start, end), that range again and
        again (from `start_beats` if it lies inside, else from the loop's start). A callable
        `performance` is called on the player's thread (the GUI thread only hands it over)."""
        make = performance if callable(performance) else lambda: performance
        if loop is not None and loop[1] - loop[0] <= 1e-6:
            loop = None
        if loop is not None and not loop[0] <= start_beats < loop[1]:
            start_beats = loop[0]
        self._command("play", _Run(make, start_beats, loop))

    def stop(self) -> None:
        self._command("stop", None)

    def set_mix(self, mix: Mix) -> None:
        """Mute/solo now: a part that falls silent gets all-notes-off on its channel."""
        self._command("mix", mix)

    @property
    def playing(self) -> bool:
        with self._cond:
            return self._run is not None

    def position(self) -> float | None:
        """The song position now, in beats; None when stopped."""
        with self._cond:
            run = self._run
        if run is None:
            return None
        snapshot = run.snapshot
        if snapshot is None:
            return run.start_beats
        beats = snapshot.beats_at(self._now())
        assert beats is not None
        return min(max(beats, snapshot.ref_ticks / TICKS_PER_BEAT), run.span[1])

    def close(self, timeout: float = 2.0) -> None:
        """Stop, silence and end the threads. Idempotent."""
        self._command("close", None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        self.sender.close(timeout)

    def _command(self, kind: str, value: Any) -> None:
        with self._cond:
            if self._closed:
                return
            if kind == "play":
                self._run = value  # position() answers at once
            elif kind in ("stop", "close"):
                self._run = None
            self._closed = kind == "close"
            self._commands.append((kind, value))
            self._cond.notify()

    # ---- the sender's thread --------------------------------------------------------------

    def _mixed(self, data: Sequence[int]) -> bool:
        """The sender's output: note-ons of parts not heard are left out."""
        if data[0] & 0xF0 == 0x90 and (data[0] & 0x0F) + 1 not in self._audible:
            return True
        return self._out(data)

    # ---- the player's thread --------------------------------------------------------------

    def _loop(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._commands:
                        wait = self._until_end()
                        if wait is not None and wait <= SPIN_S:
                            break
                        self._cond.wait(None if wait is None else wait - SPIN_S)
                    command = self._commands.popleft() if self._commands else None
                if command is None:
                    self._end_of_range()
                elif not self._obey(*command):
                    return
        except Exception:
            logger.exception("the audition player failed; playback stopped")

    def _until_end(self) -> float | None:
        """Seconds until the current run reaches the end of its range (None: not playing)."""
        run = self._run
        if run is None or run.snapshot is None:
            return None
        end = run.snapshot.time_at(run.span[1])
        assert end is not None
        return end - self._now()

    def _obey(self, kind: str, value: Any) -> bool:
        """Carry out one command; False after close."""
        if kind == "play":
            with self._cond:
                current = self._run is value
            if current:  # else a later command replaced it already
                self._begin(value)
        elif kind == "mix":
            self._set_mix(value)
        else:
            self._stop_clock()
        return kind != "close"

    def _begin(self, run: _Run) -> None:
        try:
            performance = run.make()
        except Exception:
            logger.exception("nothing to play: the performance could not be made")
            with self._cond:
                if self._run is run:
                    self._run = None
            return
        run.performance = performance
        run.span = run.loop or (run.start_beats, performance.length_beats)
        self.sender.play(schedule(performance, *run.span))
        self._start(run, run.start_beats, self._now() + self._lead_s)

    def _start(self, run: _Run, from_beats: float, at_s: float) -> None:
        assert run.performance is not None
        self._generation += 1
        snapshot = ClockSnapshot(True, self._generation, from_beats * TICKS_PER_BEAT, at_s,
                                 run.performance.seconds_per_tick())
        with self._cond:
            if self._run is run:
                run.snapshot = snapshot
        self.sender.set_clock(snapshot)

    def _stop_clock(self) -> None:
        self._generation += 1
        self.sender.set_clock(ClockSnapshot(False, self._generation, 0.0, None, None))

    def _end_of_range(self) -> None:
        """The run reached the end of its range: at that very moment (spin the last ~2 ms)
        go back to the loop's start, or stop."""
        with self._cond:
            run = self._run
        if run is None or run.snapshot is None:
            return
        end = run.snapshot.time_at(run.span[1])
        assert end is not None
        while self._now() < end:
            time.sleep(0)
        with self._cond:
            if self._run is not run:
                return  # a command came meanwhile
            if not run.loop:
                self._run = None
        if run.loop:
            self._start(run, run.span[0], end)
        else:
            self._stop_clock()

    def _set_mix(self, mix: Mix) -> None:
        silenced = self._audible - mix.channels()
        self._mix, self._audible = mix, mix.channels()
        for channel in sorted(silenced):
            self._out((0xB0 | (channel - 1), ALL_NOTES_OFF, 0))


# ---- outputs ------------------------------------------------------------------------------

def preview_soundfont() -> Path | None:
    """The General MIDI soundfont of the built-in preview, when FluidSynth (pyfluidsynth or
    the `fluidsynth` program) and a soundfont (Debian: fluid-soundfont-gm) are installed;
    None otherwise. Nothing is imported or started."""
    if importlib.util.find_spec("fluidsynth") is None and shutil.which("fluidsynth") is None:
        return None
    return next((path for path in SOUNDFONTS if path.is_file()), None)


def fluidsynth_command(data: Sequence[int]) -> str | None:
    """One raw MIDI message as a line of FluidSynth's shell (channels from 0); None for
    messages the preview does not play."""
    if len(data) != 3:
        return None
    kind, channel = data[0] & 0xF0, data[0] & 0x0F
    if kind == 0x90 and data[2] > 0:
        return f"noteon {channel} {data[1]} {data[2]}"
    if kind in (0x80, 0x90):
        return f"noteoff {channel} {data[1]}"
    if kind == 0xB0:
        return f"cc {channel} {data[1]} {data[2]}"
    return None


class FluidSynthPreview:
    """The built-in preview: General MIDI sounds from FluidSynth, through pyfluidsynth when
    it is installed, else the `fluidsynth` program fed shell commands on its standard input
    (`audio`: more of its options, e.g. `-a file` to render to a file). Made on a background
    thread: loading the soundfont takes a moment, and a program that cannot open the audio
    device exits at once, which is reported (OSError) rather than left to play nothing."""

    def __init__(self, soundfont: Path, audio: Sequence[str] = ()) -> None:
        self._lock = threading.Lock()
        self._synth: Any = None
        self._process: subprocess.Popen[str] | None = None
        if importlib.util.find_spec("fluidsynth") is not None and not audio:
            import fluidsynth  # the optional extra: imported only when chosen

            synth = fluidsynth.Synth()
            synth.start()
            font = synth.sfload(str(soundfont))
            for part, program in PREVIEW_PROGRAMS.items():
                synth.program_select(PART_CHANNELS[part] - 1, font, 0, program)
            self._synth = synth
            return
        with tempfile.TemporaryFile("w+") as errors:
            process = subprocess.Popen(
                ["fluidsynth", "-q", "-n", "-g", "0.7", *audio, str(soundfont)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors, text=True,
                bufsize=1)
            try:
                process.wait(PREVIEW_START_S)
            except subprocess.TimeoutExpired:
                pass  # still running: it opened its audio device
            else:
                errors.seek(0)
                said = [line.strip() for line in errors if line.strip()]
                raise OSError(f"FluidSynth stopped at once (exit status {process.returncode}): "
                              f"{said[-1] if said else 'no message'}")
        self._process = process
        for part, program in PREVIEW_PROGRAMS.items():
            self._write(f"prog {PART_CHANNELS[part] - 1} {program}")

    def send(self, data: Sequence[int]) -> bool:
        with self._lock:
            if self._synth is not None:
                return self._play(data)
            command = fluidsynth_command(data)
            return command is not None and self._write(command)

    def _play(self, data: Sequence[int]) -> bool:
        kind, channel = data[0] & 0xF0, data[0] & 0x0F
        if kind == 0x90 and data[2] > 0:
            self._synth.noteon(channel, data[1], data[2])
        elif kind in (0x80, 0x90):
            self._synth.noteoff(channel, data[1])
        elif kind == 0xB0:
            self._synth.cc(channel, data[1], data[2])
        else:
            return False
        return True

    def _write(self, line: str) -> bool:
        return self._process is not None and self._write_to(self._process, line)

    @staticmethod
    def _write_to(process: subprocess.Popen[str], line: str) -> bool:
        if process.stdin is None or process.poll() is not None:
            return False
        try:
            process.stdin.write(line + "\n")
        except OSError:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            synth, self._synth = self._synth, None
            process, self._process = self._process, None
        if synth is not None:
            synth.delete()
        if process is not None:
            self._write_to(process, "quit")
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(2.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# what the output chooser lists besides the MIDI ports
NO_OUTPUT = "No output"
PREVIEW_OUTPUT = "Built-in preview (FluidSynth)"


class Output:
    """What the player sends to: nothing, a MIDI port (bridge.midi.ports.MidiOutput) or the
    built-in preview; swapped without stopping the player."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._target: Any = None
        self.name = NO_OUTPUT

    def send(self, data: Sequence[int]) -> bool:
        with self._lock:
            target = self._target
        return target is not None and bool(target.send(data))

    def replace(self, target: Any, name: str) -> None:
        """Send to `target` (an object with send/close; None: nothing) from now on; the old
        one is silenced (pedal up, all-notes-off: what it was playing would hang) and
        closed."""
        with self._lock:
            old, self._target, self.name = self._target, target, name
        if old is not None:
            for channel in CHANNELS:
                old.send((0xB0 | (channel - 1), SUSTAIN_PEDAL, 0))
                old.send((0xB0 | (channel - 1), ALL_NOTES_OFF, 0))
            old.close()

    def close(self) -> None:
        self.replace(None, NO_OUTPUT)


def open_output(name: str) -> Any:
    """The output called `name` in the chooser (None for "No output"); run it off the GUI
    thread (a port or the soundfont take a moment to open). Raises OSError (MidiPortError)
    when the port is gone or the preview cannot start."""
    if name == NO_OUTPUT:
        return None
    if name == PREVIEW_OUTPUT:
        soundfont = preview_soundfont()
        if soundfont is None:
            raise FileNotFoundError("the built-in preview needs FluidSynth and a General MIDI "
                                    "soundfont (Debian: apt install fluidsynth "
                                    "fluid-soundfont-gm)")
        return FluidSynthPreview(soundfont)
    from bridge.midi.ports import MidiOutput  # python-rtmidi only when a port is chosen

    return MidiOutput(name)


def output_choices() -> list[str]:
    """What the chooser lists: no output, the MIDI output ports, the preview if installed.
    Off the GUI thread (listing ports opens a MIDI client)."""
    from bridge.midi.ports import output_names

    names = [NO_OUTPUT] + output_names()
    if preview_soundfont() is not None:
        names.append(PREVIEW_OUTPUT)
    return names
