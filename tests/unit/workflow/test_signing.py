"""Signatures over timestamp and body: good ones pass, old, altered or missing ones are refused."""

from __future__ import annotations

import pytest

from gulou.workflow.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, signed_headers, verify

BODY = b'{"work_order_id": "WO-1", "status": "done"}'


def test_fresh_signature_verifies() -> None:
    headers = signed_headers("s3cret", BODY, now_s=1_700_000_000)
    verify("s3cret", BODY, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], now_s=1_700_000_100)


@pytest.mark.parametrize(("secret", "body", "now", "problem"), [
    ("s3cret", BODY, 1_700_000_301, "away from now"),
    ("s3cret", BODY, 1_699_999_600, "away from now"),
    ("other", BODY, 1_700_000_000, "does not match"),
    ("s3cret", BODY + b" ", 1_700_000_000, "does not match"),
])
def test_replayed_or_forged_requests_are_refused(secret: str, body: bytes, now: int, problem: str) -> None:
    headers = signed_headers("s3cret", BODY, now_s=1_700_000_000)
    with pytest.raises(SignatureError, match=problem):
        verify(secret, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], now_s=now)


def test_timestamp_is_part_of_what_is_signed() -> None:
    headers = signed_headers("s3cret", BODY, now_s=1_700_000_000)
    with pytest.raises(SignatureError, match="does not match"):
        verify("s3cret", BODY, "1700000100", headers[SIGNATURE_HEADER], now_s=1_700_000_100)
    with pytest.raises(SignatureError, match="missing"):
        verify("s3cret", BODY, None, headers[SIGNATURE_HEADER])
