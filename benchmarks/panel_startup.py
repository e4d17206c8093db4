"""Panel cold start: process launch → window shown and its event loop answering (goal ≤ 3 s),
→ engine loaded (in the background), → first result of the demo melody on screen.

    python -m benchmarks.panel_startup [--runs 5]

Each run is a fresh `python -m benchmarks.panel_startup --child` process (offscreen Qt unless
QT_QPA_PLATFORM is set) with private config/data folders, timed by the shared monotonic clock.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 3.0
ROOT = Path(__file__).resolve().parents[1]


def child() -> None:
    """Open the panel as `accobridge panel --demo` does; print the moments that matter."""
    from PyQt6.QtCore import QTimer

    from ui.panel.app import open_window

    app, window = open_window(restore=False)
    stamps: dict[str, float] = {}

    def mark(name: str) -> None:
        stamps.setdefault(name, time.monotonic())
        print(f"{name} {stamps[name]:.6f}", flush=True)

    # The first turn of the event loop after show(): the window is on screen and answering.
    QTimer.singleShot(0, lambda: mark("usable"))

    def engine_ready() -> None:
        mark("engine")
        from engine.demo import demo_melody

        window.load_melody(demo_melody(), "AccoBridge demo")

    window.engine_ready.connect(engine_ready)
    window.result_shown.connect(lambda: (mark("result"), app.quit()))
    window.error_shown.connect(lambda message: (print(f"error {message}"), app.quit()))
    QTimer.singleShot(120_000, app.quit)
    app.exec()
    window.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child()
        return
    rows: dict[str, list[float]] = {"usable": [], "engine": [], "result": []}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="accobridge-startup-") as scratch:
            env = {**os.environ, "ACCOBRIDGE_CONFIG_DIR": str(Path(scratch) / "config"),
                   "ACCOBRIDGE_DATA_DIR": str(Path(scratch) / "data")}
            env.setdefault("QT_QPA_PLATFORM", "offscreen")
            started = time.monotonic()
            out = subprocess.run([sys.executable, "-m", "benchmarks.panel_startup", "--child"],
                                 cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        for line in out.stdout.splitlines():
            name, _, value = line.partition(" ")
            if name in rows:
                rows[name].append(float(value) - started)
            elif name == "error":
                print(line)
    print(f"panel cold start over {args.runs} runs ({os.getloadavg()[0]:.1f} load average on "
          f"{os.cpu_count()} CPUs):")
    labels = {"usable": "window shown, event loop answering", "engine": "engine loaded",
              "result": "first demo result on screen"}
    for name, values in rows.items():
        if not values:
            print(f"  {labels[name]}: no measurement")
            continue
        values.sort()
        line = (f"  {labels[name]}: median {values[len(values) // 2]:.2f} s, "
                f"max {values[-1]:.2f} s")
        if name == "usable":
            line += (f"  (goal ≤ {GOAL_S:.0f} s; max/goal = {values[-1] / GOAL_S:.2f}) -> "
                     f"{'OK' if values[-1] <= GOAL_S else 'NOT MET'}")
        print(line)


if __name__ == "__main__":
    main()
