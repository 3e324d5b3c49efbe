"""Water classes, black odour, sorting and housing figures of the generated month, computed by hand."""

from __future__ import annotations

from gulou.reports.model import Report


def test_section_classes_against_targets(month_report: Report) -> None:
    sections = {s.site: s for s in month_report.water.sections}
    assert month_report.water.periods == ["2026-05"]
    baima = sections["baima-t1"]
    # CODMn 12 (V: <= 15), NH3-N 1.8 (V: <= 2.0), TP 0.35 (V: <= 0.4), DO 4 (IV): class V against target IV.
    assert (baima.klass, baima.meets_target, baima.status) == ("V", False, "中度污染")
    assert baima.worst == ["codmn", "nh3n", "tp"]
    # Multiples against IV: (12 - 10) / 10, (1.8 - 1.5) / 1.5, (0.35 - 0.3) / 0.3.
    assert baima.exceedance == {"codmn": 0.2, "nh3n": 0.2, "tp": 0.167}
    dongxi = sections["dongxi-t1"]
    # 20 days at NH3-N 10 and 11 at 1.0: mean 211 / 31 = 6.806 (劣V); DO (20 x 1.5 + 11 x 4) / 31 = 2.387 (V).
    assert dongxi.means["nh3n"] == 6.806 and dongxi.means["do"] == 2.387
    assert (dongxi.klass, dongxi.worst) == ("劣V", ["nh3n"])
    assert dongxi.exceedance == {"do": 0.204, "nh3n": 3.537}  # (3 - 2.387) / 3, (6.806 - 1.5) / 1.5
    minjiang = sections["minjiang-t1"]
    assert (minjiang.klass, minjiang.meets_target, minjiang.drinking_source) == ("II", True, True)
    assert baima.samples == 744 and baima.water_body == "river"


def test_compliance_rates_and_top_indicators(month_report: Report) -> None:
    water = month_report.water
    assert (water.compliance.meeting, water.compliance.evaluated, water.compliance.value) == (1, 3, 0.3333)
    assert (water.drinking_sources.meeting, water.drinking_sources.evaluated) == (1, 1)
    assert (water.inner_rivers.meeting, water.inner_rivers.evaluated, water.inner_rivers.value) == (0, 2, 0.0)
    # NH3-N over target in two sections; then DO 0.204 before CODMn 0.2 (one section each, larger multiple first).
    top = [(i.indicator, i.count, i.max_multiple, i.where) for i in water.top_indicators]
    assert top == [("nh3n", 2, 3.537, "东西河测试段"), ("do", 1, 0.204, "东西河测试段"),
                   ("codmn", 1, 0.2, "白马河测试段")]


def test_black_odour_graded_by_samples(month_report: Report) -> None:
    rivers = {r.river: r for r in month_report.black_odour}
    # 东西河: transparency 8 cm (severe) on 20 of 31 daily samples = 64.5 % >= 60 %: severe.
    assert (rivers["东西河"].level, rivers["东西河"].level_word) == ("severe", "重度黑臭")
    section = rivers["东西河"].sections[0]
    assert section.samples == 31
    assert section.severe_share["transparency"] == round(20 / 31, 4)
    assert rivers["白马河"].level == "none" and rivers["闽江"].level == "none"


def test_sorting_rate_per_street(month_report: Report) -> None:
    streets = {s.street: s for s in month_report.waste_sorting}
    assert (streets["鼓东街道"].inspected, streets["鼓东街道"].correct, streets["鼓东街道"].rate) == (7440, 6696, 0.9)
    assert streets["鼓西街道"].rate == 1.0
    district = month_report.waste_sorting[-1]
    assert (district.street, district.inspected, district.correct) == ("全区", 22320, 21576)
    assert district.rate == round(21576 / 22320, 4)


def test_housing_warnings_use_the_structure_type(month_report: Report) -> None:
    buildings = {b.site: b for b in month_report.housing}
    first = buildings["bldg-t1"]
    assert first.tier == "orange"
    warnings = {w.metric: w for w in first.warnings}
    # tan 0.9° = 0.01571 of 0.02 (6 storeys) = 79 %: yellow.
    assert (warnings["tilt"].tier, warnings["tilt"].limit, round(warnings["tilt"].value, 4)) == ("yellow", 0.02, 0.0157)
    # Concrete: 0.45 of 0.5 mm = 90 %: orange.
    assert (warnings["crack_width"].tier, warnings["crack_width"].limit) == ("orange", 0.5)
    # 0.1 mm a day over the last 30 days: 3 mm a month of 4 = 75 %: yellow.
    assert warnings["settlement_rate"].value == 3.0 and warnings["settlement_rate"].tier == "yellow"
    assert "vibration" not in warnings  # 1.0 of 3.5 mm/s
    # Masonry: the same 0.45 mm crack is 45 % of 1.0 mm: no warning.
    assert (buildings["bldg-t2"].tier, buildings["bldg-t2"].warnings) == ("none", [])
    assert [b.site for b in month_report.housing] == ["bldg-t1", "bldg-t2"]  # worst first
