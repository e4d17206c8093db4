"""Panel responsiveness while the engine works: a QTimer ticks every 5 ms on the GUI thread and
every late tick is a stall; meanwhile the real window generates again and again (whole songs,
alternatives, single phrases, bursts of edits where the latest wins). Goal: max stall ≤ 50 ms.

    python -m benchmarks.panel_latency [--generations 30] [--bars 32]

Runs offscreen by default (QT_QPA_PLATFORM=offscreen unless set); the GUI thread's own work
(repainting the roll, rebuilding the phrase cards) counts, as the user would feel it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import percentile

GOAL_MS = 50.0
TICK_MS = 5
IDLE_MS = 2000
TRACE = bool(os.environ.get("PANEL_LATENCY_TRACE"))  # print each stall > 30 ms as it happens


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--bars", type=int, default=32, choices=(16, 32, 64))
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    scratch = tempfile.TemporaryDirectory(prefix="accobridge-bench-")
    os.environ.setdefault("ACCOBRIDGE_CONFIG_DIR", str(Path(scratch.name) / "config"))
    os.environ.setdefault("ACCOBRIDGE_DATA_DIR", str(Path(scratch.name) / "data"))

    from PyQt6.QtCore import QElapsedTimer, Qt, QTimer
    from PyQt6.QtWidgets import QApplication

    from bridge.store import ClipStore
    from engine.demo import DEMO_TUNE, melody_from_steps
    from engine.types import Key
    from ui.panel.window import PanelWindow, warm_up
    from ui.settings import Settings

    app = QApplication.instance() or QApplication([])
    window = PanelWindow(Settings(), store=ClipStore(Path(scratch.name) / "sessions"),
                         settings_file=Path(scratch.name) / "settings.json",
                         start_services=False, offer_restore=False)
    window.resize(1280, 800)
    window.show()
    warm_up()  # measured separately (panel_startup); here only steady-state generation
    melody = melody_from_steps(DEMO_TUNE * (args.bars // 16), key=Key(5, "major"))

    gaps_ms: list[float] = []
    idle_ms: list[float] = []  # the same ticks with nothing running: what the machine allows
    clock = QElapsedTimer()
    last = {"t": 0.0}
    measuring = {"on": False, "idle": False}

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        if measuring["on"]:
            gap = now - last["t"] - TICK_MS
            gaps_ms.append(gap)
            if TRACE and gap > 30:
                print(f"  stall {gap:.0f} ms ending at {time.perf_counter():.3f}")
        elif measuring["idle"]:
            idle_ms.append(now - last["t"] - TICK_MS)
        last["t"] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    clock.start()
    timer.start()

    presets = [window.preset_box.itemData(i) for i in range(window.preset_box.count())]
    done = {"results": 0, "requests": 0}
    started = time.perf_counter()

    def next_step() -> None:
        step = done["requests"]
        if done["results"] >= args.generations:
            app.quit()
            return
        done["requests"] += 1
        phrases = len(window.arrangement.harmonization.phrases) if window.arrangement else 0
        if step % 5 == 1 and phrases:
            window.choose_alternative(step % phrases, 0)
        elif step % 5 == 2 and phrases:
            window.regenerate_phrase((step + 1) % phrases)
        elif step % 5 == 3 and len(presets) > 1:
            # a burst: three preset changes in a row; only the last one's result counts
            for k in range(3):
                window.preset_box.setCurrentIndex((step + k) % len(presets))
        else:
            window.generate()

    def on_result() -> None:
        done["results"] += 1
        QTimer.singleShot(0, next_step)

    def on_error(message: str) -> None:
        print(f"error during the run: {message}")
        app.quit()

    window.result_shown.connect(on_result)
    window.error_shown.connect(on_error)

    def begin() -> None:
        measuring["idle"], measuring["on"] = False, True
        window.load_melody(melody, "latency benchmark")
        done["requests"] += 1

    QTimer.singleShot(50, lambda: measuring.update(idle=True))
    QTimer.singleShot(50 + IDLE_MS, begin)
    QTimer.singleShot(300_000, app.quit)  # a hung engine must not hang the benchmark
    app.exec()
    elapsed = time.perf_counter() - started - IDLE_MS / 1000
    timer.stop()
    window.shutdown()
    stalls = [max(0.0, g) for g in gaps_ms]
    worst = max(stalls, default=0.0)
    p99 = percentile(stalls, 0.99) if stalls else 0.0
    idle = [max(0.0, g) for g in idle_ms]
    print(f"idle baseline ({IDLE_MS / 1000:.0f} s, nothing running): stall max "
          f"{max(idle, default=0.0):.1f} ms, p99 {percentile(idle, 0.99) if idle else 0.0:.1f} ms"
          f" ({os.getloadavg()[0]:.1f} load average on {os.cpu_count()} CPUs)")
    print(f"panel latency: {done['results']} results shown for {done['requests']} requests "
          f"({args.bars} bars) in {elapsed:.1f} s, {len(gaps_ms)} timer ticks of {TICK_MS} ms")
    print(f"  event-loop stall: max {worst:.1f} ms, p99 {p99:.1f} ms, median "
          f"{percentile(stalls, 0.5):.2f} ms  (goal: max ≤ {GOAL_MS:.0f} ms; "
          f"max/goal = {worst / GOAL_MS:.2f}) -> {'OK' if worst <= GOAL_MS else 'NOT MET'}")


if __name__ == "__main__":
    main()
