"""The `teleconsult` command (console script `teleconsult.cli:main`): the options in parser.py,
the drop box client in drop.py, every other subcommand in commands.py. Only the module of the
subcommand given is imported: `--help` and `drop` never load the database, the web app,
argon2 or reportlab (tests/test_cli_imports.py)."""


def main(argv: list[str] | None = None) -> int:
    import sys
    from .parser import parse
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.command != "drop":
        from .commands import run
        return run(args)
    if argv is None:
        # A command that moves one file and exits: the cyclic garbage collector's passes over the
        # objects of ~200 modules being imported are wasted work (5-10 ms); reference counting
        # still frees every buffer of the transfer as it goes.
        import gc
        gc.disable()
    from .drop import run
    status = run(args)
    if argv is None:
        leave(status)
    return status


def leave(status: int) -> None:
    """End the process of a `drop` command once its work is done (connections closed, the
    received file fsynced and in place, every thread joined) without the interpreter's
    teardown: freeing each of the ~250 modules loaded and the transfer's buffers took 20-30 ms
    on the 2-core bench machine, a tenth of a 16 MiB round trip (docs/benchmarks.md). Only the
    console script's call (no argv) leaves this way; a caller in the same process gets the
    status back."""
    import os
    import sys
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: what was printed may be lost, say so by the status
        status = status or 1
    os._exit(status)
