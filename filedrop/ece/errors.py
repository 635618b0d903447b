"""The errors a decryption can raise: every one is a :class:`DecryptionError`, whose
output must be discarded."""

class DecryptionError(ValueError):
    """The ciphertext cannot be turned back into the plaintext. Discard any output."""


class BadHeader(DecryptionError):
    """The RFC 8188 header is malformed (record size out of range)."""


class TruncatedStream(DecryptionError):
    """The stream ended early: inside the header, inside a record, or after a record
    that is not marked as the last one (delimiter 0x01)."""


class WrongKey(DecryptionError):
    """The first record (or the metadata) does not authenticate: wrong secret or
    document id. AES-GCM cannot tell this apart from an altered header or first record."""


class TamperedRecord(DecryptionError):
    """A record after the first does not authenticate although the key is right: it was
    altered, reordered, duplicated, cut, or comes from another file."""


class TrailingData(TamperedRecord):
    """Bytes follow the record marked as the last one."""


class BadPadding(DecryptionError):
    """An authenticated record has no valid delimiter (all zero, or not 0x01/0x02)."""


class BadMetadata(DecryptionError):
    """The metadata blob has a bad length, or its authenticated plaintext is not the
    expected JSON object."""
