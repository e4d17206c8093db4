"""The AccoBridge panel: the PyQt6 window beside the DAW (entry point: `ui.panel.app.main`)."""
