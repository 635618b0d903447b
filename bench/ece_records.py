#!/usr/bin/env python
"""ece decryption of padded records against raw AES-GCM on the same records, in one run.

Three record sets of 64 KiB records (filedrop.ece.RECORD_SIZE), sealed once:
  data      full records (65519 data bytes, no padding): most of a file;
  padding   padding-only records (no data, 65519 zero bytes): the tail of a file padded to its
            size bucket, up to a third of the records of a small file;
  mixed     a 1 MiB file padded to its bucket, record by record, as a recipient decrypts it.

For each: raw `AESGCM.decrypt` of every record (the floor), `ece.open_record` (decrypt + find the
delimiter + slice the data out), and the former delimiter search (`rstrip(b"\\x00")`) after the
same decryption, for comparison. The process is pinned to one core (bench/cores.py); each
figure is the best of --reps passes (the least disturbed by other processes).

Then whole padded files (1 and 16 MiB) through ece.Decryptor, fed 256 KiB chunks as a
download arrives, against raw AES-GCM over the same records.

Ratio = raw time / ece time (1.0 = the delimiter costs nothing; the aim is >= 0.8).

    .venv/bin/python bench/ece_records.py [--records 200] [--reps 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from cores import CLIENT_CORE, pin_to  # noqa: E402
from filedrop import ece  # noqa: E402
from filedrop.ece import records as ece_records  # noqa: E402


def sealed(cek: bytes, nonce: bytes, kind: str, count: int) -> list[bytes]:
    if kind == "mixed":
        plaintext = os.urandom(1 << 20)
        records = ece.padded_records(len(plaintext))
        out, offset = [], 0
        for seq in range(records):
            data = plaintext[offset:offset + ece.RECORD_DATA_SIZE]
            offset += len(data)
            out.append(ece.seal_record(cek, nonce, seq, data, last=seq == records - 1,
                                       padding=ece.RECORD_DATA_SIZE - len(data)))
        return out
    data = os.urandom(ece.RECORD_DATA_SIZE) if kind == "data" else b""
    padding = 0 if kind == "data" else ece.RECORD_DATA_SIZE
    return [ece.seal_record(cek, nonce, seq, data, last=False, padding=padding) for seq in range(count)]


def best(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    pinned = pin_to(CLIENT_CORE)
    cek, nonce = os.urandom(16), os.urandom(12)
    aead, base = AESGCM(cek), int.from_bytes(nonce, "big")
    print(f"load average: {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()}, pinned: {pinned}); "
          f"best of {args.reps} passes")
    print(f"{'records':8s} {'n':>4s} {'raw AES-GCM us':>15s} {'ece us':>8s} {'rstrip us':>10s} "
          f"{'raw/ece':>8s} {'raw/rstrip':>10s}")
    for kind in ("data", "padding", "mixed"):
        records = sealed(cek, nonce, kind, args.records)
        nonces = [ece_records._record_nonce(base, seq) for seq in range(len(records))]

        def raw():
            for n, record in zip(nonces, records):
                aead.decrypt(n, record, None)

        def ours():
            for seq, record in enumerate(records):
                ece_records._open(aead, base, seq, record)

        def former():
            for n, record in zip(nonces, records):
                unpadded = aead.decrypt(n, record, None).rstrip(b"\x00")
                unpadded[:-1], unpadded[-1]
        for seq, record in enumerate(records):  # the same answers as the former search
            plaintext = aead.decrypt(nonces[seq], record, None).rstrip(b"\x00")
            assert ece_records._open(aead, base, seq, record) == (plaintext[:-1], plaintext[-1] == ece.LAST_DELIMITER)
        t_raw, t_ours, t_former = best(raw, args.reps), best(ours, args.reps), best(former, args.reps)
        per = 1e6 / len(records)
        print(f"{kind:8s} {len(records):4d} {t_raw * per:15.1f} {t_ours * per:8.1f} {t_former * per:10.1f} "
              f"{t_raw / t_ours:8.2f} {t_raw / t_former:10.2f}")
    # a whole padded file as a recipient decrypts it: ece.Decryptor fed 256 KiB chunks (what
    # filedrop/client/receiving.py does), against raw AES-GCM over the same file's records
    ikm = os.urandom(16)
    for mib in (1, 16):
        ciphertext = ece.encrypt(os.urandom(mib << 20), ikm)
        header = ece.parse_header(ciphertext)
        file_cek, file_nonce = ece.derive_record_keys(ikm, header.salt)
        file_aead, file_base = AESGCM(file_cek), int.from_bytes(file_nonce, "big")
        body = memoryview(ciphertext)[header.length:]
        file_records = [body[i:i + header.rs] for i in range(0, len(body), header.rs)]
        file_nonces = [ece_records._record_nonce(file_base, seq) for seq in range(len(file_records))]

        def raw_file():
            for n, record in zip(file_nonces, file_records):
                file_aead.decrypt(n, record, None)

        def ece_file():
            decryptor, view = ece.Decryptor(ikm), memoryview(ciphertext)
            for start in range(0, len(ciphertext), 256 * 1024):
                for _ in decryptor.feed(view[start:start + 256 * 1024]):
                    pass
            for _ in decryptor.finish():
                pass
        t_raw, t_ours = best(raw_file, args.reps), best(ece_file, args.reps)
        per = 1e6 / len(file_records)
        print(f"{f'file {mib}M':8s} {len(file_records):4d} {t_raw * per:15.1f} {t_ours * per:8.1f} {'':>10s} "
              f"{t_raw / t_ours:8.2f}   (whole file through ece.Decryptor, 256 KiB chunks)")


if __name__ == "__main__":
    main()
