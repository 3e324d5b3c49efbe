"""AQI per HJ 633-2012 and HJ 633-2026: vectors worked out by hand from the breakpoint tables."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from gulou.rules.standards import Mode, aqi, iaqi

OLD = date(2025, 6, 1)  # HJ 633-2012 / GB 3095-2012
NEW = date(2026, 6, 1)  # HJ 633-2026 / GB 3095-2026 transition
CST = timezone(timedelta(hours=8))

# PM2.5 24 h breakpoints -> IAQI 0, 50, 100, 150, 200, 300, 400, 500.
PM25_2012 = [(0, 0), (35, 50), (75, 100), (115, 150), (150, 200), (250, 300), (350, 400), (500, 500)]
PM25_2026 = [(0, 0), (35, 50), (60, 100), (115, 150), (150, 200), (250, 300), (350, 400), (500, 500)]
PM10_2012 = [(0, 0), (50, 50), (150, 100), (250, 150), (350, 200), (420, 300), (500, 400), (600, 500)]
PM10_2026 = [(0, 0), (50, 50), (120, 100), (250, 150), (350, 200), (420, 300), (500, 400), (600, 500)]


@pytest.mark.parametrize("mode", ["hourly", "daily"])
@pytest.mark.parametrize(("pollutant", "at", "table"), [
    ("pm25", OLD, PM25_2012), ("pm25", NEW, PM25_2026), ("pm10", OLD, PM10_2012), ("pm10", NEW, PM10_2026)])
def test_every_pm_breakpoint_gives_its_exact_iaqi(pollutant: str, at: date, table: list[tuple[int, int]],
                                                  mode: Mode) -> None:
    # PM hourly concentrations are rated on the 24 h column too, so both modes agree.
    for conc, expected in table:
        assert aqi({pollutant: conc}, at, mode).iaqi[pollutant] == expected, conc


@pytest.mark.parametrize(("values", "at", "expected"), [
    ({"pm25": 36}, OLD, 52),      # 50 + 50*(36-35)/(75-35) = 51.25 -> 52
    ({"pm25": 36}, NEW, 52),      # 50 + 50*(36-35)/(60-35) = 52 exactly -> 52
    ({"pm25": 37}, NEW, 54),      # 50 + 50*2/25 = 54 exactly
    ({"pm25": 61}, NEW, 101),     # 100 + 50*(61-60)/(115-60) = 100.91 -> 101
    ({"pm25": 61}, OLD, 83),      # 50 + 50*(61-35)/(75-35) = 82.5 -> 83
    ({"pm25": 76}, OLD, 102),     # 100 + 50*(76-75)/(115-75) = 101.25 -> 102
    ({"pm25": 80}, NEW, 119),     # 100 + 50*(80-60)/55 = 118.18 -> 119
    ({"pm25": 80}, OLD, 107),     # 100 + 50*(80-75)/40 = 106.25 -> 107
    ({"pm10": 151}, OLD, 101),    # 100 + 50*(151-150)/100 = 100.5 -> 101
    ({"pm10": 121}, NEW, 101),    # 100 + 50*(121-120)/130 = 100.38 -> 101
    ({"pm10": 100}, NEW, 86),     # 50 + 50*(100-50)/70 = 85.71 -> 86
    ({"pm10": 100}, OLD, 75),     # 50 + 50*(100-50)/100 = 75 exactly
    ({"pm25": 4.9}, OLD, 7),      # 50*4.9/35 = 7 exactly (plain float arithmetic gives 7.000000000000001)
    ({"pm25": 128.3}, OLD, 169),  # 150 + 50*13.3/35 = 169 exactly (float: 169.00000000000003)
])
def test_interior_points_round_up(values: dict[str, float], at: date, expected: int) -> None:
    assert aqi(values, at, "daily").aqi == expected


def test_exact_decimal_arithmetic_on_co_columns() -> None:
    # CO 24 h 2.2: 50 + 50*(2.2-2)/(4-2) = 55 exactly (float: 55.00000000000001).
    assert aqi({"co": 2.2}, OLD, "daily").iaqi["co"] == 55
    # CO 1 h 65.4: 200 + 100*(65.4-60)/(90-60) = 218 exactly (float: 218.00000000000003).
    assert aqi({"co": 65.4}, NEW, "hourly").iaqi["co"] == 218
    # SO2 24 h 2120.8: 400 + 100*(2120.8-2100)/(2620-2100) = 404 exactly.
    assert aqi({"so2": 2120.8}, OLD, "daily").iaqi["so2"] == 404


@pytest.mark.parametrize("at", [OLD, NEW])
@pytest.mark.parametrize(("values", "mode"), [
    ({"pm25": 600}, "daily"), ({"pm10": 700}, "daily"), ({"so2": 3000}, "daily"), ({"no2": 4000}, "hourly"),
    ({"co": 200}, "hourly"), ({"o3": 1500}, "daily"), ({"pm25": 500.1}, "hourly")])
def test_capped_at_500_above_the_top_breakpoint(values: dict[str, float], mode: Mode, at: date) -> None:
    result = aqi(values, at, mode)
    assert result.aqi == 500
    assert result.category == "严重污染"


@pytest.mark.parametrize("at", [OLD, NEW])
class TestSo2Above800:
    def test_800_is_still_rated_on_the_1h_column(self, at: date) -> None:
        result = aqi({"so2": 800}, at, "hourly")
        assert result.iaqi == {"so2": 200}
        assert result.notes == []

    def test_only_1h_value_is_rated_on_the_24h_column_with_a_note(self, at: date) -> None:
        # 24 h column 800..1600 -> 200..300: 200 + 100*(900-800)/800 = 212.5 -> 213
        result = aqi({"so2": 900}, at, "hourly")
        assert result.iaqi == {"so2": 213}
        assert len(result.notes) == 1 and "24 h column" in result.notes[0]

    def test_801_on_the_24h_column(self, at: date) -> None:
        # 200 + 100*(801-800)/800 = 200.125 -> 201
        assert aqi({"so2": 801}, at, "hourly").iaqi["so2"] == 201

    def test_24h_value_is_used_when_given(self, at: date) -> None:
        # SO2 24 h 200: 100 + 50*(200-150)/(475-150) = 107.69 -> 108
        result = aqi({"so2": 900, "so2_24h": 200, "pm25": 10}, at, "hourly")
        assert result.iaqi == {"pm25": 15, "so2": 108}  # pm25: 50*10/35 = 14.29 -> 15
        assert result.aqi == 108
        assert "24 h IAQI is used" in result.notes[0]

    def test_24h_value_is_ignored_below_800(self, at: date) -> None:
        # 1 h column 500..650 -> 100..150: 100 + 50*(600-500)/150 = 133.33 -> 134
        result = aqi({"so2": 600, "so2_24h": 2000}, at, "hourly")
        assert result.iaqi == {"so2": 134}
        assert result.notes == []

    def test_daily_mode_has_no_800_rule(self, at: date) -> None:
        result = aqi({"so2": 900}, at, "daily")
        assert result.iaqi == {"so2": 213}  # 24 h column anyway
        assert result.notes == []

    def test_so2_24h_alone_or_in_daily_mode_is_refused(self, at: date) -> None:
        with pytest.raises(ValueError, match="so2_24h"):
            aqi({"so2_24h": 100}, at, "hourly")
        with pytest.raises(ValueError, match="so2_24h"):
            aqi({"so2": 100, "so2_24h": 100}, at, "daily")


@pytest.mark.parametrize("mode", ["hourly", "daily"])
@pytest.mark.parametrize("at", [OLD, NEW])
class TestO3EightHourAbove800:
    def test_800_is_300(self, at: date, mode: Mode) -> None:
        assert aqi({"o3_8h": 800}, at, mode).iaqi == {"o3_8h": 300}

    def test_1h_iaqi_is_used_instead(self, at: date, mode: Mode) -> None:
        # O3 1 h 1000 -> 400 (breakpoint); the 8 h value gives no IAQI.
        result = aqi({"o3_8h": 900, "o3": 1000}, at, mode)
        assert result.iaqi == {"o3": 400}
        assert result.aqi == 400
        assert result.primary_pollutants == ["o3"]
        assert "1 h IAQI is used" in result.notes[0]

    def test_without_1h_value_rated_on_the_1h_column_with_a_note(self, at: date, mode: Mode) -> None:
        # 1 h column 800..1000 -> 300..400: 300 + 100*(900-800)/200 = 350
        result = aqi({"o3_8h": 900}, at, mode)
        assert result.iaqi == {"o3_8h": 350}
        assert "no 1 h value" in result.notes[0]

    def test_without_1h_value_capped_at_500(self, at: date, mode: Mode) -> None:
        assert aqi({"o3_8h": 1300}, at, mode).iaqi == {"o3_8h": 500}


@pytest.mark.parametrize("at", [OLD, NEW])
@pytest.mark.parametrize(("pollutant", "conc", "hourly", "daily"), [
    ("so2", 150, 50, 100),   # 1 h: 150 -> 50; 24 h: 150 -> 100
    ("so2", 500, 100, 154),  # 1 h: 500 -> 100; 24 h 475..800 -> 150..200: 150 + 50*25/325 = 153.85 -> 154
    ("no2", 200, 100, 160),  # 1 h: 200 -> 100; 24 h: 150 + 50*(200-180)/100 = 160
    ("no2", 80, 40, 100),    # 1 h: 50*80/100 = 40; 24 h: 80 -> 100
    ("co", 10, 100, 130),    # 1 h: 10 -> 100; 24 h: 100 + 50*(10-4)/10 = 130
    ("co", 4, 40, 100),      # 1 h: 50*4/5 = 40; 24 h: 4 -> 100
    ("o3", 200, 100, 100),   # o3 is the 1 h column in both modes
    ("o3_8h", 160, 100, 100),
])
def test_hourly_and_daily_columns(pollutant: str, conc: float, hourly: int, daily: int, at: date) -> None:
    assert aqi({pollutant: conc}, at, "hourly").iaqi[pollutant] == hourly
    assert aqi({pollutant: conc}, at, "daily").iaqi[pollutant] == daily
    assert iaqi(pollutant, conc, at, "daily") == daily


def test_ties_report_every_primary_pollutant() -> None:
    # 2012: pm25 75 -> 100, pm10 150 -> 100, o3_8h 160 -> 100, no2 (24 h) 40 -> 50.
    r = aqi({"no2": 40, "o3_8h": 160, "pm10": 150, "pm25": 75}, OLD, "daily")
    assert r.aqi == 100
    assert r.primary_pollutants == ["pm25", "pm10", "o3_8h"]
    # 2026: pm25 60 -> 100, pm10 120 -> 100.
    r = aqi({"pm25": 60, "pm10": 120, "co": 1}, NEW, "daily")
    assert r.primary_pollutants == ["pm25", "pm10"]
    # hourly names: o3 (1 h) 200 -> 100 ties with co 1 h 10 -> 100.
    assert aqi({"o3": 200, "co": 10}, NEW, "hourly").primary_pollutants == ["o3", "co"]


@pytest.mark.parametrize("at", [OLD, NEW])
def test_no_primary_pollutant_at_50_or_below(at: date) -> None:
    r = aqi({"pm25": 35, "pm10": 50, "so2": 50}, at, "daily")  # all exactly 50
    assert r.aqi == 50
    assert r.primary_pollutants == []
    # 35.1: 50 + 50*0.1/40 = 50.125 (2012) or 50 + 50*0.1/25 = 50.2 (2026) -> 51
    assert aqi({"pm25": 35.1, "pm10": 50}, at, "daily").primary_pollutants == ["pm25"]


def test_exceeding_pollutants_only_in_2012() -> None:
    # pm25 115 -> 150; no2 1 h 250 -> 100 + 50*50/500 = 105; pm10 150 -> 100 (not > 100)
    old = aqi({"pm25": 115, "no2": 250, "pm10": 150}, OLD, "hourly")
    assert old.exceeding == ["pm25", "no2"]
    assert old.exceeding_applicable is True
    new = aqi({"pm25": 115, "no2": 250, "pm10": 150}, NEW, "hourly")
    # 2026: pm25 115 -> 150; pm10 150 on 120..250 -> 100 + 50*30/130 = 111.54 -> 112; no2 105
    assert new.iaqi == {"pm25": 150, "pm10": 112, "no2": 105}
    assert new.exceeding == []
    assert new.exceeding_applicable is False


def test_rule_set_switches_at_midnight_china_time() -> None:
    # pm25 75: HJ 633-2012 -> 100; HJ 633-2026 -> 100 + 50*(75-60)/55 = 113.64 -> 114
    cases = [
        (date(2026, 2, 28), 100, "HJ 633-2012 / GB 3095-2012"),
        (date(2026, 3, 1), 114, "HJ 633-2026 / GB 3095-2026"),
        (datetime(2026, 2, 28, 23, 59, 59, tzinfo=CST), 100, "HJ 633-2012 / GB 3095-2012"),
        (datetime(2026, 3, 1, 0, 0, tzinfo=CST), 114, "HJ 633-2026 / GB 3095-2026"),
        (datetime(2026, 2, 28, 15, 59, 59, tzinfo=UTC), 100, "HJ 633-2012 / GB 3095-2012"),
        (datetime(2026, 2, 28, 16, 0, tzinfo=UTC), 114, "HJ 633-2026 / GB 3095-2026"),
        (datetime(2026, 3, 1, 0, 0), 114, "HJ 633-2026 / GB 3095-2026"),  # naive = China time
        (date(2030, 12, 31), 114, "HJ 633-2026 / GB 3095-2026"),
        (date(2031, 1, 1), 114, "HJ 633-2026 / GB 3095-2026 phase 2"),
    ]
    for at, expected, standard in cases:
        result = aqi({"pm25": 75}, at, "daily")
        assert (result.aqi, result.standard) == (expected, standard), at
    assert aqi({"pm25": 75}, datetime(2026, 2, 28, 16, 0, tzinfo=UTC), "daily").date == date(2026, 3, 1)


@pytest.mark.parametrize(("conc", "expected", "category", "level", "colour"), [
    (0, 0, "优", "一级", "#00E400"),
    (35, 50, "优", "一级", "#00E400"),
    (36, 52, "良", "二级", "#FFFF00"),        # 50 + 50*1/40 = 51.25 -> 52
    (75, 100, "良", "二级", "#FFFF00"),
    (76, 102, "轻度污染", "三级", "#FF7E00"),   # 100 + 50*1/40 = 101.25 -> 102
    (115, 150, "轻度污染", "三级", "#FF7E00"),
    (116, 152, "中度污染", "四级", "#FF0000"),  # 150 + 50*1/35 = 151.43 -> 152
    (150, 200, "中度污染", "四级", "#FF0000"),
    (151, 201, "重度污染", "五级", "#99004C"),  # 200 + 100*1/100 = 201
    (250, 300, "重度污染", "五级", "#99004C"),
    (251, 301, "严重污染", "六级", "#7E0023"),  # 300 + 100*1/100 = 301
])
def test_category_level_colour_of_each_band(conc: float, expected: int, category: str, level: str,
                                            colour: str) -> None:
    r = aqi({"pm25": conc}, OLD, "daily")
    assert (r.aqi, r.category, r.level, r.colour) == (expected, category, level, colour)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match=r"unknown pollutant 'pm2\.5'.*pm25, pm10, so2, no2, o3, o3_8h, co"):
        aqi({"pm2.5": 10}, NEW, "hourly")
    with pytest.raises(ValueError, match="must not be negative"):
        aqi({"pm25": -1}, NEW, "hourly")
    with pytest.raises(ValueError, match="no pollutant values"):
        aqi({}, NEW, "hourly")
    with pytest.raises(ValueError, match="mode"):
        aqi({"pm25": 1}, NEW, "weekly")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        aqi({"pm25": float("nan")}, NEW, "hourly")
