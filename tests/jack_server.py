"""A private JACK server (dummy backend) for the MIDI tests, the jitter benchmark and `.ci/run`.

protocol.md's recipe: `jackd -n <unique name> -d dummy -r 48000 -p 256` in the background, wait
(bounded) until `jack_lsp -s <name>` answers, stop it after, and leave nothing behind: jack2
has 8 server slots in its shared-memory registry and a server that is killed, or whose clients
outlive it, can leak one (and its semaphores and segments in /dev/shm).

    python -m tests.jack_server start NAME   # prints `export JACK_DEFAULT_SERVER=NAME`
    python -m tests.jack_server stop NAME

The CLI keeps jackd's pid and log in the temp folder (`state_paths(NAME)`), where the tests find
the log (`missed_cycles`) when `ACCOBRIDGE_TEST_JACK_SERVER=NAME` tells them to use that server.

Also the DAW double the MIDI tests and `benchmarks.midi_jitter` play against the bridge with.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import re
import secrets
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rtmidi

from bridge.midi.ports import IN_PORT_NAME, OUT_PORT_NAME, match_port
from bridge.midi.wire import ArrivalTimes

SERVER_ENV = "ACCOBRIDGE_TEST_JACK_SERVER"  # set by .ci/run: use this running server
SHM_DIR = Path("/dev/shm")  # jack2's tmpdir on Linux (`jackd --version` prints it)
RATE = 48_000
PERIOD = 256
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
WAIT = 10.0  # seconds a DAW double waits for what it expects
DAW = "accobridge-test-daw"  # its client names start with this

# Lines jackd prints when a cycle went wrong: a client that was not scheduled in time, or the
# driver running late. Only these excuse lost MIDI events in a test (protocol.md, trap 1).
_MISSED_CYCLE = re.compile(
    r"xrun|was not finished|not run|finished after current callback|process error"
    r"|cannot (?:read|write) (?:socket|fifo)|timeout",
    re.IGNORECASE,
)
# The driver's warm-up xrun jackd reports once while it starts: not a missed cycle.
_STARTUP_LINE = re.compile(r"JackTimedDriver::Process XRun")


def jackd_available() -> bool:
    """Whether Debian's jackd2 tools are installed."""
    return all(shutil.which(tool) for tool in ("jackd", "jack_lsp"))


def unique_name(prefix: str = "accobridge") -> str:
    """A server name no other run uses (pid + random), as trap 2 asks."""
    return f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"


def client_env(name: str) -> dict[str, str]:
    """Environment for a JACK client of server `name` that must never start a server itself."""
    env = dict(os.environ)
    env["JACK_DEFAULT_SERVER"] = name
    env["JACK_NO_START_SERVER"] = "1"
    return env


@contextlib.contextmanager
def as_default(name: str) -> Iterator[None]:
    """Make server `name` this process's JACK server (clients in-process, e.g. python-rtmidi,
    read the environment) and put the environment back afterwards."""
    keys = ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: client_env(name)[k] for k in keys})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def state_paths(name: str) -> tuple[Path, Path]:
    """(pid file, log file) the CLI keeps for server `name`."""
    folder = Path(tempfile.gettempdir())
    return folder / f"accobridge-jackd-{name}.pid", folder / f"accobridge-jackd-{name}.log"


def lsp(name: str, *args: str, timeout: float = 5.0) -> subprocess.CompletedProcess[str]:
    """Runs `jack_lsp -s name args…` (bounded; never starts a server)."""
    return subprocess.run(
        ["jack_lsp", "-s", name, *args], capture_output=True, text=True, timeout=timeout,
        env=client_env(name), check=False,
    )


def ports(name: str) -> list[str]:
    """The server's port names; raises RuntimeError when it does not answer."""
    done = lsp(name)
    if done.returncode != 0:
        raise RuntimeError(f"jack_lsp -s {name} failed: {done.stderr.strip()}")
    return [line for line in done.stdout.splitlines() if line and not line.startswith(" ")]


@dataclass
class JackServer:
    name: str
    pid: int
    log_path: Path
    rate: int = RATE
    period: int = PERIOD
    process: subprocess.Popen[bytes] | None = None  # None when started by another process
    keep_log: bool = True  # False: `stop` deletes the log (start() chose its path)

    @property
    def period_s(self) -> float:
        return self.period / self.rate

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def missed_cycles(self, since: int = 0) -> list[str]:
        """jackd's log lines after byte offset `since` that report a missed or late cycle."""
        return missed_cycles(self.log_path, since)


def missed_cycles(log_path: Path, since: int = 0) -> list[str]:
    try:
        with log_path.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines()
            if _MISSED_CYCLE.search(line) and not _STARTUP_LINE.search(line)]


def start(
    name: str | None = None, *, rate: int = RATE, period: int = PERIOD,
    log_path: Path | None = None, timeout: float = START_TIMEOUT_S,
) -> JackServer:
    """Starts `jackd -n name -d dummy -r rate -p period` in the background (its own session,
    so it survives the caller when the CLI starts it) and waits until `jack_lsp` answers.
    On failure the server is stopped and cleaned up before the error propagates."""
    if not jackd_available():
        raise FileNotFoundError("jackd/jack_lsp not found: apt-get install jackd2")
    name = name or unique_name()
    keep_log = log_path is not None
    log_path = log_path or state_paths(name)[1]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["jackd", "-n", name, "-d", "dummy", "-r", str(rate),
             "-p", str(period)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=client_env(name), start_new_session=True,
        )
    server = JackServer(name, process.pid, log_path, rate, period, process, keep_log)
    try:
        _wait_until_answering(server, timeout)
    except BaseException:
        stop(server)
        raise
    return server


def _wait_until_answering(server: JackServer, timeout: float) -> None:
    assert server.process is not None
    deadline = time.monotonic() + timeout
    while True:
        if lsp(server.name).returncode == 0:
            return
        try:
            # Doubles as the pause between polls and notices a jackd that exits at once.
            code = server.process.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None:
            log = server.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"jackd {server.name} exited with {code}:\n{log}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"jackd {server.name} did not answer within {timeout:.0f} s")


def stop(server: JackServer, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM (then SIGKILL) jackd, wait for it, then remove what it left in /dev/shm."""
    if server.process is not None:
        if server.process.poll() is None:
            server.process.terminate()
            try:
                server.process.wait(timeout)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(timeout)
    else:
        _stop_pid(server.pid, timeout)
    cleanup_shm(server.name)
    if not server.keep_log:
        with contextlib.suppress(OSError):
            server.log_path.unlink()


def _stop_pid(pid: int, timeout: float) -> None:
    if not _is_jackd(pid):
        return  # already gone (or the pid was reused by something else: leave it alone)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _is_jackd(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        # Not our child: there is nothing to wait on but the pid itself.
        time.sleep(0.02)


def _is_jackd(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state != "Z" and b"jackd" in cmdline.split(b"\0")[0]


def cleanup_shm(name: str) -> list[str]:
    """Removes server `name`'s semaphores, sockets and data folder from /dev/shm, and frees
    the registry slots (and segments) whose owning process is dead. Entries of live servers
    are never touched, so concurrent runs with other names are safe. Returns what it removed."""
    removed: list[str] = []
    if not SHM_DIR.is_dir():
        return removed
    patterns = (f"jack_sem.*_{name}_*", f"jack_{name}_*")
    for pattern in patterns:
        for path in SHM_DIR.glob(pattern):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path.name)
    removed += _scrub_registry()
    return removed


# jack2's shm registry (common/shm.h): a header, whose server array of MAX_SERVERS slots
# (int32 pid, then the name) starts at byte 24 and ends at `hdr_len`, then `entry_len`-byte
# segment entries (int16 index, int32 allocator pid, int32 size, then the id). Slot and entry
# sizes are read from the header, never assumed. Freeing follows jack2's own
# jack_unregister_server (zero the slot) and jack_release_shm_entry (zero allocator, size and
# id; the index stays).
_HEADER = struct.Struct("=IHHiiii")  # magic, protocol, pad, type, size, hdr_len, entry_len
_JACK_MAGIC = 0x4A41434B
_MAX_SERVERS = 8
_PID = struct.Struct("=i")
_ENTRY = struct.Struct("=hxxii")  # index, allocator, size; the id follows


@dataclass(frozen=True)
class _Layout:
    slot_len: int
    hdr_len: int
    entry_len: int

    @classmethod
    def of(cls, data: bytes | bytearray) -> _Layout | None:
        if len(data) < _HEADER.size:
            return None
        magic, _, _, _, size, hdr_len, entry_len = _HEADER.unpack_from(data)
        slot_len = (hdr_len - _HEADER.size) // _MAX_SERVERS
        if (magic != _JACK_MAGIC or size != len(data) or slot_len <= _PID.size
                or entry_len <= _ENTRY.size or hdr_len > len(data)):
            return None  # not a registry this code understands: leave it alone
        return cls(slot_len, hdr_len, entry_len)

    def slots(self) -> range:
        return range(_HEADER.size, _HEADER.size + _MAX_SERVERS * self.slot_len, self.slot_len)

    def entries(self, length: int) -> range:
        return range(self.hdr_len, length - self.entry_len + 1, self.entry_len)


def _slot_name(data: bytes | bytearray, offset: int, layout: _Layout) -> str:
    raw = bytes(data[offset + _PID.size:offset + layout.slot_len])
    return raw.split(b"\0")[0].decode(errors="replace")


def registered_servers() -> list[tuple[int, str]]:
    """(pid, name) of the servers in jack2's registry slots ("jack-<uid>:<name>:")."""
    try:
        data = (SHM_DIR / "jack-shm-registry").read_bytes()
    except OSError:
        return []
    layout = _Layout.of(data)
    if layout is None:
        return []
    found = [(_PID.unpack_from(data, offset)[0], _slot_name(data, offset, layout))
             for offset in layout.slots()]
    return [(pid, name) for pid, name in found if pid]


def _scrub_registry() -> list[str]:
    """Frees what dead processes hold. Writes only the slots and entries it frees, each after
    checking it still names the same dead pid: other servers may register meanwhile (jack2
    guards the registry with a SysV semaphore that Python cannot take)."""
    path = SHM_DIR / "jack-shm-registry"
    removed = []
    try:
        with path.open("r+b") as registry:
            data = registry.read()
            layout = _Layout.of(data)
            if layout is None:
                return []
            for offset, start, length, pid, label in _dead_slots(data, layout):
                registry.seek(offset)
                if registry.read(_PID.size) != _PID.pack(pid):
                    continue  # taken over since we read it
                registry.seek(start)
                registry.write(bytes(length))
                removed.append(label)
    except OSError:
        pass
    for label in removed:
        kind, _, name = label.partition(" ")
        if kind == "segment" and name.startswith("jack-"):
            with contextlib.suppress(OSError):
                (SHM_DIR / name).unlink()
    return removed


def _dead_slots(data: bytes, layout: _Layout) -> Iterator[tuple[int, int, int, int, str]]:
    """(pid offset, start, length to zero, pid, label) for each server slot and segment entry
    whose process is gone."""
    for offset in layout.slots():
        (pid,) = _PID.unpack_from(data, offset)
        if pid > 0 and not _alive(pid):
            yield (offset, offset, layout.slot_len, pid,
                   "server " + _slot_name(data, offset, layout))
    for offset in layout.entries(len(data)):
        _, allocator, _ = _ENTRY.unpack_from(data, offset)
        if allocator > 0 and not _alive(allocator):
            end = offset + layout.entry_len
            segment = data[offset + _ENTRY.size:end].split(b"\0")[0]
            name = segment.decode(errors="replace").lstrip("/")
            # Zero allocator, size and id; the int16 index (and its padding) stays.
            yield offset + 4, offset + 4, end - offset - 4, allocator, "segment " + name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---- a DAW double for the MIDI tests and the jitter benchmark ---------------------------

class Daw:
    """A DAW double: one JACK MIDI output into the bridge, one input from it (python-rtmidi,
    JACK API; the caller's JACK_DEFAULT_SERVER picks the server). Its reader thread only
    stamps (with JACK's own arrival times) and enqueues what arrives."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[float, tuple[int, ...]]] = queue.Queue()
        self._lock = threading.Lock()
        self._make()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _make(self) -> None:
        self.out: Any = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=f"{DAW} out")
        self.inp: Any = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=f"{DAW} in",
                                      queue_size_limit=4096)
        self.inp.ignore_types(sysex=True, timing=False, active_sense=True)
        self._times = ArrivalTimes()

    def connect(self, to_bridge: str = IN_PORT_NAME, from_bridge: str = OUT_PORT_NAME) -> None:
        """Connect to the bridge's ports, found by name as a DAW's port list would."""
        with self._lock:
            for obj, wanted, local in ((self.out, to_bridge, "to bridge"),
                                       (self.inp, from_bridge, "from bridge")):
                index = match_port(obj.get_ports(), wanted)
                assert index is not None, (wanted, obj.get_ports())
                obj.open_port(index, name=local)

    def open_virtual(self, out_name: str, in_name: str) -> None:
        with self._lock:
            self.out.open_virtual_port(out_name)
            self.inp.open_virtual_port(in_name)

    def quit_and_restart(self) -> None:
        """Its clients go away (a virtual port closes only with its RtMidi object), then new
        ones, without ports yet, take their place."""
        with self._lock:
            self._delete()
            self._make()

    def close(self) -> None:
        self._stop.set()
        self._reader.join(WAIT)
        with self._lock:
            self._delete()

    def _delete(self) -> None:
        for obj in (self.out, self.inp):
            obj.close_port()
            obj.delete()

    def _read(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                got = self.inp.get_message()
                stamp = 0.0 if got is None else self._times.stamp(got[1], time.monotonic())
            if got is None:
                self._stop.wait(0.0005)  # polling period: the stamps come from JACK
            else:
                self.received.put((stamp, tuple(got[0])))

    def perform(self, script: Sequence[tuple[float, Sequence[int]]]) -> list[float]:
        """Send each message at its time (sleep to 2 ms before, then spin), as a DAW's clock
        would; returns when each actually went out."""
        sent = []
        for when, data in script:
            if when - time.monotonic() > 0.002:
                self._stop.wait(when - time.monotonic() - 0.002)
            while time.monotonic() < when:
                time.sleep(0)  # spin, but let the bridge's threads have the GIL
            sent.append(time.monotonic())
            with self._lock:
                self.out.send_message(list(data))
        return sent

    def drain(self) -> None:
        """Forget what arrived so far."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.received.get_nowait()

    def collect(self, done: Callable[[list[tuple[float, tuple[int, ...]]]], bool],
                timeout: float = WAIT) -> list[tuple[float, tuple[int, ...]]]:
        """What arrived, until `done(messages)` (or the timeout)."""
        got: list[tuple[float, tuple[int, ...]]] = []
        deadline = time.monotonic() + timeout
        while not done(got):
            try:
                got.append(self.received.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return got


@contextlib.contextmanager
def daw_client() -> Iterator[Daw]:
    daw = Daw()
    try:
        yield daw
    finally:
        daw.close()


def song(bpm: float, t0: float, beats: float, notes: Sequence[tuple[int, float, float]] = (),
         *, stop: bool = True) -> list[tuple[float, list[int]]]:
    """A performance from t0: Start, clock ticks for `beats` (tick 0 at t0), (pitch, start, end)
    notes on channel 1, then Stop half a tick before `beats`."""
    spb = 60.0 / bpm
    spt = spb / 24
    script: list[tuple[float, list[int]]] = [(t0 - spt / 2, [0xFA])]
    script += [(t0 + k * spt, [0xF8]) for k in range(round(beats * 24))]
    for pitch, on, off in notes:
        script += [(t0 + on * spb + 0.001, [0x90, pitch, 100]),
                   (t0 + off * spb + 0.001, [0x80, pitch, 0])]
    if stop:
        script.append((t0 + (beats * 24 - 0.5) * spt, [0xFC]))
    script.sort(key=lambda item: item[0])
    return script


def fit_ticks(sent: Sequence[float], script: Sequence[tuple[float, Sequence[int]]]
              ) -> tuple[float, float]:
    """The DAW's clock as it really went out: least-squares (time of tick 0, s per tick)."""
    times = [t for t, (_, data) in zip(sent, script, strict=True) if list(data) == [0xF8]]
    n = len(times)
    mean_k, mean_t = (n - 1) / 2, statistics.fmean(times)
    slope = (sum((k - mean_k) * (t - mean_t) for k, t in enumerate(times))
             / sum((k - mean_k) ** 2 for k in range(n)))
    return mean_t - slope * mean_k, slope


# ---- CLI (.ci/run) ---------------------------------------------------------------------------

def _cli_start(name: str, rate: int, period: int) -> int:
    pid_path, log_path = state_paths(name)
    server = start(name, rate=rate, period=period, log_path=log_path)
    pid_path.write_text(f"{server.pid}\n")
    print(f"export JACK_DEFAULT_SERVER={name} JACK_NO_START_SERVER=1 {SERVER_ENV}={name}")
    return 0


def _cli_stop(name: str) -> int:
    pid_path, log_path = state_paths(name)
    try:
        pid = int(pid_path.read_text().strip())
    except (OSError, ValueError):
        pid = -1
    if pid > 0:
        stop(JackServer(name, pid, log_path))
    else:
        cleanup_shm(name)
    lines = missed_cycles(log_path)
    if lines:
        print(f"jackd {name} reported {len(lines)} missed/late cycles:", *lines[:20], sep="\n")
    for path in (pid_path, log_path):
        with contextlib.suppress(OSError):
            path.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.jack_server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("name")
    parser.add_argument("--rate", type=int, default=RATE)
    parser.add_argument("--period", type=int, default=PERIOD)
    args = parser.parse_args(argv)
    if args.action == "start":
        return _cli_start(args.name, args.rate, args.period)
    return _cli_stop(args.name)


if __name__ == "__main__":
    sys.exit(main())
