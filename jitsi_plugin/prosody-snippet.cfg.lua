-- Sample Prosody configuration for a Jitsi Meet host used by teleconsult.
--
-- Not a complete file: merge these settings into the host's existing
-- /etc/prosody/conf.avail/meet.example.org.cfg.lua (written by the jitsi-meet
-- Debian packages), keeping the lines marked "..." as they are there.
-- Replace meet.example.org, consult.example.org and both secrets.
--
-- Needs: jitsi-meet-tokens (token authentication, mod_token_verification),
-- jitsi-contrib's mod_token_affiliation (https://github.com/jitsi-contrib/prosody-plugins),
-- and this directory (mod_teleconsult_events.lua) somewhere on plugin_paths.

plugin_paths = {
	"/usr/share/jitsi-meet/prosody-plugins/";     -- Jitsi's modules; put mod_token_affiliation.lua here
	"/usr/local/share/teleconsult/jitsi_plugin/"; -- mod_teleconsult_events.lua
}

-- ... (muc_mapper_domain_base, external_service_*, etc. as installed)

VirtualHost "meet.example.org"
	-- Only holders of a JWT signed by teleconsult may join (no anonymous users,
	-- no guest domain). The token's room claim is checked by token_verification.
	authentication = "token"
	app_id = "teleconsult"                       -- = JWT iss and aud (see DESIGN.md section 3)
	app_secret = "CHANGE-ME-jitsi-app-secret"    -- HS256 key shared with teleconsult
	allow_empty_token = false
	asap_accepted_issuers = { "teleconsult" }
	asap_accepted_audiences = { "teleconsult" }
	-- Our tokens carry sub = the Jitsi domain; with this on, a token minted for
	-- another Jitsi domain is refused (relies on muc_mapper_domain_base).
	enable_domain_verification = true
	-- ... (ssl, modules_enabled, c2s_require_encryption, main_muc, lobby_muc, etc. as installed)

Component "conference.meet.example.org" "muc"
	restrict_room_creation = true
	modules_enabled = {
		-- ... (muc_meeting_id, muc_domain_mapper, polls, muc_rate_limit, etc. as installed)
		"token_verification";   -- Jitsi: the JWT must be valid for this very room
		"token_affiliation";    -- jitsi-contrib: owner/member from context.user.affiliation
		"teleconsult_events";   -- this project: room/occupant events to the backend
	}
	admins = { "focus@auth.meet.example.org" }
	muc_room_locking = false
	muc_room_default_public_jids = true

	-- mod_teleconsult_events (see jitsi_plugin/README.md for every option)
	teleconsult_events_url = "https://consult.example.org/api/jitsi/events"
	teleconsult_events_secret = "CHANGE-ME-long-random-events-secret" -- not the Jitsi app_secret
	-- teleconsult_events_max_retries = 7       -- 1+2+4+...+64 s: about 2 minutes
	-- teleconsult_events_retry_delay = 1       -- seconds before the first retry
	-- teleconsult_events_timeout = 10          -- seconds per HTTP attempt
	-- teleconsult_events_ignore_jids = { "recorder.meet.example.org" } -- e.g. a hidden Jibri domain

-- Who is moderator
--
-- By default Jicofo makes every authenticated participant an owner (moderator)
-- of the room, so any token holder (the patient too) could kick, mute or
-- lock. teleconsult issues context.user.affiliation = "owner" for the
-- clinician and "member" for the patient; to make that decide:
--
--   1. Turn Jicofo's auto-owner off, in /etc/jitsi/jicofo/jicofo.conf:
--          jicofo { conference { enable-auto-owner = false } }
--      (hocon -f /etc/jitsi/jicofo/jicofo.conf set jicofo.conference.enable-auto-owner false)
--      and remove any org.jitsi.jicofo.auth.URL line from sip-communicator.properties.
--   2. Enable "token_affiliation" on the MUC component (above): it sets the
--      occupant's affiliation from the token: owner when context.user.affiliation
--      is "owner" (or "moderator"/"teacher") or context.user.moderator is true,
--      member otherwise. So the patient's token must carry affiliation "member"
--      and moderator false, as teleconsult issues it.
--   3. Do not enable "muc_allowners" anywhere (it makes everyone owner).
--
-- Then restart: systemctl restart prosody jicofo
