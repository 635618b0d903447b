"""`teleconsult check --jicofo-config FILE`: does jicofo leave the choice of moderator to our tokens?

Jicofo, not Prosody, decides who is owner (moderator) of a Jitsi room. By default it makes the
first participant owner (`enable-auto-owner`), a patient who joins first included; with its own
authentication on it makes every authenticated participant owner, and with Prosody's token
authentication that is every token holder. Our tokens count (clinician "owner", patient
"member", read by token_affiliation) only with both off. So jicofo.conf (HOCON, read with
pyhocon) must hold:

- jicofo.conference.enable-auto-owner = false;
- no jicofo.authentication.enabled = true (token authentication belongs to Prosody);

and the legacy /etc/jitsi/jicofo/sip-communicator.properties beside it, when there is one, no
`org.jitsi.jicofo.auth.URL` line (the older way to turn jicofo's authentication on).

jicofo.conf also holds jicofo's XMPP password: nothing read here is printed but the findings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config_check import FAIL, OK, Finding

LEGACY_PROPERTIES = "sip-communicator.properties"
LEGACY_AUTH_KEY = "org.jitsi.jicofo.auth.URL"
SNIPPET = "jitsi_plugin/jicofo-snippet.conf"


def _boolean(value: Any) -> bool | None:
    """A HOCON boolean (true/false, also written as a quoted string or yes/no/on/off); None if unset
    or not a boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}.get(
            value.strip().lower())
    return None


def _get(config, path: str) -> Any:
    try:
        return config.get(path, None)
    except Exception:  # pyhocon: a path through something that is not an object
        return None


def check_jicofo(config, legacy_properties: str | None = None) -> list[Finding]:
    """Findings for a parsed jicofo.conf (a pyhocon ConfigTree) and, when given, the text of the
    sip-communicator.properties beside it."""
    findings: list[Finding] = []
    auto_owner = _get(config, "jicofo.conference.enable-auto-owner")
    if _boolean(auto_owner) is False:
        findings.append(Finding(OK, "jicofo.conference.enable-auto-owner = false (jicofo makes no one owner "
                                    "by itself)"))
    else:
        state = "is not set (jicofo's default is true)" if auto_owner is None else "is not false"
        findings.append(Finding(FAIL, f"jicofo.conference.enable-auto-owner {state}: jicofo makes the first "
                                      "participant owner (moderator), a patient who joins first included. Set "
                                      "jicofo { conference { enable-auto-owner = false } } (see " + SNIPPET + ")"))

    enabled = _boolean(_get(config, "jicofo.authentication.enabled"))
    if enabled:
        kind = _get(config, "jicofo.authentication.type")
        kind = kind if isinstance(kind, str) else "XMPP"
        findings.append(Finding(FAIL, f"jicofo.authentication is enabled (type {kind}): jicofo makes every "
                                      "authenticated participant owner, and with Prosody's token authentication "
                                      "that is every token holder, the patient too. Set jicofo { authentication "
                                      "{ enabled = false } }: tokens are checked by Prosody alone (see "
                                      + SNIPPET + ")"))
    else:
        findings.append(Finding(OK, "jicofo.authentication is off (tokens are checked by Prosody alone)"))

    if legacy_properties is not None:
        for number, line in enumerate(legacy_properties.splitlines(), start=1):
            stripped = line.strip()
            if stripped.startswith(("#", "!")):
                continue
            if stripped.split("=", 1)[0].split(":", 1)[0].strip() == LEGACY_AUTH_KEY:
                findings.append(Finding(FAIL, f"{LEGACY_PROPERTIES} line {number} sets {LEGACY_AUTH_KEY}: it turns "
                                              "jicofo's authentication on (every token holder becomes owner). "
                                              "Remove that line"))
    return findings


def check_jicofo_file(path: str | Path) -> list[Finding]:
    """Reads jicofo.conf (its `include`s followed by pyhocon) and the legacy properties file beside it."""
    from pyhocon import ConfigFactory  # only `check` needs it
    from pyparsing import ParseBaseException

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding(FAIL, f"cannot read {path}: {getattr(exc, 'strerror', None) or exc.__class__.__name__}")]
    try:
        config = ConfigFactory.parse_string(text, basedir=str(path.parent))
    except ParseBaseException as exc:
        # the position only: the line itself may hold jicofo's XMPP password
        return [Finding(FAIL, f"cannot read {path} as HOCON (jicofo.conf): syntax error at line {exc.lineno}, "
                              f"column {exc.col}")]
    except Exception as exc:  # pyhocon's ConfigException and friends: say which, not the content
        return [Finding(FAIL, f"cannot read {path} as HOCON (jicofo.conf): {exc.__class__.__name__}")]
    legacy = path.parent / LEGACY_PROPERTIES
    legacy_text = None
    if legacy.is_file():
        try:
            legacy_text = legacy.read_text(encoding="utf-8", errors="replace")
        except OSError:
            legacy_text = None
    return check_jicofo(config, legacy_text)
