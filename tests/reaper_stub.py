"""A stub `reaper` table in Lua for running AccoBridge.lua under a real Lua 5.4 (Debian's
`lua5.4`): shared by tests/test_reaper_lua.py and benchmarks/reaper_latency.py.

`HARNESS` models one project: tracks, items, MIDI takes in PPQ (960 per quarter note), a
constant tempo and meter, ExtState (saved to a file between runs), an undo-block depth and
`reaper.defer`. Every call that changes the project is recorded; one made outside an undo
block, or an unsorted take at the end of a block, is recorded as a violation, and so is any
`reaper.X` the stub lacks. Its driver either runs `CONFIG.loops` loop iterations, each 0.25 s
of the stub's time with `CONFIG.steps` acting between them, and writes the records to
`CONFIG.report`; or, with `CONFIG.interactive`, reads commands from stdin: ``tick <seconds>``
(set the time, run what is deferred, print the records since the last tick, then ``done``),
``edit <n>`` (the source take's first note up by n semitones from its original pitch) and
``quit``.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence

LUA = shutil.which("lua5.4")

HARNESS = r"""
local CONFIG = ...
local PPQ = 960
local report = {}
local function record(...)
  local fields = {}
  for i = 1, select("#", ...) do fields[i] = tostring((select(i, ...))) end
  report[#report + 1] = table.concat(fields, "\t")
end
local undo_depth, now, deferred, extstate, created = 0, 0, {}, {}, 0
local function mutate(what)
  if undo_depth == 0 then record("violation", "outside an undo block: " .. what) end
end

-- ExtState persists between runs through a file, as REAPER keeps it while it runs.
local state = io.open(CONFIG.state_file, "r")
if state then
  for line in state:lines() do
    local k, v = line:match("^([^\t]*)\t(.*)$")
    if k then extstate[k] = v end
  end
  state:close()
end

local tracks = {}
local function new_track(name) return { name = name, ext = {}, items = {} } end
local function new_take(guid, name, notes)
  return { guid = guid, name = name, notes = notes, sorted = true }
end
local function new_item(track, start_qn, end_qn, take)
  local item = { track = track, start_qn = start_qn, end_qn = end_qn, take = take, ext = {} }
  take.item = item
  track.items[#track.items + 1] = item
  return item
end
local function copy_notes(notes)
  local out = {}
  for i, n in ipairs(notes) do out[i] = { n[1], n[2], n[3], n[4], n[5], n[6] } end
  return out
end
for _, name in ipairs(CONFIG.tracks) do tracks[#tracks + 1] = new_track(name) end
local source_take = new_take(CONFIG.take_guid, CONFIG.take_name, copy_notes(CONFIG.notes))
new_item(tracks[1], CONFIG.item_start_qn, CONFIG.item_start_qn + CONFIG.item_length_qn,
         source_take)
new_item(tracks[#tracks], 0, 4, new_take("{USER-ITEM}", "user", {}))  -- never to be touched
local selected = source_take.item
local last_created = nil

local function index_of(track)
  for i, t in ipairs(tracks) do if t == track then return i end end
  return 0
end
local function qn_to_time(qn) return qn * 60 / CONFIG.tempo end

reaper = {}
setmetatable(reaper, { __index = function(_, name) record("missing", name) end })
function reaper.time_precise() return now end
function reaper.defer(fn) deferred[#deferred + 1] = fn end
function reaper.atexit(fn) end
function reaper.set_action_options(flags) end
function reaper.ShowConsoleMsg(text) record("console", (text:gsub("\n$", ""))) end
function reaper.GetResourcePath() return CONFIG.resource end
function reaper.RecursiveCreateDirectory(path, _)
  os.execute("mkdir -p '" .. path .. "'")
  return 1
end
function reaper.GetExtState(section, key) return extstate[section .. "/" .. key] or "" end
function reaper.SetExtState(section, key, value, persist)
  extstate[section .. "/" .. key] = value
end
function reaper.GetSelectedMediaItem(proj, index)
  if index == 0 then return selected end
end
function reaper.GetActiveTake(item) return item.take end
function reaper.TakeIsMIDI(take) return true end
function reaper.GetTakeName(take) return take.name end
function reaper.GetSetMediaItemTakeInfo_String(take, key, value, set)
  if key == "GUID" then return true, take.guid end
  if key == "P_NAME" then
    if set then mutate("take name"); take.name = value end
    return true, take.name
  end
  error("stub: take key " .. key)
end
function reaper.GetSetMediaItemInfo_String(item, key, value, set)
  assert(key:sub(1, 6) == "P_EXT:", key)
  if set then mutate("item ext"); item.ext[key] = value end
  return item.ext[key] ~= nil, item.ext[key] or ""
end
function reaper.GetMediaItemInfo_Value(item, key)
  if key == "D_POSITION" then return qn_to_time(item.start_qn) end
  if key == "D_LENGTH" then return qn_to_time(item.end_qn) - qn_to_time(item.start_qn) end
  error("stub: item value " .. key)
end
function reaper.TimeMap2_timeToQN(proj, t) return t * CONFIG.tempo / 60 end
function reaper.TimeMap_GetTimeSigAtTime(proj, t)
  return CONFIG.ts_num, CONFIG.ts_den, CONFIG.tempo
end
function reaper.Master_GetTempo() return CONFIG.tempo end
function reaper.format_timestr_pos(t, buf, mode)
  assert(mode == 2, "measures.beats")
  local qn, bar_qn = t * CONFIG.tempo / 60, CONFIG.ts_num * 4 / CONFIG.ts_den
  local bar = math.floor(qn / bar_qn)
  return string.format("%d.%d.00", bar + 1, math.floor((qn - bar * bar_qn) * CONFIG.ts_den / 4) + 1)
end
function reaper.MIDI_GetHash(take, notes_only, _)
  local h = 7
  for _, n in ipairs(take.notes) do
    for _, v in ipairs({ n[1], n[2], n[3], n[4], n[5], n[6] and 1 or 0 }) do
      h = (h * 31 + math.floor(v)) % 4294967296
    end
  end
  return true, string.format("%08X", h)
end
function reaper.MIDI_CountEvts(take) return 1, #take.notes, 0, 0 end
function reaper.MIDI_GetNote(take, index)
  local n = take.notes[index + 1]
  if not n then return false end
  return true, false, n[6], n[1], n[2], n[3], n[4], n[5]
end
function reaper.MIDI_GetProjQNFromPPQPos(take, ppq) return take.item.start_qn + ppq / PPQ end
function reaper.MIDI_GetPPQPosFromProjQN(take, qn) return (qn - take.item.start_qn) * PPQ end
function reaper.GetMediaItemTakeByGUID(proj, guid)
  for _, track in ipairs(tracks) do
    for _, item in ipairs(track.items) do
      if item.take.guid == guid then return item.take end
    end
  end
end
function reaper.GetMediaItemTake_Item(take) return take.item end
function reaper.GetMediaItem_Track(item) return item.track end
function reaper.GetMediaTrackInfo_Value(track, key)
  assert(key == "IP_TRACKNUMBER", key)
  return index_of(track)
end
function reaper.CountTracks(proj) return #tracks end
function reaper.GetTrack(proj, index) return tracks[index + 1] end
function reaper.InsertTrackAtIndex(index, defaults)
  mutate("insert track")
  table.insert(tracks, index + 1, new_track(""))
  record("insert_track", index)
end
function reaper.GetSetMediaTrackInfo_String(track, key, value, set)
  if key == "P_NAME" then
    if set then mutate("track name"); track.name = value; record("track_name", value) end
    return true, track.name
  end
  assert(key:sub(1, 6) == "P_EXT:", key)
  if set then mutate("track ext"); track.ext[key] = value end
  return track.ext[key] ~= nil, track.ext[key] or ""
end
function reaper.CountTrackMediaItems(track) return #track.items end
function reaper.GetTrackMediaItem(track, index) return track.items[index + 1] end
function reaper.DeleteTrackMediaItem(track, item)
  mutate("delete item")
  for i, it in ipairs(track.items) do
    if it == item then table.remove(track.items, i) end
  end
  record("delete_item", track.name, item.take.guid)
  return true
end
function reaper.CreateNewMIDIItemInProj(track, start, stop, qn)
  mutate("create item")
  assert(qn == true, "positions in quarter notes")
  created = created + 1
  local item = new_item(track, start, stop, new_take("{NEW-" .. created .. "}", "", {}))
  last_created = item
  record("create_item", track.name, start, stop)
  return item
end
function reaper.MIDI_InsertNote(take, sel, muted, s, e, chan, pitch, vel, no_sort)
  mutate("insert note")
  take.notes[#take.notes + 1] = { s, e, chan, pitch, vel, muted }
  if no_sort then take.sorted = false end
  record("note", take.item.track.name, s, e, chan, pitch, vel, no_sort)
  return true
end
function reaper.MIDI_InsertCC(take, sel, muted, ppq, chanmsg, chan, msg2, msg3)
  mutate("insert cc")
  record("cc", take.item.track.name, ppq, chanmsg, chan, msg2, msg3)
  return true
end
function reaper.MIDI_InsertTextSysexEvt(take, sel, muted, ppq, kind, text)
  mutate("insert text")
  record("text", take.item.track.name, ppq, kind, text)
  return true
end
function reaper.MIDI_Sort(take)
  mutate("sort")
  take.sorted = true
  record("sort", take.item.track.name)
end
function reaper.Undo_BeginBlock()
  undo_depth = undo_depth + 1
  record("undo_begin")
end
function reaper.Undo_EndBlock(description, flags)
  for _, track in ipairs(tracks) do
    for _, item in ipairs(track.items) do
      if not item.take.sorted then record("violation", "unsorted take at undo end") end
    end
  end
  undo_depth = undo_depth - 1
  record("undo_end", description)
end
function reaper.PreventUIRefresh(n) end
function reaper.UpdateArrange() end

-- The bridge's side, played by the harness: which clip did the script publish last?
local newest_clip = nil
local real_rename = os.rename
os.rename = function(from, to)
  local ok, err = real_rename(from, to)
  if ok then
    local seq = to:match("clip%-(%d+)%.txt$")
    if seq then
      newest_clip = { path = to, seq = seq }
      record("clip", seq)
      local file = assert(io.open(to, "rb"))  -- a copy: the script deletes superseded clips
      local copy = assert(io.open(CONFIG.sent_dir .. "/clip-" .. seq .. ".txt", "wb"))
      copy:write(file:read("a"))
      file:close()
      copy:close()
    end
  end
  return ok, err
end

local function answer(template)
  assert(newest_clip, "no clip to answer")
  os.remove(newest_clip.path)  -- consumed, as the bridge does
  local file = assert(io.open(template, "rb"))
  local text = file:read("a"):gsub("\nseq 0\n", "\nseq " .. newest_clip.seq .. "\n", 1)
  file:close()
  local dir = newest_clip.path:match("^(.*)/[^/]*$")
  local out = assert(io.open(dir .. "/result-" .. newest_clip.seq .. ".txt", "wb"))
  out:write(text)
  out:close()
end

dofile(CONFIG.script)
if CONFIG.interactive then
  local printed = 0
  for line in io.stdin:lines() do
    local command, arg = line:match("^(%a+) ?(.*)$")
    if command == "quit" then break end
    if command == "edit" then
      source_take.notes = copy_notes(CONFIG.notes)
      source_take.notes[1][4] = source_take.notes[1][4] + tonumber(arg)
    elseif command == "tick" then
      now = tonumber(arg)
      local due = deferred
      deferred = {}
      for _, fn in ipairs(due) do fn() end
      for i = printed + 1, #report do io.write(report[i], "\n") end
      printed = #report
      io.write("done\n")
      io.flush()
    end
  end
end
for i = 1, CONFIG.loops do
  now = now + 0.25
  local step = CONFIG.steps[i]
  if step then
    if step.answer then answer(step.answer) end
    if step.notes then source_take.notes = copy_notes(step.notes) end
    if step.select_created then selected = last_created end
    if step.select_none then selected = nil end
    if step.select_guid then selected = reaper.GetMediaItemTakeByGUID(0, step.select_guid).item end
  end
  local due = deferred
  deferred = {}
  for _, fn in ipairs(due) do fn() end
end
if undo_depth ~= 0 then record("violation", "undo depth " .. undo_depth .. " at the end") end
for i, track in ipairs(tracks) do
  record("final_track", i, track.name, #track.items)
  for _, item in ipairs(track.items) do
    record("final_item", track.name, item.start_qn, item.end_qn, #item.take.notes)
  end
end

local out = assert(io.open(CONFIG.state_file, "w"))
for k, v in pairs(extstate) do out:write(k, "\t", v, "\n") end
out:close()
out = assert(io.open(CONFIG.report, "w"))
out:write(table.concat(report, "\n"), "\n")
out:close()
"""


def lua_literal(value: object) -> str:
    """`value` (None, bool, number, str, sequence, mapping) as a Lua expression."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, Mapping):
        items = ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, Sequence):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    raise TypeError(type(value).__name__)
