"""Where AccoBridge keeps per-user data (imported libraries, later sessions and presets).

$ACCOBRIDGE_DATA_DIR wins; otherwise the platform's convention ($XDG_DATA_HOME or
~/.local/share on Linux, ~/Library/Application Support on macOS, %APPDATA% on Windows).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DATA_DIR_ENV = "ACCOBRIDGE_DATA_DIR"


def user_data_dir() -> Path:
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "AccoBridge"
    if sys.platform.startswith("win"):
        return Path(os.environ.get("APPDATA", Path.home())) / "AccoBridge"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "accobridge"
