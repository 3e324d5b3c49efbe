"""Regenerate src/gulou/data/registry.yaml, the shipped Gulou deployment, from the curated lists below.

Coordinates are street centres plus a small deterministic offset: good enough for maps and tests; a
real deployment replaces them with surveyed positions. Run: python scripts/build_registry.py
"""

from __future__ import annotations

import random
from pathlib import Path

from gulou.devices.catalog import CATALOG
from gulou.devices.registry import dump_registry
from gulou.devices.types.smart_bin import BIN_CATEGORIES

STREET_CENTRES = {
    "鼓东街道": (26.0885, 119.3050), "鼓西街道": (26.0850, 119.2870), "温泉街道": (26.0920, 119.3135),
    "东街街道": (26.0842, 119.3003), "南街街道": (26.0800, 119.2960), "安泰街道": (26.0768, 119.3010),
    "华大街道": (26.0985, 119.2900), "水部街道": (26.0785, 119.3180), "五凤街道": (26.1100, 119.2950),
    "洪山镇": (26.0750, 119.2650),
}
STREET_SLUG = {
    "鼓东街道": "gd", "鼓西街道": "gx", "温泉街道": "wq", "东街街道": "dj", "南街街道": "nj",
    "安泰街道": "at", "华大街道": "hd", "水部街道": "sb", "五凤街道": "wf", "洪山镇": "hs",
}
# (river, slug, [(section name, street, target class, drinking source)])
RIVERS = [
    ("白马河", "baima", [("西禅寺段", "洪山镇", "IV", False), ("西湖出口段", "鼓西街道", "IV", False),
                         ("工业路段", "鼓西街道", "IV", False), ("洪山桥段", "洪山镇", "IV", False)]),
    ("安泰河", "antai", [("澳门桥段", "安泰街道", "IV", False), ("朱紫坊段", "安泰街道", "IV", False),
                         ("通湖路段", "南街街道", "IV", False)]),
    ("东西河", "dongxi", [("西湖段", "鼓西街道", "IV", False), ("杨桥路段", "华大街道", "IV", False),
                          ("东西河公园段", "鼓西街道", "IV", False)]),
    ("晋安河", "jinan", [("五四路段", "温泉街道", "IV", False), ("东大路段", "鼓东街道", "IV", False),
                         ("琼东河口段", "水部街道", "IV", False), ("北二环段", "五凤街道", "IV", False)]),
    ("琼东河", "qiongdong", [("水部段", "水部街道", "IV", False), ("六一路段", "水部街道", "IV", False)]),
    ("湖前河", "huqian", [("湖前段", "五凤街道", "IV", False), ("左海段", "华大街道", "IV", False)]),
    ("铜盘河", "tongpan", [("铜盘路段", "五凤街道", "IV", False), ("梅峰段", "华大街道", "IV", False)]),
    ("屏西河", "pingxi", [("屏山段", "鼓东街道", "IV", False)]),
    ("西湖", "xihu", [("湖心", "鼓西街道", "III", False), ("开化屿", "鼓西街道", "III", False)]),
    ("左海", "zuohai", [("南湖", "华大街道", "III", False)]),
    ("闽江", "minjiang", [("洪山桥取水口", "洪山镇", "II", True), ("西河水厂取水口", "洪山镇", "III", True)]),
]
# Lakes and reservoirs: GB 3838 rates their TP and TN on the lake columns (the rest are river sections).
LAKES = {"西湖", "左海"}
# Certified stations (national-method analysers, an HJ 212 data logger): the ones the district's targets are
# assessed on. The other air sites are micro-stations publishing over MQTT; their figures are indicative.
# MN: Gulou's division code 350102, A for air or B for water, then a serial (24 characters, as HJ 212-2017 asks).
CERTIFIED_AIR = {1, 2, 4, 11}  # positions in AIR_SITES
CERTIFIED_WATER = {"baima-01", "jinan-03", "xihu-01", "minjiang-01", "minjiang-02"}
# A logger that follows the 2017 code table literally and sends PM in ng/m3 (the gateway converts).
PM_IN_NG = {11}
AIR_SITES = [
    ("五四路", "温泉街道"), ("杨桥路", "鼓西街道"), ("东街口", "东街街道"), ("西湖公园", "鼓西街道"),
    ("左海公园", "华大街道"), ("温泉公园", "温泉街道"), ("屏山", "鼓东街道"), ("乌山", "南街街道"),
    ("于山", "东街街道"), ("金牛山", "洪山镇"), ("福州软件园", "洪山镇"), ("洪山桥", "洪山镇"),
    ("西二环", "鼓西街道"), ("湖东路", "鼓东街道"), ("北二环", "五凤街道"), ("华林路", "鼓东街道"),
    ("六一北路", "水部街道"), ("古田路", "水部街道"), ("鼓屏路", "鼓东街道"), ("铜盘路", "五凤街道"),
    ("工业路", "鼓西街道"), ("白马北路", "鼓西街道"), ("梅峰路", "华大街道"), ("福飞路", "五凤街道"),
    ("树兜", "五凤街道"), ("三坊七巷", "南街街道"), ("南门兜", "南街街道"), ("东门", "水部街道"),
    ("大腹山", "五凤街道"), ("安泰河沿", "安泰街道"), ("八一七中路", "安泰街道"), ("华大", "华大街道"),
]
COMMUNITIES = {
    "鼓东街道": ["冶山", "钱塘", "虎节", "东大路", "中山"],
    "鼓西街道": ["西湖", "宿舍", "文林", "杨桥", "凤湖"],
    "温泉街道": ["温泉", "汤边", "五一", "东水"],
    "东街街道": ["庆城", "丽文", "光荣", "东门"],
    "南街街道": ["光禄", "杨桥巷", "吉庇", "塔巷"],
    "安泰街道": ["朱紫坊", "乌山", "仙塔", "庆城"],
    "华大街道": ["屏西", "华大", "湖前", "左海"],
    "水部街道": ["古田", "井大", "斗池", "琼东", "水部"],
    "五凤街道": ["铜盘", "树兜", "五凤", "梅峰", "北大"],
    "洪山镇": ["洪山", "西洪", "祭酒岭", "国货", "杨桥西"],
}
# Device-id code of each waste category, in the catalog's category order.
BINS = list(zip(BIN_CATEGORIES, ("rec", "haz", "food", "oth"), strict=True))
LOTS = [
    ("东街口地下停车场", "东街街道", "commercial", 820), ("三坊七巷南后街停车场", "南街街道", "scenic", 360),
    ("西湖公园停车场", "鼓西街道", "scenic", 240), ("左海公园停车场", "华大街道", "scenic", 310),
    ("省立医院停车场", "东街街道", "hospital", 560), ("协和医院停车场", "鼓东街道", "hospital", 480),
    ("福州软件园A区停车场", "洪山镇", "office", 900), ("福州软件园F区停车场", "洪山镇", "office", 1200),
    ("温泉公园地下停车场", "温泉街道", "scenic", 420), ("屏山公园停车场", "鼓东街道", "scenic", 180),
    ("乌山历史风貌区停车场", "南街街道", "scenic", 150), ("冠亚广场停车场", "东街街道", "commercial", 650),
    ("宝龙城市广场停车场", "洪山镇", "commercial", 1500), ("东百中心停车场", "东街街道", "commercial", 700),
    ("五四路商务楼宇共享停车场", "温泉街道", "shared", 300), ("华林路办公区停车场", "鼓东街道", "office", 380),
    ("鼓楼区政府停车场", "鼓东街道", "office", 220), ("福州大学怡山校区停车场", "华大街道", "office", 260),
    ("杨桥路沿街共享泊位", "鼓西街道", "shared", 120), ("白马北路错时共享停车场", "鼓西街道", "shared", 160),
    ("北大路小区共享停车场", "五凤街道", "residential", 210), ("铜盘小区停车场", "五凤街道", "residential", 340),
    ("梅峰小区停车场", "华大街道", "residential", 280), ("湖前小区停车场", "华大街道", "residential", 190),
    ("古田路小区停车场", "水部街道", "residential", 230), ("水部小区共享停车场", "水部街道", "shared", 140),
    ("汤边小区停车场", "温泉街道", "residential", 260), ("朱紫坊地下停车场", "安泰街道", "scenic", 200),
    ("八一七中路停车楼", "安泰街道", "commercial", 520), ("西洪小区停车场", "洪山镇", "residential", 310),
    ("国货西路共享停车场", "洪山镇", "shared", 180), ("省妇幼保健院停车场", "鼓东街道", "hospital", 300),
    ("福州一中周边错时停车场", "鼓西街道", "shared", 110), ("东水路小区停车场", "温泉街道", "residential", 170),
    ("井大路共享停车场", "水部街道", "shared", 90), ("树兜小区停车场", "五凤街道", "residential", 150),
    ("南门兜地下停车场", "南街街道", "commercial", 450), ("东门停车楼", "水部街道", "commercial", 380),
]
BUILDINGS = [
    ("衣锦坊12号", "南街街道", 2, "timber", 1890), ("文儒坊21号", "南街街道", 2, "brick-wood", 1920),
    ("光禄坊5号", "南街街道", 2, "brick-wood", 1930), ("宫巷8号", "南街街道", 2, "timber", 1880),
    ("塔巷30号", "南街街道", 3, "brick-wood", 1950), ("黄巷14号", "南街街道", 2, "timber", 1900),
    ("朱紫坊22号", "安泰街道", 2, "brick-wood", 1925), ("仙塔街45号", "安泰街道", 5, "masonry", 1982),
    ("达明路118号", "东街街道", 6, "masonry", 1986), ("庆城路9号", "东街街道", 4, "masonry", 1979),
    ("丽文坊3号", "东街街道", 3, "brick-wood", 1958), ("冶山路27号", "鼓东街道", 5, "masonry", 1984),
    ("钱塘巷15号", "鼓东街道", 3, "brick-wood", 1962), ("东大路61号", "鼓东街道", 7, "concrete", 1990),
    ("汤边路44号", "温泉街道", 6, "masonry", 1988), ("五一北路106号", "温泉街道", 5, "masonry", 1985),
    ("杨桥巷7号", "鼓西街道", 4, "masonry", 1976), ("文林路12号", "鼓西街道", 6, "masonry", 1987),
    ("井大路33号", "水部街道", 5, "masonry", 1983), ("斗池路20号", "水部街道", 2, "brick-wood", 1955),
    ("铜盘路88号", "五凤街道", 6, "masonry", 1989), ("树兜路16号", "五凤街道", 5, "masonry", 1981),
    ("屏西路42号", "华大街道", 6, "masonry", 1986), ("湖前路19号", "华大街道", 4, "masonry", 1978),
    ("西洪路52号", "洪山镇", 5, "masonry", 1984), ("国货西路77号", "洪山镇", 6, "concrete", 1992),
]
POINTS = [("NE", "东北角"), ("SW", "西南角"), ("C", "中部承重墙")]


def kind(type_name: str) -> str:
    """The site kind a device type is installed at (declared on the type)."""
    return CATALOG[type_name].site_kind


def main() -> None:
    """Build the sites and devices lists and write the YAML file."""
    rng = random.Random(20261126)

    def near(street: str, spread: float = 0.006) -> tuple[float, float]:
        lat, lon = STREET_CENTRES[street]
        return round(lat + rng.uniform(-spread, spread), 5), round(lon + rng.uniform(-spread, spread), 5)

    sites: list[dict[str, object]] = []
    devices: list[dict[str, object]] = []
    for river, slug, sections in RIVERS:
        for i, (section, street, target, drinking) in enumerate(sections, 1):
            lat, lon = near(street)
            site_id = f"{slug}-{i:02d}"
            site: dict[str, object] = {"id": site_id, "kind": kind("water_station"), "name": f"{river}{section}",
                                       "street": street, "lat": lat, "lon": lon, "river": river,
                                       "target_class": target}
            if drinking:
                site["drinking_source"] = True
            if river in LAKES:
                site["water_body"] = "lake"
            sites.append(site)
            device: dict[str, object] = {"id": f"wq-{site_id}", "type": "water_station", "site": site_id,
                                         "name": f"{river}{section}水质自动监测站"}
            if site_id in CERTIFIED_WATER:
                serial = sum(d.get("hj212") is not None for d in devices) + 1
                device["hj212"] = {"mn": f"350102B{serial:017d}", "kind": "evaluation", "st": "21"}
            devices.append(device)
    for i, (place, street) in enumerate(AIR_SITES, 1):
        lat, lon = near(street)
        site_id = f"air-{STREET_SLUG[street]}-{i:02d}"
        if i not in CERTIFIED_AIR:
            sites.append({"id": site_id, "kind": kind("air_station"), "name": f"{place}空气微站点位",
                          "street": street, "lat": lat, "lon": lon})
            devices.append({"id": f"aq-{i:03d}", "type": "air_station", "site": site_id,
                            "name": f"{place}空气质量微站"})
            continue
        sites.append({"id": site_id, "kind": kind("air_station"), "name": f"{place}空气自动监测站点位",
                      "street": street, "lat": lat, "lon": lon})
        block: dict[str, object] = {"mn": f"350102A{i:017d}", "kind": "evaluation", "st": "22"}
        if i in PM_IN_NG:
            block["codes"] = {"a34004": {"metric": "pm25", "unit": "ng/m3"},
                              "a34002": {"metric": "pm10", "unit": "ng/m3"}}
        devices.append({"id": f"aq-{i:03d}", "type": "air_station", "site": site_id,
                        "name": f"{place}环境空气质量自动监测站", "hj212": block})
    n = 0
    for street, communities in COMMUNITIES.items():
        for community in communities:
            n += 1
            lat, lon = near(street)
            site_id = f"cp-{STREET_SLUG[street]}-{n:03d}"
            sites.append({"id": site_id, "kind": kind("smart_bin"), "name": f"{community}社区四分类投放点",
                          "street": street, "lat": lat, "lon": lon})
            for category, code in BINS:
                devices.append({"id": f"bin-{n:03d}-{code}", "type": "smart_bin", "site": site_id,
                                "name": f"{community}社区{category}桶", "category": category})
            devices.append({"id": f"sort-{n:03d}", "type": "sorting_point", "site": site_id,
                            "name": f"{community}社区分类督导"})
    for i, (lot, street, lot_type, capacity) in enumerate(LOTS, 1):
        lat, lon = near(street)
        site_id = f"lot-{STREET_SLUG[street]}-{i:02d}"
        sites.append({"id": site_id, "kind": kind("parking_lot"), "name": lot, "street": street, "lat": lat, "lon": lon,
                      "lot_type": lot_type, "capacity": capacity})
        devices.append({"id": f"pk-{i:03d}", "type": "parking_lot", "site": site_id, "name": f"{lot}车位计数器"})
    for i, (address, street, storeys, structure, built) in enumerate(BUILDINGS, 1):
        lat, lon = near(street, 0.004)
        site_id = f"bldg-{STREET_SLUG[street]}-{i:02d}"
        sites.append({"id": site_id, "kind": kind("structure_monitor"), "name": address, "street": street, "lat": lat,
                      "lon": lon, "storeys": storeys, "structure_type": structure, "built": built,
                      "grade": "C" if built < 1960 else "B"})
        for code, where in POINTS[: 2 if storeys <= 3 else 3]:
            devices.append({"id": f"st-{i:03d}-{code.lower()}", "type": "structure_monitor", "site": site_id,
                            "name": f"{address}{where}监测点", "point": code})
    header = (
        "# Gulou Smart Brain device registry: sites (river sections, air sites, collection points, lots,\n"
        "# buildings) and the devices installed at them. Generated by scripts/build_registry.py.\n"
        "# Target water classes: GB 3838-2002; III for drinking-water sources and IV for inner rivers unless\n"
        "# local zoning says otherwise (standards.md §2, chosen default). Coordinates are approximate.\n"
    )
    out = Path(__file__).resolve().parents[1] / "src" / "gulou" / "data" / "registry.yaml"
    out.write_text(header + dump_registry(sites, devices), encoding="utf-8")
    print(f"wrote {out}: {len(sites)} sites, {len(devices)} devices")


if __name__ == "__main__":
    main()
