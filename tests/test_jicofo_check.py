"""`teleconsult check --jicofo-config FILE`: jicofo must leave the choice of moderator to our tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from teleconsult.jitsi.config_check import FAIL, OK, failed
from teleconsult.jitsi.jicofo_check import check_jicofo_file
from conftest import TEST_JITSI_SECRET, TEST_SECRET

ROOT = Path(__file__).resolve().parent.parent
SNIPPET = ROOT / "jitsi_plugin" / "jicofo-snippet.conf"
FOCUS_PASSWORD = "focus-password-never-printed-4242"

# /etc/jitsi/jicofo/jicofo.conf as Debian's jicofo package writes it for meet.example.org.
STOCK = """# Jicofo HOCON configuration. See reference.conf in /usr/share/jicofo/jicofo.jar for
#available options, syntax, and semantics.
jicofo {
  xmpp: {
    client: {
      client-proxy: "focus.meet.example.org"
      xmpp-domain: "meet.example.org"
      domain: "auth.meet.example.org"
      username: "focus"
      password: "%s"
    }
    trusted-domains: [ "recorder.meet.example.org" ]
  }
  bridge: {
    brewery-jid: "JvbBrewery@internal.auth.meet.example.org"
  }
}
""" % FOCUS_PASSWORD

# What many token guides tell hosts to add (the "secure domain" recipe with JWT).
JWT_AUTH = """
jicofo {
  authentication: {
    enabled: true
    type: JWT
    login-url: meet.example.org
  }
}
"""


def write(tmp_path: Path, text: str, name: str = "jicofo.conf") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def fails(findings) -> list[str]:
    return [f.message for f in findings if f.level == FAIL]


def test_the_shipped_snippet_alone_passes(tmp_path):
    findings = check_jicofo_file(write(tmp_path, SNIPPET.read_text()))
    assert fails(findings) == [], findings
    assert len([f for f in findings if f.level == OK]) == 2


def test_a_stock_jicofo_conf_fails_on_auto_owner_and_passes_with_the_snippet_appended(tmp_path):
    stock = check_jicofo_file(write(tmp_path, STOCK))
    assert fails(stock) == ["jicofo.conference.enable-auto-owner is not set (jicofo's default is true): jicofo "
                            "makes the first participant owner (moderator), a patient who joins first included. "
                            "Set jicofo { conference { enable-auto-owner = false } } (see "
                            "jitsi_plugin/jicofo-snippet.conf)"]
    assert not fails(check_jicofo_file(write(tmp_path, STOCK + "\n" + SNIPPET.read_text())))


def test_jicofo_authentication_with_tokens_fails_and_the_snippet_turns_it_off(tmp_path):
    findings = check_jicofo_file(write(tmp_path, STOCK + JWT_AUTH + "jicofo.conference.enable-auto-owner = false\n"))
    assert failed(findings)
    [message] = fails(findings)
    assert "jicofo.authentication is enabled (type JWT)" in message
    assert "every token holder" in message and "enabled = false" in message
    fixed = check_jicofo_file(write(tmp_path, STOCK + JWT_AUTH + SNIPPET.read_text()))
    assert fails(fixed) == []


@pytest.mark.parametrize("text, expected", [
    ("jicofo { conference { enable-auto-owner = true } }", "enable-auto-owner is not false"),
    ("jicofo.conference.enable-auto-owner = yes", "enable-auto-owner is not false"),
    ('jicofo { conference { enable-auto-owner = false }, authentication { enabled = "true", type = XMPP } }',
     "jicofo.authentication is enabled (type XMPP)"),
], ids=["auto-owner-true", "auto-owner-yes", "xmpp-authentication"])
def test_each_setting_that_lets_jicofo_pick_owners_is_a_fail_line_that_says_what_to_set(tmp_path, text, expected):
    findings = check_jicofo_file(write(tmp_path, STOCK + text))
    assert any(expected in m for m in fails(findings)), findings
    assert all("Set jicofo {" in m for m in fails(findings))


def test_the_legacy_properties_auth_url_beside_jicofo_conf_fails_and_a_commented_one_does_not(tmp_path):
    conf = write(tmp_path, STOCK + SNIPPET.read_text())
    write(tmp_path, "# org.jitsi.jicofo.auth.URL=EXT_JWT:meet.example.org\n"
                    "org.jitsi.jicofo.BRIDGE_MUC=JvbBrewery@internal.auth.meet.example.org\n",
          "sip-communicator.properties")
    assert fails(check_jicofo_file(conf)) == []
    write(tmp_path, "org.jitsi.jicofo.auth.URL=EXT_JWT:meet.example.org\n", "sip-communicator.properties")
    [message] = fails(check_jicofo_file(conf))
    assert "sip-communicator.properties line 1 sets org.jitsi.jicofo.auth.URL" in message and "Remove" in message


def test_an_unreadable_or_broken_file_is_one_fail_that_prints_no_content(tmp_path):
    assert "cannot read" in fails(check_jicofo_file(tmp_path / "missing.conf"))[0]
    broken = STOCK.replace('password: "%s"' % FOCUS_PASSWORD, 'password: "%s" }}}{{' % FOCUS_PASSWORD)
    [message] = fails(check_jicofo_file(write(tmp_path, broken)))
    assert "cannot read" in message and "HOCON" in message
    assert FOCUS_PASSWORD not in message


def test_cli_check_with_jicofo_config_exits_1_on_a_fail_and_never_prints_the_focus_password(tmp_path):
    good = write(tmp_path, STOCK + SNIPPET.read_text(), "good.conf")
    bad = write(tmp_path, STOCK + JWT_AUTH, "bad.conf")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    env.update({"TELECONSULT_DATA_DIR": str(tmp_path / "data"), "TELECONSULT_SESSION_SECRET": TEST_SECRET,
                "TELECONSULT_JITSI_DOMAIN": "meet.example.org", "TELECONSULT_JITSI_APP_ID": "teleconsult",
                "TELECONSULT_JITSI_APP_SECRET": TEST_JITSI_SECRET})
    command = [str(Path(sys.executable).parent / "teleconsult"), "check", "--jicofo-config"]
    result = subprocess.run(command + [str(good)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK   jicofo.conference.enable-auto-owner = false" in result.stdout
    result = subprocess.run(command + [str(bad)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "FAIL jicofo.conference.enable-auto-owner is not set" in result.stdout
    assert "FAIL jicofo.authentication is enabled (type JWT)" in result.stdout
    assert FOCUS_PASSWORD not in result.stdout + result.stderr
