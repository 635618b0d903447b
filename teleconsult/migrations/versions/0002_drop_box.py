"""Drop box: nothing, since filedrop migrates its own tables.

Until teleconsult 0.1 this revision created `drop_files` and `drop_audit`. They now belong to
filedrop's own migrations (filedrop/migrations/, version in `filedrop_alembic_version`), run by
teleconsult.db.migrate right after this chain; filedrop's first revision adopts the tables this
revision made on an existing database, rows and all. The revision stays, empty, so that
databases already at 0002 or 0003 keep a known version.

Revision ID: 0002
Revises: 0001
"""

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
