"""Size buckets: every file is padded to a Padmé-rounded number of full records, so the
server learns a bucket, not a size, and can check that a ciphertext length is one."""

from __future__ import annotations

from .records import HEADER_SIZE, RECORD_SIZE, TAG_SIZE


def min_records(plaintext_size: int, rs: int = RECORD_SIZE) -> int:
    """Fewest records holding ``plaintext_size`` bytes (an empty file still has one)."""
    if plaintext_size < 0:
        raise ValueError("size must not be negative")
    capacity = rs - TAG_SIZE - 1
    return max(1, -(-plaintext_size // capacity))


def bucket_records(records: int) -> int:
    """Padmé rounding of a record count: keep the top ``bit_length(E)`` bits of the
    count, where E = floor(log2(count)), and round the rest up (Nikitin et al., PETS
    2019). The result is less than 12 % above the count, and reveals O(log log n) bits
    about it. 1..8 stay as they are, then 10, 12, 14, 16, 18, ..., 32, 36, 40, ..."""
    if records < 1:
        raise ValueError("a file has at least one record")
    exponent = records.bit_length() - 1
    low_bits = exponent - exponent.bit_length()
    mask = (1 << low_bits) - 1 if low_bits > 0 else 0
    return (records + mask) & ~mask


def padded_records(plaintext_size: int, rs: int = RECORD_SIZE) -> int:
    return bucket_records(min_records(plaintext_size, rs))


def padded_size(plaintext_size: int, rs: int = RECORD_SIZE) -> int:
    """Ciphertext length (header included) of a file of ``plaintext_size`` bytes: the
    bucket. Every record is a full ``rs`` bytes, so this is HEADER_SIZE + records * rs."""
    return HEADER_SIZE + padded_records(plaintext_size, rs) * rs


def is_padded_size(ciphertext_size: int, rs: int = RECORD_SIZE) -> bool:
    """Whether a ciphertext length is a bucket (a check the server can make)."""
    records, rest = divmod(ciphertext_size - HEADER_SIZE, rs)
    return rest == 0 and records >= 1 and bucket_records(records) == records
