"""The drop box's own migrations (Alembic), apart from any host application's.

filedrop keeps its revisions in this directory and its version in its own table,
`filedrop_alembic_version`, so a host runs its own chain and this one over the same database
without either knowing the other's revisions:

    await filedrop.migrations.migrate(engine)           # an AsyncEngine
    filedrop.migrations.upgrade(sync_connection)         # inside a host's migration step

Revision 0001 creates `drop_files` and `drop_audit`, or adopts them as they are when a host's
own migrations made them before filedrop had its own (teleconsult did until its 0002 became
empty): their rows are kept, untouched.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

DIRECTORY = Path(__file__).parent
VERSION_TABLE = "filedrop_alembic_version"


def config(connection) -> Config:
    """An Alembic configuration over an open (sync) connection: env.py uses that connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(DIRECTORY))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(connection, revision: str = "head") -> None:
    """Bring the drop box's tables to `revision` over a sync connection (idempotent)."""
    command.upgrade(config(connection), revision)


async def migrate(engine: AsyncEngine) -> None:
    """Bring the drop box's tables to the newest revision (idempotent)."""
    async with engine.begin() as conn:
        await conn.run_sync(upgrade)
