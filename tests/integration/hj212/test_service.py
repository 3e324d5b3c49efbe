"""``gulou hj212``, ``gulou run`` with the gateway and ``gulou simulate --hj212`` as real processes.

Stations are the shipped registry's certified stations; their passwords come from a secrets file written by
the test. Readings and the gateway's dead letters travel through a real broker to a real collector.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gulou.devices.registry import Registry
from gulou.hj212 import build
from gulou.hj212.crc import identify
from gulou.timeutil import CHINA_TZ
from tests.integration.hj212.running import Station
from tests.integration.ingest.pipeline import accounted, follow_log, start_ingest, stop_ingest
from tests.servers import Mosquitto, free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
AIR_MN, OTHER_MN = "350102A00000000000000001", "350102A00000000000000002"


def _secrets(tmp_path: Path, registry: Registry, leave_out: str | None = None) -> Path:
    path = tmp_path / "secrets.yaml"
    path.write_text(yaml.safe_dump({d.hj212.mn: f"pw-{d.id}" for d in registry
                                    if d.hj212 is not None and d.hj212.mn != leave_out}), encoding="utf-8")
    return path


def _gulou(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gulou", *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _cli_json(*args: str) -> Any:
    done = subprocess.run([sys.executable, "-m", "gulou", *args, "--json"], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def _packet(cn: str, moment: datetime, items: str, *, mn: str = AIR_MN, pw: str = "pw-aq-001", qn: str) -> bytes:
    cp = f"DataTime={moment:%Y%m%d%H%M%S};{items}"
    return build.frame(build.segment(qn=qn, st="22", cn=cn, pw=pw, mn=mn, flag=5, cp=cp))


def _with_wrong_crc(packet: bytes) -> bytes:
    """The packet with a CRC that no accepted variant gives for its segment (a fixed "0000" is one in 65,536
    segments' real CRC: the hourly packet of 07:00 on 2026-12-01 had exactly that)."""
    segment = packet[6:-6]
    wrong = next(c for c in range(1, 65536) if identify(segment, c) is None)
    return packet[:-6] + b"%04X\r\n" % wrong


def test_gateway_and_collector_processes_store_periods_flags_and_dead_letters(
        own_mosquitto: Mosquitto, registry: Registry, tmp_path: Path) -> None:
    store = tmp_path / "g.db"
    collector = start_ingest(own_mosquitto.url, store, "it-hj212-svc", "--no-share")
    ops = f"127.0.0.1:{free_port()}"
    gateway = _gulou("hj212", "--listen", "127.0.0.1:0", "--broker", own_mosquitto.url, "--secrets-file",
                     str(_secrets(tmp_path, registry)), "--log-level", "INFO", env={"GULOU_OPS__LISTEN": ops})
    log = follow_log(gateway)
    try:
        wait_for(lambda: store.exists() and "it-hj212-svc" in accounted(store)["collectors"], 60, "collector up")
        listening = re.compile(r"listening on 127\.0\.0\.1:(\d+) for 9 stations")
        found = wait_for(lambda: listening.search(log.text()), 60, "the gateway listening")
        assert found is not None
        hour = datetime.now(CHINA_TZ).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        hourly = _packet("2061", hour, "a34004-Avg=41.5,a34004-Flag=N;a21026-Avg=9,a21026-Flag=C", qn="1")
        real_time = _packet("2011", hour, "a34004-Rtd=38.0,a34004-Flag=N;a21026-Rtd=8,a21026-Flag=C", qn="2")
        bad_crc = _with_wrong_crc(hourly)
        wrong_pw = _packet("2011", hour, "a34004-Rtd=30,a34004-Flag=N", mn=OTHER_MN, pw="guessed", qn="3")
        station = Station(int(found.group(1)))
        station.send(hourly, real_time, bad_crc, wrong_pw)
        replies = station.replies(2)
        assert all(b"CN=9014" in r for r in replies), replies
        station.close()
        wait_for(lambda: accounted(store)["received"] >= 4, 60, "two readings and two dead letters collected")
        assert accounted(store)["received"] == 4, accounted(store)
        stats = _cli_json("stats", "--store", str(store))
        [hour_row] = _cli_json("query", "--store", str(store), "--domain", "air", "--device", "aq-001", "--period",
                               "hour")
        [rtd_row] = _cli_json("query", "--store", str(store), "--domain", "air", "--device", "aq-001")
        letters = _cli_json("deadletters", "--store", str(store), "--source", "hj212")
        # The gateway is a long-running service of its own: /metrics and /healthz on GULOU_OPS__LISTEN.
        with urllib.request.urlopen(f"http://{ops}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        with urllib.request.urlopen(f"http://{ops}/healthz", timeout=10) as response:
            health = json.loads(response.read())
    finally:
        gateway_log = stop_ingest(gateway)
        stop_ingest(collector)
    assert gateway.returncode == 0, gateway_log
    assert "stopped: received 4, delivered 2, duplicate 0, rejected 2" in gateway_log
    assert stats["by_source"] == {"hj212": {"received": 4, "stored": 2, "rejected": 2}}
    for line in ('gulou_hj212_packets_total{outcome="received"} 4.0',
                 'gulou_hj212_packets_total{outcome="delivered"} 2.0',
                 'gulou_hj212_rejected_by_reason_total{reason="bad_crc"} 1.0',
                 'gulou_hj212_rejected_by_reason_total{reason="wrong_password"} 1.0'):
        assert line in metrics, metrics
    assert health["state"] == "ok" and [c["component"] for c in health["components"]] == ["hj212"], health
    assert stats["by_reason"] == {"bad_crc": 1, "wrong_password": 1}
    # The hourly mean and the real-time value of the same moment are both kept; SO2 was calibrating.
    assert hour_row["period"] == "hour" and hour_row["pm25"] == 41.5 and hour_row["so2_invalid"] == 9.0
    assert hour_row["so2_flag"] == "C" and "so2" not in hour_row
    assert rtd_row["pm25"] == 38.0 and rtd_row["so2_flag"] == "C" and "period" not in rtd_row
    by_reason = {row["reason"]: row for row in letters}
    assert by_reason["bad_crc"]["payload"] == bad_crc.decode() and by_reason["bad_crc"]["mn"] == AIR_MN
    assert by_reason["wrong_password"]["payload"] == wrong_pw.decode()
    assert (by_reason["wrong_password"]["mn"], by_reason["wrong_password"]["device_id"]) == (OTHER_MN, "aq-002")


def test_gulou_run_serves_the_simulated_stations(registry: Registry, tmp_path: Path) -> None:
    store, port = tmp_path / "run.db", free_port()
    secrets = _secrets(tmp_path, registry)
    env = {"GULOU_HJ212__LISTEN": f"127.0.0.1:{port}", "GULOU_HJ212__SECRETS_FILE": str(secrets),
           "GULOU_BROKER": "", "GULOU_INFLUX_URL": ""}
    run = _gulou("run", "--store", str(store), "--no-rules", "--log-level", "INFO", env=env)
    log = follow_log(run)
    try:
        wait_for(lambda: f"hj212 gateway on 127.0.0.1:{port} for 9 stations" in log.text() or run.poll() is not None,
                 90, "gulou run with its gateway")
        assert run.poll() is None, log.text()
        simulated = subprocess.run(
            [sys.executable, "-m", "gulou", "simulate", "--hj212", f"127.0.0.1:{port}", "--sim-duration", "30m",
             "--speed", "0", "--seed", "2", "--station-fault", "lost_ack=0", "--json"],
            env={**os.environ, **env}, capture_output=True, timeout=300)
        assert simulated.returncode == 0, simulated.stderr.decode()
        summary = json.loads(simulated.stdout)
        stations = {d.id for d in registry if d.hj212 is not None}
        assert {figures["device_id"] for figures in summary.values()} == stations
        assert all(f["acked"] > 0 and not f.get("unacked") for f in summary.values()), summary

        def stored_devices() -> set[str]:
            from gulou.sinks.embedded import EmbeddedStore

            reader = EmbeddedStore(store)
            try:
                return {r["device_id"] for r in reader.query_readings(period=None)}
            finally:
                reader.close()

        wait_for(lambda: stored_devices() >= stations, 60, "readings of every station stored")
    finally:
        run_log = stop_ingest(run)
    assert run.returncode == 0, run_log
    stats = accounted(store)
    assert stats["rejected"] == 0 and set(stats["by_source"]) == {"hj212"}
    assert stats["by_source"]["hj212"]["received"] == stats["by_source"]["hj212"]["stored"] > 0


def test_a_station_without_its_password_stops_the_gateway(registry: Registry, tmp_path: Path) -> None:
    secrets = _secrets(tmp_path, registry, leave_out=OTHER_MN)
    done = subprocess.run([sys.executable, "-m", "gulou", "hj212", "--listen", "127.0.0.1:0", "--broker",
                           f"mqtt://127.0.0.1:{free_port()}", "--secrets-file", str(secrets)],
                          capture_output=True, timeout=60)
    assert done.returncode == 1
    assert f"station {OTHER_MN} (aq-002) checks a password but the secrets file has none" in done.stderr.decode()
    no_broker = subprocess.run([sys.executable, "-m", "gulou", "hj212", "--listen", "127.0.0.1:0"],
                               env={**os.environ, "GULOU_BROKER": ""}, capture_output=True, timeout=60)
    assert no_broker.returncode == 2 and "no broker" in no_broker.stderr.decode()
