"""bridge.jsonfile: versioned JSON files (upgrade chain, atomic writes, bounded reads), friendly
schema messages and the per-OS folders."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import platformdirs
import pytest

from bridge.errors import NewerFileError, StoredFileError
from bridge.jsonfile import (
    CONFIG_DIR_ENV,
    DATA_DIR_ENV,
    MAX_JSON_DEPTH,
    FileFormat,
    atomic_write_text,
    check_schema,
    process_umask,
    read_json_object,
    user_config_dir,
    user_data_dir,
)

# version 1 called the tempo "bpm"; version 2 renamed it; version 3 added a meter
SONG_FILE = FileFormat(
    "song", "version", 3,
    {1: lambda doc: {**{k: v for k, v in doc.items() if k != "bpm"}, "tempo_bpm": doc["bpm"]},
     2: lambda doc: {**doc, "meter": "4/4"}},
    unversioned=1,
)


def test_the_upgrade_chain_runs_from_any_older_version(tmp_path: Path) -> None:
    path = tmp_path / "song.json"
    path.write_text(json.dumps({"bpm": 90}))  # no version: the first format
    assert SONG_FILE.load(path) == {"version": 3, "tempo_bpm": 90, "meter": "4/4"}
    path.write_text(json.dumps({"version": 2, "tempo_bpm": 100}))
    assert SONG_FILE.load(path) == {"version": 3, "tempo_bpm": 100, "meter": "4/4"}


@pytest.mark.parametrize(("document", "error", "message"), [
    ({"version": 4}, NewerFileError, "version 4 is newer than this AccoBridge reads"),
    ({"version": 0}, StoredFileError, "version 0 is not a known song format"),
    ({"version": "2"}, StoredFileError, "field 'version' must be a whole number"),
    ({"version": True}, StoredFileError, "field 'version' must be a whole number"),
])
def test_unknown_versions_are_our_errors(document, error, message) -> None:
    with pytest.raises(error, match=message):
        SONG_FILE.upgrade(document)


def test_a_file_without_a_version_is_refused_when_none_is_assumed() -> None:
    with pytest.raises(StoredFileError, match="field 'schema' is missing"):
        FileFormat("session", "schema", 1).upgrade({"kind": "clip"})


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b"\xff\xfe", "cannot be read"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b'{"a": "' + b"x" * 2000 + b'"}', "at most 1000 are read"),
])
def test_corrupt_files_give_our_error_never_a_key_error(tmp_path: Path, content, message) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(StoredFileError, match=message):
        read_json_object(path, max_bytes=1000 if len(content) < 5000 else 10**6)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 900])
def test_deep_nesting_is_refused_before_anyone_walks_it(tmp_path: Path, depth: int) -> None:
    """Issue 13: a deeply nested file that json.loads still takes met a RecursionError later
    (repr, schema checks) and disabled the whole reader."""
    path = tmp_path / "deep.json"
    path.write_text('{"a": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}")
    with pytest.raises(StoredFileError, match=f"nested more than {MAX_JSON_DEPTH} levels"):
        read_json_object(path)
    path.write_text('{"a": ' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}")
    assert read_json_object(path)["a"]


def test_a_fifo_or_folder_is_refused_never_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "settings.json"
    os.mkfifo(fifo)  # no writer: a plain open() would wait for one forever
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            read_json_object(fifo)
            outcome.append(None)
        except BaseException as err:
            outcome.append(err)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10.0)
    if reader.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # let it go, then fail
        pytest.fail("reading a FIFO waited for a writer")
    assert isinstance(outcome[0], StoredFileError) and "not a regular file" in str(outcome[0])
    with pytest.raises(StoredFileError, match="not a regular file"):
        read_json_object(tmp_path)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    before = os.umask(umask)
    try:
        assert process_umask() == umask
        atomic_write_text(tmp_path / "song.json", "{}")
    finally:
        os.umask(before)
    assert (tmp_path / "song.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_link_at_the_target_is_replaced_not_written_through(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "song.json").symlink_to(target)
    atomic_write_text(tmp_path / "song.json", "{}")
    assert target.read_text() == "keep me" and not (tmp_path / "song.json").is_symlink()


def test_a_missing_file_is_left_to_the_caller(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SONG_FILE.load(tmp_path / "none.json")


def test_save_stamps_the_version_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "song.json"
    SONG_FILE.save(path, {"tempo_bpm": 120, "title": "Sérénade", "version": 1})
    text = path.read_text(encoding="utf-8")
    assert text.startswith('{\n  "version": 3,') and "Sérénade" in text and text.endswith("}\n")
    assert SONG_FILE.load(path) == {"version": 3, "tempo_bpm": 120, "title": "Sérénade"}
    compact = FileFormat("session", "schema", 1, compact=True)
    assert compact.dumps({"title": "é"}) == '{"schema":1,"title":"\\u00e9"}'


def test_a_value_that_is_not_json_fails_before_the_disk_is_touched(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        SONG_FILE.save(tmp_path / "song.json", {"tempo": object()})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "song.json"
    atomic_write_text(path, "old")

    def broken(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["song.json"]


def test_folders_follow_the_environment_else_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "cfg"))
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    assert (user_config_dir(), user_data_dir()) == (tmp_path / "cfg", tmp_path / "data")
    monkeypatch.delenv(CONFIG_DIR_ENV)
    monkeypatch.delenv(DATA_DIR_ENV)
    assert user_config_dir() == platformdirs.user_config_path("accobridge", appauthor=False,
                                                              roaming=True)
    assert user_data_dir() == platformdirs.user_data_path("accobridge", appauthor=False,
                                                          roaming=True)


SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["tempo_bpm"],
    "properties": {
        "tempo_bpm": {"type": "number", "minimum": 20, "maximum": 300},
        "bars": {"type": "integer", "minimum": 1, "maximum": 512},
        "parts": {"type": "array", "items": {"enum": ["chords", "piano"]}, "minItems": 1},
    },
}


@pytest.mark.parametrize(("document", "message"), [
    ({"tempo_bpm": float("nan")}, "field 'tempo_bpm' must be a number, got nan"),
    ({"tempo_bpm": 90, "bars": 8.0}, "field 'bars' must be a whole number, got 8.0"),
    ({"tempo_bpm": 900}, "field 'tempo_bpm' must be between 20 and 300, got 900"),
    ({"tempo_bpm": 90, "parts": ["drums"]}, "field 'parts\\[0\\]' must be one of chords, piano"),
    ({"tempo_bpm": 90, "parts": []}, "field 'parts' needs at least 1 item"),
    ({"tempo_bpm": 90, "key": "C"}, "unknown field 'key' \\(allowed: tempo_bpm, bars, parts\\)"),
    ({}, "field 'tempo_bpm' is missing"),
    ([], "the song must be an object"),
])
def test_schema_errors_name_the_field_and_what_is_allowed(document, message) -> None:
    with pytest.raises(StoredFileError, match=message):
        check_schema(document, SCHEMA, "song")
    check_schema({"tempo_bpm": 90, "bars": 8, "parts": ["piano"]}, SCHEMA, "song")
