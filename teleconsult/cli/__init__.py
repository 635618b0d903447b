"""The `teleconsult` command (console script `teleconsult.cli:main`): the options in parser.py,
the drop box client in drop.py, every other subcommand in commands.py. Only the module of the
subcommand given is imported: `--help` and `drop` never load the database, the web app,
argon2 or reportlab (tests/test_cli_imports.py)."""


def main(argv: list[str] | None = None) -> int:
    from .parser import build_parser
    args = build_parser().parse_args(argv)
    if args.command == "drop":
        from .drop import run
    else:
        from .commands import run
    return run(args)
