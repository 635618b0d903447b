"""Knocks keep the patient's display name sealed to the consultation secret, never in clear
(issue 17, docs/encryption.md section 10): `knocks.display_name` gives way to `knocks.sealed_name`
(379 base64url characters, NULL once purged). Names written in clear before this revision are
dropped with their column: a knock still open at the upgrade shows a neutral label.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("knocks") as batch:
        batch.add_column(sa.Column("sealed_name", sa.String(400), nullable=True))
        batch.drop_column("display_name")


def downgrade() -> None:
    with op.batch_alter_table("knocks") as batch:
        batch.add_column(sa.Column("display_name", sa.String(80), nullable=False, server_default=""))
        batch.drop_column("sealed_name")
