"""Clinicians, consultations, knocks, used room names.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clinicians",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("totp_secret", sa.String(64), nullable=True),
        sa.Column("totp_enabled", sa.Boolean, nullable=False),
        sa.Column("totp_last_counter", sa.Integer, nullable=True),
        sa.Column("api_token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "consultations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("clinician_id", sa.String(32), sa.ForeignKey("clinicians.id"), nullable=False, index=True),
        sa.Column("room_name", sa.String(64), nullable=False, unique=True),
        sa.Column("join_token", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("allow_rejoin", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("deadline_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=True),
    )
    op.create_table(
        "knocks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("consultation_id", sa.String(32), sa.ForeignKey("consultations.id"), nullable=False, index=True),
        sa.Column("display_name", sa.String(80), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("decided_at", sa.Float, nullable=True),
    )
    op.create_table(
        "used_rooms",
        sa.Column("room_name", sa.String(64), primary_key=True),
    )


def downgrade() -> None:
    for table in ("used_rooms", "knocks", "consultations", "clinicians"):
        op.drop_table(table)
