-- AccoBridge.lua: the REAPER companion ReaScript of AccoBridge (chords + piano accompaniment).
--
-- Install: Actions > Show action list > New action > Load ReaScript..., pick this file, run it.
-- It keeps running in the background (a deferred loop); run the action again to stop it.
--
-- What it does, through a spool folder shared with the AccoBridge bridge:
--  * It watches one MIDI take, remembered by its GUID: the active take of the MIDI item the user
--    selects last, on a track of their own. Selecting the AccoBridge items (REAPER selects them
--    after an import), other items or nothing keeps the watch where it is.
--  * When the watched take is new to it or its notes change (MIDI_GetHash), it writes the
--    take's notes, in quarter notes from the item start, with its track's name and the bar the
--    item starts in, as clip-<seq>.txt (written as clip-<seq>.tmp, then renamed, so the bridge
--    never reads half a file).
--  * When the bridge answers result-<seq>.txt for the newest clip, it inserts each part as a
--    new MIDI item at the source item's position on a track of its own ("AccoBridge Chords",
--    "AccoBridge Piano", created below the source track on first use), all in one undo point.
--    Items it made earlier for the same source take are replaced; nothing else is touched.
--    Chord symbols become text events in the chords item, a part's control changes (the
--    piano's sustain pedal, CC 64) CC events in its item. An error answer goes to the console,
--    and so does a clip left unanswered for ANSWER_WAIT_S, with the bridge's reason when it
--    refused the clip (rejected/clip-<seq>.txt.reason).
--
-- Spool folder: <ResourcePath>/AccoBridge/spool, or the ExtState "AccoBridge"/"spool_dir".
--   The bridge must watch the same folder (accobridge ... --reaper-spool DIR).
-- Options: the ExtState "AccoBridge"/"options", one line of JSON object, is sent as it is.
-- Format: see bridge/reaper/spool_format.py. Text read from files is parsed with string
--   patterns only: nothing in a file is ever executed. Lua 5.3/5.4, REAPER API only.

local r = reaper

local EXT = "AccoBridge"
local HEADER = "ACCOBRIDGE-SPOOL 1"
local POLL_S = 0.2 -- seconds between looks at the selection and the spool folder
local ANSWER_WAIT_S = 10 -- a clip unanswered for this long (and no progress) gets a console line
local MAX_SEQ_LEAD_MS = 3600 * 1000 -- the bridge refuses a seq further ahead of its clock
local MAX_REASON_BYTES = 1024
local MAX_SEND_NOTES = 10001 -- one more than the bridge accepts: it then answers "too large"
local MAX_RESULT_BYTES = 64 * 1024 * 1024
local MAX_NAME_CHARS = 60 -- at most 240 bytes of UTF-8: within the format's 256
local MAX_REMEMBERED = 64 -- takes whose last sent state is remembered
local TRACK_KEY = "P_EXT:AccoBridge_part" -- on tracks the script made: the part they hold
local ITEM_KEY = "P_EXT:AccoBridge_source" -- on items the script made: the source take GUID
local TITLES = { chords = "AccoBridge Chords", piano = "AccoBridge Piano" }

local sent, sent_order = {}, {} -- take GUID -> signature of what was last sent for it
local pending = nil -- the newest clip sent: { seq, guid, start_qn, length, sent_at, warned }
local watched = nil -- GUID of the take whose changes are sent
local last_seq = 0
local last_poll = -math.huge
local reported = {}

-- ---- small helpers -------------------------------------------------------------------------

local function console(message)
  r.ShowConsoleMsg("AccoBridge: " .. message .. "\n")
end

local function report(message) -- once per distinct message: the loop runs five times a second
  if not reported[message] then
    reported[message] = true
    console(message)
  end
end

local function int(x)
  return string.format("%d", math.floor(x + 0.5))
end

local function num(x)
  -- Always '.' as the decimal point, whatever the C locale says.
  return (string.format("%.10g", x):gsub(",", "."))
end

local function parse_int(text)
  if not text or not text:match("^%-?%d+$") or #text > 15 then return nil end
  return math.tointeger(tonumber(text))
end

local function parse_num(text)
  if not text or not text:match("^%-?%d+%.?%d*[eE]?[-+]?%d*$") then return nil end
  local x = tonumber(text)
  if not x or x ~= x or x == math.huge or x == -math.huge then return nil end
  return x
end

local function clean_text(text, max_chars)
  local s = tostring(text or ""):gsub("%c", " ")
  if not utf8.len(s) then s = s:gsub("[\128-\255]", "?") end
  if utf8.len(s) > max_chars then s = s:sub(1, utf8.offset(s, max_chars + 1) - 1) end
  return s
end

local function spool_dir()
  local dir = r.GetExtState(EXT, "spool_dir")
  if dir == "" then dir = r.GetResourcePath() .. "/AccoBridge/spool" end
  return dir
end

local function file_path(kind, seq)
  return spool_dir() .. "/" .. kind .. "-" .. int(seq) .. ".txt"
end

local function exists(path)
  local file = io.open(path, "rb")
  if file then file:close() end
  return file ~= nil
end

local function title(part)
  return TITLES[part] or ("AccoBridge " .. part:gsub("^%l", string.upper))
end

-- ---- state kept across runs of the script (not across REAPER sessions) -----------------------

local function remember_sent(guid, signature)
  if sent[guid] == nil then
    sent_order[#sent_order + 1] = guid
    if #sent_order > MAX_REMEMBERED then sent[table.remove(sent_order, 1)] = nil end
  end
  sent[guid] = signature
  local entries = {}
  for _, g in ipairs(sent_order) do entries[#entries + 1] = g .. "=" .. sent[g] end
  r.SetExtState(EXT, "sent", table.concat(entries, ";"), false)
end

local function save_pending()
  local value = ""
  if pending then
    value = int(pending.seq) .. " " .. pending.guid .. " " .. num(pending.start_qn) .. " "
      .. num(pending.length)
  end
  r.SetExtState(EXT, "pending", value, false)
end

local function load_state()
  for guid, signature in r.GetExtState(EXT, "sent"):gmatch("([^;=]+)=([^;]*)") do
    remember_sent(guid, signature)
  end
  local seq, guid, start_qn, length =
    r.GetExtState(EXT, "pending"):match("^(%d+) (%S+) (%S+) (%S+)$")
  if seq and parse_num(start_qn) and parse_num(length) then
    pending = { seq = parse_int(seq), guid = guid, start_qn = parse_num(start_qn),
                length = parse_num(length), sent_at = r.time_precise() }
  end
  local guid_watched = r.GetExtState(EXT, "watched")
  if guid_watched ~= "" then watched = guid_watched end
end

local function next_seq()
  -- Rising across restarts without relying on saved state: milliseconds since 1970 (the loop
  -- sends at most five clips a second), and above anything sent before -- but never more than
  -- an hour ahead of the clock, which the bridge would refuse: after the clock was set back,
  -- the stored seq would otherwise keep every clip refused until the clock caught up.
  local clock = os.time() * 1000
  local before = math.max(tonumber(r.GetExtState(EXT, "seq")) or 0, last_seq)
  local seq = math.max(clock, math.min(math.floor(before), clock + MAX_SEQ_LEAD_MS - 1) + 1)
  last_seq = seq
  r.SetExtState(EXT, "seq", int(seq), true)
  return seq
end

-- ---- sending the selected take ----------------------------------------------------------------

local function item_span_qn(item)
  local pos = r.GetMediaItemInfo_Value(item, "D_POSITION")
  local len = r.GetMediaItemInfo_Value(item, "D_LENGTH")
  local start_qn = r.TimeMap2_timeToQN(0, pos)
  return pos, start_qn, r.TimeMap2_timeToQN(0, pos + len) - start_qn
end

local function track_number(track)
  return math.floor(r.GetMediaTrackInfo_Value(track, "IP_TRACKNUMBER")) -- 1-based; <= 0: none
end

local function track_name(track)
  local _, name = r.GetSetMediaTrackInfo_String(track, "P_NAME", "", false)
  if name == "" then name = "Track " .. int(track_number(track)) end -- as REAPER shows it
  return clean_text(name, MAX_NAME_CHARS)
end

local function clip_lines(seq, item, take)
  local pos, start_qn, length = item_span_qn(item)
  local ts_num, ts_den, tempo = r.TimeMap_GetTimeSigAtTime(0, pos)
  if not tempo or tempo <= 0 then tempo = r.Master_GetTempo() end
  local lines = {
    HEADER, "seq " .. int(seq), "kind clip",
    "name " .. clean_text(r.GetTakeName(take), MAX_NAME_CHARS),
    "track " .. track_name(r.GetMediaItem_Track(item)),
    "length_beats " .. num(length),
    "tempo_bpm " .. num(tempo),
    "ts " .. int(ts_num) .. " " .. int(ts_den),
  }
  -- The bar as REAPER shows it (measures.beats, the project's measure offset included).
  local bar = parse_int(r.format_timestr_pos(pos, "", 2):match("^(%-?%d+)%D"))
  if bar and math.abs(bar) <= 1000000 then lines[#lines + 1] = "bar " .. int(bar) end
  local options = r.GetExtState(EXT, "options")
  if options:match("^{") and not options:find("%c") then lines[#lines + 1] = "options " .. options end
  local _, note_count = r.MIDI_CountEvts(take)
  local count = 0
  for i = 0, note_count - 1 do
    local ok, _, muted, start_ppq, end_ppq, chan, pitch, vel = r.MIDI_GetNote(take, i)
    if ok and not muted then
      local start = r.MIDI_GetProjQNFromPPQPos(take, start_ppq) - start_qn
      local stop = r.MIDI_GetProjQNFromPPQPos(take, end_ppq) - start_qn
      if start < 0 and start > -1e-9 then start = 0 end -- rounding at the item start
      if start >= 0 and start < length and stop > start then
        if count == MAX_SEND_NOTES then break end
        count = count + 1
        lines[#lines + 1] = "note " .. int(pitch) .. " " .. num(start) .. " "
          .. num(stop - start) .. " " .. int(math.max(1, math.min(127, vel))) .. " "
          .. int(chan + 1)
      end
    end
  end
  lines[#lines + 1] = "end"
  return lines, start_qn, length
end

local function write_clip(dir, seq, lines)
  local temp = dir .. "/clip-" .. int(seq) .. ".tmp"
  local file, err = io.open(temp, "wb")
  if not file then return false, err end
  local ok, write_err = file:write(table.concat(lines, "\n"), "\n")
  file:close()
  if ok then ok, write_err = os.rename(temp, dir .. "/clip-" .. int(seq) .. ".txt") end
  if not ok then
    os.remove(temp)
    return false, write_err
  end
  return true
end

local function take_guid(take)
  local _, guid = r.GetSetMediaItemTakeInfo_String(take, "GUID", "", false)
  return guid
end

local function send(item, take, guid, signature)
  local dir = spool_dir()
  r.RecursiveCreateDirectory(dir, 0)
  local seq = next_seq()
  local lines, start_qn, length = clip_lines(seq, item, take)
  if length <= 0 then
    remember_sent(guid, signature) -- an empty item: nothing to accompany
    return
  end
  local ok, err = write_clip(dir, seq, lines)
  if not ok then
    report("cannot write to the spool folder " .. dir .. ": " .. tostring(err))
    return
  end
  -- An older clip the bridge has not read yet is unwanted now: only the newest counts.
  if pending then os.remove(file_path("clip", pending.seq)) end
  pending = { seq = seq, guid = guid, start_qn = start_qn, length = length,
              sent_at = r.time_precise() }
  save_pending()
  remember_sent(guid, signature)
end

local function is_ours(item)
  local _, made_by_us = r.GetSetMediaItemInfo_String(item, ITEM_KEY, "", false)
  local _, part = r.GetSetMediaTrackInfo_String(r.GetMediaItem_Track(item), TRACK_KEY, "", false)
  return made_by_us ~= "" or part ~= ""
end

local function follow_selection()
  -- Only the user's own MIDI item moves the watch: never an accompaniment (it would be sent
  -- back), nor an empty selection or an audio item.
  local item = r.GetSelectedMediaItem(0, 0)
  if not item or is_ours(item) then return end
  local take = r.GetActiveTake(item)
  if not take or not r.TakeIsMIDI(take) then return end
  local guid = take_guid(take)
  if guid ~= watched then
    watched = guid
    r.SetExtState(EXT, "watched", guid, false)
  end
end

local function check_watched()
  local take = watched and r.GetMediaItemTakeByGUID(0, watched)
  if not take then return end -- none yet, or deleted (an undo may bring it back)
  local item = r.GetMediaItemTake_Item(take)
  local _, hash = r.MIDI_GetHash(take, true, "")
  local _, _, length = item_span_qn(item)
  local signature = hash .. "/" .. num(length)
  if sent[watched] ~= signature then send(item, take, watched, signature) end
end

-- ---- reading an answer ------------------------------------------------------------------------

local function split_lines(text)
  local lines = {}
  if text:sub(-1) ~= "\n" then text = text .. "\n" end
  for line in text:gmatch("(.-)\n") do lines[#lines + 1] = (line:gsub("\r$", "")) end
  return lines
end

local function parse_answer(text, seq)
  local lines = split_lines(text)
  local function bad(i, what) return nil, "line " .. i .. ": " .. what end
  if lines[1] ~= HEADER then return bad(1, "not an AccoBridge spool file of version 1") end
  if lines[2] ~= "seq " .. int(seq) then return bad(2, "expected seq " .. int(seq)) end
  local kind = (lines[3] or ""):match("^kind (%l+)$")
  if kind ~= "result" and kind ~= "error" then return bad(3, "expected a result or an error") end
  local answer = { kind = kind, parts = {}, chords = {}, message = "" }
  local part = nil
  for i = 4, #lines do
    local line = lines[i]
    local key, rest = line:match("^([%l_]+) (.*)$")
    if line == "end" then
      if i ~= #lines then return bad(i + 1, "text after 'end'") end
      answer.complete = true
      break
    elseif line:find("%c") then
      return bad(i, "control character")
    elseif key == "message" then
      answer.message = rest
    elseif kind == "error" and key == "code" then
      answer.code = parse_int(rest)
    elseif kind == "result" and key == "part" then
      local name, channel = rest:match("^([%l%d_]+) (%d+)$")
      if not name or #name > 32 or answer.chords[1] then return bad(i, "bad part line") end
      part = { name = name, channel = parse_int(channel), notes = {}, controls = {} }
      answer.parts[#answer.parts + 1] = part
    elseif kind == "result" and key == "note" then
      local p, s, d, v, c = rest:match("^(%S+) (%S+) (%S+) (%S+) (%S+)$")
      p, s, d, v, c = parse_int(p), parse_num(s), parse_num(d), parse_int(v), parse_int(c)
      if not (part and p and s and d and v and c and p >= 0 and p <= 127 and s >= 0 and d > 0
              and v >= 1 and v <= 127 and c >= 1 and c <= 16) then
        return bad(i, "bad note")
      end
      part.notes[#part.notes + 1] = { pitch = p, start = s, dur = d, vel = v, chan = c }
    elseif kind == "result" and key == "control" then
      local s, n, v, c = rest:match("^(%S+) (%S+) (%S+) (%S+)$")
      s, n, v, c = parse_num(s), parse_int(n), parse_int(v), parse_int(c)
      if not (part and s and n and v and c and s >= 0 and n >= 0 and n <= 127 and v >= 0
              and v <= 127 and c >= 1 and c <= 16) then
        return bad(i, "bad control")
      end
      part.controls[#part.controls + 1] = { start = s, controller = n, value = v, chan = c }
    elseif kind == "result" and key == "chord" then
      local s, d, symbol = rest:match("^(%S+) (%S+) (.+)$")
      s, d = parse_num(s), parse_num(d)
      if not (s and d and s >= 0 and d > 0) then return bad(i, "bad chord") end
      answer.chords[#answer.chords + 1] = { start = s, symbol = symbol }
    elseif not (kind == "result" and (key == "request" or key == "source" or key == "summary")) then
      return bad(i, "unexpected line")
    end
  end
  if not answer.complete then return nil, "incomplete file (no 'end' line)" end
  if kind == "error" and not answer.code then return nil, "error without a code" end
  return answer
end

-- ---- inserting a result -----------------------------------------------------------------------

local function source_of(job)
  -- Where the source take is now (it may have moved); where it was, if it is gone.
  local take = r.GetMediaItemTakeByGUID(0, job.guid)
  if take then
    local item = r.GetMediaItemTake_Item(take)
    local _, start_qn = item_span_qn(item)
    return r.GetMediaItem_Track(item), start_qn
  end
  return nil, job.start_qn
end

local function part_track(name, insert_at)
  -- The track the script made for this part earlier, else a new one at insert_at.
  for i = 0, r.CountTracks(0) - 1 do
    local track = r.GetTrack(0, i)
    local _, owner = r.GetSetMediaTrackInfo_String(track, TRACK_KEY, "", false)
    if owner == name then return track, track_number(track) end
  end
  r.InsertTrackAtIndex(insert_at, true)
  local track = r.GetTrack(0, insert_at)
  r.GetSetMediaTrackInfo_String(track, "P_NAME", title(name), true)
  r.GetSetMediaTrackInfo_String(track, TRACK_KEY, name, true)
  return track, insert_at + 1
end

local function remove_own_items(track, guid)
  for i = r.CountTrackMediaItems(track) - 1, 0, -1 do
    local item = r.GetTrackMediaItem(track, i)
    local _, owner = r.GetSetMediaItemInfo_String(item, ITEM_KEY, "", false)
    if owner == guid then r.DeleteTrackMediaItem(track, item) end
  end
end

local function insert_part(track, part, start_qn, length, guid, chords)
  local end_beats = length
  for _, n in ipairs(part.notes) do end_beats = math.max(end_beats, n.start + n.dur) end
  for _, c in ipairs(part.controls) do end_beats = math.max(end_beats, c.start) end
  local item = r.CreateNewMIDIItemInProj(track, start_qn, start_qn + end_beats, true)
  if not item then error("REAPER did not create a MIDI item for " .. part.name) end
  r.GetSetMediaItemInfo_String(item, ITEM_KEY, guid, true)
  local take = r.GetActiveTake(item)
  r.GetSetMediaItemTakeInfo_String(take, "P_NAME", title(part.name), true)
  for _, n in ipairs(part.notes) do
    local s = r.MIDI_GetPPQPosFromProjQN(take, start_qn + n.start)
    local e = r.MIDI_GetPPQPosFromProjQN(take, start_qn + n.start + n.dur)
    r.MIDI_InsertNote(take, false, false, s, e, n.chan - 1, n.pitch, n.vel, true)
  end
  for _, c in ipairs(part.controls) do
    r.MIDI_InsertCC(take, false, false, r.MIDI_GetPPQPosFromProjQN(take, start_qn + c.start),
      0xB0, c.chan - 1, c.controller, c.value)
  end
  for _, c in ipairs(chords) do
    r.MIDI_InsertTextSysexEvt(take, false, false, r.MIDI_GetPPQPosFromProjQN(take,
      start_qn + c.start), 1, c.symbol)
  end
  r.MIDI_Sort(take)
end

local function insert_result(answer, job)
  local source_track, start_qn = source_of(job)
  local insert_at = source_track and track_number(source_track) or 0
  if insert_at <= 0 then insert_at = r.CountTracks(0) end
  r.Undo_BeginBlock()
  r.PreventUIRefresh(1)
  local ok, err = pcall(function()
    for _, part in ipairs(answer.parts) do
      local track
      track, insert_at = part_track(part.name, insert_at)
      remove_own_items(track, job.guid)
      insert_part(track, part, start_qn, job.length, job.guid,
        part.name == "chords" and answer.chords or {})
    end
  end)
  r.PreventUIRefresh(-1)
  r.Undo_EndBlock("AccoBridge: insert accompaniment", -1)
  r.UpdateArrange()
  if not ok then console("could not insert the accompaniment: " .. tostring(err)) end
end

local function refusal(seq)
  -- The reason the bridge kept beside a clip it refused, if it kept one (first line, bounded).
  local file = io.open(spool_dir() .. "/rejected/clip-" .. int(seq) .. ".txt.reason", "rb")
  if not file then return nil end
  local text = file:read(MAX_REASON_BYTES) or ""
  file:close()
  return clean_text(text:match("^[^\n]*"), MAX_REASON_BYTES)
end

local function check_waiting(now)
  -- Say once why a clip goes unanswered; the answer is still taken if it comes.
  if pending.warned or now - pending.sent_at < ANSWER_WAIT_S then return end
  local seq = int(pending.seq)
  if exists(file_path("status", pending.seq)) then return end -- the bridge is working on it
  pending.warned = true
  local reason = refusal(pending.seq)
  if reason then
    console("the bridge refused clip " .. seq .. ": " .. reason)
  elseif exists(file_path("clip", pending.seq)) then
    console("clip " .. seq .. " has not been picked up in " .. ANSWER_WAIT_S .. " s: is "
      .. "'accobridge serve --reaper-spool' running on " .. spool_dir() .. "?")
  else
    console("the bridge took clip " .. seq .. " but has not answered in " .. ANSWER_WAIT_S
      .. " s; its log says why")
  end
end

local function check_answer(now)
  if not pending then return end
  local path = file_path("result", pending.seq)
  local file = io.open(path, "rb")
  if not file then
    check_waiting(now)
    return
  end
  local size = file:seek("end")
  local text = nil
  if size and size <= MAX_RESULT_BYTES then
    file:seek("set")
    text = file:read("a")
  end
  file:close()
  os.remove(path)
  local job = pending
  pending = nil
  save_pending()
  if not text then
    console("the answer for clip " .. int(job.seq) .. " is too large to read")
    return
  end
  local answer, err = parse_answer(text, job.seq)
  if not answer then
    console("unreadable answer from the bridge (" .. err .. ")")
  elseif answer.kind == "error" then
    console("no accompaniment (error " .. int(answer.code) .. "): " .. answer.message)
  else
    insert_result(answer, job)
  end
end

-- ---- the loop ---------------------------------------------------------------------------------

local function tick()
  local now = r.time_precise()
  if now - last_poll < POLL_S then return end
  last_poll = now
  check_answer(now)
  follow_selection()
  check_watched()
end

local function loop()
  local ok, err = pcall(tick)
  if not ok then report("internal error: " .. tostring(err)) end
  r.defer(loop)
end

load_state()
if r.set_action_options then r.set_action_options(5) end -- 1: re-run stops it, 4: toggle on
r.atexit(function()
  if r.set_action_options then r.set_action_options(8) end -- toggle off
end)
console("watching the MIDI item you select; spool folder " .. spool_dir())
loop()
