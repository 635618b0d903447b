"""Tables of the drop box. Only ciphertext sizes, encrypted metadata and deadlines: never a
file name, a type or a plaintext size in clear."""

import sqlalchemy as sa

metadata = sa.MetaData()

# drop_files.state: written in parts, published, being deleted (a crash here is finished by a sweep)
UPLOADING, READY, DELETING = "uploading", "ready", "deleting"
STATES = (UPLOADING, READY, DELETING)

files = sa.Table(
    "drop_files", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    # consultation id for a consultation box; NULL for a standalone drop
    sa.Column("box_id", sa.String(32), nullable=True, index=True),
    sa.Column("uploaded_by", sa.String(16), nullable=False),  # a role named by the host app, or "standalone"
    sa.Column("state", sa.String(16), nullable=False),  # uploading | ready | deleting
    sa.Column("size", sa.BigInteger, nullable=False),  # declared ciphertext size (a bucket)
    sa.Column("received", sa.BigInteger, nullable=False),
    sa.Column("meta", sa.LargeBinary, nullable=True),  # encrypted metadata blob
    sa.Column("owner_token_hash", sa.String(64), nullable=True),
    sa.Column("max_downloads", sa.Integer, nullable=True),
    sa.Column("downloads", sa.Integer, nullable=False),  # transfers started (what a limit holds against)
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("completed_at", sa.Float, nullable=True),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),  # hard expiry, always set
    sa.Column("delete_at", sa.Float, nullable=True, index=True),  # end of consultation + grace, limit reached
    # who the file counts against for quotas: an opaque key given by the host (NULL: nobody)
    sa.Column("owner", sa.String(64), nullable=True, index=True),
    sa.Column("touched_at", sa.Float, nullable=True),  # last part received (unfinished uploads idle out)
    # the request writing a part now (a random token, on any instance): only it may record what it wrote
    sa.Column("writer", sa.String(32), nullable=True),
    # what the storage needs to resume the upload on any instance (S3: multipart upload id, tail token)
    sa.Column("store_state", sa.Text, nullable=True),
    # transfers whose last byte was sent (a page's "downloaded"; a transfer cut midway is not one)
    sa.Column("completed_downloads", sa.Integer, nullable=False, server_default="0"),
)

# What remains after deletion: what, when, which box. No name, no size, no address.
audit = sa.Table(
    "drop_audit", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # created | completed | downloaded | received | deleted
    sa.Column("file_id", sa.String(32), nullable=False),
    sa.Column("box_id", sa.String(32), nullable=True, index=True),
    sa.Column("reason", sa.String(32), nullable=True),
)
