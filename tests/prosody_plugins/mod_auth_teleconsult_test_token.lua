-- Test-only stand-in for Jitsi's token authentication (mod_auth_token), on a plain Prosody.
--
-- The client logs in with SASL PLAIN, any user name, and the JWT teleconsult minted as the
-- password. The token is checked as Jitsi does for our tokens (HS256 with app_secret, iss and
-- aud = app_id, nbf/exp), and its context.user is put on the session as
-- session.jitsi_meet_context_user, where Jitsi's token auth puts it and where
-- mod_teleconsult_events reads the occupant's id (and never its name).
--
--   VirtualHost "localhost"
--       authentication = "teleconsult_test_token"
--       app_id = "..."; app_secret = "..."
--
-- Never for production: it skips Jitsi's room check (token_verification) and everything else.

local new_sasl = require "util.sasl".new;
local jwt = require "util.jwt";

local app_id = module:get_option_string("app_id");
local app_secret = module:get_option_string("app_secret");
assert(app_id and app_secret, "app_id and app_secret are required");

local provider = {};

local function check_token(token)
	local ok, claims = jwt.verify(app_secret, token);
	if not ok then return nil, claims; end
	local now = os.time();
	if claims.iss ~= app_id or claims.aud ~= app_id then return nil, "wrong iss or aud"; end
	if type(claims.exp) ~= "number" or claims.exp < now then return nil, "expired"; end
	if type(claims.nbf) == "number" and claims.nbf > now then return nil, "not yet valid"; end
	local context = type(claims.context) == "table" and claims.context.user;
	if type(context) ~= "table" then return nil, "no context.user"; end
	return context;
end

function provider.test_password() return nil, "tokens only"; end
function provider.user_exists() return true; end
function provider.set_password() return nil, "tokens only"; end
function provider.create_user() return nil, "tokens only"; end
function provider.delete_user() return nil, "tokens only"; end
function provider.users() return function() return nil; end; end

function provider.get_sasl_handler(session)
	return new_sasl(module.host, {
		plain_test = function(_, username, password)
			local context, err = check_token(password);
			if not context then
				module:log("info", "Token refused for %s: %s", username, tostring(err));
				return false, true;
			end
			session.jitsi_meet_context_user = context;
			return true, true;
		end;
	});
end

module:provides("auth", provider);
