"""Entry point of the panel (`accobridge panel`, `accobridge-panel`): settings in, window up
first, engine loaded after it shows; `--screenshot` renders the window and exits."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("accobridge.panel")

SCREENSHOT_SIZE = (1280, 800)
SCREENSHOT_TIMEOUT_MS = 120_000


def _needs_offscreen() -> bool:
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                or sys.platform in ("darwin", "win32"))


def open_window(theme: str | None = None, restore: bool = True,
                size: tuple[int, int] | None = None) -> tuple[Any, Any]:
    """The QApplication (made if needed) and the shown panel window; the engine starts loading
    once the event loop runs. Shared by `run` and benchmarks/panel_startup.py."""
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from ui.panel.window import PanelWindow
    from ui.settings import load_settings

    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])
    app.setApplicationName("AccoBridge")
    settings, problems = load_settings()
    window = PanelWindow(settings, theme=theme, offer_restore=restore)
    for problem in problems:
        logger.warning("settings: %s", problem)
    if size is not None:
        window.resize(*size)
    window.show()
    QTimer.singleShot(0, window.start_warm_up)
    return app, window


def run(screenshot: Path | None = None, demo: bool = False, theme: str | None = None) -> int:
    """Open the panel; returns the exit status (0: closed normally / screenshot written)."""
    if _needs_offscreen() and not os.environ.get("QT_QPA_PLATFORM"):
        if screenshot is None:  # Qt would abort with a platform-plugin trace
            sys.stderr.write("accobridge: error: no display to open the panel on (DISPLAY and "
                             "WAYLAND_DISPLAY are unset); use --screenshot OUT.png, or set "
                             "QT_QPA_PLATFORM=offscreen\n")
            return 2
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PyQt6.QtCore import QTimer

    app, window = open_window(theme, restore=not (demo or screenshot),
                              size=SCREENSHOT_SIZE if screenshot is not None else None)
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
    """`accobridge-panel [--screenshot OUT.png] [--demo] [--theme dark|light]`."""
    parser = argparse.ArgumentParser(prog="accobridge-panel", description=__doc__.split("\n")[0])
    parser.add_argument("--screenshot", type=Path, metavar="OUT.png")
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--theme", choices=("dark", "light"))
    args = parser.parse_args(argv)
    raise SystemExit(run(args.screenshot, args.demo, args.theme))


if __name__ == "__main__":
    main()
