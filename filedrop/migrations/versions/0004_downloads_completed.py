"""Downloads counted when their last byte was sent: `completed_downloads`. `downloads` still counts
transfers started (it is what a download limit holds against: a cut transfer has sent bytes),
`completed_downloads` those that went to the end (what a page shows as "downloaded").

Revision ID: fd_0004_downloads_completed
Revises: fd_0003_s3_store
"""
import sqlalchemy as sa
from alembic import op

revision = "fd_0004_downloads_completed"
down_revision = "fd_0003_s3_store"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("drop_files") as batch:
        batch.add_column(sa.Column("completed_downloads", sa.Integer, nullable=False, server_default="0"))
    # rows from before were counted when their transfer started: the best known count
    op.execute("UPDATE drop_files SET completed_downloads = downloads")


def downgrade() -> None:
    with op.batch_alter_table("drop_files") as batch:
        batch.drop_column("completed_downloads")
