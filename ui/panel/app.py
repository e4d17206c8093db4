"""Entry point of the panel (`accobridge panel`, `accobridge-panel`): settings in, window up
first, engine loaded after it shows; `--screenshot` renders the window and exits. Screenshot
and demo runs keep to a temporary folder: the user's settings, presets, sessions and window
size are neither read nor written."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("accobridge.panel")

SCREENSHOT_SIZE = (1280, 800)
SCREENSHOT_TIMEOUT_MS = 120_000


def _needs_offscreen() -> bool:
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                or sys.platform in ("darwin", "win32"))


def parse_size(text: str) -> tuple[int, int]:
    """`--size`'s "WxH" (e.g. 1024x640) as (width, height)."""
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1024x640, got {text!r}")
    size = (int(width), int(height))
    if not (320 <= size[0] <= 7680 and 240 <= size[1] <= 4320):
        raise argparse.ArgumentTypeError(f"{text}: the window is 320x240 to 7680x4320")
    return size


def open_window(theme: str | None = None, restore: bool = True,
                size: tuple[int, int] | None = None,
                private_dir: Path | None = None) -> tuple[Any, Any]:
    """The QApplication (made if needed) and the shown panel window; the engine starts loading
    once the event loop runs. `private_dir`: settings (the defaults), presets and sessions
    there instead of the user's (screenshot and demo runs). Shared by `run` and
    benchmarks/panel_startup.py."""
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from bridge.store import ClipStore
    from ui.panel.window import PanelWindow
    from ui.presets import PresetStore
    from ui.settings import Settings, load_settings

    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])
    app.setApplicationName("AccoBridge")
    if private_dir is None:
        settings, problems = load_settings()
        window = PanelWindow(settings, theme=theme, offer_restore=restore)
    else:
        settings, problems = Settings(), []
        window = PanelWindow(settings, theme=theme, offer_restore=restore,
                             settings_file=private_dir / "settings.json",
                             presets=PresetStore(private_dir),
                             store=ClipStore(private_dir / "sessions"))
    for problem in problems:
        logger.warning("settings: %s", problem)
    if size is not None:
        window.resize(*size)
    window.show()
    QTimer.singleShot(0, window.start_warm_up)
    return app, window


def run(screenshot: Path | None = None, demo: bool = False, theme: str | None = None,
        size: tuple[int, int] | None = None) -> int:
    """Open the panel; returns the exit status (0: closed normally / screenshot written).
    `size`: the window's (the screenshot's) size in pixels; 1280x800 for a screenshot."""
    if _needs_offscreen() and not os.environ.get("QT_QPA_PLATFORM"):
        if screenshot is None:  # Qt would abort with a platform-plugin trace
            sys.stderr.write("accobridge: error: no display to open the panel on (DISPLAY and "
                             "WAYLAND_DISPLAY are unset); use --screenshot OUT.png, or set "
                             "QT_QPA_PLATFORM=offscreen\n")
            return 2
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    if size is None and screenshot is not None:
        size = SCREENSHOT_SIZE
    private = tempfile.TemporaryDirectory(prefix="accobridge-panel-") \
        if demo or screenshot is not None else None
    try:
        return _run(screenshot, demo, theme, size,
                    Path(private.name) if private is not None else None)
    finally:
        if private is not None:
            private.cleanup()


def _run(screenshot: Path | None, demo: bool, theme: str | None, size: tuple[int, int] | None,
         private_dir: Path | None) -> int:
    from PyQt6.QtCore import QTimer

    app, window = open_window(theme, restore=not (demo or screenshot), size=size,
                              private_dir=private_dir)
    if demo:
        from engine import demo_melody

        QTimer.singleShot(0, lambda: window.load_melody(demo_melody(), "AccoBridge demo"))
    status = {"code": 0}
    if screenshot is not None:
        target = screenshot

        def shoot(code: int) -> None:
            if status.get("shot"):
                return  # the result came first; a later error or the timeout changes nothing
            status["shot"] = 1
            status["code"] = code
            target.parent.mkdir(parents=True, exist_ok=True)
            if not window.grab().save(str(target)):
                sys.stderr.write(f"accobridge: error: could not write {target}\n")
                status["code"] = 2
            else:
                print(f"accobridge: panel screenshot written to {target}", flush=True)
            app.quit()

        def when_painted() -> None:
            # the roll draws on a background thread: wait for its picture, then a short settle
            if window.roll.pending():
                QTimer.singleShot(30, when_painted)
            else:
                QTimer.singleShot(150, lambda: shoot(0))

        ready = window.result_shown if demo else window.engine_ready
        ready.connect(when_painted)
        window.error_shown.connect(lambda _m: QTimer.singleShot(150, lambda: shoot(1)))
        QTimer.singleShot(SCREENSHOT_TIMEOUT_MS, lambda: shoot(3))
    code = app.exec()
    window.shutdown()
    return status["code"] if screenshot is not None else code


def main(argv: Sequence[str] | None = None) -> None:
    """`accobridge-panel [--screenshot OUT.png] [--demo] [--size WxH] [--theme dark|light]`."""
    parser = argparse.ArgumentParser(prog="accobridge-panel", description=__doc__.split("\n")[0])
    parser.add_argument("--screenshot", type=Path, metavar="OUT.png")
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--size", type=parse_size, metavar="WxH")
    parser.add_argument("--theme", choices=("dark", "light"))
    args = parser.parse_args(argv)
    raise SystemExit(run(args.screenshot, args.demo, args.theme, args.size))


if __name__ == "__main__":
    main()
