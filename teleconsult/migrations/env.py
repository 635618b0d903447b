"""Alembic environment: the caller hands over an open connection (see teleconsult.db.migrate).
The drop box's tables are filedrop's, migrated by its own chain (filedrop/migrations/)."""

from alembic import context

import filedrop.migrations
from filedrop.schema import metadata as drop_metadata
from teleconsult.db_tables import metadata

NOT_OURS = {*drop_metadata.tables, filedrop.migrations.VERSION_TABLE}

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  include_name=lambda name, type_, parents: type_ != "table" or name not in NOT_OURS)
with context.begin_transaction():
    context.run_migrations()
