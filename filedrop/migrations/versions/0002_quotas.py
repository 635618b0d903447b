"""Quotas and idle uploads: who a file counts against (`owner`, an opaque key the host gives,
e.g. teleconsult's clinician id) and when an unfinished upload last received a part
(`touched_at`, so that an upload left idle goes in minutes while a slow one goes on).

Revision ID: fd_0002
Revises: fd_0001
"""
import sqlalchemy as sa
from alembic import op

revision = "fd_0002"
down_revision = "fd_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("drop_files") as batch:
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("touched_at", sa.Float, nullable=True))
        batch.create_index("ix_drop_files_owner", ["owner"])


def downgrade() -> None:
    with op.batch_alter_table("drop_files") as batch:
        batch.drop_index("ix_drop_files_owner")
        batch.drop_column("touched_at")
        batch.drop_column("owner")
