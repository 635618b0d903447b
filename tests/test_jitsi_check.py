"""`teleconsult check --jitsi-config FILE`: the Jitsi host's Prosody configuration against our settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from teleconsult.jitsi.config_check import FAIL, OK, check_config, check_file, failed
from teleconsult.jitsi.prosody_config import LuaTable, Unknown, parse_config
from conftest import TEST_JITSI_SECRET, TEST_SECRET, make_settings

ROOT = Path(__file__).resolve().parent.parent
SNIPPET = ROOT / "jitsi_plugin" / "prosody-snippet.cfg.lua"
EVENTS_SECRET = "events-secret-" + "k" * 40
PUBLIC_URL = "https://consult.example.org"


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path / "data", jitsi_domain="meet.example.org", jitsi_app_id="teleconsult",
                         public_url=PUBLIC_URL, jitsi_events_secret=EVENTS_SECRET)


def snippet_for(settings) -> str:
    """The snippet a host pastes, filled in as the README says."""
    return (SNIPPET.read_text()
            .replace("CHANGE-ME-jitsi-app-secret", settings.jitsi_app_secret)
            .replace("CHANGE-ME-long-random-events-secret", settings.jitsi_events_secret))


def fails(findings) -> list[str]:
    return [f.message for f in findings if f.level == FAIL]


# A stock Jitsi host (as the Debian packages lay it out), turned into a token host for teleconsult.
HOST = '''
plugin_paths = { "/usr/share/jitsi-meet/prosody-plugins/", "/usr/local/share/teleconsult/jitsi_plugin/" }
muc_mapper_domain_base = "meet.example.org";
external_services = {
     { type = "stun", host = "meet.example.org", port = 3478 },
     { type = "turn", host = "meet.example.org", port = 3478, transport = "udp", secret = true, ttl = 86400 };
};
--[[ a block comment with "quotes" and = signs
app_secret = "not this one"
]]
ssl = { protocol = "tlsv1_2+"; ciphers = [[ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256]] }
unlimited_jids = { "focus@auth.meet.example.org", 'jvb@auth.meet.example.org' }
local unused = "a" .. "b"

VirtualHost "meet.example.org"
    authentication = "token" -- switched by jitsi-meet-tokens
    app_id = "teleconsult";
    app_secret = "APP_SECRET"
    --app_secret = "commented out"
    allow_empty_token = false
    modules_enabled = {
        "bosh";
        "ping"; -- Enable mod_ping
        "muc_lobby_rooms";
    }
    c2s_require_encryption = false
    main_muc = "conference.meet.example.org"
    lobby_muc = "lobby.meet.example.org"

Component "conference.meet.example.org" "muc"
    restrict_room_creation = true
    storage = "memory"
    modules_enabled = {
        "muc_meeting_id";
        "muc_domain_mapper";
        --"muc_allowners";
        "token_verification";
        "token_affiliation";
        "teleconsult_events";
    }
    admins = { "focus@auth.meet.example.org" }
    muc_room_locking = false
    teleconsult_events_url = "https://consult.example.org/api/jitsi/events"
    teleconsult_events_secret = "EVENTS_SECRET"
    teleconsult_events_max_retries = 7

Component "breakout.meet.example.org" "muc"
    modules_enabled = { "muc_meeting_id"; "polls" }

VirtualHost "auth.meet.example.org"
    authentication = "internal_hashed"

Component "focus.meet.example.org" "client_proxy"
    target_address = "focus@auth.meet.example.org"
'''


def host_config(settings, **replace) -> str:
    text = HOST.replace("APP_SECRET", settings.jitsi_app_secret).replace("EVENTS_SECRET", settings.jitsi_events_secret)
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def test_the_shipped_snippet_filled_in_passes_every_check(settings):
    findings = check_config(parse_config(snippet_for(settings)), settings)
    assert fails(findings) == [], findings
    assert len([f for f in findings if f.level == OK]) >= 8
    oks = [f.message for f in findings if f.level == OK]
    assert any("token_affiliation is enabled" in m for m in oks)
    assert "muc_allowners is loaded nowhere" in oks
    assert any(m.startswith("muc_wait_for_host is not loaded") for m in oks)
    assert any("--jicofo-config" in f.message for f in findings)  # the jicofo reminder


def test_the_shipped_snippet_keeps_token_holders_from_owning_rooms_even_with_muc_wait_for_host(settings):
    text = snippet_for(settings).replace('"teleconsult_events";   --', '"teleconsult_events"; "muc_wait_for_host"; --')
    assert "muc_wait_for_host" in text
    findings = check_config(parse_config(text), settings)
    assert fails(findings) == [], findings
    assert any("wait_for_host_disable_auto_owners = true" in f.message for f in findings if f.level == OK)


def test_a_stock_jitsi_host_file_is_read_and_passes(settings):
    config = parse_config(host_config(settings))
    host = config.find("VirtualHost", "meet.example.org")
    assert host.options["app_secret"] == settings.jitsi_app_secret  # not the commented-out ones
    assert host.options["modules_enabled"].items == ["bosh", "ping", "muc_lobby_rooms"]
    muc = config.find("Component", "conference.meet.example.org")
    assert muc.component_type == "muc" and "muc_allowners" not in muc.options["modules_enabled"].items
    assert config.global_options["ssl"].fields["ciphers"].startswith("ECDHE")
    assert isinstance(config.global_options["external_services"].items[1], LuaTable)
    assert "unused" not in config.global_options
    assert fails(check_config(config, settings)) == []


@pytest.mark.parametrize("replace, expected", [
    ({'authentication = "token"': 'authentication = "jitsi-anonymous"'}, 'must be "token"'),
    ({'app_id = "teleconsult";': 'app_id = "other";'}, "app_id is 'other'"),
    ({"APP_SECRET_PLACEHOLDER": ""}, None),  # replaced below: a wrong app_secret
    ({"allow_empty_token = false": "allow_empty_token = true"}, "lets anyone join without a token"),
    ({'"teleconsult_events";': ""}, '"teleconsult_events" is not in modules_enabled'),
    ({"https://consult.example.org/api/jitsi/events": "https://consult.example.org/events"},
     "expected 'https://consult.example.org/api/jitsi/events'"),
    ({"teleconsult_events_max_retries = 7": "teleconsult_events_bearer = true"}, "teleconsult_events_bearer is true"),
    ({'"token_affiliation";': ""}, '"token_affiliation" is not in modules_enabled'),
    ({'"token_verification";': ""}, '"token_verification" is not in modules_enabled'),
    ({'--"muc_allowners";': '"muc_allowners";'}, "loads muc_allowners"),
    ({'"bosh";': '"bosh"; "muc_allowners";'}, "loads muc_allowners"),
    ({'modules_enabled = { "muc_meeting_id"; "polls" }': 'modules_enabled = { "muc_allowners" }'},
     'Component "breakout.meet.example.org" loads muc_allowners'),
    ({'VirtualHost "meet.example.org"': 'VirtualHost "other.example.org"'}, 'no VirtualHost "meet.example.org"'),
    ({'Component "conference.meet.example.org" "muc"': 'Component "conference.meet.example.org" "other"'},
     'no Component "conference.meet.example.org" "muc"'),
    ({'"token_affiliation";': '"token_affiliation"; "muc_wait_for_host";'},
     'Component "conference.meet.example.org" loads muc_wait_for_host'),
    ({'"token_affiliation";': '"token_affiliation"; "muc_wait_for_host";',
      "muc_room_locking = false": "muc_room_locking = false\n    wait_for_host_disable_auto_owners = false"},
     "set wait_for_host_disable_auto_owners = true there"),
    ({'"bosh";': '"bosh"; "muc_wait_for_host";'}, 'VirtualHost "meet.example.org" loads muc_wait_for_host'),
], ids=["auth", "app_id", "app_secret", "empty-token", "no-module", "url", "bearer", "no-affiliation",
        "no-verification", "allowners-muc", "allowners-host", "allowners-breakout", "no-host", "no-muc",
        "wait-for-host", "wait-for-host-auto-owners", "wait-for-host-on-host"])
def test_each_mismatch_is_a_fail_line_that_says_what_to_change(settings, replace, expected):
    if "APP_SECRET_PLACEHOLDER" in replace:
        text = HOST.replace("APP_SECRET", "a-different-secret-" + "d" * 30).replace(
            "EVENTS_SECRET", settings.jitsi_events_secret)
        expected = "app_secret differs from jitsi_app_secret"
    else:
        text = host_config(settings, **replace)
    findings = check_config(parse_config(text), settings)
    assert failed(findings)
    assert any(expected in message for message in fails(findings)), fails(findings)


def test_events_secret_mismatch_or_unset_fails_and_secrets_are_never_printed(settings, tmp_path):
    wrong = host_config(settings).replace(settings.jitsi_events_secret, "another-events-secret-" + "z" * 30)
    findings = check_config(parse_config(wrong), settings)
    assert any("teleconsult_events_secret is missing or differs" in m for m in fails(findings))
    unset = make_settings(tmp_path / "d2", jitsi_domain="meet.example.org", jitsi_app_id="teleconsult",
                          public_url=PUBLIC_URL)
    findings = check_config(parse_config(host_config(settings)), unset)
    assert any("jitsi_events_secret is not set" in m for m in fails(findings))
    every_line = "\n".join(f.line() for f in check_config(parse_config(wrong), settings))
    for secret in (settings.jitsi_app_secret, settings.jitsi_events_secret, "another-events-secret"):
        assert secret not in every_line


def test_include_lines_are_followed_and_a_missing_include_is_a_warning(settings, tmp_path):
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    (conf_d / "meet.example.org.cfg.lua").write_text(host_config(settings))
    main = tmp_path / "prosody.cfg.lua"
    main.write_text('admins = { }\nmodules_enabled = { "roster"; "saslauth" }\n'
                    'Include "conf.d/*.cfg.lua"\nInclude "missing.d/*.cfg.lua"\n')
    findings = check_file(main, settings)
    assert fails(findings) == []
    assert any(f.level == "WARN" and "missing.d" in f.message for f in findings)


def test_unreadable_or_non_lua_file_is_one_clear_fail(settings, tmp_path):
    assert "cannot read" in fails(check_file(tmp_path / "nope.cfg.lua", settings))[0]
    bad = tmp_path / "bad.cfg.lua"
    bad.write_text('VirtualHost "meet.example.org"\n  app_id = @@@\n')
    assert "cannot read" in fails(check_file(bad, settings))[0]


def test_reader_handles_lua_literals_and_leaves_expressions_unevaluated():
    config = parse_config('a = "x\\"y\\n"\nb = \'s\'\nc = 0x10\nd = -2.5\ne = nil\nf = [==[long ]] string]==]\n'
                          'g = "conference." .. muc_mapper_domain_base\nh = { ["k"] = 1, 2; n = { true } }\n'
                          'i = some_variable\n')
    options = config.global_options
    assert options["a"] == 'x"y\n' and options["b"] == "s" and options["c"] == 16 and options["d"] == -2.5
    assert options["e"] is None and options["f"] == "long ]] string"
    assert isinstance(options["g"], Unknown) and isinstance(options["i"], Unknown)
    assert options["h"].fields["k"] == 1 and options["h"].items == [2] and options["h"].fields["n"].items == [True]


def test_cli_check_with_jitsi_config_prints_the_findings_and_exits_1_on_a_mismatch(settings, tmp_path):
    good = tmp_path / "good.cfg.lua"
    good.write_text(host_config(settings))
    bad = tmp_path / "bad.cfg.lua"
    bad.write_text(host_config(settings, **{'"token_affiliation";': ""}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    env.update({"TELECONSULT_DATA_DIR": str(tmp_path / "data"), "TELECONSULT_SESSION_SECRET": TEST_SECRET,
                "TELECONSULT_JITSI_DOMAIN": "meet.example.org", "TELECONSULT_JITSI_APP_ID": "teleconsult",
                "TELECONSULT_JITSI_APP_SECRET": TEST_JITSI_SECRET, "TELECONSULT_PUBLIC_URL": PUBLIC_URL,
                "TELECONSULT_JITSI_EVENTS_SECRET": EVENTS_SECRET})
    command = [str(Path(sys.executable).parent / "teleconsult"), "check", "--jitsi-config"]
    result = subprocess.run(command + [str(good)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK   VirtualHost \"meet.example.org\": app_secret matches" in result.stdout
    assert "FAIL" not in result.stdout
    result = subprocess.run(command + [str(bad)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert 'FAIL Component "conference.meet.example.org": "token_affiliation"' in result.stdout
    assert TEST_JITSI_SECRET not in result.stdout and EVENTS_SECRET not in result.stdout
