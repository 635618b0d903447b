"""Clinician key pairs and sealed consultation secrets (issue 13, docs/encryption.md section 9):
the public key, the private key wrapped under the password with its PBKDF2 salt and iteration
count; each consultation's secret sealed to that public key, and which key it was sealed to.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clinicians") as batch:
        batch.add_column(sa.Column("public_key", sa.String(100), nullable=True))
        batch.add_column(sa.Column("wrapped_key", sa.String(240), nullable=True))
        batch.add_column(sa.Column("key_salt", sa.String(32), nullable=True))
        batch.add_column(sa.Column("key_iterations", sa.Integer, nullable=True))
    with op.batch_alter_table("consultations") as batch:
        batch.add_column(sa.Column("sealed_secret", sa.String(200), nullable=True))
        batch.add_column(sa.Column("sealed_to", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consultations") as batch:
        batch.drop_column("sealed_to")
        batch.drop_column("sealed_secret")
    with op.batch_alter_table("clinicians") as batch:
        batch.drop_column("key_iterations")
        batch.drop_column("key_salt")
        batch.drop_column("wrapped_key")
        batch.drop_column("public_key")
