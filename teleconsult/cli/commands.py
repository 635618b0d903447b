"""The `teleconsult` subcommands other than `drop` (their options: parser.py). Every subcommand
reaches the same database through --config, --data-dir or TELECONSULT_DATA_DIR, also while
`serve` runs (SQLite WAL)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

import sqlalchemy as sa

from .. import accounts, clinician_keys, consultations, db, ids, sealing
from ..jitsi import config_check, jicofo_check
from ..web.app import create_app
from ..errors import DomainError
from ..resources import JITSI_FILES, jitsi_plugin_dir
from ..web import server
from ..web.access_log import setup_logging
from ..settings import DEMO_SECRETS_FILE, SETTINGS_BY_NAME, Settings, SettingsError, load_settings

DEMO_EMAIL = "demo@teleconsult.invalid"
DEMO_NAME = "Dr Démo"


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


def _in_child_process(work) -> None:
    """Run `work` in a forked child and wait for it. The demo clinician's password hash (argon2,
    64 MiB of memory) is made there: the server's own peak memory stays that of serving, not
    of a one-off hash at start-up (docs/benchmarks.md). Forked before the server starts any
    thread or event loop; the child's errors are its own one line on stderr."""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        code = 1
        try:
            work()
            code = 0
        except DomainError as exc:
            print(f"teleconsult: {exc}", file=sys.stderr)
        except BaseException as exc:  # noqa: BLE001 - reported below as one line, then the parent stops
            print(f"teleconsult: demo set-up failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise DomainError("the demo set-up failed (see above)")


def cmd_serve(args) -> int:
    settings = _settings(args, demo=args.demo)
    setup_logging()
    if settings.demo:
        _in_child_process(lambda: asyncio.run(_ensure_demo_clinician(settings)))
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


def cmd_migrate_database(args) -> int:
    """The move of docs/operations.md: teleconsult/database_move.py does it, in one transaction."""
    from .. import database_move
    settings = _settings_for_tools(args)
    target_url = args.to.strip()
    if not target_url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        raise DomainError("--to must be a PostgreSQL URL (postgresql://user@host:port/database)")

    async def work():
        source, target = db.make_engine(settings.sqlalchemy_url), db.make_engine(target_url)
        shown = sa.engine.make_url(target_url).render_as_string(hide_password=True)  # as given, no password
        try:
            print(f"Moving {source.url.render_as_string(hide_password=True)} to {shown} ...", flush=True)
            moved = await database_move.move(source, target, say=lambda line: print("  " + line, flush=True))
        except sa.exc.SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise DomainError(f"the move failed, nothing was written to {shown}: {reason}") from None
        finally:
            await source.dispose()
            await target.dispose()
        return moved, shown
    moved, shown = asyncio.run(work())
    print(f"Done: {moved.total} rows in {len(moved.counts)} tables, counts checked. Keep the old instance "
          f"stopped (what it writes now is not moved), set database_url to the --to URL ({shown}) in the settings (the "
          f"documents stay in {Path(settings.data_dir).resolve() / 'documents'}), and start the instances.")
    return 0


def cmd_move_documents(args) -> int:
    from filedrop.moving import move_documents
    from filedrop.storage import LocalStorage

    from ..document_store import open_document_store
    settings = _settings(args)
    if settings.documents_store == "local":
        raise SettingsError("move-documents copies data_dir/documents into a bucket: set documents_store = s3 "
                            "and the s3_* settings first")

    async def move(engine):
        target = await open_document_store(settings)
        try:
            return await move_documents(engine, LocalStorage(Path(settings.data_dir) / "documents"), target)
        finally:
            await target.close()
    counts = asyncio.run(_with_engine(settings, move))
    print(f"Copied {counts['published']} published documents and {counts['unfinished']} unfinished uploads to "
          f"bucket {settings.s3_bucket}; {counts['missing']} rows had no file (the sweeper removes them).")
    return 0


COMMANDS = {"serve": cmd_serve, "check": cmd_check, "clinician": cmd_clinician, "consultation": cmd_consultation,
            "jitsi-files": cmd_jitsi_files, "migrate-database": cmd_migrate_database,
            "move-documents": cmd_move_documents}


def run(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.command](args)
    except SettingsError as exc:
        print(f"teleconsult: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"teleconsult: {exc}", file=sys.stderr)
        return 1

