"""What each channel sends: signatures, robot bodies, topics, lines (pure formatting; endpoints are integration)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse

from gulou.channels.dingtalk import DingTalkChannel, dingtalk_signed_url
from gulou.channels.http import markdown
from gulou.channels.mqtt import alert_topic
from gulou.channels.store import alert_line
from gulou.channels.wecom import WeComChannel
from gulou.rules.alerts import AlertTransition
from gulou.workflow.signing import signed_headers
from tests.unit.rules.test_rules_engine import at


def test_signature_is_hmac_of_timestamp_and_body() -> None:
    body = b'{"a": 1}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    headers = signed_headers("s3cret", body, now_s=1_700_000_000)
    assert headers == {"X-Gulou-Timestamp": "1700000000", "X-Gulou-Signature": f"sha256={expected}"}


def test_dingtalk_signed_url() -> None:
    url = dingtalk_signed_url("https://robot.example/send?access_token=x", "SEC", now_ms=1700000000000)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["timestamp"] == ["1700000000000"] and query["access_token"] == ["x"]
    digest = hmac.new(b"SEC", b"1700000000000\nSEC", hashlib.sha256).digest()
    assert query["sign"] == [base64.b64encode(digest).decode()]


def test_robot_bodies_are_markdown(fired: AlertTransition) -> None:
    ding = DingTalkChannel("https://robot.example/send").body(fired)
    assert ding["msgtype"] == "markdown" and "疑似起火" in ding["markdown"]["title"]
    assert "t-rule" in ding["markdown"]["text"] and "超标倍数" in ding["markdown"]["text"]
    wecom = WeComChannel("https://robot.example/send").body(fired)
    assert wecom["msgtype"] == "markdown" and "疑似起火" in wecom["markdown"]["content"]


def test_robot_text_gives_beijing_time(fired: AlertTransition) -> None:
    _, text = markdown(fired)
    # at(0) is 02:00 UTC, 10:00 in Beijing.
    assert "首次：2026-05-01T10:00:00+08:00" in text


def test_topic_and_influx_line(fired: AlertTransition) -> None:
    assert alert_topic(fired) == "gulou/alerts/waste/bin-001-rec"
    line = alert_line(fired)
    assert line.startswith("alerts,device=bin-001-rec,domain=waste,rule_id=t-rule,severity=high,site=cp-gd-001,")
    assert "state=firing" in line and "value=75.0" in line and "limit=60.0" in line and "exceedance=0.25" in line
    assert line.endswith(str(int(at(0).timestamp() * 1000)))


def test_body_is_the_json_payload(fired: AlertTransition) -> None:
    assert json.loads(fired.body) == fired.to_json()


def test_transition_round_trip(fired: AlertTransition) -> None:
    t = AlertTransition.from_json(json.loads(json.dumps(fired.to_json())))
    assert t.event == "firing" and t.alert.rule_id == "t-rule" and t.alert.first_seen == at(0)
    assert t == fired
