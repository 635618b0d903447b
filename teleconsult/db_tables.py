"""The database's tables (SQLAlchemy Core): teleconsult's own; the drop box's are filedrop/schema.py's.

Alembic's migrations (teleconsult/migrations/) build them; `metadata` is what its env.py compares
them with. The engine and the migration run are teleconsult/db.py's.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

clinicians = sa.Table(
    "clinicians", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("totp_secret", sa.String(64), nullable=True),
    sa.Column("totp_enabled", sa.Boolean, nullable=False, default=False),
    sa.Column("totp_last_counter", sa.Integer, nullable=True),
    sa.Column("api_token_hash", sa.String(64), nullable=True, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    # read by nothing since server-side sessions (0005); kept because dropping it would rebuild the table
    sa.Column("session_epoch", sa.Integer, nullable=False, default=0, server_default="0"),
    # the clinician's key pair (docs/encryption.md section 9): the public key in clear, the private
    # key only wrapped under the password, with its PBKDF2 salt and iteration count beside it
    sa.Column("public_key", sa.String(100), nullable=True),
    sa.Column("wrapped_key", sa.String(240), nullable=True),
    sa.Column("key_salt", sa.String(32), nullable=True),
    sa.Column("key_iterations", sa.Integer, nullable=True),
)

# Clinicians' login sessions, checked on every authenticated request (sessions.py): logout deletes
# one, a password change or a TOTP reset deletes all of a clinician's. The cookie holds the token;
# only its hash is stored.
sessions = sa.Table(
    "sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("clinician_id", sa.String(32), sa.ForeignKey("clinicians.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("verified", sa.Boolean, nullable=False),  # False: password given, second factor due
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_seen_at", sa.Float, nullable=False, index=True),
)

consultations = sa.Table(
    "consultations", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("clinician_id", sa.String(32), sa.ForeignKey("clinicians.id"), nullable=False, index=True),
    sa.Column("room_name", sa.String(64), nullable=False, unique=True),
    sa.Column("join_token", sa.String(64), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("allow_rejoin", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("deadline_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float, nullable=True),
    sa.Column("end_reason", sa.String(32), nullable=True),
    # S sealed to the clinician's public key (sealed.v1.…) and the id of that key
    sa.Column("sealed_secret", sa.String(200), nullable=True),
    sa.Column("sealed_to", sa.String(32), nullable=True),
)

knocks = sa.Table(
    "knocks", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("consultation_id", sa.String(32), sa.ForeignKey("consultations.id"), nullable=False, index=True),
    # the display name sealed to the consultation secret (teleconsult/names.py); NULL once purged
    sa.Column("sealed_name", sa.String(400), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("decided_at", sa.Float, nullable=True),
)

# Room names of forgotten consultations (retention.py moves them here; a kept consultation holds its
# own) and every name issued before that rule: no name is ever issued twice (consultations.py).
used_rooms = sa.Table(
    "used_rooms", metadata,
    sa.Column("room_name", sa.String(64), primary_key=True),
)

# A clinician's letterhead: what documents print about the prescriber (teleconsult/documents/profile.py).
# Images are stored re-encoded (PNG or JPEG, no metadata), never as uploaded.
clinician_profiles = sa.Table(
    "clinician_profiles", metadata,
    sa.Column("clinician_id", sa.String(32), sa.ForeignKey("clinicians.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, default="", server_default=""),
    sa.Column("qualification", sa.String(200), nullable=False, default="", server_default=""),
    sa.Column("rpps", sa.String(40), nullable=False, default="", server_default=""),
    sa.Column("address", sa.String(400), nullable=False, default="", server_default=""),
    sa.Column("phone", sa.String(40), nullable=False, default="", server_default=""),
    sa.Column("email", sa.String(320), nullable=False, default="", server_default=""),
    sa.Column("logo", sa.LargeBinary, nullable=True),
    sa.Column("logo_type", sa.String(16), nullable=True),
    sa.Column("signature", sa.LargeBinary, nullable=True),
    sa.Column("signature_type", sa.String(16), nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Rate-limit counters shared by every instance (ratelimit.SharedRateLimiter, PostgreSQL): one
# fixed window per key, counted and checked by one UPSERT. The key is a hash (no address in clear).
rate_limits = sa.Table(
    "rate_limits", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("window_start", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.Column("hits", sa.Integer, nullable=False),
)

# What the Prosody events endpoint has handled, shared by every instance and kept over a restart
# (jitsi/events.SharedReplayGuard): hashes of signatures and event ids, until they expire.
seen_events = sa.Table(
    "seen_events", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

# Who is in each consultation's call, shared by every instance (jitsi/shared_presence.py, PostgreSQL):
# one row per occupant session (the JID hashed), live (ended_at NULL) or a tombstone (ended_at set).
presence_sessions = sa.Table(
    "presence_sessions", metadata,
    sa.Column("consultation_id", sa.String(32), sa.ForeignKey("consultations.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("jid_hash", sa.String(64), primary_key=True),
    sa.Column("joined_at", sa.BigInteger, primary_key=True, autoincrement=False),  # -1: not given
    sa.Column("role", sa.String(16), nullable=True),
    sa.Column("ended_at", sa.Float, nullable=True, index=True),
    sa.Column("noted_at", sa.Float, nullable=False),
)
