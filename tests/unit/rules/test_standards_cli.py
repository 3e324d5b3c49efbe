"""``gulou standards``: JSON and plain output of aqi, water-class and black-odour, and bad input."""

from __future__ import annotations

import json

from click.testing import CliRunner

from gulou.cli import cli


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["standards", *args])
    return result.exit_code, result.output


def test_aqi_example_json() -> None:
    code, out = run("aqi", "--at", "2026-11-26", "--mode", "daily", "pm25=80", "pm10=120", "o3_8h=150", "--json")
    assert code == 0, out
    data = json.loads(out)
    # HJ 633-2026: pm25 100 + 50*(80-60)/55 = 118.18 -> 119; pm10 120 -> 100; o3_8h 50 + 50*50/60 = 91.67 -> 92
    assert data["aqi"] == 119
    assert data["iaqi"] == {"pm25": 119, "pm10": 100, "o3_8h": 92}
    assert data["category"] == "轻度污染"
    assert data["level"] == "三级"
    assert data["colour"] == "#FF7E00"
    assert data["primary_pollutants"] == ["pm25"]
    assert data["exceeding"] == []
    assert data["exceeding_applicable"] is False
    assert data["standard"] == "HJ 633-2026 / GB 3095-2026"
    assert data["notes"] == []


def test_aqi_2012_and_a_utc_time() -> None:
    # 2026-02-28T15:00Z = 23:00 China time on 28 Feb: HJ 633-2012; pm25 80 -> 100 + 50*5/40 = 106.25 -> 107
    code, out = run("aqi", "--at", "2026-02-28T15:00:00Z", "pm25=80", "so2=900", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["standard"] == "HJ 633-2012 / GB 3095-2012"
    # hourly so2 900 > 800 rated on the 24 h column: 200 + 100*100/800 = 212.5 -> 213
    assert data["iaqi"] == {"pm25": 107, "so2": 213}
    assert data["exceeding"] == ["pm25", "so2"]
    assert len(data["notes"]) == 1


def test_aqi_plain_text_in_chinese() -> None:
    code, out = run("aqi", "--at", "2026-11-26", "--mode", "daily", "pm25=80", "pm10=120", "o3_8h=150")
    assert code == 0, out
    assert "AQI 119" in out
    assert "轻度污染" in out
    assert "首要污染物：PM2.5" in out
    assert "HJ 633-2026 / GB 3095-2026" in out


def test_aqi_bad_pairs_are_named() -> None:
    for pair, words in [("pm25=abc", "'pm25=abc'"), ("pm25", "'pm25'"), ("pm2.5=3", "unknown name 'pm2.5'"),
                        ("pm25=-4", "'pm25=-4'"), ("pm25=nan", "'pm25=nan'")]:
        code, out = run("aqi", pair)
        assert code == 2, pair
        assert words in out, out
    code, out = run("aqi")
    assert code == 2 and "NAME=VALUE" in out
    code, out = run("aqi", "--at", "yesterday", "pm25=3")
    assert code == 2 and "--at" in out
    code, out = run("aqi", "--mode", "daily", "so2_24h=3", "so2=4")
    assert code == 2 and "so2_24h" in out


def test_water_class_json() -> None:
    code, out = run("water-class", "ph=7.2", "do=4.5", "codmn=5", "nh3n=1.2", "tp=0.25", "turbidity=12",
                    "--target", "III", "--json")
    assert code == 0, out
    data = json.loads(out)
    # do 4.5 -> IV (3 <= 4.5 < 5), codmn 5 -> III, nh3n 1.2 -> IV, tp 0.25 -> IV (0.2 < 0.25 <= 0.3)
    assert data["class"] == "IV"
    assert data["worst"] == ["do", "nh3n", "tp"]
    assert data["per_indicator"] == {"ph": "I", "do": "IV", "codmn": "III", "nh3n": "IV", "tp": "IV"}
    # against III: do (5-4.5)/5 = 0.1; nh3n (1.2-1.0)/1.0 = 0.2; tp (0.25-0.2)/0.2 = 0.25
    assert data["exceedance"] == {"do": 0.1, "nh3n": 0.2, "tp": 0.25}
    assert data["status"] == "轻度污染"
    assert data["meets_target"] is False
    assert data["standard"] == "GB 3838-2002"
    assert "klass" not in data


def test_water_class_lake_and_plain_text() -> None:
    code, out = run("water-class", "tp=0.05", "tn=0.8", "--lake", "--target", "IV", "--json")
    data = json.loads(out)
    # lake TP 0.05 -> III (0.025 < 0.05 <= 0.05), TN 0.8 -> III (0.5 < 0.8 <= 1.0)
    assert (data["class"], data["meets_target"], data["exceedance"]) == ("III", True, {})
    code, out = run("water-class", "nh3n=2.5")
    assert code == 0
    assert "劣V" in out and "重度污染" in out and "氨氮" in out
    code, out = run("water-class", "zinc=1")
    assert code == 1 and "zinc" in out
    code, out = run("water-class", "nh3n=1", "--target", "VI")
    assert code == 1 and "target" in out


def test_black_odour_json() -> None:
    code, out = run("black-odour", "transparency=20", "do=1.5", "orp=-100", "nh3n=10", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["level"] == "light"
    assert data["indicators"] == {"transparency": "light", "do": "light", "orp": "light", "nh3n": "light"}
    code, out = run("black-odour", "transparency=7", "--depth-cm", "20", "--json")
    data = json.loads(out)
    assert data["level"] == "severe"  # bound 0.4 * 20 = 8 cm
    assert data["transparency_bounds_cm"] == [8.0, 8.0]


def test_black_odour_plain_text_and_errors() -> None:
    code, out = run("black-odour", "do=0.1", "orp=-300")
    assert code == 0
    assert "重度黑臭" in out
    code, out = run("black-odour", "do=x")
    assert code == 2 and "'do=x'" in out
    code, out = run("black-odour", "do=1", "do=2")
    assert code == 2 and "twice" in out
