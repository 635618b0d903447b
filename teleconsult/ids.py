"""Random identifiers. Every id and token comes from `secrets`; none is derived from people,
dates or counters."""

import base64
import hashlib
import re
import secrets

ROOM_NAME_BITS = 200  # DESIGN section 3: >= 160 bits; 200 is a whole number of base32 chars (40)
ID_BYTES = 16  # 128 bits for consultation ids, knock ids, join tokens
API_TOKEN_BYTES = 32


def room_name() -> str:
    """Lowercase base32 (a-z, 2-7) of ROOM_NAME_BITS random bits, no padding."""
    raw = secrets.token_bytes(ROOM_NAME_BITS // 8)
    return base64.b32encode(raw).decode("ascii").lower().rstrip("=")


def new_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


def valid_client_id(text: object) -> bool:
    """A consultation id chosen by its creator (so as to seal S for it beforehand): 16 to 64
    base64url characters; new_id() makes one (22)."""
    return isinstance(text, str) and _CLIENT_ID.fullmatch(text) is not None


def new_api_token() -> str:
    return "tc_" + secrets.token_urlsafe(API_TOKEN_BYTES)


def token_hash(token: str) -> str:
    """Stored form of a bearer token: the server never keeps the token itself."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def consultation_secret() -> bytes:
    """The 32-byte consultation secret S (DESIGN section 5), generated where the link is made."""
    return secrets.token_bytes(32)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
