"""Clinicians' profiles: what documents print about the prescriber (name, qualification,
identifier, address, phone, email) and the re-encoded logo and signature images.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clinician_profiles",
        sa.Column("clinician_id", sa.String(32), sa.ForeignKey("clinicians.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("qualification", sa.String(200), nullable=False, server_default=""),
        sa.Column("rpps", sa.String(40), nullable=False, server_default=""),
        sa.Column("address", sa.String(400), nullable=False, server_default=""),
        sa.Column("phone", sa.String(40), nullable=False, server_default=""),
        sa.Column("email", sa.String(320), nullable=False, server_default=""),
        sa.Column("logo", sa.LargeBinary, nullable=True),
        sa.Column("logo_type", sa.String(16), nullable=True),
        sa.Column("signature", sa.LargeBinary, nullable=True),
        sa.Column("signature_type", sa.String(16), nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("clinician_profiles")
