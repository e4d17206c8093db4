"""engine.atomic_file: the new file appears whole, or the old one stays and nothing is left."""

import os
from pathlib import Path

import pytest

from engine.atomic_file import atomic_output, process_umask


def test_the_file_appears_whole_and_readable(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "song.bin"
    with atomic_output(target) as out:
        out.write(b"new")
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o666 & ~process_umask()
    assert sorted(p.name for p in target.parent.iterdir()) == ["song.bin"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_the_file_follows_the_umask(tmp_path: Path, umask: int) -> None:
    before = os.umask(umask)
    try:
        assert process_umask() == umask
        with atomic_output(tmp_path / "song.bin") as out:
            out.write(b"x")
    finally:
        os.umask(before)
    assert (tmp_path / "song.bin").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "song.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(target) as out:
        out.write(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["song.bin"]


def test_no_parent_folder_is_made_when_not_asked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic_output(tmp_path / "missing" / "x",
                                                         make_parents=False):
        pass
    assert not (tmp_path / "missing").exists()
