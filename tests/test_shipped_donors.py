"""The POP909 donor library shipped as package data (issue 11): present, intact, licensed,
without the held-out songs, and what a fresh install arranges 4/4 melodies with."""

from __future__ import annotations

import hashlib
import json

from engine.demo import demo_melody
from engine.library.datasets import is_held_out
from engine.library.pop909_textures import (
    SHIPPED_LIBRARY_PATH,
    donor_library_path,
    load_donor_library,
)
from engine.pipeline import arrange
from engine.userdata import DATA_DIR_ENV

PROVENANCE = SHIPPED_LIBRARY_PATH.with_suffix(".json")
LICENCE = SHIPPED_LIBRARY_PATH.parent / "POP909-LICENSE.txt"
MAX_BYTES = 15 * 2**20


def test_the_shipped_library_is_intact_small_and_licensed() -> None:
    data = SHIPPED_LIBRARY_PATH.read_bytes()
    provenance = json.loads(PROVENANCE.read_text())
    assert len(data) <= MAX_BYTES
    assert hashlib.sha256(data).hexdigest() == provenance["sha256"]
    assert "MIT License" in LICENCE.read_text() and "Music X Lab" in LICENCE.read_text()
    assert "import-pop909" in provenance["command"]
    # evaluation songs are never donors
    assert not [s for s in provenance["songs_used"] if is_held_out("pop909", s)]
    library = load_donor_library(SHIPPED_LIBRARY_PATH)
    assert library is not None
    assert {f"{int(s):03d}" for s in library.song} == set(provenance["songs_used"])


def test_a_fresh_install_arranges_4_4_with_the_shipped_donors(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))  # no library of the user's own
    assert donor_library_path() == SHIPPED_LIBRARY_PATH
    result = arrange(demo_melody())
    assert result.harmonization.analysis.meter.name == "4/4"
    assert {t.library for t in result.textures} == {"pop909"}


def test_a_library_the_user_imported_wins(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    own = tmp_path / SHIPPED_LIBRARY_PATH.name
    own.write_bytes(SHIPPED_LIBRARY_PATH.read_bytes())
    assert donor_library_path() == own
    own.unlink()
    assert donor_library_path() == SHIPPED_LIBRARY_PATH
