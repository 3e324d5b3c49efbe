"""HMAC signatures over a timestamp and the body, so a captured request cannot be replayed later."""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Gulou-Timestamp"
SIGNATURE_HEADER = "X-Gulou-Signature"
DEFAULT_MAX_AGE_S = 300.0


class SignatureError(ValueError):
    """A request whose signature is missing, wrong, or too old."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of "<timestamp>." + body>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: str, body: bytes, now_s: float | None = None) -> dict[str, str]:
    """The two headers for a request: Unix seconds and the signature over them and the body."""
    timestamp = int(now_s if now_s is not None else time.time())
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(secret: str, body: bytes, timestamp: str | None, given: str | None, *,
           max_age_s: float = DEFAULT_MAX_AGE_S, now_s: float | None = None) -> None:
    """Raise ``SignatureError`` unless the signature matches and the timestamp is within ``max_age_s`` of now."""
    if not timestamp or not given:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}")
    try:
        stamp = int(timestamp)
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} is not Unix seconds") from None
    now = now_s if now_s is not None else time.time()
    if abs(now - stamp) > max_age_s:
        raise SignatureError(f"timestamp {stamp} is {now - stamp:.0f} s away from now (limit {max_age_s:.0f} s)")
    if not hmac.compare_digest(signature(secret, stamp, body), given):
        raise SignatureError("signature does not match")
