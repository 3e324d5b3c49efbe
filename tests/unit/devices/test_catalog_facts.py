"""Per-type facts live on the device types; the tables other modules used to keep are derived and consistent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import get_args

import pytest

from gulou.devices.base import DeviceType
from gulou.devices.catalog import CATALOG, DOMAINS, domains, site_kinds
from gulou.devices.registry import WATER_CLASSES, Registry
from gulou.devices.types.smart_bin import BIN_CATEGORIES
from gulou.rules.standards.tables import gb3838
from gulou.simulators import waste
from gulou.simulators.base import Pattern
from gulou.simulators.patterns import patterns
from gulou.simulators.scenario import EVERY_TYPE, IncidentKind, incident_types

TYPES = sorted(CATALOG)


@pytest.fixture(params=TYPES)
def dtype(request: pytest.FixtureRequest) -> DeviceType:
    return CATALOG[request.param]


def test_domains_keep_their_documented_order() -> None:
    # The documented five first, in their order; a new type's domain comes after them.
    assert domains() == DOMAINS
    assert DOMAINS[:5] == ("water", "air", "waste", "parking", "structure")


def test_calm_reading_is_a_valid_payload(dtype: DeviceType) -> None:
    body = json.dumps({"ts": datetime(2026, 11, 26, tzinfo=UTC).isoformat(), **dtype.calm})
    payload = dtype.payload_model.model_validate_json(body)
    assert payload.metrics() == dict(dtype.calm)
    assert 0 <= dtype.calm_noise < 1


def test_every_type_names_its_pattern(dtype: DeviceType) -> None:
    cls = patterns()[dtype.name]
    assert issubclass(cls, Pattern) and cls.type_name == dtype.name
    assert set(cls.decimals) <= {m.name for m in dtype.metrics}


def test_every_incident_kind_acts_on_some_type() -> None:
    for kind in get_args(IncidentKind):
        assert incident_types(kind), kind
    assert incident_types(EVERY_TYPE) == tuple(CATALOG)


def test_shipped_registry_uses_each_type_at_its_site_kind(registry: Registry) -> None:
    for device in registry:
        assert device.site.kind == CATALOG[device.type].site_kind, device.id
    kinds = site_kinds()
    assert set(kinds) == {t.site_kind for t in CATALOG.values()}
    for dtype in CATALOG.values():
        for name in dtype.device_fields:
            assert all(getattr(d, name) is not None for d in registry if d.type == dtype.name), name


def test_synthetic_shares_are_positive_weights() -> None:
    assert all(t.synthetic_share > 0 for t in CATALOG.values())


def test_battery_types() -> None:
    powered = {"smart_bin", "sorting_point", "structure_monitor"}
    mains = {"water_station", "air_station", "parking_lot"}
    assert all(CATALOG[n].battery for n in powered) and not any(CATALOG[n].battery for n in mains)


def test_category_and_class_names_agree_with_their_users() -> None:
    # The bin simulator models every category; river targets are GB 3838 classes.
    for table in (waste.CAPACITY_KG, waste.DAILY_FILL, waste.ROUNDS):
        assert set(table) == set(BIN_CATEGORIES)
    assert tuple(gb3838().classes) == WATER_CLASSES
