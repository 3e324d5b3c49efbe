"""HJ 212 checksums: the standard's "ANSI CRC16" (appendix A) and the variants real loggers send.

The standard's CRC is not CRC-16/MODBUS: each byte is XORed into what was the register's *high* byte
(the register is shifted right by 8 first), so only 256 checksums exist. Loggers in the field also send
the standard CRC byte-swapped, and CRC-16/MODBUS in both byte orders (reference §1.3); the gateway
validates with the standard first and then tries the variants, so a station is recorded, not dropped.
Neither algorithm is in the standard library; both are a 256-entry table and one line per byte.
"""

from __future__ import annotations

import sys
from typing import Literal

CrcVariant = Literal["standard", "standard_swapped", "modbus_swapped", "modbus"]
# Order of trial on receipt: the standard first, then the variants from the most to the least common.
CRC_VARIANTS: tuple[CrcVariant, ...] = ("standard", "standard_swapped", "modbus_swapped", "modbus")


def _table() -> tuple[int, ...]:
    """Eight reflected shift/XOR-0xA001 rounds applied to every byte value (shared by both algorithms)."""
    table = []
    for value in range(256):
        reg = value
        for _ in range(8):
            reg = (reg >> 1) ^ 0xA001 if reg & 1 else reg >> 1
        table.append(reg)
    return tuple(table)


_TABLE = _table()
# Only the register's high byte carries over from one byte to the next: (reg >> 8) ^ byte is below 256.
# So the state between bytes is 8 bits, and two bytes at a time are one lookup in a 64 Ki table, indexed
# by the two bytes as a native 16-bit word XOR the state (four times faster than a loop over bytes).
_HIGH = tuple(t >> 8 for t in _TABLE)
_LITTLE = sys.byteorder == "little"
_PAIR = tuple(
    _HIGH[_HIGH[(i & 0xFF) if _LITTLE else (i >> 8)] ^ ((i >> 8) if _LITTLE else (i & 0xFF))] for i in range(65536)
)


def hj212_crc(data: bytes | bytearray) -> int:
    """The HJ 212-2017 appendix A checksum of ``data`` (the data segment's bytes)."""
    size = len(data)
    if size == 0:
        return 0xFFFF
    state = 0xFF  # high byte of the initial 0xFFFF
    body = size - 1  # every byte but the last only moves the 8-bit state; the last gives all 16 bits
    even = body - body % 2
    if even:
        table = _PAIR
        words = memoryview(data)[:even].cast("H")
        if _LITTLE:
            for word in words:
                state = table[word ^ state]
        else:
            for word in words:
                state = table[word ^ (state << 8)]
    if body % 2:
        state = _HIGH[state ^ data[even]]
    return _TABLE[state ^ data[body]]


def modbus_crc(data: bytes | bytearray) -> int:
    """CRC-16/MODBUS of ``data`` as a number (the value, before any byte-order choice on the wire)."""
    table = _TABLE
    reg = 0xFFFF
    for byte in data:
        reg = (reg >> 8) ^ table[(reg ^ byte) & 0xFF]
    return reg


def swap(value: int) -> int:
    """The 16-bit value with its two bytes exchanged."""
    return ((value & 0xFF) << 8) | (value >> 8)


def crc_value(data: bytes, variant: CrcVariant = "standard") -> int:
    """The number a sender using ``variant`` writes as the four hex digits after the data segment."""
    if variant == "standard":
        return hj212_crc(data)
    if variant == "standard_swapped":
        return swap(hj212_crc(data))
    if variant == "modbus":
        return modbus_crc(data)
    return swap(modbus_crc(data))


def crc_text(data: bytes, variant: CrcVariant = "standard") -> bytes:
    """Four upper-case hex digits, high byte first, as the standard writes them."""
    return b"%04X" % crc_value(data, variant)


def identify(data: bytes, received: int) -> CrcVariant | None:
    """Which CRC variant produced ``received`` for ``data``, trying the standard first; ``None`` if none."""
    standard = hj212_crc(data)
    if received == standard:
        return "standard"
    if received == swap(standard):
        return "standard_swapped"
    modbus = modbus_crc(data)
    if received == swap(modbus):
        return "modbus_swapped"
    if received == modbus:
        return "modbus"
    return None
