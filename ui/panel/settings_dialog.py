"""The settings dialog: connections (OSC, Ableton, REAPER, MIDI), live mode and debounce, theme.
It edits a copy; the window saves it (ui.settings) and restarts the adapters."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)


class SettingsDialog(QDialog):
    def __init__(self, settings: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("AccoBridge settings")
        self._settings = settings
        form = QFormLayout(self)
        self.osc_enabled = QCheckBox("Accept clips over our OSC API")
        self.osc_enabled.setChecked(bool(settings.osc_enabled))
        self.osc_port = QSpinBox()
        self.osc_port.setRange(1, 65535)
        self.osc_port.setValue(int(settings.osc_port))
        self.listen_host = QLineEdit(str(settings.listen_host))
        self.listen_host.setToolTip("127.0.0.1 keeps other computers out")
        self.ableton = QCheckBox("Ableton Live (AbletonOSC)")
        self.ableton.setChecked(bool(settings.ableton))
        self.reaper = QCheckBox("REAPER spool")
        self.reaper.setChecked(settings.reaper_spool is not None)
        self.reaper_folder = QLineEdit(settings.reaper_spool or "")
        self.reaper_folder.setPlaceholderText("default: <REAPER resource path>/AccoBridge/spool")
        self.midi = QCheckBox("Virtual MIDI ports AccoBridge In/Out")
        self.midi.setChecked(bool(settings.midi))
        self.midi_end = QLineEdit(str(settings.midi_end))
        self.midi_end.setToolTip("stop, cc:NN or bars:N: what ends a take played into the port")
        self.live_mode = QCheckBox("Live mode: generate again when the DAW clip changes")
        self.live_mode.setChecked(bool(settings.live_mode))
        self.debounce = QSpinBox()
        self.debounce.setRange(0, 5000)
        self.debounce.setSuffix(" ms")
        self.debounce.setValue(int(settings.debounce_ms))
        self.theme = QComboBox()
        self.theme.addItems(["dark", "light"])
        self.theme.setCurrentText(str(settings.theme))
        form.addRow(self.osc_enabled)
        form.addRow("OSC port", self.osc_port)
        form.addRow("Listen on", self.listen_host)
        form.addRow(self.ableton)
        form.addRow(self.reaper)
        form.addRow("Spool folder", self.reaper_folder)
        form.addRow(self.midi)
        form.addRow("End a MIDI take on", self.midi_end)
        form.addRow(self.live_mode)
        form.addRow("Wait before generating", self.debounce)
        form.addRow("Theme", self.theme)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def result_settings(self) -> Any:
        """A new Settings value with the dialog's choices (fields it does not show kept)."""
        changes: dict[str, Any] = {
            "osc_enabled": self.osc_enabled.isChecked(),
            "osc_port": self.osc_port.value(),
            "listen_host": self.listen_host.text().strip() or "127.0.0.1",
            "ableton": self.ableton.isChecked(),
            "reaper_spool": self.reaper_folder.text().strip() if self.reaper.isChecked() else None,
            "midi": self.midi.isChecked(),
            "midi_end": self.midi_end.text().strip() or "stop",
            "live_mode": self.live_mode.isChecked(),
            "debounce_ms": self.debounce.value(),
            "theme": self.theme.currentText(),
        }
        known = {f.name for f in fields(self._settings)}
        return replace(self._settings, **{k: v for k, v in changes.items() if k in known})
