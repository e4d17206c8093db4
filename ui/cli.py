"""The `accobridge` command line: the scriptable face of the engine, the bridge and the panel.

Contracts used by outside checks: `accobridge harmonize IN.mid -o OUT.mid [options]` writes a
type-1 file with tracks `Melody` (ch 1) and `Chords` (ch 2); `accobridge arrange` adds `Piano`
(ch 3). Every user error is one line on
stderr and exit status 2; outputs are written atomically. Heavy imports happen inside commands so
`--help` stays fast; torch is never imported on this path.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from engine import STYLES, SUPPORTED_METERS

if TYPE_CHECKING:
    from engine import MelodyAnalysis

EXIT_USAGE = 2
SERVE_LOG = "accobridge.serve"
REPORT_POLL_S = 1.0  # how often serve asks its adapters for their counts' summary lines


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error format every other failure uses."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"accobridge: error: {message} (see --help)\n")


def _port(text: str) -> int:
    """A UDP port number (0: any free one, for serve)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a UDP port is a whole number 0-65535, not {text!r}")
    return value


def _listen_host(text: str) -> str:
    """An address of this machine to listen on: an IPv4 or IPv6 address or a name that
    resolves (checked here, so a typo is one clear line rather than a socket error later)."""
    import ipaddress
    import socket

    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    try:
        socket.getaddrinfo(text, None, socket.AF_UNSPEC, socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as err:
        raise argparse.ArgumentTypeError(
            f"cannot listen on {text!r}: not an IP address and the name does not resolve "
            f"({err}); use 127.0.0.1 (default), ::1, or this machine's address") from err
    return text


def _add_harmonize_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="melody as MIDI (.mid) or MusicXML (.musicxml/.mxl)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output MIDI file")
    p.add_argument("--track", help="melody track name or 0-based index (default: detected)")
    p.add_argument("--key", help="tonic: C, C#, Db, D, … B (default: detected)")
    p.add_argument("--mode", choices=("major", "minor"), help="mode for --key (default major)")
    p.add_argument("--phrases", help="phrase string such as A8A8B8B8 (default: detected)")
    p.add_argument("--pickup", type=int, metavar="SIXTEENTHS",
                   help="16ths of partial bar the file starts with (default: detected)")
    p.add_argument("--style", default="pop_standard", help=f"one of {', '.join(STYLES)}")
    p.add_argument("--phrase-styles", metavar="S1,S2,…",
                   help="per-phrase style overrides, comma separated; empty keeps --style")
    p.add_argument("--seed", type=int, default=0, help="0 = best path; others vary near-ties")
    p.add_argument("--alpha", type=float, default=0.1, help="macro (transition) weight, eq. 5")
    p.add_argument("--beta", type=float, default=0.5, help="micro vs meso weight, eq. 5")
    p.add_argument("--tonic-balance", type=float, default=0.0, metavar="G",
                   help="ours: weight (0..1) against progressions parked on the tonic "
                        "(default 0 = off)")
    p.add_argument("--scorer", choices=("rules", "learned"), default="learned",
                   help="ours: the learned melody-to-chords model added to the micro score "
                        "(default), or the rules alone (no torch: a faster start)")
    p.add_argument("--colours", choices=("melody", "style"), default="melody",
                   help="ours: the melody picks each chord's colour from the style's palette "
                        "(default), or style: the style's fixed colour")
    p.add_argument("--variant", choices=("ours", "paper", "release"), default="ours",
                   help="ours (default): paper DP + quality-aware micro score; paper: eq. 2-5 "
                        "with the paper's table; release: the AccoMontage2 release's DP")
    p.add_argument("--top-k", type=int, default=5, help="alternatives kept per phrase")
    p.add_argument("--json", type=Path, metavar="CHART.json", help="also write the chord chart")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="accobridge", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    harm = sub.add_parser("harmonize", help="write a chord track for a melody")
    _add_harmonize_options(harm)
    arr = sub.add_parser("arrange", help="write chord and piano tracks for a melody")
    _add_harmonize_options(arr)
    arr.add_argument("--density", type=int, metavar="0-4", help="rhythmic-density level")
    arr.add_argument("--polyphony", type=int, metavar="0-4", help="voice-number level")
    arr.add_argument("--library", choices=("default", "pop909"),
                     help="texture library (default: pop909 when imported, else default)")
    _add_model_options(arr)
    arr.add_argument("--chords", type=Path, metavar="CHORDS.mid",
                     help="arrange against these chords instead of harmonizing")
    serve = sub.add_parser("serve", help="run the DAW bridge (our OSC API) headless")
    serve.add_argument("--osc-port", type=_port, default=17000,
                       help="UDP port (default 17000; 0 = any free port)")
    serve.add_argument("--listen", type=_listen_host, default="127.0.0.1",
                       help="interface to bind (default 127.0.0.1; others are an explicit risk)")
    serve.add_argument("--ableton", action="store_true", help="Ableton Live via AbletonOSC")
    # type=str: argparse passes a string const through `type`, and Path("") is "." (the
    # current folder), not "REAPER's default"
    serve.add_argument("--reaper-spool", type=str, metavar="DIR", nargs="?", const="",
                       help="REAPER spool folder shared with AccoBridge.lua (no DIR: "
                            "<REAPER resource path>/AccoBridge/spool)")
    serve.add_argument("--midi", action="store_true",
                       help='virtual MIDI ports "AccoBridge In"/"AccoBridge Out"')
    serve.add_argument("--midi-end", default="stop", metavar="stop|loop|cc:NN|bars:N",
                       help="what ends a take played into AccoBridge In (default: Stop; loop: "
                            "the first pass of the DAW's loop is the take)")
    serve.add_argument("--meter", default="4/4", choices=[f"{n}/{d}" for n, d in SUPPORTED_METERS],
                       metavar="N/D", help="meter of takes played into AccoBridge In (MIDI "
                                           "clock carries none; default 4/4)")
    defaults = serve.add_argument_group(
        "options for DAW clips", "defaults for every clip a DAW sends; options a DAW sends "
        "with its clip (OSC params, the REAPER script's options) win")
    defaults.add_argument("--preset", metavar="NAME", help="a style preset (factory or yours)")
    defaults.add_argument("--style", help=f"one of {', '.join(STYLES)}")
    defaults.add_argument("--density", type=int, metavar="0-4", help="rhythmic-density level")
    defaults.add_argument("--polyphony", type=int, metavar="0-4", help="voice-number level")
    defaults.add_argument("--key", help="tonic: C, C#, Db, D, … B (default: detected)")
    defaults.add_argument("--mode", choices=("major", "minor"), help="mode for --key")
    defaults.add_argument("--phrases", help="phrase string such as A8A8B8B8 (default: detected)")
    defaults.add_argument("--scorer", choices=("rules", "learned"),
                          help="the chord scorer (default learned)")
    send = sub.add_parser("send", help="send a melody to a running bridge, write its parts")
    _add_harmonize_options(send)
    send.add_argument("--density", type=int, metavar="0-4", help="rhythmic-density level")
    send.add_argument("--polyphony", type=int, metavar="0-4", help="voice-number level")
    send.add_argument("--library", choices=("default", "pop909"), help="texture library")
    _add_model_options(send)
    send.add_argument("--host", default="127.0.0.1", help="bridge host (default 127.0.0.1)")
    send.add_argument("--osc-port", type=_port, default=17000, help="bridge UDP port")
    send.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for parts")
    demo = sub.add_parser("demo", help="harmonize and arrange the shipped demo melody")
    demo.add_argument("-o", "--output", type=Path, default=Path("accobridge-demo.mid"))
    demo.add_argument("--style", default="pop_standard", help=f"one of {', '.join(STYLES)}")
    demo.add_argument("--json", type=Path, metavar="CHART.json")
    panel = sub.add_parser("panel", help="open the AccoBridge panel (the window beside the DAW)")
    panel.add_argument("--screenshot", type=Path, metavar="OUT.png",
                       help="render the window to OUT.png once the result is shown, then exit")
    panel.add_argument("--demo", action="store_true", help="start with the shipped demo melody")
    panel.add_argument("--size", type=_panel_size, metavar="WxH",
                       help="window size, e.g. 1024x640 (a screenshot: 1280x800)")
    panel.add_argument("--theme", choices=("dark", "light"), help="override the saved theme")
    lib = sub.add_parser("library", help="template library maintenance")
    lib_sub = lib.add_subparsers(dest="library_command", required=True, parser_class=_Parser)
    rebuild = lib_sub.add_parser("rebuild", help="rebuild the chord-template library from data")
    rebuild.add_argument("--data", type=Path, help="corpora folder (default ../shared/data)")
    rebuild.add_argument("-o", "--output", type=Path, help="library file (default: shipped one)")
    imp = lib_sub.add_parser("import-pop909", help="import POP909 accompaniment donor phrases")
    imp.add_argument("path", type=Path, help="the POP909 folder (NNN/NNN.mid …)")
    imp.add_argument("--structure", type=Path, help="the pop909-structure folder (phrase labels)")
    imp.add_argument("-o", "--output", type=Path, help="library file (default: user data dir)")
    lib_sub.add_parser("embed-textures",
                       help="embed the imported donor library for --transition learned (once)")
    return parser


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reharmonizer", choices=("rules", "learned"), default="rules",
                   help="donor re-harmonization: rules (default) or the chord/texture VAE")
    p.add_argument("--transition", choices=("rules", "learned"), default="rules",
                   help="donor transition score: rules (default) or contrastive embeddings")


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"accobridge: error: {message}\n")
    raise SystemExit(EXIT_USAGE)


# flags that are the engine's JSON option names (engine/options.py), dashes for underscores
_HARMONIZE_FLAGS = ("key", "mode", "phrases", "pickup", "style", "seed", "alpha", "beta",
                    "variant", "top_k", "tonic_balance", "scorer", "colours")
_ARRANGE_FLAGS = ("density", "polyphony", "library", "reharmonizer", "transition")


def _wire_options(args: argparse.Namespace) -> dict[str, Any]:
    """The command line's options under the engine's JSON names (what `send` forwards)."""
    wire = {name: getattr(args, name) for name in (*_HARMONIZE_FLAGS, *_ARRANGE_FLAGS)
            if getattr(args, name, None) is not None}
    if args.phrase_styles:
        wire["phrase_styles"] = [s.strip() for s in args.phrase_styles.split(",")]
    return wire


def _options(args: argparse.Namespace) -> Any:
    """ArrangeOptions from the command line, read by the engine's one codec; an error names
    the flag."""
    from engine import ArrangeOptions, OptionError

    try:
        return ArrangeOptions.from_json(_wire_options(args))
    except OptionError as err:
        raise _flagged(err) from err


def _flagged(err: Exception) -> Exception:
    """The codec's error with each JSON option name written as its command-line flag."""
    from engine import OptionError

    return OptionError(re.sub(r"\boption ([a-z_]+)",
                              lambda m: "--" + m.group(1).replace("_", "-"), str(err)))


def _write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    from engine import atomic_output

    with atomic_output(path) as out:
        out.write(json.dumps(doc, indent=1).encode("utf-8"))


def _harmonize_and_write(melody: Any, options: Any, output: Path, chart: Path | None) -> None:
    from engine import harmonization_chart, harmonize, write_song

    result = harmonize(melody, options)
    write_song(output, melody, [("Chords", 2, result.chord_notes)])
    if chart is not None:
        _write_json_atomic(chart, harmonization_chart(result))
    a = result.analysis
    print(
        f"{output}: {a.key.name} (confidence {a.key_confidence:.2f}), {_meters(a)}, "
        f"phrases {a.phrase_string}, {len(result.chords)} chords"
    )


def _meters(analysis: MelodyAnalysis) -> str:
    """'4/4', or the meter map of a melody whose meter changes: '4/4, 6/8 from bar 9'."""
    return ", ".join([analysis.meter.name] + [
        f"{s.meter.name} from bar {s.first_bar + 1}" for s in analysis.sections[1:]])


def _cmd_arrange(args: argparse.Namespace) -> None:
    from engine import load_melody, melody_end_16th, read_chord_events

    options = _options(args)
    melody = load_melody(args.input, track=args.track)
    chords = None
    if args.chords is not None:
        chords = read_chord_events(args.chords, melody_end_16th(melody))
    _arrange_and_write(melody, options, chords, args.output, args.json)


def _arrange_and_write(melody: Any, options: Any, chords: Any, output: Path,
                       chart: Path | None) -> None:
    from engine import arrange, arrangement_chart, write_song

    result = arrange(melody, options, chords=chords)
    harmonization = result.harmonization
    pedal = [(round(p.tick), 64, 127 if p.down else 0) for p in result.pedal]
    write_song(
        output, melody,
        [("Chords", 2, harmonization.chord_notes), ("Piano", 3, result.piano_notes)],
        controls={"Piano": pedal},
    )
    if chart is not None:
        _write_json_atomic(chart, arrangement_chart(result))
    a = harmonization.analysis
    textures = ", ".join(dict.fromkeys(t.name for t in result.textures))
    print(
        f"{output}: {a.key.name} (confidence {a.key_confidence:.2f}), {_meters(a)}, "
        f"phrases {a.phrase_string}, {len(harmonization.chords)} chords, "
        f"{len(result.piano_notes)} piano notes ({textures})"
    )


def _cmd_harmonize(args: argparse.Namespace) -> None:
    from engine import load_melody

    options = _options(args).harmonize
    melody = load_melody(args.input, track=args.track)
    _harmonize_and_write(melody, options, args.output, args.json)


def _cmd_serve(args: argparse.Namespace) -> None:
    import signal
    import threading

    from bridge.osc import is_loopback_host
    from bridge.session import Session
    from bridge.tally import live_tallies, report_all
    from ui.engine_link import with_defaults
    from ui.services import BridgeServices, MidiEndError, ServiceConfig

    generate = with_defaults(_serve_defaults(args))  # a bad option stops here, nothing started
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    log = logging.getLogger(SERVE_LOG)
    if not is_loopback_host(args.listen):
        sys.stderr.write(f"accobridge: warning: listening on {args.listen}: any host that can "
                         "reach it can send clips and read results\n")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    session = Session(generate)
    config = ServiceConfig(
        osc_port=args.osc_port, listen_host=args.listen, ableton=args.ableton,
        reaper_spool=args.reaper_spool,
        midi=args.midi, midi_end=args.midi_end, midi_meter=args.meter,
    )
    services = BridgeServices(session, config, log=log,
                              announce=lambda line: print(line, flush=True))
    try:
        try:
            services.start(strict=True)
        except MidiEndError as err:
            _fail(f"--midi-end: {err}")
        threading.Thread(target=_prepare_engine, args=(log,), name="engine-warm-up",
                         daemon=True).start()
        while not stop.wait(REPORT_POLL_S):
            report_all()  # each adapter's counts, while refusals go on (every 10 s at most)
    finally:
        tallies = live_tallies()  # held here: closing drops the adapters that own them
        services.close()
        session.close(5.0)
        for tally in tallies:
            tally.report(final=True)
    print("accobridge: stopped", flush=True)


def _serve_defaults(args: argparse.Namespace) -> dict[str, Any]:
    """serve's options for DAW clips under the engine's JSON names: the preset's, then the
    flags given; checked (a bad one is a one-line error) before anything starts."""
    from engine import OptionError
    from ui.engine_link import request_options
    from ui.presets import PresetError, PresetStore

    defaults: dict[str, Any] = {}
    if args.preset:
        try:
            defaults.update(PresetStore().get(args.preset).engine_options())
        except PresetError as err:
            raise OptionError(f"--preset: {err}") from err
    defaults.update({name: getattr(args, name) for name in (
        "style", "density", "polyphony", "key", "mode", "phrases", "scorer")
        if getattr(args, name) is not None})
    defaults = {name: value for name, value in defaults.items() if value is not None}
    try:
        request_options(defaults)
    except OptionError as err:
        raise _flagged(err) from err
    return defaults


def _prepare_engine(log: Any) -> None:
    """Load the template library and the learned chord scorer (torch) while the server waits
    for its first clip, so that clip does not pay for them; a failure shows up again, clearly,
    on the first request."""
    from engine import prepare

    try:
        prepare()
        log.info("engine loaded")
    except Exception as err:  # reported here and again by the first job that needs it
        log.warning("engine warm-up failed: %s: %s", type(err).__name__, err)


def send_source(path: Path) -> str:
    """The bridge source a `send` uploads as: its own (process and run) plus the file name, so
    parallel sends, even of files with the same name, never supersede each other."""
    return f"cli:{os.getpid()}-{uuid.uuid4().hex[:8]}:{path.name}"[:128]


def _cmd_send(args: argparse.Namespace) -> None:
    from bridge.client import send_clip_and_wait
    from engine import load_melody, require_one_meter, write_song
    from ui.engine_link import clip_from_melody, notes_of_part

    options = _options(args)  # validates the shared options before anything is sent
    melody = load_melody(args.input, track=args.track)
    require_one_meter(melody, "the bridge")
    clip = clip_from_melody(melody, send_source(args.input), args.input.stem)
    result = send_clip_and_wait(args.host, args.osc_port, clip, options.to_json(), args.timeout)
    tpb = melody.ticks_per_beat
    tracks = [(name.capitalize(), channel, notes_of_part(result.parts.get(name, ()), tpb))
              for name, channel in (("chords", 2), ("piano", 3))]
    pedal = [(round(c.start_beats * tpb), c.controller, c.value)
             for c in result.controls.get("piano", ())]
    write_song(args.output, melody, tracks, controls={"Piano": pedal})
    print(f"{args.output}: {len(result.chords)} chords, "
          f"{sum(len(t[2]) for t in tracks)} notes from {args.host}:{args.osc_port}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from engine import ArrangeOptions, demo_melody

    # The shipped data only: the POP909 donors that come with the package (a library the user
    # imported takes their place), so a fresh install hears human-played phrases.
    options = ArrangeOptions.from_json({"style": args.style})
    _arrange_and_write(demo_melody(), options, None, args.output, args.json)


def _panel_size(text: str) -> tuple[int, int]:
    from ui.panel.app import parse_size  # Qt-free: the panel's module imports Qt lazily

    return parse_size(text)


def _cmd_panel(args: argparse.Namespace) -> None:
    from ui.panel.app import run

    code = run(screenshot=args.screenshot, demo=args.demo, theme=args.theme, size=args.size)
    if code:
        raise SystemExit(code)


def _cmd_library(args: argparse.Namespace) -> None:
    import engine

    if args.library_command == "import-pop909":
        argv = [str(args.path)]
        if args.structure:
            argv += ["--structure", str(args.structure)]
        if args.output:
            argv += ["-o", str(args.output)]
        engine.import_pop909(argv)
        return
    if args.library_command == "embed-textures":
        code = engine.embed_textures()
        if code:
            raise SystemExit(code)
        return
    argv = []
    if args.data:
        argv += ["--data", str(args.data)]
    if args.output:
        argv += ["-o", str(args.output)]
    engine.rebuild_chord_templates(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    commands = {
        "harmonize": _cmd_harmonize, "arrange": _cmd_arrange, "demo": _cmd_demo,
        "library": _cmd_library, "serve": _cmd_serve, "send": _cmd_send,
        "panel": _cmd_panel,
    }
    command = commands[args.command]
    if args.command == "serve":  # a long run: each warning is logged as it happens
        with _warnings_logged(logging.getLogger(SERVE_LOG)):
            _run(command, args)
        return
    with warnings.catch_warnings(record=True) as caught:  # one-shot: one line each, at the end
        warnings.simplefilter("always")
        try:
            _run(command, args)
        finally:
            for w in caught:
                sys.stderr.write(f"accobridge: warning: {w.message}\n")


def _run(command: Callable[[argparse.Namespace], None], args: argparse.Namespace) -> None:
    """Run one command; our errors become the one-line message and exit status 2."""
    from bridge.errors import BridgeError
    from engine import EngineError

    try:
        command(args)
    except (EngineError, BridgeError) as err:
        _fail(str(err))
    except OSError as err:  # unwritable output folder, disk full …
        _fail(f"{getattr(err, 'filename', '') or ''} {err.strerror or err}".strip())


@contextlib.contextmanager
def _warnings_logged(log: logging.Logger) -> Iterator[None]:
    """Warnings from any thread go to `log` when they happen (each distinct one once per
    place, as Python's default), escaped to one line."""
    from bridge.tally import printable

    def show(message: Warning | str, category: type[Warning], *_where: object,
             **_more: object) -> None:
        log.warning("%s: %s", category.__name__, printable(str(message)))

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


if __name__ == "__main__":
    main()
