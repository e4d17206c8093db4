"""Shared pytest set-up: Qt widgets render offscreen (no display needed), unless the caller
chose a platform."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
