"""The spool folder and every file operation in it: where it is by default, reading a clip file
(never through a link, never past the size limit), deleting and writing files (a new file
renamed into place), keeping bad clip files in ``rejected/`` (refused when that is a link or
not a folder) and clearing what an earlier bridge left. Every path is the folder joined with
a name that matched a spool pattern or was built from an int seq.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import sys
from collections import deque
from pathlib import Path

from bridge.errors import BadMessageError
from bridge.jsonfile import atomic_write_text
from bridge.reaper.spool_format import MAX_CLIP_FILE_BYTES, is_temporary_name, parse_file_name
from bridge.tally import Tally

logger = logging.getLogger("bridge.reaper.spool")  # the spool's part: its lines say so

REJECTED_DIR = "rejected"
MAX_REJECTED_KEPT = 32  # bad clip files kept in rejected/ (oldest deleted first)


def reaper_resource_path() -> Path:
    """REAPER's default resource folder (``reaper.GetResourcePath()`` of a normal install;
    portable installs differ: pass the spool folder explicitly then)."""
    if sys.platform.startswith("win"):
        return Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming") / "REAPER"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "REAPER"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "REAPER"


def default_spool_folder() -> Path:
    """``<ResourcePath>/AccoBridge/spool``: where AccoBridge.lua exchanges files by default."""
    return reaper_resource_path() / "AccoBridge" / "spool"


def read_clip_file(path: str) -> bytes:
    """The file's bytes; never follows a symbolic link (where the OS can refuse to) and never
    reads more than the size limit."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise BadMessageError("is a symbolic link", "not_regular") from err
        raise
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise BadMessageError("is not a regular file", "not_regular")
        if info.st_size > MAX_CLIP_FILE_BYTES:
            raise BadMessageError(
                f"file is {info.st_size} bytes; at most {MAX_CLIP_FILE_BYTES} are accepted", "size"
            )
        return file.read(MAX_CLIP_FILE_BYTES + 1)


class SpoolFolder:
    """`folder` (created if missing) and its files; counts write errors and unsafe folders in
    `tally` (the spool's). Not thread-safe: the spool calls it with its poll lock held."""

    def __init__(self, folder: Path, tally: Tally) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._tally = tally
        self._kept_rejected: deque[str] = deque(self._existing_rejected())

    def path(self, name: str) -> str:
        # Plain string join of a name that matched a spool pattern (or was built from an int).
        return os.path.join(self.folder, name)

    def remove(self, name: str) -> bool:
        try:
            os.unlink(self.path(name))
        except FileNotFoundError:
            return True
        except OSError as err:
            logger.warning("reaper spool: cannot delete %s: %s", name, err)
            return False
        return True

    def write(self, name: str, text: str) -> bool:
        """Write `name` atomically: a temporary file in the folder, then `os.replace`. Not
        durable (no fsync): the file is read within moments, and after a crash the script's
        next clip asks again."""
        try:
            atomic_write_text(self.path(name), text, durable=False)
        except OSError as err:
            self._tally.count("write_errors")
            logger.error("reaper spool: cannot write %s: %s", name, err)
            return False
        return True

    def keep_rejected(self, name: str, reason: str) -> bool:
        """Move the bad clip file `name` into ``rejected/`` with `reason` in a ``.reason`` file
        beside it, the oldest beyond MAX_REJECTED_KEPT deleted; False (the file stays where it
        is) when that folder is unsafe or the move failed."""
        folder = self._rejected_folder()
        if folder is None:
            return False
        try:
            # A rename moves the clip itself, and replaces (never follows) a link at its new
            # name; the reason is written to a new file renamed into place the same way.
            os.replace(self.path(name), os.path.join(folder, name))
            atomic_write_text(os.path.join(folder, name + ".reason"), reason, durable=False)
        except OSError as move_error:
            logger.warning("reaper spool: cannot keep %s in %s: %s", name, folder, move_error)
            return False
        with contextlib.suppress(ValueError):
            self._kept_rejected.remove(name)
        self._kept_rejected.append(name)
        while len(self._kept_rejected) > MAX_REJECTED_KEPT:
            old = self._kept_rejected.popleft()
            for stale in (old, old + ".reason"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, stale))
        return True

    def _rejected_folder(self) -> str | None:
        """``rejected/``, made if missing; None (counted, logged) when it is a symbolic link or
        not a folder: bad files then are not kept. (Checked just before each use; someone able
        to swap it for a link between the check and the rename could as well write the spool.)"""
        folder = os.path.join(self.folder, REJECTED_DIR)
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder)
            mode = os.lstat(folder).st_mode
        except OSError as err:
            self._tally.refuse("unsafe", "rejected_folder", REJECTED_DIR, str(err))
            return None
        if not stat.S_ISDIR(mode):
            what = "a symbolic link" if stat.S_ISLNK(mode) else "not a folder"
            self._tally.refuse("unsafe", "rejected_folder", REJECTED_DIR,
                               f"is {what}: rejected files are deleted instead of kept there")
            return None
        return folder

    def _existing_rejected(self) -> list[str]:
        """Clip files kept in rejected/ by earlier runs, oldest seq first (trimmed later)."""
        folder = os.path.join(self.folder, REJECTED_DIR)
        try:
            if not stat.S_ISDIR(os.lstat(folder).st_mode):  # a link or a file: never listed
                return []
            names = os.listdir(folder)
        except OSError:
            return []
        kept = [(parsed[1], name) for name in names
                if (parsed := parse_file_name(name)) is not None and parsed[0] == "clip"]
        return [name for _, name in sorted(kept)]

    def clear_leftovers(self) -> None:
        """At start: an earlier bridge's temporary files (ours begin with a dot) and status
        files (no job of this run has a status yet) go; its answers stay for the script."""
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return
        for entry in entries:
            parsed = parse_file_name(entry.name)
            ours = ((is_temporary_name(entry.name) and entry.name.startswith("."))
                    or (parsed is not None and parsed[0] == "status"))
            if ours and entry.is_file(follow_symlinks=False) and self.remove(entry.name):
                logger.info("reaper spool: deleted %s, left by an earlier run", entry.name)
