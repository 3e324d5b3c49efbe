"""SM4 data areas of HJ 212-2025: ``{0x..,0x..}`` ciphertext of whole 16-byte blocks, then a plain tail.

Reference §6: SM4 (GB/T 32907) in ECB mode without padding over the text between ``CP=&&`` and ``&&``;
a last block shorter than 16 bytes stays plain text; the CRC covers the plaintext segment. The cipher
itself comes from ``cryptography`` (OpenSSL's SM4), never from hand-written code.
"""

from __future__ import annotations

import re

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
# The standard's test key: sixteen 0x30 bytes ('0' characters).
TEST_KEY = b"0" * 16
_BYTE = re.compile(rb"0[xX]([0-9A-Fa-f]{1,2})")


class Sm4Error(ValueError):
    """A data area that is not well-formed ciphertext, or a key that is not 16 bytes."""


def parse_key(text: str) -> bytes:
    """A key as 32 hex digits or 16 ASCII characters (the standard's test key is ``0000000000000000``)."""
    value = text.strip()
    if re.fullmatch(r"[0-9A-Fa-f]{32}", value):
        return bytes.fromhex(value)
    raw = value.encode("utf-8")
    if len(raw) != BLOCK:
        raise Sm4Error("an SM4 key is 32 hex digits or 16 characters")
    return raw


def _cipher(key: bytes) -> Cipher[modes.ECB]:
    if len(key) != BLOCK:
        raise Sm4Error(f"an SM4 key has 16 bytes, not {len(key)}")
    return Cipher(algorithms.SM4(key), modes.ECB())


def split_area(area: bytes) -> tuple[bytes, bytes]:
    """(ciphertext bytes, plain tail) of an encrypted data area; raises ``Sm4Error`` if malformed."""
    if not area.startswith(b"{"):
        raise Sm4Error("encrypted data area does not start with '{'")
    close = area.find(b"}")
    if close < 0:
        raise Sm4Error("encrypted data area has no closing '}'")
    items = area[1:close].split(b",")
    data = bytearray()
    for item in items:
        match = _BYTE.fullmatch(item.strip())
        if match is None:
            raise Sm4Error(f"ciphertext item {item[:8]!r} is not 0xNN")
        data.append(int(match.group(1), 16))
    if not data or len(data) % BLOCK:
        raise Sm4Error(f"ciphertext of {len(data)} bytes is not whole 16-byte blocks")
    tail = area[close + 1:]
    if len(tail) >= BLOCK:
        raise Sm4Error(f"plain tail of {len(tail)} bytes: only a last partial block may stay plain")
    return bytes(data), tail


def decrypt_area(area: bytes, key: bytes) -> bytes:
    """The plaintext data area (bytes, as the CRC was computed over them)."""
    data, tail = split_area(area)
    decryptor = _cipher(key).decryptor()
    return decryptor.update(data) + decryptor.finalize() + tail


def encrypt_area(plain: bytes, key: bytes) -> bytes:
    """Encrypt a data area as a 2025 logger does (for the simulator and tests)."""
    whole = len(plain) - len(plain) % BLOCK
    if whole == 0:
        return plain  # nothing to encrypt: shorter than one block
    encryptor = _cipher(key).encryptor()
    data = encryptor.update(plain[:whole]) + encryptor.finalize()
    return b"{" + b",".join(b"0x%02X" % b for b in data) + b"}" + plain[whole:]
