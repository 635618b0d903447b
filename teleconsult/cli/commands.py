"""The `teleconsult` command. Every subcommand reaches the same database through --config,
--data-dir or TELECONSULT_DATA_DIR, also while `serve` runs (SQLite WAL)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from importlib import metadata
from pathlib import Path


from .. import accounts, clinician_keys, consultations, db, ids, sealing
from . import drop
from ..jitsi import config_check, jicofo_check
from ..web.app import create_app
from ..errors import DomainError
from ..resources import JITSI_FILES, jitsi_plugin_dir
from ..web import server
from ..web.access_log import setup_logging
from ..settings import DEMO_SECRETS_FILE, SETTINGS_BY_NAME, Settings, SettingsError, load_settings

DEMO_EMAIL = "demo@teleconsult.invalid"
DEMO_NAME = "Dr Démo"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="teleconsult", description="Self-hostable teleconsultation on Jitsi Meet.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="TOML settings file (also TELECONSULT_CONFIG)")
    common.add_argument("--data-dir", metavar="DIR", help="data directory (also TELECONSULT_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the web app")
    serve.add_argument("--host", help="listen address")
    serve.add_argument("--port", type=int, help="listen port")
    serve.add_argument("--demo", action="store_true", default=None,
                       help="generate missing secrets and a demo clinician (not for production)")

    check = sub.add_parser("check", parents=[common], help="validate the configuration and say what is wrong")
    check.add_argument("--jitsi-config", metavar="FILE",
                       help="also check the Jitsi host's Prosody configuration file against these settings")
    check.add_argument("--jicofo-config", metavar="FILE",
                       help="also check the Jitsi host's jicofo.conf: jicofo must not make anyone moderator "
                            "by itself")

    clinician = sub.add_parser("clinician", help="manage clinician accounts")
    clinician_sub = clinician.add_subparsers(dest="action", required=True)
    add = clinician_sub.add_parser("add", parents=[common], help="create a clinician account")
    add.add_argument("email")
    add.add_argument("--name", required=True, help="name shown to patients, e.g. 'Dr Marie Curie'")
    token = clinician_sub.add_parser("token", parents=[common],
                                     help="issue a new API token (replaces the previous one)")
    token.add_argument("email")
    password = clinician_sub.add_parser("password", parents=[common],
                                        help="set a new password (signs out every session of the account)")
    password.add_argument("email")
    reset_totp = clinician_sub.add_parser("reset-totp", parents=[common],
                                          help="forget the second factor: the next login enrols a new one")
    reset_totp.add_argument("email")
    clinician_sub.add_parser("list", parents=[common], help="list clinician accounts (no secrets)")

    consultation = sub.add_parser("consultation", help="manage consultations")
    consultation_sub = consultation.add_subparsers(dest="action", required=True)
    new = consultation_sub.add_parser("new", parents=[common], help="create a consultation, print the patient link")
    new.add_argument("--clinician", required=True, metavar="EMAIL")

    jitsi_files = sub.add_parser("jitsi-files", help="copy the Prosody module and the Jitsi snippets of this "
                                 "version into DIR, for the Jitsi host")
    jitsi_files.add_argument("directory", metavar="DIR")

    drop.add_parser(sub)
    return parser


def installed_version() -> str:
    try:
        return metadata.version("teleconsult")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _settings(args: argparse.Namespace, demo: bool | None = None) -> Settings:
    overrides = {"data_dir": args.data_dir, "demo": demo,
                 "host": getattr(args, "host", None), "port": getattr(args, "port", None)}
    return load_settings(args.config, overrides)


def _settings_for_tools(args: argparse.Namespace) -> Settings:
    """CLI tools also work on a demo data directory: they reuse its generated secrets."""
    try:
        return _settings(args)
    except SettingsError:
        data_dir = Path(args.data_dir or os.environ.get("TELECONSULT_DATA_DIR") or SETTINGS_BY_NAME["data_dir"].default)
        if args.config or not (data_dir / DEMO_SECRETS_FILE).exists():
            raise
        return _settings(args, demo=True)


async def _with_engine(settings: Settings, work):
    engine = db.make_engine(settings.sqlalchemy_url)
    try:
        await db.migrate(engine)
        return await work(engine)
    finally:
        await engine.dispose()


def _read_password() -> tuple[str, bool]:
    """From stdin when piped; generated (and printed once) when stdin is a terminal or empty."""
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
        if password:
            return password, False
    elif (password := getpass.getpass("Password (empty to generate one): ")):
        return password, False
    return accounts.generate_password(), True


async def _ensure_demo_clinician(settings: Settings) -> None:
    async def work(engine):
        try:
            await accounts.get_clinician_by_email(engine, DEMO_EMAIL)
            print(f"Demo clinician: {DEMO_EMAIL} (password printed at first start; "
                  f"delete {settings.data_dir} to start over)")
            return
        except DomainError:
            pass
        password = accounts.generate_password()
        await accounts.create_clinician(engine, DEMO_EMAIL, DEMO_NAME, password)
        print("=" * 60)
        print("Demo mode. Log in at", settings.public_url + "/login")
        print("  email:   ", DEMO_EMAIL)
        print("  password:", password)
        print("Then scan the QR code with an authenticator app (TOTP).")
        print("=" * 60, flush=True)
    await _with_engine(settings, work)


def cmd_serve(args) -> int:
    settings = _settings(args, demo=args.demo)
    setup_logging()
    if settings.demo:
        asyncio.run(_ensure_demo_clinician(settings))
    asyncio.run(server.serve(create_app(settings), settings, say=lambda msg: print(msg, flush=True)))
    return 0


def engine_line(settings) -> str:
    """Which engine runs the calls with these settings (`check` prints it)."""
    if settings.call_engine == "jitsi":
        return f"Call engine: Jitsi at {settings.jitsi_origin} (jitsi_domain is set)."
    turn = ("STUN/TURN servers from direct_ice_servers" if settings.direct_ice_server_list
            else "no STUN/TURN server (direct_ice_servers is empty: fine on one machine or a local network; "
                 "across the Internet, configure a TURN server)")
    return ("Call engine: direct one-to-one browser call (jitsi_domain is empty); this app relays only the "
            f"signalling; {turn}.")


def cmd_check(args) -> int:
    try:
        settings = _settings(args)
    except SettingsError as exc:
        print("Configuration is not usable:", file=sys.stderr)
        print(str(exc), file=sys.stderr)
        return 2
    for name, value in settings.safe_dict().items():
        print(f"{name} = {value!r}")
    print(engine_line(settings))

    async def probe(engine):
        return True
    asyncio.run(_with_engine(settings, probe))
    print("OK: configuration valid, database reachable and migrated.")
    checks = []
    if getattr(args, "jitsi_config", None):
        checks.append((args.jitsi_config, config_check.check_file(args.jitsi_config, settings)))
    if getattr(args, "jicofo_config", None):
        checks.append((args.jicofo_config, jicofo_check.check_jicofo_file(args.jicofo_config)))
    for path, findings in checks:
        print(f"Jitsi host ({path}):")
        for finding in findings:
            print(finding.line())
    if any(config_check.failed(findings) for _, findings in checks):
        print("NOT OK: the Jitsi host does not match these settings (see FAIL above).")
        return 1
    return 0


def cmd_clinician(args) -> int:
    settings = _settings_for_tools(args)
    password, generated = _read_password() if args.action in ("add", "password") else (None, False)
    work = {
        "add": lambda engine: accounts.create_clinician(engine, args.email, args.name, password),
        "password": lambda engine: accounts.set_password(engine, args.email, password),
        "reset-totp": lambda engine: accounts.reset_totp(engine, args.email),
        "token": lambda engine: accounts.issue_api_token(engine, args.email),
        "list": accounts.list_clinicians,
    }[args.action]
    result = asyncio.run(_with_engine(settings, work))
    if args.action == "add":
        print(f"Clinician {result.email} created.")
    elif args.action == "password":
        print(f"Password of {result.email} changed; all its sessions were signed out. Its documents key "
              "was forgotten: a new one is made at its next login, and open consultations created before "
              "open their documents only in the browsers that created them.")
    elif args.action == "reset-totp":
        print(f"Two-step verification of {result.email} reset; all its sessions were signed out. "
              "The next login shows a new QR code.")
    elif args.action == "token":
        print(result)
    else:
        for clinician in result:
            enrolled = "TOTP enrolled" if clinician.totp_enabled else "TOTP not enrolled"
            print(f"{clinician.email}\t{clinician.name}\t{enrolled}")
    if generated:
        print(f"Password (shown once): {password}")
    return 0


def cmd_consultation(args) -> int:
    settings = _settings_for_tools(args)

    secret = ids.consultation_secret()  # generated here, only ever stored sealed

    async def work(engine):
        clinician = await accounts.get_clinician_by_email(engine, args.clinician)
        key = await clinician_keys.get_key(engine, clinician.id)
        if key is None:  # no key yet (made at the clinician's next login): S stays with this link
            return await consultations.create_consultation(engine, settings, clinician), False
        consultation_id = ids.new_id()
        sealed = sealing.seal_secret(key.public_key, secret, consultation_id)
        return await consultations.create_consultation(
            engine, settings, clinician, consultation_id=consultation_id, sealed_secret=sealed,
            sealed_to=key.key_id), True
    consultation, sealed = asyncio.run(_with_engine(settings, work))
    print(consultations.patient_url(settings.public_url, consultation.join_token) + "#" + ids.b64url(secret))
    if not sealed:
        print("The clinician has no key yet (it is made at their next login): only this link holds the "
              "documents key of this consultation.", file=sys.stderr)
    return 0


def cmd_jitsi_files(args) -> int:
    """Copies what the Jitsi host needs; a file already identical is left alone (and said so),
    so that a deployment tool can tell whether anything changed."""
    target = Path(args.directory)
    target.mkdir(parents=True, exist_ok=True)
    source = jitsi_plugin_dir()
    for name in JITSI_FILES:
        content = (source / name).read_bytes()
        destination = target / name
        if destination.exists() and destination.read_bytes() == content:
            print(f"unchanged {destination}")
            continue
        destination.write_bytes(content)
        print(f"written {destination}")
    return 0


COMMANDS = {"serve": cmd_serve, "check": cmd_check, "clinician": cmd_clinician, "consultation": cmd_consultation,
            "jitsi-files": cmd_jitsi_files, "drop": drop.run}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except SettingsError as exc:
        print(f"teleconsult: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"teleconsult: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
