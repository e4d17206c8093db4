"""Where the window's widgets sit: the toolbar (the file and generate actions, drag-out, the
preset bar, live mode, settings), the left column (preset editor, analysis, connections), the
roll with its title, notice and transport over the phrase cards, the log dock and the status
line. `PanelLayout` builds them for the window, which wires and drives them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QCheckBox,
    QDockWidget,
    QLabel,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from ui.panel.phrases import PhraseStrip
from ui.panel.roll import PianoRoll
from ui.panel.transport import TransportBar
from ui.panel.widgets import (
    AnalysisEditor,
    ConnectionList,
    DragOut,
    ErrorBanner,
    LogPanel,
    Notice,
    RestoreOffer,
)

if TYPE_CHECKING:
    from ui.panel.window import PanelWindow


class PanelLayout:
    """Builds the window's widgets into it and holds them."""

    def __init__(self, window: PanelWindow) -> None:
        bar = QToolBar("Main")
        bar.setMovable(False)
        window.addToolBar(bar)
        self.toolbar = bar
        menus = window.menus
        for action in (menus.open_action, menus.generate_action, menus.send_action,
                       menus.save_action):
            bar.addAction(action)
        self.drag_out = DragOut(window.export_mime)
        bar.addWidget(self.drag_out)
        bar.addSeparator()
        bar.addWidget(window.preset_bar)
        bar.addSeparator()
        self.live_box = QCheckBox("Live mode")
        self.live_box.setToolTip("On: a clip the DAW sends is generated and sent back by "
                                 "itself. Off: it waits for Generate and Send to DAW")
        self.live_box.setChecked(bool(getattr(window.settings, "live_mode", True)))
        bar.addWidget(self.live_box)
        bar.addAction(menus.settings_action)
        for action in (menus.open_action, menus.generate_action, menus.send_action,
                       menus.save_action, menus.settings_action):
            button = bar.widgetForAction(action)
            if button is not None:  # toolbar buttons take no focus by default: Tab skips them
                button.setFocusPolicy(Qt.FocusPolicy.TabFocus)

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(6, 4, 6, 2)
        self.banner = ErrorBanner()
        self.offer = RestoreOffer()
        outer.addWidget(self.banner)
        outer.addWidget(self.offer)
        split = QSplitter(Qt.Orientation.Horizontal)
        column = QWidget()
        left_layout = QVBoxLayout(column)
        left_layout.setContentsMargins(0, 0, 4, 0)
        self.analysis = AnalysisEditor()
        self.connections = ConnectionList()
        self.log_panel = LogPanel()
        left_layout.addWidget(window.preset_bar.editor)
        left_layout.addWidget(self.analysis)
        left_layout.addWidget(self.connections)
        left_layout.addStretch(1)
        left = QScrollArea()  # scrolls rather than squeezes on a small screen
        left.setWidgetResizable(True)
        left.setFrameShape(QScrollArea.Shape.NoFrame)
        left.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left.setWidget(column)
        left.setMinimumWidth(230)
        left.setMaximumWidth(380)
        self.left_column = left
        self.log_dock = QDockWidget("Log", window)  # a developer's view: closed until asked for
        self.log_dock.setObjectName("logDock")
        self.log_dock.setWidget(self.log_panel)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.log_dock.hide()
        right = QSplitter(Qt.Orientation.Vertical)
        self.roll = PianoRoll()
        roll_scroll = QScrollArea()
        roll_scroll.setWidgetResizable(True)
        roll_scroll.setWidget(self.roll)
        self.title = QLabel("No clip yet")
        self.title.setObjectName("muted")
        self.notice = Notice()
        roll_box = QWidget()
        roll_layout = QVBoxLayout(roll_box)
        roll_layout.setContentsMargins(0, 0, 0, 0)
        roll_layout.addWidget(self.title)
        roll_layout.addWidget(self.notice)
        self.transport = TransportBar(self.roll)  # audition (Play: Space) and the roll's zoom
        self.play_action = self.transport.play_action
        roll_layout.addWidget(self.transport)
        roll_layout.addWidget(roll_scroll, 1)
        self.phrase_strip = PhraseStrip()
        self.phrase_strip.setMinimumHeight(150)
        right.addWidget(roll_box)
        right.addWidget(self.phrase_strip)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([320, 960])
        split.setChildrenCollapsible(False)
        right.setSizes([560, 220])  # the cards' lists whole at 1280×800
        right.setChildrenCollapsible(False)
        outer.addWidget(split, 1)
        window.setCentralWidget(central)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setRange(0, 100)
        self.progress.hide()
        self.status_label = QLabel("Starting…")
        status = window.statusBar()
        assert status is not None
        status.addWidget(self.status_label, 1)
        status.addPermanentWidget(self.progress)
