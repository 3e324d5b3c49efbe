"""Logging setup: level validation, Beijing time, JSON lines, the embedded broker's chatter, the throttle."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from gulou.ops.logs import Throttle, configure, parse_level


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_level_names_are_validated() -> None:
    assert parse_level("info") == logging.INFO
    assert parse_level(" Warning ") == logging.WARNING
    with pytest.raises(ValueError, match="log level 'verbose'"):
        parse_level("verbose")
    with pytest.raises(ValueError):
        configure("INFOO", force=True)


def test_text_lines_carry_beijing_time_and_broker_info_is_kept_out() -> None:
    out = io.StringIO()
    configure("INFO", stream=out, force=True)
    logging.getLogger("gulou.test").info("stored %s readings", 3)
    logging.getLogger("amqtt.broker").info("client connected")
    logging.getLogger("amqtt.broker").warning("client refused")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "+08:00 INFO gulou.test: stored 3 readings" in lines[0]
    assert "client refused" in lines[1]


def test_debug_lets_the_broker_speak() -> None:
    out = io.StringIO()
    configure("DEBUG", stream=out, force=True)
    logging.getLogger("amqtt.broker").info("client connected")
    assert "client connected" in out.getvalue()


def test_json_lines() -> None:
    out = io.StringIO()
    configure("INFO", json_lines=True, stream=out, force=True)
    logging.getLogger("gulou.test").warning("设备 %s 离线", "st-001-ne", extra={"device": "st-001-ne"})
    record = json.loads(out.getvalue())
    assert record["level"] == "WARNING" and record["logger"] == "gulou.test"
    assert record["message"] == "设备 st-001-ne 离线" and record["device"] == "st-001-ne"
    assert record["time"].endswith("+08:00")


def test_throttle_counts_what_it_holds_back() -> None:
    now = [0.0]
    throttle = Throttle(10.0, clock=lambda: now[0])
    assert throttle.allow("spool full") == 0
    for _ in range(19):
        now[0] += 0.5
        assert throttle.allow("spool full") is None
    assert throttle.allow("other") == 0
    now[0] = 10.0
    assert throttle.allow("spool full") == 19


def test_a_root_logger_set_up_elsewhere_is_left_alone() -> None:
    out, mine = io.StringIO(), io.StringIO()
    configure("INFO", stream=out, force=True)
    configure("WARNING", stream=io.StringIO())  # ours: replaced
    root = logging.getLogger()
    foreign = logging.StreamHandler(mine)
    root.handlers[:] = [foreign]
    configure("DEBUG", stream=out)
    assert root.handlers == [foreign]
