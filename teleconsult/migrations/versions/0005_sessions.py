"""Server-side login sessions (revocable: logout, password change, TOTP reset, idle timeout);
they replace the clinicians' session epoch.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("clinician_id", sa.String(32), sa.ForeignKey("clinicians.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
    )
    op.create_index("ix_sessions_clinician_id", "sessions", ["clinician_id"])
    op.create_index("ix_sessions_last_seen_at", "sessions", ["last_seen_at"])
    # cookies of the epoch era name no session row: their holders log in again once
    # clinicians.session_epoch (0003) is no longer read: it stays in the table. Dropping it on SQLite
    # means rebuilding `clinicians`, which foreign keys (consultations, profiles) forbid on a database
    # that holds rows: an upgrade must never fail on a host's real data.


def downgrade() -> None:
    op.drop_table("sessions")
