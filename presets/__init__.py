"""AccoBridge's factory style presets: the JSON files beside this module and their JSON Schema
(schema.json). Data only; ui/presets.py reads, validates and migrates them."""

from __future__ import annotations

from pathlib import Path

FACTORY_DIR = Path(__file__).resolve().parent
SCHEMA_PATH = FACTORY_DIR / "schema.json"
