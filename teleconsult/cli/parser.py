"""The `teleconsult` command line as argparse sees it: every subcommand and option, built
without importing what the commands use (the database, the web app, the drop box client), so
that `--help` and a usage error answer at once and each subcommand imports only its own
modules (teleconsult/cli/__init__.py). Each parser names its handler module in `run`."""

from __future__ import annotations

import argparse
import re

TOKEN_ENV = "TELECONSULT_API_TOKEN"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """'90' or '90s', '30m', '12h', '7d', '1w', or sums such as '1h30m' -> seconds."""
    compact = text.strip().lower().replace(" ", "")
    pieces = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in pieces) != compact:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (examples: 3600, 30m, 12h, 7d, 1h30m)")
    return sum(float(number) * _UNITS[unit] for number, unit in pieces)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return value


def add_drop_parser(sub) -> None:
    """Add `drop` and its subcommands to the `teleconsult` parser's subparsers."""
    drop = sub.add_parser("drop", help="send and fetch end-to-end encrypted files through a server's drop box")
    actions = drop.add_subparsers(dest="action", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--token", metavar="TOKEN",
                        help=f"a clinician's API token (also {TOKEN_ENV}); see `teleconsult clinician token`")
    common.add_argument("--consultation", metavar="LINK",
                        help="the full patient link /j/TOKEN#SECRET: use that consultation's box, as its clinician")
    common.add_argument("--progress", action="store_true",
                        help="show a progress line on stderr even when it is not a terminal")

    send = actions.add_parser("send", parents=[common], help="encrypt a file and upload it; print its link")
    send.add_argument("file", metavar="FILE")
    send.add_argument("--server", metavar="URL", help="the server's public URL (standalone drops)")
    send.add_argument("--expires", metavar="DURATION", type=parse_duration,
                      help="standalone drop: delete it after this long (3600, 30m, 12h, 7d; default: server's maximum)")
    send.add_argument("--downloads", metavar="N", type=positive_int,
                      help="standalone drop: delete it after N downloads")

    get = actions.add_parser("get", parents=[common], help="download and decrypt a file")
    get.add_argument("target", metavar="LINK|DOC_ID", nargs="?",
                     help="a drop link /d/ID#SECRET; with --consultation, a document id")
    get.add_argument("-o", "--output", metavar="FILE",
                     help="where to save (a file, or a directory); default: the sender's file name, sanitised")
    get.add_argument("--force", action="store_true", help="overwrite an existing file")
    get.add_argument("--all", action="store_true", help="with --consultation: save every document of the box")

    delete = actions.add_parser("delete", help="delete a standalone drop before it expires")
    delete.add_argument("link", metavar="LINK", help="the drop link (the part after # is not needed)")
    delete.add_argument("--owner-token", metavar="TOKEN", required=True,
                        help="the owner token `drop send` printed")


class _Version(argparse.Action):
    """--version: reads the installed distribution's metadata only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog} {installed_version()}")
        parser.exit()


def installed_version() -> str:
    from importlib import metadata  # only for --version: not on every start
    try:
        return metadata.version("teleconsult")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with `only` the one subcommand of that name (the others left
    out): `drop` is a command that starts and transfers at once, and building every other
    subcommand's options took 3-4 ms of it (docs/benchmarks.md)."""
    parser = argparse.ArgumentParser(prog="teleconsult", description="Self-hostable teleconsultation on Jitsi Meet.")
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="TOML settings file (also TELECONSULT_CONFIG)")
    common.add_argument("--data-dir", metavar="DIR", help="data directory (also TELECONSULT_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, add in SUBCOMMANDS.items():
        if only is None or name == only:
            add(sub, common)
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """The arguments of one command line (without the program's name)."""
    only = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    return build_parser(only).parse_args(argv)


def _add_serve(sub, common) -> None:
    serve = sub.add_parser("serve", parents=[common], help="run the web app")
    serve.add_argument("--host", help="listen address")
    serve.add_argument("--port", type=int, help="listen port")
    serve.add_argument("--demo", action="store_true", default=None,
                       help="generate missing secrets and a demo clinician (not for production)")


def _add_check(sub, common) -> None:
    check = sub.add_parser("check", parents=[common], help="validate the configuration and say what is wrong")
    check.add_argument("--jitsi-config", metavar="FILE",
                       help="also check the Jitsi host's Prosody configuration file against these settings")
    check.add_argument("--jicofo-config", metavar="FILE",
                       help="also check the Jitsi host's jicofo.conf: jicofo must not make anyone moderator "
                            "by itself")


def _add_clinician(sub, common) -> None:
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


def _add_consultation(sub, common) -> None:
    consultation = sub.add_parser("consultation", help="manage consultations")
    consultation_sub = consultation.add_subparsers(dest="action", required=True)
    new = consultation_sub.add_parser("new", parents=[common], help="create a consultation, print the patient link")
    new.add_argument("--clinician", required=True, metavar="EMAIL")


def _add_jitsi_files(sub, common) -> None:
    jitsi_files = sub.add_parser("jitsi-files", help="copy the Prosody module and the Jitsi snippets of this "
                                 "version into DIR, for the Jitsi host")
    jitsi_files.add_argument("directory", metavar="DIR")


def _add_migrate_database(sub, common) -> None:
    move = sub.add_parser(
        "migrate-database", parents=[common],
        help="copy this instance's database (the current settings') into an empty PostgreSQL database, "
             "then set database_url to it (docs/operations.md)")
    move.add_argument("--to", required=True, metavar="URL",
                      help="the empty target database, e.g. postgresql://teleconsult@db.internal/teleconsult "
                           "(its password from PGPASSWORD or ~/.pgpass, not in the URL)")


def _add_move_documents(sub, common) -> None:
    sub.add_parser("move-documents", parents=[common],
                   help="with every instance stopped, copy the documents of data_dir/documents into the bucket "
                        "the settings name (documents_store = s3); unfinished uploads go on where they were")


SUBCOMMANDS = {  # in the order `teleconsult --help` lists them
    "serve": _add_serve,
    "check": _add_check,
    "clinician": _add_clinician,
    "consultation": _add_consultation,
    "jitsi-files": _add_jitsi_files,
    "migrate-database": _add_migrate_database,
    "move-documents": _add_move_documents,
    "drop": lambda sub, common: add_drop_parser(sub),
}
