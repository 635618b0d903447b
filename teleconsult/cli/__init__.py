"""The `teleconsult` command (console script `teleconsult.cli:main`): subcommands in commands.py,
the drop box client in drop.py."""


def main(argv: list[str] | None = None) -> int:
    from .commands import main as run  # imported when run, so `import teleconsult.cli` stays light
    return run(argv)
