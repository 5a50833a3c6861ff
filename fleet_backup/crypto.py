"""Client-side encryption of every stored object: AES-256-GCM from `cryptography`, in 1 MiB chunks.

Format: b"FLEETBK1", an 8-byte random prefix, then per chunk a 4-byte big-endian length and the
AES-GCM output (ciphertext + 16-byte tag). Chunk i uses nonce prefix||i and authenticates the header,
i and whether it is the last chunk, so chunks cannot be reordered, dropped or cut off at the end
(the STREAM construction). The key is derived with HKDF-SHA256 from BACKUP_ENCRYPTION_KEY.
"""
from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"FLEETBK1"
CHUNK = 1024 * 1024
_TAG = 16


class DecryptError(Exception):
    """Wrong key, or the ciphertext was changed, reordered or cut short."""


def derive_key(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"fleet-backup object encryption v1").derive(secret.encode())


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">I?", index, last)


def encrypt_file(key: bytes, src: Path, dst: Path) -> None:
    aead, prefix = AESGCM(key), os.urandom(8)
    header = MAGIC + prefix
    with src.open("rb") as f, dst.open("wb") as out:
        out.write(header)
        index, chunk = 0, f.read(CHUNK)
        while True:
            following = f.read(CHUNK)
            last = not following
            sealed = aead.encrypt(prefix + struct.pack(">I", index), chunk, _aad(header, index, last))
            out.write(struct.pack(">I", len(sealed)) + sealed)
            if last:
                return
            index, chunk = index + 1, following


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        part = stream.read(n - len(data))
        if not part:
            break
        data += part
    return data


def decrypt_stream(key: bytes, stream: BinaryIO) -> Iterator[bytes]:
    """Plaintext chunks of an encrypted stream; raises DecryptError before yielding a bad chunk."""
    aead = AESGCM(key)
    header = _read_exactly(stream, len(MAGIC) + 8)
    if header[:len(MAGIC)] != MAGIC or len(header) != len(MAGIC) + 8:
        raise DecryptError("not an encrypted backup object")
    prefix = header[len(MAGIC):]
    length = _read_exactly(stream, 4)
    index = 0
    while True:
        if len(length) != 4:
            raise DecryptError("cut short")
        (size,) = struct.unpack(">I", length)
        if size > CHUNK + _TAG:
            raise DecryptError("malformed chunk")
        sealed = _read_exactly(stream, size)
        following = _read_exactly(stream, 4)
        last = not following
        try:
            yield aead.decrypt(prefix + struct.pack(">I", index), sealed, _aad(header, index, last))
        except InvalidTag:
            raise DecryptError("authentication failed (wrong key, or changed or truncated data)") from None
        if last:
            return
        index, length = index + 1, following


def decrypt_file(key: bytes, src: Path, dst: Path) -> None:
    with src.open("rb") as f, dst.open("wb") as out:
        for chunk in decrypt_stream(key, f):
            out.write(chunk)
