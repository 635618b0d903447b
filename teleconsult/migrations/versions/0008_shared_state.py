"""State several instances share (issue 15, PostgreSQL): rate-limit counters and the Prosody
events already handled (signatures and event ids), so that every instance counts the same hits
and refuses the same replays, and a restart forgets neither. Keys are stored hashed: an email
address or a client address never sits in these tables in clear.

Revision ID: 0008_shared_state
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_shared_state"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(64), primary_key=True),  # sha256 of "limiter:key"
        sa.Column("window_start", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False, index=True),
        sa.Column("hits", sa.Integer, nullable=False),
    )
    op.create_table(
        "seen_events",
        sa.Column("key", sa.String(64), primary_key=True),  # sha256 of "kind:value"
        sa.Column("expires_at", sa.Float, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("seen_events")
    op.drop_table("rate_limits")
