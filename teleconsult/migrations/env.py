"""Alembic environment: the caller hands over an open connection (see teleconsult.db.migrate)."""

from alembic import context

from filedrop.schema import metadata as drop_metadata
from teleconsult.db import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=[metadata, drop_metadata], render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
