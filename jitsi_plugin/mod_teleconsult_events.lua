-- mod_teleconsult_events: report MUC room events to the teleconsult backend.
--
-- Load on a MUC component (Prosody 0.12+):
--
--   Component "conference.meet.example.org" "muc"
--       modules_enabled = { "teleconsult_events" }
--       teleconsult_events_url = "https://consult.example.org/api/jitsi/events"
--       teleconsult_events_secret = "long random shared secret"
--
-- For every room created, room destroyed, occupant joined and occupant left
-- it POSTs one JSON object (field names of jitsi-contrib's event_sync, plus a
-- unique event_id) to teleconsult_events_url. Each request is signed:
--
--   X-Teleconsult-Timestamp: <unix seconds>
--   X-Teleconsult-Signature: sha256=<hex HMAC-SHA256(secret, timestamp .. "." .. body)>
--
-- Delivery is asynchronous (net.http) and retried with exponential back-off
-- when the backend is unreachable, times out, or answers 408/425/429/5xx.
-- Other answers (e.g. 401) are final: the event is dropped with a log line.
-- Retries re-send the same event (same event_id; delivery_attempt counts up)
-- with a fresh timestamp and signature, so the backend can deduplicate.
--
-- Only plain Prosody APIs are used; no Jitsi Lua library is required. When
-- Jitsi's token authentication put a user context on the session
-- (session.jitsi_meet_context_user), its id is reported. Display names never
-- are (neither the token's nor the presence's nick): ids and counts are all the
-- backend needs, and a patient's name is not the server's to hold.

-- jitsi_plugin/.luacheckrc declares Prosody's module API; run `luacheck .` from jitsi_plugin/.

local http = require "net.http";
local json = require "util.json";
local array = require "util.array";
local hashes = require "util.hashes";
local hex = require "util.hex";
local new_id = require "util.id".long;
local jid_split = require "util.jid".split;
local jid_bare = require "util.jid".bare;

local os_time = os.time;
local s_format = string.format;
local m_min = math.min;
local m_random = math.random;

-- Options -------------------------------------------------------------------

local events_url = module:get_option_string("teleconsult_events_url");
local events_secret = module:get_option_string("teleconsult_events_secret");
-- Send "Authorization: Bearer <secret>" instead of the HMAC signature headers.
local use_bearer = module:get_option_boolean("teleconsult_events_bearer", false);
-- Default budget: 1+2+4+8+16+32+64 s = 127 s of retries after the first attempt.
local max_retries = module:get_option_number("teleconsult_events_max_retries", 7);
local retry_base_delay = module:get_option_number("teleconsult_events_retry_delay", 1);
local retry_max_delay = module:get_option_number("teleconsult_events_retry_max_delay", 64);
local request_timeout = module:get_option_number("teleconsult_events_timeout", 10);
-- Rooms on this component are Jitsi breakout rooms (default: host starts with "breakout.").
local is_breakout = module:get_option_boolean("teleconsult_events_is_breakout",
	module.host:sub(1, 9) == "breakout.");
-- Bare JIDs or domains whose occupants are never reported (e.g. a health-check
-- user, a hidden recorder domain). Focus (jicofo) is always ignored.
local ignored_jids = module:get_option_set("teleconsult_events_ignore_jids", {});
local health_check_prefix = module:get_option_string("teleconsult_events_health_check_prefix",
	"__jicofo-health-check");
-- Upper bound of occupants remembered per room for the all_occupants list.
local max_remembered_occupants = module:get_option_number("teleconsult_events_max_occupants_listed", 500);

if not events_url or events_url == "" then
	module:log("error", "teleconsult_events_url is not set: refusing to load mod_teleconsult_events");
	error("mod_teleconsult_events: teleconsult_events_url is required");
end
if not events_url:match("^https?://") then
	module:log("error", "teleconsult_events_url must be an http(s):// URL: refusing to load mod_teleconsult_events");
	error("mod_teleconsult_events: teleconsult_events_url must be http(s)");
end
if not events_secret or events_secret == "" then
	module:log("error", "teleconsult_events_secret is not set: refusing to load mod_teleconsult_events");
	error("mod_teleconsult_events: teleconsult_events_secret is required");
end
if #events_secret < 32 then
	module:log("warn", "teleconsult_events_secret is shorter than 32 characters; use a long random secret");
end
if max_retries < 0 or retry_base_delay <= 0 or retry_max_delay <= 0 or request_timeout <= 0 then
	module:log("error", "teleconsult_events_max_retries must be >= 0 and the delays and timeout > 0:"
		.. " refusing to load mod_teleconsult_events");
	error("mod_teleconsult_events: invalid retry options");
end

-- Filters -------------------------------------------------------------------

local mod_muc = module:depends("muc");

local function room_name_of(room)
	return (jid_split(room.jid));
end

local function is_ignored_room(room)
	local name = room_name_of(room);
	return name == nil or name:sub(1, #health_check_prefix) == health_check_prefix;
end

-- Jicofo joins every conference as "focus" (focus@auth.<domain>, nick "focus").
local function is_ignored_occupant(occupant)
	local _, _, nick = jid_split(occupant.nick);
	if nick == "focus" then return true; end
	local bare = occupant.bare_jid or (occupant.jid and jid_bare(occupant.jid));
	if not bare then return false; end
	local node, host = jid_split(bare);
	if node == "focus" then return true; end
	return ignored_jids:contains(bare) or (host ~= nil and ignored_jids:contains(host));
end

local function active_occupants_count(room)
	local count = 0;
	for _, occupant in room:each_occupant() do
		if not is_ignored_occupant(occupant) then
			count = count + 1;
		end
	end
	return count;
end

-- Per-room state ------------------------------------------------------------
-- Kept on the room object itself (never in room._data, which persistent rooms
-- save), so it survives a reload of this module but goes with the room.

local STATE_FIELD = "teleconsult_events_state";

local function state_of(room)
	local state = room[STATE_FIELD];
	if not state then
		state = { created_at = os_time(), announced = false, present = {}, all = array() };
		room[STATE_FIELD] = state;
	end
	return state;
end

-- Rooms that already exist when the module is first loaded were not created
-- now: never announce them, and their creation time is unknown.
local function adopt_room(room)
	if room[STATE_FIELD] then return; end
	local state = state_of(room);
	state.announced = true;
	state.created_at = nil;
end

-- Delivery ------------------------------------------------------------------

local pending = 0; -- events not yet delivered nor given up

local function is_retryable(code)
	return code == 0 or code == 408 or code == 425 or code == 429 or code >= 500;
end

local function retry_delay(attempt)
	-- attempt 1 waits base, attempt 2 waits 2*base, ... capped; up to 10% jitter.
	local delay = m_min(retry_base_delay * 2 ^ (attempt - 1), retry_max_delay);
	return delay * (1 + m_random() * 0.1);
end

local function request_headers(body)
	local headers = { ["Content-Type"] = "application/json" };
	if use_bearer then
		headers["Authorization"] = "Bearer " .. events_secret;
	else
		local timestamp = s_format("%d", os_time());
		local mac = hashes.hmac_sha256(events_secret, timestamp .. "." .. body);
		headers["X-Teleconsult-Timestamp"] = timestamp;
		headers["X-Teleconsult-Signature"] = "sha256=" .. hex.encode(mac);
	end
	return headers;
end

local attempt_delivery;

local function on_attempt_done(job, code, reason)
	if code >= 200 and code < 300 then
		pending = pending - 1;
		module:log("debug", "Delivered %s %s (attempt %d)", job.event_name, job.event_id, job.attempt);
		return;
	end
	local what = code == 0 and tostring(reason) or ("HTTP " .. code);
	if not is_retryable(code) then
		pending = pending - 1;
		module:log("error", "Backend refused %s %s with %s: not retrying"
			.. " (check teleconsult_events_secret and the clock)", job.event_name, job.event_id, what);
		return;
	end
	if job.attempt > max_retries then
		pending = pending - 1;
		module:log("error", "Giving up on %s %s after %d attempts: %s",
			job.event_name, job.event_id, job.attempt, what);
		return;
	end
	local delay = retry_delay(job.attempt);
	module:log("warn", "Delivery of %s %s failed (%s), retry %d/%d in %.1fs",
		job.event_name, job.event_id, what, job.attempt, max_retries, delay);
	module:add_timer(delay, function ()
		attempt_delivery(job);
	end);
end

function attempt_delivery(job)
	job.attempt = job.attempt + 1;
	-- The attempt number is part of the signed body, so a retry within the same
	-- second never carries the signature of an earlier attempt (which the backend
	-- may have recorded as seen); event_id stays the same for deduplication.
	job.payload.delivery_attempt = job.attempt;
	local body = json.encode(job.payload);
	local finished = false;
	local timeout_timer;
	local request = http.request(events_url, {
		method = "POST";
		headers = request_headers(body);
		body = body;
		suppress_errors = true;
	}, function (response_body, code)
		if finished then return; end
		finished = true;
		if timeout_timer then timeout_timer:stop(); end
		on_attempt_done(job, tonumber(code) or 0, response_body);
	end);
	if not finished then
		timeout_timer = module:add_timer(request_timeout, function ()
			if finished then return; end
			finished = true;
			if request then http.destroy_request(request); end
			on_attempt_done(job, 0, "timeout");
		end);
	end
end

local function send_event(payload)
	payload.event_id = new_id();
	local job = {
		event_id = payload.event_id;
		event_name = payload.event_name;
		payload = payload;
		attempt = 0;
	};
	pending = pending + 1;
	attempt_delivery(job);
end

-- Payloads ------------------------------------------------------------------

local function room_payload(event_name, room)
	return {
		event_name = event_name;
		room_name = room_name_of(room);
		room_jid = room.jid;
		is_breakout = is_breakout;
	};
end

local function occupant_record(occupant, origin)
	local context = origin and origin.jitsi_meet_context_user;
	local id = type(context) == "table" and context.id or nil;
	return {
		id = id ~= nil and tostring(id) or nil;
		-- The real JID; after the last session left only the bare JID remains.
		occupant_jid = occupant.jid or occupant.bare_jid;
	};
end

local function occupant_copy(record)
	return {
		id = record.id;
		occupant_jid = record.occupant_jid;
		joined_at = record.joined_at;
		left_at = record.left_at;
	};
end

-- Prosody fires muc-occupant-joined before muc-room-created for the occupant
-- whose presence creates the room; announcing here keeps "created" first.
local function announce_room(room)
	local state = state_of(room);
	if state.announced then return state; end
	state.announced = true;
	local payload = room_payload("muc-room-created", room);
	payload.created_at = state.created_at;
	send_event(payload);
	return state;
end

-- Hooks ---------------------------------------------------------------------
-- Handlers only observe and never return a value, so they never stop other
-- handlers. Higher priority runs earlier.
--   muc-room-created, muc-occupant-joined: -100, after modules that adjust the
--     room or the occupant at default priority (0).
--   muc-occupant-left: 1, before mod_muc's own handler at -1 that destroys an
--     empty non-persistent room, so "left" is reported before "destroyed".
--   muc-room-destroyed: 100, before mod_muc forgets the room (priority 0).

module:hook("muc-room-created", function (event)
	local room = event.room;
	if is_ignored_room(room) then return; end
	announce_room(room);
end, -100);

module:hook("muc-occupant-joined", function (event)
	local room, occupant = event.room, event.occupant;
	if is_ignored_room(room) then return; end
	local state = announce_room(room);
	if is_ignored_occupant(occupant) then return; end

	local record = occupant_record(occupant, event.origin);
	record.joined_at = os_time();
	state.present[occupant.nick] = record;
	if #state.all < max_remembered_occupants then
		state.all:push(record);
	end

	local payload = room_payload("muc-occupant-joined", room);
	payload.active_occupants_count = active_occupants_count(room);
	payload.occupant = occupant_copy(record);
	send_event(payload);
end, -100);

module:hook("muc-occupant-left", function (event)
	local room, occupant = event.room, event.occupant;
	if is_ignored_room(room) or is_ignored_occupant(occupant) then return; end

	local state = state_of(room);
	local record = state.present[occupant.nick] or occupant_record(occupant, event.origin);
	state.present[occupant.nick] = nil;
	record.left_at = os_time();

	local payload = room_payload("muc-occupant-left", room);
	payload.active_occupants_count = active_occupants_count(room);
	payload.occupant = occupant_copy(record);
	send_event(payload);
end, 1);

module:hook("muc-room-destroyed", function (event)
	local room = event.room;
	if is_ignored_room(room) then return; end
	local state = room[STATE_FIELD];
	room[STATE_FIELD] = nil;

	local payload = room_payload("muc-room-destroyed", room);
	payload.created_at = state and state.created_at or nil;
	payload.destroyed_at = os_time();
	local all = array();
	if state then
		for _, record in ipairs(state.all) do
			all:push(occupant_copy(record));
		end
	end
	payload.all_occupants = all;
	send_event(payload);
end, 100);

-- A persistent room brought back from storage was not created now.
module:hook("muc-room-restored", function (event)
	adopt_room(event.room);
end);

for room in mod_muc.live_rooms() do
	adopt_room(room);
end

module:log("info", "Reporting room events to %s (%s, up to %d retries)", events_url,
	use_bearer and "bearer token" or "HMAC-SHA256 signature", max_retries);

module:hook_global("server-stopping", function ()
	if pending > 0 then
		module:log("warn", "Shutting down with %d room event(s) not delivered", pending);
	end
end);
