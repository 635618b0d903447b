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
	-- (= jitsi_app_secret: 32+ characters, none of / \ " ' or a backquote, which the
	-- jitsi-meet-tokens installer refuses; python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
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
	-- Never "muc_allowners" here or anywhere (it makes everyone owner). If the host
	-- loads Jitsi's "muc_wait_for_host", it must not make token holders owners:
	wait_for_host_disable_auto_owners = true
	muc_room_locking = false
	muc_room_default_public_jids = true

	-- mod_teleconsult_events (see jitsi_plugin/README.md for every option)
	teleconsult_events_url = "https://consult.example.org/api/jitsi/events"
	teleconsult_events_secret = "CHANGE-ME-long-random-events-secret" -- not the Jitsi app_secret
	-- teleconsult_events_max_retries = 7       -- 1+2+4+...+64 s: about 2 minutes
	-- teleconsult_events_retry_delay = 1       -- seconds before the first retry
	-- teleconsult_events_timeout = 10          -- seconds per HTTP attempt
	-- teleconsult_events_ignore_jids = { "recorder.meet.example.org" } -- e.g. a hidden Jibri domain

-- Who is moderator (jitsi_plugin/README.md, "Who becomes moderator")
--
-- Prosody alone ignores the token's affiliation and moderator claims; jicofo decides, and
-- by default makes the first participant in the room owner (moderator), a patient who
-- joins first included. teleconsult issues context.user.affiliation = "owner" and
-- moderator = true for the clinician, "member" and false for the patient; they count only
-- when:
--
--   1. "token_affiliation" is enabled on the MUC component (above): it sets each occupant's
--      affiliation from the token (owner for the clinician, member for the patient);
--   2. jicofo makes no one owner by itself: append jitsi_plugin/jicofo-snippet.conf to
--      /etc/jitsi/jicofo/jicofo.conf (enable-auto-owner = false, and jicofo's own
--      authentication off: tokens are checked by Prosody alone), and remove any
--      org.jitsi.jicofo.auth.URL line from sip-communicator.properties;
--   3. "muc_allowners" is enabled nowhere, and "muc_wait_for_host" only with
--      wait_for_host_disable_auto_owners = true (both make every token holder owner).
--
-- Then restart: systemctl restart prosody jicofo
-- Check: teleconsult check --jitsi-config THIS-FILE --jicofo-config /etc/jitsi/jicofo/jicofo.conf
--
-- Logs: when Prosody refuses a token it logs the whole token (with the display name it
-- carries) at error level: keep /var/log/prosody short-lived (docs/operations.md).
