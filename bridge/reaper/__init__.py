"""REAPER support: a file spool shared with the companion ReaScript `AccoBridge.lua`.

ReaScript Lua has no sockets, so the script and the bridge exchange small text files in a
folder (`spool_format` defines them, `spool.ReaperSpool` is the bridge's side). The script ships
here; users load it with Actions › Show action list › New action › Load ReaScript.
"""

from __future__ import annotations

from pathlib import Path

from bridge.reaper.spool import ReaperSpool
from bridge.reaper.spool_folder import default_spool_folder, reaper_resource_path

LUA_SCRIPT = Path(__file__).with_name("AccoBridge.lua")

__all__ = ["LUA_SCRIPT", "ReaperSpool", "default_spool_folder", "reaper_resource_path"]
