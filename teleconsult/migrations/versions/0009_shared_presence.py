"""Presence shared by every instance (issue 15, PostgreSQL): who is in each consultation's call,
as Prosody's occupant events and the direct call's signal streams tell it, one row per occupant
session (live, or a tombstone that a late `joined` cannot undo). jitsi/shared_presence.py.

Revision ID: 0009_shared_presence
Revises: 0008_shared_state
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_shared_presence"
down_revision = "0008_shared_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "presence_sessions",
        sa.Column("consultation_id", sa.String(32), sa.ForeignKey("consultations.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("jid_hash", sa.String(64), primary_key=True),  # sha256 of the occupant's JID
        sa.Column("joined_at", sa.BigInteger, primary_key=True, autoincrement=False),  # -1: not given
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True, index=True),  # NULL: in the call; else a tombstone
        sa.Column("noted_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("presence_sessions")
