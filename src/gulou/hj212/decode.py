"""From a delimited frame to a trusted packet: CRC (after SM4 decryption), station, password, data area.

Checks run from the most fundamental up, and the first failure names the dead letter's reason. Nothing
from a packet whose CRC fails is trusted except as a hint (the MN shown with the dead letter).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gulou.hj212.crc import CrcVariant, identify
from gulou.hj212.framing import Frame, LengthCheck, classify_length
from gulou.hj212.segment import CP_MARK, DataArea, Packet, SegmentError, parse_cp, parse_segment, peek_mn
from gulou.hj212.sm4 import Sm4Error, decrypt_area
from gulou.hj212.stations import StationBook, StationConfig

# Every reason a packet becomes a dead letter, most fundamental first.
REASONS: dict[str, str] = {
    "bad_header": "## is not followed by a length, or a header field (CN, MN, Flag) is unreadable",
    "too_long": "no packet end within the maximum packet size",
    "bad_crc_field": "no closing && followed by 3-4 hex CRC digits",
    "truncated": "the connection ended inside a packet",
    "bad_crc": "the CRC matches neither the standard algorithm nor a known variant",
    "bad_split": "PNUM/PNO missing, not integers or inconsistent",
    "unknown_mn": "no station is configured with this MN",
    "crc_variant": "the CRC matched a variant this station is not allowed to use",
    "bad_length": "the length field matches neither the bytes, bytes + 6 nor the characters",
    "wrong_password": "PW differs from the station's password",
    "wrong_st": "ST differs from the station's system code (strict_st)",
    "encrypted_no_key": "the data area is SM4-encrypted and no key is configured for the station",
    "bad_ciphertext": "the encrypted data area is malformed",
    "bad_cp": "the CP data area is not a list of key=value items",
    "missing_datatime": "a data packet without DataTime",
    "bad_datatime": "DataTime is not a valid time after 2000",
    "future_timestamp": "DataTime lies too far in the future",
    "bad_value": "a value with a valid flag is not a number",
    "out_of_range": "a value with a valid flag lies outside the metric's physical range",
    "no_metrics": "the packet carries no value the station's code table maps",
}
# Replies from stations carry ST=91 whatever their system code.
_ANSWER_CNS = frozenset({"9011", "9012", "9013", "9014"})


@dataclass(frozen=True, slots=True)
class Refusal:
    """A packet that becomes a dead letter; ``packet`` is set once its CRC and header were trusted."""

    reason: str
    detail: str
    mn: str | None = None
    packet: Packet | None = None


@dataclass(frozen=True, slots=True)
class Opened:
    """A packet whose CRC, station and password checked out, with its data area parsed."""

    packet: Packet
    station: StationConfig
    area: DataArea
    crc_variant: CrcVariant
    length_check: LengthCheck
    decrypted: bool = False
    notes: list[str] = field(default_factory=list)  # tolerated deviations, for the station's health


def open_frame(frame: Frame, book: StationBook) -> Opened | Refusal:
    """Check one frame against the station book; never raises on bad input."""
    parsed = parse_segment(frame.segment)
    if isinstance(parsed, SegmentError):
        if frame.crc_variant is None:
            return Refusal("bad_crc", "CRC mismatch (and the segment is unreadable)", parsed.mn)
        return Refusal(parsed.reason, parsed.detail, parsed.mn)
    packet = parsed
    variant = frame.crc_variant
    length = frame.length_check
    decrypted = False
    station = book.get(packet.mn)
    if packet.encrypted and station is not None:
        secret = book.secret(packet.mn)
        if secret is None or secret.sm4_key is None:
            return Refusal("encrypted_no_key", "SM4-encrypted data area and no key configured", packet.mn)
        try:
            plain = decrypt_area(packet.cp_raw, secret.sm4_key)
        except Sm4Error as exc:
            return Refusal("bad_ciphertext", str(exc), packet.mn)
        segment = packet.head + CP_MARK + plain + b"&&"
        # The CRC covers the plaintext (HJ 212-2025 appendix A.2, [M]).
        variant = identify(segment, frame.crc_received)
        if variant is None:
            return Refusal("bad_crc", "CRC of the decrypted segment does not match (wrong key?)", packet.mn)
        reparsed = parse_segment(segment)
        if isinstance(reparsed, SegmentError):
            return Refusal(reparsed.reason, reparsed.detail, packet.mn)
        packet, decrypted = reparsed, True
        # Printed examples put the plaintext length in the header ([U]): accept it as well.
        if classify_length(frame.declared_length, segment) == "exact":
            length = "exact"
    if variant is None:
        why = "SM4-encrypted data area from an unknown MN" if packet.encrypted else "CRC mismatch"
        return Refusal("bad_crc", f"{why}: received {frame.crc_received:04X}", peek_mn(frame.segment))
    if station is None:
        return Refusal("unknown_mn", f"MN {packet.mn} is not configured", packet.mn, packet)
    notes: list[str] = []
    if variant not in station.crc_variants:
        return Refusal("crc_variant", f"CRC variant {variant} is not allowed for this station", packet.mn, packet)
    if variant != "standard":
        notes.append(f"crc:{variant}")
    if length != "exact":
        if length == "mismatch" and not station.accept_length_mismatch:
            return Refusal("bad_length", f"length field {frame.declared_length} does not fit the "
                                         f"{len(frame.segment)}-byte segment", packet.mn, packet)
        notes.append(f"length:{length}")
    if station.auth == "password":
        secret = book.secret(packet.mn)
        if secret is None or packet.pw != secret.password:
            return Refusal("wrong_password", "PW does not match the station's password", packet.mn, packet)
    if packet.cn not in _ANSWER_CNS and packet.st != station.system_code:
        if station.strict_st:
            return Refusal("wrong_st", f"ST {packet.st} but the station's system code is {station.system_code}",
                           packet.mn, packet)
        notes.append(f"st:{packet.st}")
    area = parse_cp(packet.cp_text)
    if isinstance(area, SegmentError):
        return Refusal(area.reason, area.detail, packet.mn, packet)
    if frame.oversized:
        notes.append("oversized")
    if frame.crc_irregular:
        notes.append("crc:irregular_digits")
    if not frame.terminated:
        notes.append("no_crlf")
    return Opened(packet, station, area, variant, length, decrypted, notes)
