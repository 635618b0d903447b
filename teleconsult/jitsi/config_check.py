"""`teleconsult check --jitsi-config FILE`: what can be checked of the Jitsi host against our settings.

Reads a Prosody configuration file (the Jitsi host's, e.g.
/etc/prosody/conf.avail/meet.example.org.cfg.lua; `Include` lines are followed) and checks:

- the VirtualHost named jitsi_domain uses token authentication with our app_id and app_secret,
  and does not let anyone in without a token;
- its MUC component loads mod_teleconsult_events with our events URL (public_url +
  /api/jitsi/events), the same secret (jitsi_events_secret) and the same bearer mode;
- what stops every token holder from becoming moderator: token_verification and
  token_affiliation on the MUC component, muc_allowners nowhere, muc_wait_for_host nowhere unless
  wait_for_host_disable_auto_owners = true. Jicofo's auto-owner and authentication live in
  jicofo.conf, checked by jicofo_check.py (`--jicofo-config`).

The configuration is read by prosody_config.py, never run. Secrets are compared in constant
time and never printed.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .prosody_config import ConfigSyntaxError, LuaTable, ProsodyConfig, Section, parse_config
from ..settings import Settings

EVENTS_PATH = "/api/jitsi/events"
OK, WARN, FAIL, NOTE = "OK", "WARN", "FAIL", "NOTE"


@dataclass(frozen=True)
class Finding:
    level: str
    message: str

    def line(self) -> str:
        return f"{self.level:<4} {self.message}"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, LuaTable):
        return [v for v in value.items if isinstance(v, str)]
    return []


def _same_secret(given: Any, expected: str) -> bool:
    return isinstance(given, str) and bool(expected) and hmac.compare_digest(
        given.encode("utf-8"), expected.encode("utf-8"))


def _host_modules(config: ProsodyConfig, host: Section) -> set[str]:
    """Modules a VirtualHost loads: the global list plus its own, minus modules_disabled."""
    glob_opts = config.global_options
    enabled = set(_strings(glob_opts.get("modules_enabled"))) | set(_strings(host.options.get("modules_enabled")))
    disabled = set(_strings(host.options.get("modules_disabled", glob_opts.get("modules_disabled"))))
    return enabled - disabled


def check_config(config: ProsodyConfig, settings: Settings) -> list[Finding]:
    findings: list[Finding] = []
    ok = lambda m: findings.append(Finding(OK, m))  # noqa: E731
    fail = lambda m: findings.append(Finding(FAIL, m))  # noqa: E731
    warn = lambda m: findings.append(Finding(WARN, m))  # noqa: E731
    glob_opts = config.global_options
    domain = settings.jitsi_domain

    for pattern in config.unfollowed:
        warn(f'Include "{pattern}" matched no file here: check what it holds by hand')

    # the VirtualHost: who may join
    host = config.find("VirtualHost", domain)
    if host is None:
        fail(f'no VirtualHost "{domain}" (jitsi_domain) in this file')
    else:
        def host_option(name: str) -> Any:
            return host.options.get(name, glob_opts.get(name))

        auth = host_option("authentication")
        if auth == "token":
            ok(f'VirtualHost "{domain}": authentication = "token"')
        else:
            fail(f'VirtualHost "{domain}": authentication is {auth!r}, must be "token" '
                 "(otherwise anyone with the room name joins without our JWT)")
        app_id = host_option("app_id")
        if app_id == settings.jitsi_app_id:
            ok(f'VirtualHost "{domain}": app_id matches jitsi_app_id')
        else:
            fail(f'VirtualHost "{domain}": app_id is {app_id!r}, jitsi_app_id is {settings.jitsi_app_id!r}')
        if _same_secret(host_option("app_secret"), settings.jitsi_app_secret):
            ok(f'VirtualHost "{domain}": app_secret matches jitsi_app_secret')
        elif host_option("app_secret") is None:
            fail(f'VirtualHost "{domain}": no app_secret (HS256 key shared with jitsi_app_secret)')
        else:
            fail(f'VirtualHost "{domain}": app_secret differs from jitsi_app_secret (tokens will be refused)')
        if host_option("allow_empty_token") is True:
            fail(f'VirtualHost "{domain}": allow_empty_token = true lets anyone join without a token')
        for option in ("asap_accepted_issuers", "asap_accepted_audiences"):
            accepted = _strings(host_option(option))
            if host_option(option) is not None and settings.jitsi_app_id not in accepted and "*" not in accepted:
                fail(f'VirtualHost "{domain}": {option} does not include {settings.jitsi_app_id!r} '
                     "(our tokens' iss and aud): they will be refused")
        if "muc_allowners" in _host_modules(config, host):
            fail(f'VirtualHost "{domain}" loads muc_allowners: every participant becomes moderator')

    for section in config.sections:
        if section.kind == "VirtualHost" and section.name.lower() != domain.lower() \
                and section.options.get("authentication", glob_opts.get("authentication")) == "anonymous":
            warn(f'VirtualHost "{section.name}" allows anonymous users: if it is a guest domain of '
                 f'"{domain}", people without our token can join its rooms')

    # the MUC component: our module and who is moderator
    main_muc = host.options.get("main_muc") if host is not None else None
    muc_name = main_muc if isinstance(main_muc, str) else f"conference.{domain}"
    muc = config.find("Component", muc_name)
    if muc is None or muc.component_type != "muc":
        fail(f'no Component "{muc_name}" "muc" (the MUC component of {domain})')
    else:
        modules = set(_strings(muc.options.get("modules_enabled")))
        if "teleconsult_events" in modules:
            ok(f'Component "{muc_name}": teleconsult_events is enabled')
        else:
            fail(f'Component "{muc_name}": "teleconsult_events" is not in modules_enabled '
                 "(no room events: presence and the end of the call are not seen)")
        url = muc.options.get("teleconsult_events_url")
        expected_url = settings.public_url + EVENTS_PATH
        if url == expected_url:
            ok(f'Component "{muc_name}": teleconsult_events_url is {expected_url}')
        else:
            fail(f'Component "{muc_name}": teleconsult_events_url is {url!r}, expected {expected_url!r} '
                 "(public_url + /api/jitsi/events)")
        if not settings.jitsi_events_secret:
            fail("jitsi_events_secret is not set in teleconsult's settings: the events endpoint answers 503")
        elif _same_secret(muc.options.get("teleconsult_events_secret"), settings.jitsi_events_secret):
            ok(f'Component "{muc_name}": teleconsult_events_secret matches jitsi_events_secret')
        else:
            fail(f'Component "{muc_name}": teleconsult_events_secret is missing or differs from '
                 "jitsi_events_secret (events will be refused with 401)")
        bearer = muc.options.get("teleconsult_events_bearer", False) is True
        if bearer != settings.jitsi_events_bearer:
            fail(f'Component "{muc_name}": teleconsult_events_bearer is {str(bearer).lower()} but '
                 f"jitsi_events_bearer is {str(settings.jitsi_events_bearer).lower()}: both must agree")
        elif bearer:
            warn("bearer mode is on: requests carry the secret itself and have no timestamp (prefer the signature)")
        if "token_verification" in modules:
            ok(f'Component "{muc_name}": token_verification is enabled (a token opens only its own room)')
        else:
            fail(f'Component "{muc_name}": "token_verification" is not in modules_enabled: '
                 "a token for one room opens every room")
        if "token_affiliation" in modules:
            ok(f'Component "{muc_name}": token_affiliation is enabled (moderator from the token)')
        else:
            fail(f'Component "{muc_name}": "token_affiliation" is not in modules_enabled: the token\'s '
                 "affiliation does not decide who is moderator (see jitsi_plugin/prosody-snippet.cfg.lua)")
        if "muc_allowners" in modules:
            fail(f'Component "{muc_name}" loads muc_allowners: every participant becomes moderator')
        if muc.options.get("muc_room_locking") is True:
            warn(f'Component "{muc_name}": muc_room_locking = true (Jitsi expects false)')

    for section in config.sections:
        if section.kind == "Component" and section.name.lower() != muc_name.lower() \
                and "muc_allowners" in _strings(section.options.get("modules_enabled")):
            fail(f'Component "{section.name}" loads muc_allowners: every participant becomes moderator')
    if not any("muc_allowners" in _loaded(config, section) for section in config.sections):
        ok("muc_allowners is loaded nowhere")
    _check_wait_for_host(config, findings)

    findings.append(Finding(NOTE, "not in this file: jicofo must not make anyone owner by itself; check "
                                  "/etc/jitsi/jicofo/jicofo.conf with --jicofo-config"))
    return findings


def _loaded(config: ProsodyConfig, section: Section) -> set[str]:
    """Modules a section loads (components do not load the global modules_enabled)."""
    if section.kind == "VirtualHost":
        return _host_modules(config, section)
    if section.kind == "Component":
        return set(_strings(section.options.get("modules_enabled")))
    return set()


def _check_wait_for_host(config: ProsodyConfig, findings: list[Finding]) -> None:
    """Jitsi's muc_wait_for_host makes every occupant with a token owner, unless
    wait_for_host_disable_auto_owners = true (its own option, read on the section that loads it)."""
    loading = [s for s in config.sections if s.kind != "global" and "muc_wait_for_host" in _loaded(config, s)]
    if not loading:
        findings.append(Finding(OK, "muc_wait_for_host is not loaded (it would make every token holder owner)"))
    for section in {(s.kind, s.name.lower()): s for s in loading}.values():
        merged = config.find(section.kind, section.name) or section
        kind = "VirtualHost" if section.kind == "VirtualHost" else "Component"
        if merged.options.get("wait_for_host_disable_auto_owners",
                              config.global_options.get("wait_for_host_disable_auto_owners")) is True:
            findings.append(Finding(OK, f'{kind} "{section.name}": muc_wait_for_host with '
                                        "wait_for_host_disable_auto_owners = true"))
        else:
            findings.append(Finding(FAIL, f'{kind} "{section.name}" loads muc_wait_for_host, which makes every '
                                          "participant with a token owner (moderator), the patient too: set "
                                          "wait_for_host_disable_auto_owners = true there, or remove "
                                          '"muc_wait_for_host" from its modules_enabled'))


def check_file(path: str | Path, settings: Settings) -> list[Finding]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return [Finding(FAIL, f"cannot read {path}: {exc.strerror or exc}")]
    try:
        config = parse_config(text, path)
    except ConfigSyntaxError as exc:
        return [Finding(FAIL, f"cannot read {path} as a Prosody configuration: {exc}")]
    return check_config(config, settings)


def failed(findings: list[Finding]) -> bool:
    return any(f.level == FAIL for f in findings)
