"""Drop box: encrypted documents and their audit trail.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drop_files",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("box_id", sa.String(32), nullable=True, index=True),
        sa.Column("uploaded_by", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False),
        sa.Column("meta", sa.LargeBinary, nullable=True),
        sa.Column("owner_token_hash", sa.String(64), nullable=True),
        sa.Column("max_downloads", sa.Integer, nullable=True),
        sa.Column("downloads", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("completed_at", sa.Float, nullable=True),
        sa.Column("expires_at", sa.Float, nullable=False, index=True),
        sa.Column("delete_at", sa.Float, nullable=True, index=True),
    )
    op.create_table(
        "drop_audit",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("file_id", sa.String(32), nullable=False),
        sa.Column("box_id", sa.String(32), nullable=True, index=True),
        sa.Column("reason", sa.String(32), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("drop_audit")
    op.drop_table("drop_files")
