"""The drop box's tables: encrypted documents and their audit trail.

Created here on a new database. A database whose host made them before filedrop had its own
migrations (teleconsult's revision 0002, up to teleconsult 0.1) keeps them as they are, rows
and all: they are checked column by column, any index missing is added, and this revision is
recorded in filedrop's version table. Tables of another shape stop the upgrade with a message
rather than being guessed at.

Revision ID: fd_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "fd_0001"
down_revision = None
branch_labels = None
depends_on = None

FILES_COLUMNS = ("id", "box_id", "uploaded_by", "state", "size", "received", "meta", "owner_token_hash",
                 "max_downloads", "downloads", "created_at", "completed_at", "expires_at", "delete_at")
AUDIT_COLUMNS = ("seq", "at", "action", "file_id", "box_id", "reason")
INDEXES = {"drop_files": ("box_id", "expires_at", "delete_at"), "drop_audit": ("box_id",)}
EXPECTED = {"drop_files": FILES_COLUMNS, "drop_audit": AUDIT_COLUMNS}


def _create() -> None:
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


def _adopt(inspector) -> None:
    """Keep tables a host made with the same columns; add an index they lack."""
    for table, columns in EXPECTED.items():
        found = {column["name"] for column in inspector.get_columns(table)}
        if found != set(columns):
            missing, extra = sorted(set(columns) - found), sorted(found - set(columns))
            raise RuntimeError(f"filedrop: table {table} exists but is not the drop box's "
                               f"(missing columns {missing}, unknown columns {extra}); nothing was changed")
    for table, columns in INDEXES.items():
        indexed = {tuple(index["column_names"]) for index in inspector.get_indexes(table)}
        for column in columns:
            if (column,) not in indexed:
                op.create_index(f"ix_{table}_{column}", table, [column])


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = set(EXPECTED) & set(inspector.get_table_names())
    if present == set(EXPECTED):
        _adopt(inspector)
    elif present:
        raise RuntimeError(f"filedrop: only {sorted(present)} of the drop box's tables exist; nothing was changed")
    else:
        _create()


def downgrade() -> None:
    op.drop_table("drop_audit")
    op.drop_table("drop_files")
