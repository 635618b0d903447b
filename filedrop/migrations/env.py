"""Alembic environment of the drop box: the caller hands over an open connection
(filedrop.migrations.upgrade); the version is kept in filedrop's own table."""

from alembic import context

from filedrop.migrations import VERSION_TABLE
from filedrop.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                  render_as_batch=True,
                  # the host's tables share the database: they are not the drop box's to compare
                  include_name=lambda name, type_, parents: type_ != "table" or name in metadata.tables)
with context.begin_transaction():
    context.run_migrations()
