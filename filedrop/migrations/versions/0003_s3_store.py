"""Uploads that go on across instances: the writer holding an upload (`writer`, a token checked
by every write that records bytes, so a stale request on another instance records nothing) and
what the storage needs to resume it anywhere (`store_state`: for an S3 bucket, the multipart
upload id and the token of the object holding the unfinished part).

Revision ID: fd_0003_s3_store
Revises: fd_0002
"""
import sqlalchemy as sa
from alembic import op

revision = "fd_0003_s3_store"
down_revision = "fd_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("drop_files") as batch:
        batch.add_column(sa.Column("writer", sa.String(32), nullable=True))
        batch.add_column(sa.Column("store_state", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("drop_files") as batch:
        batch.drop_column("store_state")
        batch.drop_column("writer")
