"""Remove each security rule once and see which test fails (a tool, not a test).

Not collected by pytest: the file name does not start with ``test_``. Run it by hand from the
repository root, with the project's interpreter:

    python tests/mutation/security_rules.py              # every rule (15 to 30 minutes)
    python tests/mutation/security_rules.py csrf-check   # some rules, by id
    python tests/mutation/security_rules.py --list       # the rules, nothing run
    python tests/mutation/security_rules.py --check      # is each rule's code still where it was?
    python tests/mutation/security_rules.py --markdown   # the table of docs/security-rules.md

For each rule it copies the checkout (tracked and untracked files, as they are on disk) into a
temporary directory once, replaces the rule's code there by a version without the rule, runs
the test that should catch the rule's removal with ``pytest -x`` on that copy, and puts the
file back. Your checkout is never touched. A rule is CAUGHT when a test fails, SURVIVED when every test passes (a missing
test: write one), and STALE when its code is no longer found where the table says (the code
moved: update the entry). The exit status is 1 when any rule survived or is stale.

docs/security-rules.md is the table this tool checks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Rule:
    id: str
    what: str
    file: str
    old: str  # must occur exactly once in `file`
    new: str  # the code without the rule
    tests: tuple[str, ...]  # the test(s) (pytest node ids) that catch its removal


RULES: tuple[Rule, ...] = (
    # --- web: CSRF, sessions, headers -------------------------------------------------------
    Rule("csrf-check", "CSRF token required on every cookie-authenticated state-changing request",
         "teleconsult/web/csrf.py",
         "if not expected or not isinstance(sent, str) or not secrets.compare_digest(expected, sent):",
         "if False:", ("tests/test_security.py::test_csrf_is_enforced_on_every_state_changing_form",)),
    Rule("csrf-constant-time", "CSRF token compared in constant time",
         "teleconsult/web/csrf.py", "not secrets.compare_digest(expected, sent)", "expected != sent",
         ("tests/test_constant_time.py::test_the_csrf_token_is_compared_in_constant_time",)),
    Rule("csrf-exempt-only-api", "CSRF exemption only for /api/ (Bearer or HMAC, no cookie)",
         "teleconsult/web/csrf.py", 'CSRF_EXEMPT_PREFIXES = ("/api/",)',
         'CSRF_EXEMPT_PREFIXES = ("/api/", "/consultations", "/j/", "/d/")', ("tests/test_security.py::test_csrf_is_enforced_on_every_state_changing_form",)),
    Rule("session-required", "dashboard pages and actions need a logged-in clinician",
         "teleconsult/web/auth.py", "    if clinician is None:\n        if request.method",
         "    if clinician is None:\n        clinician = (await accounts.list_clinicians(services_of(request).engine))[0]\n"
         "    if clinician is None:\n        if request.method", ("tests/test_security.py::test_totp_code_is_required_and_cannot_be_replayed",)),
    Rule("session-epoch", "a password-only (half-finished) login is not a logged-in session",
         'teleconsult/web/auth.py', '    if found is None or found.verified != verified:\n',
         '    if found is None:\n', ("tests/test_security.py::test_totp_code_is_required_and_cannot_be_replayed",)),
    Rule("stream-ends-with-session", "a live stream opened by a login session ends when that session ends (logout)",
         "teleconsult/web/sse.py", "                if not await still_allowed():\n                    break\n",
         "                pass\n",
         ("tests/test_sessions.py::test_a_live_dashboard_stream_ends_when_its_session_is_logged_out",)),
    Rule("pending-epoch", "a password reset between the password and the code restarts the login",
         'teleconsult/accounts.py', '        await end_all_sessions(conn, clinician_id)\n',
         '', ("tests/test_login_rules.py::test_a_password_reset_between_the_password_and_the_code_sends_the_login_back_to_the_start",)),
    Rule("api-token-required", "the integrators' API needs a Bearer token",
         "teleconsult/web/auth.py", '        raise AuthenticationFailed("Bearer API token required")\n',
         '        return (await accounts.list_clinicians(services_of(request).engine))[0]\n', ("tests/test_api.py::test_api_refuses_missing_forged_and_other_clinicians_tokens",)),
    Rule("cookie-httponly", "session cookie HttpOnly", "teleconsult/web/app.py",
         "cookie_name=SESSION_COOKIE, httponly=True,", "cookie_name=SESSION_COOKIE, httponly=False,",
         ("tests/test_security.py::test_session_cookie_is_httponly_samesite_and_not_secure_on_plain_http",)),
    Rule("cookie-secure", "session cookie Secure behind https", "teleconsult/web/app.py",
         "secure=settings.secure_cookies, samesite", "secure=False, samesite", ("tests/test_security.py::test_session_cookie_is_secure_behind_tls",)),
    Rule("cookie-samesite", "session cookie SameSite=Lax", "teleconsult/web/app.py",
         'samesite="Lax", max_age', "samesite=None, max_age", ("tests/test_security.py::test_session_cookie_is_httponly_samesite_and_not_secure_on_plain_http",)),
    Rule("csp-header", "Content-Security-Policy on every response",
         'teleconsult/web/security.py', '    headers["Content-Security-Policy"] = content_security_policy(\n        settings.jitsi_origin, pdf_preview=route in PDF_PREVIEW_ROUTES)\n',
         '', ("tests/test_security.py::test_every_page_sends_strict_security_headers",)),
    Rule("csp-connect-self", "CSP: pages connect only to our origin", "teleconsult/web/security.py",
         '"connect-src \'self\'",', '"connect-src *",', ("tests/test_security.py::test_the_content_security_policy_names_only_our_origin_and_jitsis_directive_by_directive",)),
    Rule("csp-frame-src", "CSP: frames only from the Jitsi origin (and blob: PDF previews on the call page)",
         'teleconsult/web/security.py', 'f"frame-src {frames}",',
         '"frame-src *",', ("tests/test_security.py::test_the_content_security_policy_names_only_our_origin_and_jitsis_directive_by_directive",)),
    Rule("csp-form-action", "CSP: forms post only to our origin", "teleconsult/web/security.py",
         '"form-action \'self\'",', "", ("tests/test_security.py::test_the_content_security_policy_names_only_our_origin_and_jitsis_directive_by_directive",)),
    Rule("csp-base-uri", "CSP: base-uri 'none'", "teleconsult/web/security.py",
         '"base-uri \'none\'",', "", ("tests/test_security.py::test_the_content_security_policy_names_only_our_origin_and_jitsis_directive_by_directive",)),
    Rule("csp-no-inline-script", "CSP: no inline script",
         'teleconsult/web/security.py', '("script-src \'self\'", jitsi_origin)',
         '("script-src \'self\' \'unsafe-inline\'", jitsi_origin)', ("tests/test_security.py::test_every_page_sends_strict_security_headers",)),
    Rule("referrer-policy", "Referrer-Policy: no-referrer (the secret is in the fragment)",
         "teleconsult/web/security.py", '    headers["Referrer-Policy"] = "no-referrer"\n', "",
         ("tests/test_security.py::test_every_page_sends_strict_security_headers",)),
    Rule("referrer-meta", "every page carries the no-referrer meta tag (base.html)", "templates/base.html",
         '<meta name="referrer" content="no-referrer">\n', "", ("tests/test_security.py::test_every_page_tells_the_browser_to_send_no_referrer_even_without_the_header",)),
    Rule("nosniff", "X-Content-Type-Options: nosniff", "teleconsult/web/security.py",
         '    headers["X-Content-Type-Options"] = "nosniff"\n', "", ("tests/test_security.py::test_every_page_sends_strict_security_headers",)),
    Rule("frame-options", "X-Frame-Options: DENY", "teleconsult/web/security.py",
         '    headers["X-Frame-Options"] = "DENY"\n', "", ("tests/test_security.py::test_every_page_sends_strict_security_headers",)),
    Rule("coop", "Cross-Origin-Opener-Policy: same-origin", "teleconsult/web/security.py",
         '    headers["Cross-Origin-Opener-Policy"] = "same-origin"\n', "", ("tests/test_security.py::test_every_page_sends_strict_security_headers",)),
    Rule("permissions-policy", "Permissions-Policy: camera/microphone for us and Jitsi only, no geolocation",
         'teleconsult/web/security.py', 'geolocation=(), "',
         '"', ("tests/test_security.py::test_every_page_sends_strict_security_headers",)),
    Rule("hsts", "Strict-Transport-Security behind https", "teleconsult/web/security.py",
         '        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"\n',
         "        await services.drops.schedule_box_deletion(consultation.id, ended_at + grace + 86400, conn=conn)\n", ("tests/test_security.py::test_session_cookie_is_secure_behind_tls",)),
    Rule("no-store", "Cache-Control: no-store on pages and API answers", "teleconsult/web/security.py",
         '        headers["Cache-Control"] = "no-store"\n', "        pass\n", ("tests/test_security.py::test_every_page_sends_strict_security_headers",)),
    Rule("no-stack-trace", "an unexpected error shows no stack trace", "teleconsult/web/security.py",
         "    except Exception as exc:\n        if db_busy.refused_value(exc):", "    except ZeroDivisionError as exc:\n        if db_busy.refused_value(exc):",
         ("tests/test_security.py::test_an_unexpected_error_shows_a_friendly_page_without_a_stack_trace",)),
    Rule("autoescape", "pages escape what users typed (HTML autoescape)", "teleconsult/web/templating.py",
         "extensions=[\"jinja2.ext.i18n\"], undefined=jinja2.StrictUndefined,",
         "extensions=[\"jinja2.ext.i18n\"], undefined=jinja2.StrictUndefined, autoescape=False,",
         ("tests/test_security.py::test_what_someone_typed_is_shown_escaped_on_the_page",)),
    Rule("json-data-escape", "page data blocks cannot close their script tag", "teleconsult/web/templating.py",
         '.replace("<", "\\\\u003c").replace(">", "\\\\u003e")', "", ("tests/test_security.py::test_a_page_data_block_cannot_be_closed_or_broken_by_the_data_it_holds",)),
    Rule("templates-no-inline-script", "no template holds an inline script", "templates/account.html",
         '<section class="card narrow" aria-labelledby="account-title">',
         '<script>document.title = "x";</script><section class="card narrow" aria-labelledby="account-title">',
         ("tests/test_security.py::test_no_template_holds_an_inline_script_style_or_event_handler",)),
    Rule("access-log-no-path", "access log names the route, never the path",
         'teleconsult/web/access_log.py', 'request.method, _route_name(request), response.status',
         'request.method, request.path_qs, response.status', ("tests/test_logs_privacy.py::test_a_whole_consultation_leaves_no_name_link_token_or_secret_in_the_log",)),
    # --- login, TOTP, accounts -------------------------------------------------------------
    Rule("login-throttle", "failed logins are throttled",
         'teleconsult/credential_checks.py', '    attempt = await services.limiters.login.attempt(*login_keys(email, client, device_id))\n',
         '    attempt = await services.limiters.login.attempt()\n', ("tests/test_security.py::test_login_is_throttled_after_failures_even_with_the_right_password",)),
    Rule("login-throttle-per-address", "failed logins are throttled per address too (many accounts)",
         'teleconsult/credential_checks.py', '    return (f"email:{email.strip().lower()}", f"addr:{client}")',
         '    return (f"email:{email.strip().lower()}",)', ("tests/test_login_rules.py::test_one_address_trying_many_accounts_is_throttled",)),
    Rule("login-throttle-per-account", "failed logins are throttled per account too (many addresses)",
         'teleconsult/credential_checks.py', '    return (f"email:{email.strip().lower()}", f"addr:{client}")',
         '    return (f"addr:{client}",)', ("tests/test_security.py::test_login_is_throttled_after_failures_even_with_the_right_password",)),
    Rule("totp-required", "the password alone opens nothing: TOTP second factor", "teleconsult/web/views/login.py",
         "    await start_login(request, clinician)\n    if (proposal", "    await finish_login(request, clinician)\n    if (proposal",
         ("tests/test_security.py::test_totp_code_is_required_and_cannot_be_replayed",)),
    Rule("totp-throttle", "wrong TOTP codes are throttled",
         'teleconsult/credential_checks.py', '    attempt = await services.limiters.login.attempt(f"totp:{clinician.id}")\n    await accounts.verify_totp',
         '    attempt = await services.limiters.login.attempt()\n    await accounts.verify_totp', ("tests/test_login_rules.py::test_wrong_second_factor_codes_are_throttled_even_before_the_right_one",)),
    Rule("totp-enrol-throttle", "wrong enrolment codes are throttled",
         'teleconsult/credential_checks.py', '    attempt = await services.limiters.login.attempt(f"totp:{clinician.id}")\n    await accounts.enable_totp',
         '    attempt = await services.limiters.login.attempt()\n    await accounts.enable_totp', ("tests/test_login_rules.py::test_wrong_enrolment_codes_are_throttled",)),
    Rule("totp-enrol-once", "a second factor already enrolled cannot be replaced with the password alone",
         "teleconsult/web/views/login.py", "    if not secret or clinician.totp_enabled:",
         "    if not secret:", ("tests/test_login_rules.py::test_an_enrolled_second_factor_cannot_be_replaced_with_the_password_alone",)),
    Rule("totp-no-replay", "a TOTP code is accepted once",
         'teleconsult/accounts.py', '            sa.or_(clinicians.c.totp_last_counter.is_(None), clinicians.c.totp_last_counter < counter),\n',
         '', ("tests/test_security.py::test_totp_code_is_required_and_cannot_be_replayed",)),
    Rule("totp-constant-time", "TOTP codes compared in constant time", "teleconsult/accounts.py",
         "if secrets.compare_digest(totp.generate_otp(base + offset), code):",
         "if totp.generate_otp(base + offset) == code:", ("tests/test_constant_time.py::test_totp_codes_are_compared_in_constant_time",)),
    Rule("login-unknown-email-same-cost", "an unknown email costs one password hash like a known one",
         "teleconsult/accounts.py",
         "    stored = row.password_hash if row is not None else await asyncio.to_thread(_dummy_hash)\n",
         "    if row is None:\n        raise AuthenticationFailed(\"wrong email or password\")\n"
         "    stored = row.password_hash\n", ("tests/test_login_rules.py::test_an_unknown_email_costs_one_password_hash_like_a_known_one",)),
    Rule("password-min-length", "passwords have at least 12 characters", "teleconsult/accounts.py",
         "    if len(password) < MIN_PASSWORD_LENGTH:\n        raise InvalidInput", "    if False:\n        raise InvalidInput",
         ("tests/test_accounts.py::test_cli_account_commands_refuse_an_unknown_email_or_a_short_password_in_one_line",)),
    Rule("password-change-proves-current", "changing one's password needs the current one", "teleconsult/accounts.py",
         "    if not await _password_matches(row.password_hash, current):\n", "    if False:\n", ("tests/test_accounts.py::test_account_password_change_refuses_a_wrong_current_password_and_is_rate_limited",)),
    Rule("password-change-throttle", "wrong current passwords are throttled",
         'teleconsult/credential_checks.py', '    attempt = await services.limiters.login.attempt(f"password:{clinician.id}")',
         '    attempt = await services.limiters.login.attempt()', ("tests/test_accounts.py::test_account_password_change_refuses_a_wrong_current_password_and_is_rate_limited",)),
    Rule("password-change-signs-out", "a password change bumps the session epoch",
         'teleconsult/accounts.py', '        await end_all_sessions(conn, clinician_id)\n',
         '', ("tests/test_accounts.py::test_account_page_changes_the_password_and_keeps_this_session_but_not_others",)),
    Rule("api-token-hashed", "API tokens are stored hashed", "teleconsult/ids.py",
         '    return hashlib.sha256(token.encode("utf-8")).hexdigest()', "    return token",
         ("tests/test_accounts.py::test_cli_clinician_list_shows_accounts_without_secrets",)),
    Rule("trusted-device-signature", "a device cookie counts only when signed for the account tried",
         "teleconsult/web/trusted_device.py",
         "    if not hmac.compare_digest(signature, _signature(settings, email, device_id)):\n        return None\n", "",
         ("tests/test_guessing_limits.py::test_a_device_cookie_made_for_another_account_or_forged_gives_no_allowance_of_its_own",)),
    Rule("trusted-device-constant-time", "device cookie signatures compared in constant time",
         "teleconsult/web/trusted_device.py",
         "if not hmac.compare_digest(signature, _signature(settings, email, device_id)):",
         "if signature != _signature(settings, email, device_id):",
         ("tests/test_constant_time.py::test_device_cookie_signatures_are_compared_in_constant_time",)),
    Rule("forwarded-only-from-trusted-proxies", "X-Forwarded-For / Forwarded read only from a trusted proxy",
         "teleconsult/client_address.py", "    if not _trusted(peer_address, networks):\n        return str(peer_address)\n", "",
         ("tests/test_guessing_limits.py::test_the_client_address_is_the_rightmost_address_that_is_not_a_trusted_proxy",)),
    # --- consultations, admission ------------------------------------------------------------
    Rule("clinician-owns-consultation", "a clinician reaches only their own consultations",
         "teleconsult/consultations.py",
         '    consultations.c.id == sa.bindparam("id"), consultations.c.clinician_id == sa.bindparam("clinician"))',
         '    consultations.c.id == sa.bindparam("id"))',
         ("tests/test_api.py::test_api_refuses_missing_forged_and_other_clinicians_tokens",)),
    Rule("clinician-lists-own", "a clinician lists only their own consultations", "teleconsult/consultations.py",
         "                                   .where(consultations.c.clinician_id == clinician.id)\n", "",
         ("tests/test_consultation_rules.py::test_a_clinician_lists_only_their_own_consultations",)),
    Rule("knock-of-this-consultation", "a knock is decided only through its own consultation",
         "teleconsult/consultations.py",
         '            .where(knocks.c.id == sa.bindparam("knock"), knocks.c.consultation_id == sa.bindparam("consultation"),\n',
         '            .where(knocks.c.id == sa.bindparam("knock"),\n', ("tests/test_consultation_rules.py::test_a_clinician_cannot_decide_a_knock_of_another_consultation_through_their_own",)),
    Rule("no-admission-after-end", "no knock is decided after the end", "teleconsult/consultations.py",
         '    if consultation.status == ENDED:\n        raise Conflict("consultation has ended")\n    now = time.time() if now is None else now\n    status',
         "    now = time.time() if now is None else now\n    status", ("tests/test_consultation_rules.py::test_no_knock_is_admitted_or_declined_after_the_end",)),
    Rule("no-knock-after-end", "no knock after the end", "teleconsult/consultations.py",
         '    if consultation.status == ENDED:\n        raise Conflict("consultation has ended")\n    sealed = check_sealed_name',
         "    sealed = check_sealed_name", ("tests/test_consultation_rules.py::test_no_patient_can_knock_after_the_end",)),
    Rule("no-document-rendered-after-end", "no document is rendered for an ended consultation",
         'teleconsult/web/views/writing.py', '    if consultation.status == cs.ENDED:\n        raise Conflict("consultation has ended")\n    data = await read_json(request)',
         '    data = await read_json(request)', ("tests/test_writing_http.py::test_an_ended_consultation_renders_nothing",)),
    Rule("patient-admitted-for-token", "only an admitted patient gets the room and a token",
         "teleconsult/call_access.py",
         "    if knock_.consultation_id != consultation.id or knock_.status != KNOCK_ADMITTED:\n",
         "    if False:\n", ("tests/test_patient_admission.py::test_patient_cannot_obtain_room_or_token_before_admission_through_any_endpoint",)),
    Rule("no-token-after-end", "no Jitsi token after the end or past the maximum duration",
         "teleconsult/call_access.py", "    if consultation.status == ENDED or now >= consultation.deadline_at:\n",
         "    if False:\n",
         ("tests/test_patient_admission.py::test_patient_link_after_the_end_shows_a_calm_ended_page_and_no_token",)),
    Rule("room-name-never-public", "the room name is never in the dashboard or API answers",
         "teleconsult/consultations.py", '            "id": self.id,\n            "status"',
         '            "id": self.id, "room": self.room_name,\n            "status"',
         ("tests/test_consultation_rules.py::test_the_api_and_the_dashboard_never_show_the_room_name",)),
    Rule("knock-consent", "a patient knocks only after consenting", "teleconsult/web/views/patient.py",
         '    if form.get("consent") != "yes":\n', "    if False:\n", ("tests/test_patient_admission.py::test_patient_needs_a_name_and_consent_to_knock",)),
    Rule("knock-throttle", "knocks are throttled per browser and consultation",
         'teleconsult/web/views/patient.py', '    await services_of(request).limiters.knock.attempt(f"{consultation.id}:{_browser_id(session)}")\n',
         '', ("tests/test_patient_admission.py::test_declined_patient_is_not_admitted_and_cannot_knock_forever",)),
    Rule("link-guess-throttle", "guessing patient links is throttled",
         'teleconsult/web/views/patient.py', '        await services.limiters.link.attempt(f"link:{request.remote or \'unknown\'}")\n',
         '', ("tests/test_patient_admission.py::test_unknown_link_gets_a_friendly_page_and_guessing_is_rate_limited",)),
    Rule("patient-own-knock", "a patient acts only through the knock of their own browser",
         "teleconsult/web/views/patient.py", '    if own is None:\n        raise Forbidden("no knock from this browser")\n',
         '    if own is None:\n        own = ((await cs.list_knocks(services_of(request).engine, consultation)) or [None])[-1]\n'
         '    if own is None:\n        raise Forbidden("no knock from this browser")\n',
         ("tests/test_consultation_rules.py::test_another_browser_with_the_same_link_cannot_use_the_admitted_patients_admission",)),
    Rule("jwt-audience", "Jitsi token: aud = app id", "teleconsult/jitsi/tokens.py",
         '"aud": settings.jitsi_app_id,', '"aud": "*",', ("tests/test_rooms_and_tokens.py::test_jitsi_token_has_exactly_the_designed_header_and_claims",)),
    Rule("jwt-room", "Jitsi token: for its own room only", "teleconsult/jitsi/tokens.py",
         '"room": room,', '"room": "*",', ("tests/test_rooms_and_tokens.py::test_jitsi_token_has_exactly_the_designed_header_and_claims",)),
    Rule("jwt-expiry", "Jitsi token: expires with the consultation's maximum duration", "teleconsult/jitsi/tokens.py",
         '"exp": int(expires_at),', '"exp": int(expires_at) + 365 * 86400,',
         ("tests/test_rooms_and_tokens.py::test_jitsi_token_has_exactly_the_designed_header_and_claims",)),
    Rule("jwt-patient-member", "Jitsi token: the patient is a member, not a moderator", "teleconsult/jitsi/tokens.py",
         'moderator=moderator)', 'moderator=True)', ("tests/test_rooms_and_tokens.py::test_jitsi_token_has_exactly_the_designed_header_and_claims",)),
    Rule("room-name-bits", "room names carry at least 160 random bits", "teleconsult/ids.py",
         "ROOM_NAME_BITS = 200", "ROOM_NAME_BITS = 80", ("tests/test_rooms_and_tokens.py::test_room_names_are_lowercase_base32_of_at_least_160_random_bits",)),
    Rule("patient-token-no-name", "the patient's Jitsi token carries no name", "teleconsult/call_access.py",
         "name=None, moderator=False", "name=knock_.display_name, moderator=False",
         ("tests/test_rooms_and_tokens.py::test_the_patients_token_carries_no_name_only_an_id_and_the_member_role",)),
    Rule("knock-name-never-posted", "the typed name is never posted: the join page sends it sealed",
         "templates/patient_join.html", '<input id="display_name" autocomplete="name"',
         '<input id="display_name" name="display_name" autocomplete="name"',
         ("tests/test_patient_name_browser.py::test_the_patients_name_reaches_the_clinician_and_jitsi_but_nothing_the_server_keeps_or_logs",)),
    Rule("knock-names-purged", "knocks lose their names at the end + the documents' grace period",
         "teleconsult/ending.py", "await retention.purge_names(", "0 and retention.purge_names(",
         ("tests/test_retention.py::test_knocks_lose_their_names_when_the_documents_go_and_not_a_second_before",)),
    Rule("records-retention", "consultation records are deleted after consultation_retention_days",
         "teleconsult/ending.py", "await retention.forget_consultations(", "0 and retention.forget_consultations(",
         ("tests/test_retention.py::test_a_consultation_is_forgotten_with_its_knocks_and_audit_lines_after_the_retention_period",)),
    # --- room events from Prosody ------------------------------------------------------------------
    Rule("events-hmac", "room events: HMAC signature checked", "teleconsult/jitsi/events.py",
         '    if not hmac.compare_digest(expected.encode("ascii"), given.encode("ascii")):\n        raise BadSignature("signature does not match")\n',
         "", ("tests/test_jitsi_events_http.py::test_forged_signature_is_refused_with_401_and_logged_without_the_body",)),
    Rule("events-hmac-constant-time", "room events: signature compared in constant time", "teleconsult/jitsi/events.py",
         'if not hmac.compare_digest(expected.encode("ascii"), given.encode("ascii")):',
         "if expected != given:", ("tests/test_constant_time.py::test_room_event_signatures_are_compared_in_constant_time",)),
    Rule("events-timestamp", "room events: stale or future timestamps refused", "teleconsult/jitsi/events.py",
         "    if abs(now - timestamp) > window_seconds:\n", "    if False:\n",
         ("tests/test_jitsi_events_http.py::test_stale_or_future_timestamp_is_refused_with_403",)),
    Rule("events-hmac-before-clock", "room events: the signature is checked before the clock (no clock oracle)",
         "teleconsult/jitsi/events.py",
         "    expected = _mac(secret, timestamp_header, body)\n",
         "    if abs(now - int(timestamp_header)) > window_seconds:\n        raise StaleTimestamp(\"stale\")\n"
         "    expected = _mac(secret, timestamp_header, body)\n",
         ("tests/test_jitsi_events_http.py::test_a_forged_signature_is_401_even_with_a_stale_timestamp_so_the_clock_is_not_revealed",)),
    Rule("events-replay", "room events: a signed request is accepted once", "teleconsult/web/views/jitsi_events.py",
         "    await services_of(request).room_events.signatures.check(signature.lower(), now)\n", "",
         ("tests/test_jitsi_events_http.py::test_replayed_request_is_refused_with_403_and_has_no_effect",)),
    Rule("events-bearer", "room events in bearer mode: the token is checked", "teleconsult/jitsi/events.py",
         '    if not hmac.compare_digest(token.strip().encode("utf-8"), secret):\n        raise BadSignature("bearer token does not match")\n',
         "", ("tests/test_jitsi_events_http.py::test_bearer_mode_accepts_only_the_right_bearer_token",)),
    Rule("events-bearer-constant-time", "room events in bearer mode: compared in constant time",
         "teleconsult/jitsi/events.py", 'if not hmac.compare_digest(token.strip().encode("utf-8"), secret):',
         'if token.strip().encode("utf-8") != secret:', ("tests/test_constant_time.py::test_room_event_bearer_tokens_are_compared_in_constant_time",)),
    Rule("events-off-without-secret", "room events: 503 when no secret is set", "teleconsult/web/views/jitsi_events.py",
         "    if not secret:\n        log.error", "    if False:\n        log.error", ("tests/test_jitsi_events_http.py::test_without_a_secret_the_app_starts_and_the_endpoint_answers_503",)),
    Rule("events-size-declared", "room events: a body declared larger than 1 MiB is refused (413)",
         "teleconsult/web/views/jitsi_events.py", "    if (request.content_length or 0) > MAX_BODY:\n        return None\n",
         "", ("tests/test_jitsi_events_http.py::test_a_body_declared_too_large_is_refused_before_it_is_read",)),
    Rule("events-size-streamed", "room events: a chunked body growing past 1 MiB is refused (413)",
         "teleconsult/web/views/jitsi_events.py", "        if size > MAX_BODY:\n            return None\n", "",
         ("tests/test_jitsi_events_http.py::test_a_chunked_body_growing_past_the_limit_is_413",)),
    Rule("events-dedupe", "room events: an event id is applied once", "teleconsult/web/views/jitsi_events.py",
         "    if await seen.seen(event.event_id, now):", "    if False:", ("tests/test_jitsi_events_http.py::test_duplicate_event_id_is_acknowledged_and_destroyed_twice_ends_once",)),
    # --- documents (drop box) --------------------------------------------------------------------------
    Rule("no-write-after-end", "no upload after the consultation ends",
         'teleconsult/web/views/documents.py', '    if consultation.status == cs.ENDED and operation in WRITES:\n',
         '    if False:\n', ("tests/test_documents_rules.py::test_nothing_new_is_sent_once_the_consultation_has_ended_by_any_door",)),
    Rule("no-write-after-end-clinician", "no upload after the end: the clinician's box",
         'teleconsult/web/views/documents.py', '    _check_open(consultation, operation)\n    return Access(box_id=consultation.id, role=CLINICIAN, owner=consultation.clinician_id)\n\n\nasync def api_box',
         '    return Access(box_id=consultation.id, role=CLINICIAN, owner=consultation.clinician_id)\n\n\nasync def api_box', ("tests/test_documents_rules.py::test_nothing_new_is_sent_once_the_consultation_has_ended_by_any_door",)),
    Rule("no-write-after-end-api", "no upload after the end: the API's box",
         'teleconsult/web/views/documents.py', '    _check_open(consultation, operation)\n    return Access(box_id=consultation.id, role=CLINICIAN, owner=consultation.clinician_id)\n\n\nasync def patient_box',
         '    return Access(box_id=consultation.id, role=CLINICIAN, owner=consultation.clinician_id)\n\n\nasync def patient_box', ("tests/test_documents_rules.py::test_nothing_new_is_sent_once_the_consultation_has_ended_by_any_door",)),
    Rule("no-write-after-end-patient", "no upload after the end: the patient's box",
         'teleconsult/web/views/documents.py', '    _check_open(consultation, operation)\n    return Access(box_id=consultation.id, role=await patient_sender_of(',
         '    return Access(box_id=consultation.id, role=await patient_sender_of(', ("tests/test_documents_rules.py::test_nothing_new_is_sent_once_the_consultation_has_ended_by_any_door",)),
    Rule("no-write-after-end-patch", "no upload after the end: parts (PATCH) too",
         'teleconsult/web/views/documents.py', 'WRITES = ("create", "upload_part", "complete", "delete")',
         'WRITES = ("create", "complete", "delete")', ("tests/test_documents_rules.py::test_nothing_new_is_sent_once_the_consultation_has_ended_by_any_door",)),
    Rule("patient-box-admitted", "only an admitted patient reaches the documents", "teleconsult/web/views/documents.py",
         "    if not was_admitted:\n", "    if False:\n", ("tests/test_documents_rules.py::test_a_patient_who_was_never_admitted_cannot_reach_the_documents",)),
    Rule("clinician-box-owner", "a clinician reaches only their own consultation's documents",
         "teleconsult/web/views/documents.py",
         "    clinician = await require_clinician(request)\n    consultation = await cs.get_consultation(services_of(request).engine, request.match_info[\"id\"], clinician)",
         "    clinician = await require_clinician(request)\n"
         "    import dataclasses, sqlalchemy as _sa\n    from ...db_tables import consultations as _t\n"
         "    async with services_of(request).engine.connect() as _c:\n"
         "        _owner = await _c.scalar(_sa.select(_t.c.clinician_id).where(_t.c.id == request.match_info[\"id\"]))\n"
         "    clinician = dataclasses.replace(clinician, id=_owner or clinician.id)\n"
         "    consultation = await cs.get_consultation(services_of(request).engine, request.match_info[\"id\"], clinician)",
         ("tests/test_documents_rules.py::test_a_clinician_cannot_reach_the_documents_of_another_clinicians_consultation",)),
    Rule("document-in-its-box", "a document is reached only through its own box", "filedrop/store.py",
         "        if (found.box_id != box_id or found.state == DELETING", "        if (found.state == DELETING",
         ("tests/test_documents_rules.py::test_a_document_is_reached_only_through_its_own_box",)),
    Rule("drop-create-needs-clinician", "creating a standalone drop needs a clinician (session or API)",
         'teleconsult/web/views/documents.py', '        clinician = await (api_clinician(request) if request.path.startswith("/api/") else require_clinician(request))\n',
         '        clinician = type("Anyone", (), {"id": "anyone"})()\n', ("tests/test_documents_http.py::test_standalone_drop_respects_its_download_limit_and_owner_delete",)),
    Rule("drop-create-needs-clinician-page", "creating a standalone drop from the page needs a logged-in clinician",
         'teleconsult/web/views/documents.py', 'if request.path.startswith("/api/") else require_clinician(request))',
         'if request.path.startswith("/api/") else __import__("asyncio").sleep(0, type("Anyone", (), {"id": "anyone"})()))', ("tests/test_documents_rules.py::test_the_drop_sender_page_and_its_uploads_need_a_logged_in_clinician",)),
    Rule("api-box-owner", "an integrator reaches only their own consultation's documents",
         "teleconsult/web/views/documents.py",
         "    clinician = await api_clinician(request)\n    consultation = await cs.get_consultation(services_of(request).engine, request.match_info[\"id\"], clinician)",
         "    clinician = await api_clinician(request)\n"
         "    import dataclasses, sqlalchemy as _sa\n    from ...db_tables import consultations as _t\n"
         "    async with services_of(request).engine.connect() as _c:\n"
         "        _owner = await _c.scalar(_sa.select(_t.c.clinician_id).where(_t.c.id == request.match_info[\"id\"]))\n"
         "    clinician = dataclasses.replace(clinician, id=_owner or clinician.id)\n"
         "    consultation = await cs.get_consultation(services_of(request).engine, request.match_info[\"id\"], clinician)",
         ("tests/test_documents_rules.py::test_a_clinician_cannot_reach_the_documents_of_another_clinicians_consultation",)),
    Rule("drop-page-needs-clinician", "the standalone sender's page needs a clinician", "teleconsult/web/views/documents.py",
         '    await require_clinician(request)\n    return await render(request, "drop_send.html")',
         '    return await render(request, "drop_send.html")', ("tests/test_documents_rules.py::test_the_drop_sender_page_and_its_uploads_need_a_logged_in_clinician",)),
    Rule("drop-owner-token-upload", "uploading a standalone drop's parts needs its owner token", "filedrop/http.py",
         '        return request.headers.get(OWNER_HEADER, "") if self.standalone else None', "        return None",
         ("tests/test_documents_rules.py::test_only_the_owner_token_writes_the_parts_of_a_standalone_drop",)),
    Rule("drop-owner-token-delete", "deleting a standalone drop needs its owner token",
         'filedrop/deletion.py', '    if not hmac.compare_digest(stored_hash, token_hash(owner_token)):\n        raise NotOwner("wrong owner token")\n',
         '', ("tests/test_documents_http.py::test_standalone_drop_respects_its_download_limit_and_owner_delete",)),
    Rule("drop-owner-constant-time", "owner tokens compared in constant time",
         'filedrop/deletion.py', 'if not hmac.compare_digest(stored_hash, token_hash(owner_token)):',
         'if stored_hash != token_hash(owner_token):', ("tests/test_constant_time.py::test_drop_owner_tokens_are_compared_in_constant_time",)),
    Rule("drop-guess-throttle", "guessing standalone drop ids is throttled",
         'teleconsult/web/views/documents.py', '    await services_of(request).limiters.link.attempt(f"drop:{request.remote or \'unknown\'}")',
         '    pass', ("tests/test_documents_http.py::test_guessing_standalone_drop_ids_is_rate_limited",)),
    Rule("drop-download-limit", "a standalone drop is downloaded at most max_downloads times", "filedrop/store.py",
         "                condition.append(files.c.downloads < files.c.max_downloads)\n", "                pass\n",
         ("tests/test_documents_rules.py::test_a_drop_allowed_one_download_gives_it_once_when_asked_ten_times_at_once",)),
    Rule("drop-max-expiry", "a standalone drop lives at most drop_max_expiry_hours", "filedrop/store.py",
         "        if not 60 <= ttl <= (self.config.box_file_ttl if box_id else self.config.max_expiry):",
         "        if not 60 <= ttl:", ("tests/test_documents_rules.py::test_a_standalone_drop_cannot_outlive_the_hosts_maximum",)),
    Rule("size-limit-declared", "a document declared larger than documents_max_mib is refused (413)",
         "filedrop/store.py", "        if size > self.config.max_size:\n", "        if False:\n",
         ("tests/test_documents_http.py::test_oversized_upload_is_refused_with_413_and_leaves_no_partial_file",)),
    Rule("size-limit-streamed", "a part going past the declared size is refused while streaming (413)",
         "filedrop/storage.py", "        if position + len(chunk) > limit:\n", "        if False:\n",
         ("tests/test_documents_http.py::test_oversized_upload_is_refused_with_413_and_leaves_no_partial_file",)),
    Rule("same-answer-for-gone", "unknown, expired and deleted documents get one answer", "filedrop/store.py",
         "        if (found.box_id != box_id or found.state == DELETING or found.expires_at <= now\n",
         "        if found.expires_at <= now:\n            raise BadUpload(\"expired\")\n        if (found.box_id != box_id or found.state == DELETING\n",
         ("tests/test_documents_rules.py::test_a_document_past_its_expiry_answers_like_an_unknown_one_before_the_sweeper_removes_it",)),
    Rule("delete-after-grace", "documents are deleted when the grace period after the end has passed",
         "teleconsult/ending.py", "        await services.drops.schedule_box_deletion(consultation.id, ended_at + grace, conn=conn)\n",
         "        await services.drops.schedule_box_deletion(consultation.id, ended_at + grace + 86400, conn=conn)\n",
         ("tests/test_documents_http.py::test_documents_are_deleted_from_api_and_disk_when_the_grace_period_ends",)),
    Rule("download-attachment", "downloads are attachments, never rendered", "filedrop/http.py",
         '"Content-Disposition": "attachment", ', "", ("tests/test_documents_rules.py::test_downloads_are_attachments_the_browser_never_renders",)),
    Rule("storage-safe-ids", "stored file names are checked ids (no path outside the store)", "filedrop/storage.py",
         "    if not SAFE_ID.match(file_id):\n", "    if False:\n", ("tests/test_documents_rules.py::test_the_store_refuses_a_file_name_that_is_not_one_of_its_ids",)),
    Rule("s3-credentials-private", "an S3 credentials file others can read stops the start",
         "teleconsult/document_store.py", "    if mode & (stat.S_IRWXG | stat.S_IRWXO):\n", "    if False:\n",
         ("tests/test_s3_store.py::test_credentials_come_from_a_file_only_the_apps_user_can_read",)),
    Rule("storage-private-files", "ciphertext files are readable by the app's user only", "filedrop/storage.py",
         "os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)", "os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)",
         ("tests/test_documents_rules.py::test_ciphertext_files_and_their_folders_are_private_to_the_apps_user",)),
    # --- end-to-end encryption ------------------------------------------------------------------------------
    Rule("ece-truncation-py", "a ciphertext cut after a record is refused (Python)", "filedrop/ece/streams.py",
         "        if self._last is None:\n            raise TruncatedStream(", "        if False:\n            raise TruncatedStream(",
         ("tests/test_ece.py::test_truncated_stream_is_detected",)),
    Rule("ece-truncation-js", "a ciphertext cut after a record is refused (browser)", "static/js/ece_streams.js",
         "          if (record.length === 0) {\n"
         "            throw new TruncatedStream('the stream ends without its last record (delimiter 0x02)');\n"
         "          }\n"
         "          const { data, last } = await open(record);\n"
         "          if (last && !final) throw new TrailingData('data follows the last record');\n"
         "          if (!last && final) {\n"
         "            throw new TruncatedStream('the stream ends without its last record (delimiter 0x02)');\n"
         "          }\n",
         "          if (record.length === 0) {\n            controller.close();\n            return;\n          }\n"
         "          const { data, last } = await open(record);\n"
         "          if (last && !final) throw new TrailingData('data follows the last record');\n",
         ("tests/test_ece_browser.py::test_tampered_ciphertext_gives_a_clear_error_in_javascript",)),
    Rule("ratelimit-keys-keyed", "shared rate-limit rows store an HMAC of the address or account, not a plain hash",
         "teleconsult/ratelimit.py",
         "        return hmac.new(self.secret, f\"{self.name}:{key}\".encode(), hashlib.sha256).hexdigest()",
         "        return hashlib.sha256(f\"{self.name}:{key}\".encode()).hexdigest()",
         ("tests/test_instances.py::test_the_shared_limits_store_no_address_or_account_a_database_reader_could_check",)),
    Rule("ece-resend-same-records", "a resend never puts a different record under a nonce already sent (CLI)",
         "filedrop/client/stream.py",
         "                if tag != self._tags[number]:  # not a secret: the server saw it, or will\n"
         "                    raise FileChanged(RESEND_CHANGED)",
         "                pass",
         ("tests/test_drop_client_blocking.py::"
          "test_a_file_edited_before_a_resend_stops_the_upload_and_no_record_is_encrypted_twice",)),
    # --- metrics, settings, pre-call -------------------------------------------------------------------------
    Rule("metrics-off-by-default", "/metrics answers 404 without a token set", "teleconsult/web/views/metrics.py",
         "    if not expected:\n        raise web.HTTPNotFound()", "    if False:\n        raise web.HTTPNotFound()",
         ("tests/test_metrics.py::test_metrics_answer_404_when_no_token_is_configured",)),
    Rule("metrics-token", "/metrics needs its Bearer token", "teleconsult/web/views/metrics.py",
         "    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):", "    if False:",
         ("tests/test_metrics.py::test_metrics_refuse_a_missing_or_wrong_token_with_401_and_a_log_line",)),
    Rule("metrics-constant-time", "/metrics token compared in constant time", "teleconsult/web/views/metrics.py",
         "not hmac.compare_digest(given.encode(), expected.encode())", "given != expected",
         ("tests/test_constant_time.py::test_the_metrics_token_is_compared_in_constant_time",)),
    Rule("secret-min-length", "every secret setting has at least 32 characters", "teleconsult/settings_loading.py",
         "        if setting.secret and value and len(value) < MIN_SECRET_LENGTH:", "        if False:",
         ("tests/test_settings.py::test_short_secrets_are_refused",)),
    Rule("secret-no-default", "a secret setting cannot be declared with a default value",
         'teleconsult/settings.py', '    if secret and not (required or default == ""):',
         '    if False:', ("tests/test_settings.py::test_a_secret_setting_cannot_be_declared_with_a_default_value",)),
    Rule("secret-required", "start-up fails while a required secret is missing", "teleconsult/settings_loading.py",
         "        if s.required and not values.get(s.name)", "        if False",
         ("tests/test_settings.py::test_startup_fails_with_a_clear_message_when_secrets_are_missing",)),
    Rule("secrets-masked", "`check` prints secrets masked", "teleconsult/settings.py",
         '("***" if s.secret and getattr(self, s.name) else getattr(self, s.name))', "getattr(self, s.name)",
         ("tests/test_jitsi_events_http.py::test_demo_generates_an_events_secret_and_adds_it_to_an_older_demo_file",)),
    Rule("demo-secrets-private", "demo secrets file readable by its owner only", "teleconsult/settings_loading.py",
         "os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)", "os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)",
         ("tests/test_settings.py::test_the_demo_secrets_file_is_readable_by_its_owner_only",)),
    Rule("precall-throttle", "pre-call offers are throttled per address",
         'teleconsult/web/views/precall.py', '    await services_of(request).limiters.precall.attempt(request.remote or "unknown")  # 429 + Retry-After\n',
         '', ("tests/test_precall_http.py::test_offers_are_rate_limited_per_address",)),
    Rule("precall-back-same-origin", "the pre-call page links back only to a path of ours", "teleconsult/web/views/precall.py",
         '    if not value.startswith("/") or value.startswith("//") or "\\\\" in value:\n        return None\n', "",
         ("tests/test_precall_http.py::test_the_return_link_only_ever_points_to_a_path_of_ours",)),
)


def _copy_checkout(into: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if "node_modules" in source.parts or not source.is_file():
            continue
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    modules = ROOT / "tests" / "js" / "node_modules"
    if not modules.exists():
        modules = Path("/work/main/tests/js/node_modules")
    if modules.exists():
        (into / "tests" / "js").mkdir(parents=True, exist_ok=True)
        os.symlink(modules, into / "tests" / "js" / "node_modules")


def _run(rule: Rule, copy: Path) -> tuple[str, str]:
    path = copy / rule.file
    original = path.read_text(encoding="utf-8")
    if original.count(rule.old) != 1:
        return "STALE", f"{original.count(rule.old)} occurrences of the rule's code in {rule.file}"
    tests = rule.tests
    path.write_text(original.replace(rule.old, rule.new), encoding="utf-8")
    try:
        env = {**os.environ, "PYTHONPATH": str(copy)}
        done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                               "-p", "no:randomly", *tests], cwd=copy, env=env,
                              capture_output=True, text=True, timeout=900)
    finally:
        path.write_text(original, encoding="utf-8")
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.M)
    if done.returncode == 0:
        return "SURVIVED", "every test passed"
    if failed:
        return "CAUGHT", failed[0]
    return "BROKEN", (done.stdout + done.stderr).strip().splitlines()[-1:][0] if (done.stdout + done.stderr).strip() else "?"


def where(rule: Rule) -> str:
    """file:function enclosing the rule's code (file alone for templates and scripts)."""
    text = (ROOT / rule.file).read_text(encoding="utf-8")
    if not rule.file.endswith(".py") or rule.old not in text:
        return rule.file
    before = text[:text.index(rule.old)].splitlines()
    names = [re.match(r"\s*(?:async )?def (\w+)|\s*class (\w+)", line) for line in reversed(before)]
    found = next((m.group(1) or m.group(2) for m in names if m), None)
    if found is None:  # module level: the name it assigns
        assigned = re.match(r"\s*(\w+)\s*=", rule.old) or re.match(r"\s*(\w+)\s*=", before[-1] if before else "")
        found = assigned.group(1) if assigned else None
    return f"{rule.file}:{found}" if found else rule.file


def markdown() -> str:
    rows = ["| rule | where (file:function) | the test that fails when it is removed |", "| --- | --- | --- |"]
    for rule in RULES:
        tests = "<br>".join(f"`{t.split('::')[0].removeprefix('tests/')}::{t.split('::')[1]}`" if "::" in t
                            else f"`{t.removeprefix('tests/')}`" for t in rule.tests)
        rows.append(f"| {rule.what} (`{rule.id}`) | `{where(rule)}` | {tests} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    if "--markdown" in argv:
        print(markdown(), end="")
        return 0
    chosen = [r for r in RULES if not argv or r.id in argv]
    if "--check" in argv:
        stale = [r.id for r in RULES if (ROOT / r.file).read_text(encoding="utf-8").count(r.old) != 1]
        print("stale:", ", ".join(stale) or "none")
        return 1 if stale else 0
    if "--list" in argv:
        for rule in RULES:
            print(f"{rule.id:36} {rule.file:40} {rule.what}")
        return 0
    unknown = set(argv) - {r.id for r in RULES}
    if unknown:
        print("unknown rule ids:", ", ".join(sorted(unknown)))
        return 2
    bad = 0
    with tempfile.TemporaryDirectory(prefix="teleconsult-mutants-") as tmp:
        copy = Path(tmp)
        _copy_checkout(copy)
        for rule in chosen:
            started = time.monotonic()
            verdict, detail = _run(rule, copy)
            bad += verdict in ("SURVIVED", "STALE", "BROKEN")
            print(f"{verdict:8} {rule.id:36} {time.monotonic() - started:5.0f}s  {detail}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
