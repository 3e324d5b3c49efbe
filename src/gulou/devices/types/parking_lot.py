"""Off-street or shared parking lot counter (FIWARE OffStreetParking)."""

import random
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import model_validator

from gulou.devices.base import DeviceType, Metric, PayloadBase, Value


class ParkingPayloadBase(PayloadBase):
    """Adds the cross-field rule: occupied spots cannot exceed total spots."""

    @model_validator(mode="after")
    def _occupied_not_above_total(self) -> "ParkingPayloadBase":
        values = self.metrics()
        total, occupied = values.get("total_spots"), values.get("occupied_spots")
        if total is not None and occupied is not None and occupied > total:
            raise ValueError(f"occupied_spots ({occupied}) exceeds total_spots ({total})")
        return self


class ParkingLot(DeviceType):
    """Entrance/exit counter of one lot."""

    name: ClassVar[str] = "parking_lot"
    domain: ClassVar[str] = "parking"
    description: ClassVar[str] = "Parking lot counter (total and occupied spots)"
    default_interval_s: ClassVar[int] = 60
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("total_spots", "count", "Spots in the lot", kind="int", minimum=0, maximum=20000,
               fiware="totalSpotNumber"),
        Metric("occupied_spots", "count", "Spots occupied", kind="int", minimum=0, maximum=20000,
               fiware="occupiedSpotNumber"),
    )
    site_kind: ClassVar[str] = "parking_lot"
    site_fields: ClassVar[tuple[str, ...]] = ("capacity", "lot_type")
    synthetic_share: ClassVar[float] = 0.09
    calm: ClassVar[Mapping[str, Value]] = {"total_spots": 200, "occupied_spots": 120}
    simulator: ClassVar[str] = "gulou.simulators.parking:ParkingPattern"

    def synthetic_site(self, rng: random.Random, n: int) -> dict[str, Any]:
        """A lot of 50 to 1500 spots."""
        return {"capacity": rng.randint(50, 1500), "lot_type": rng.choice(("office", "residential", "shared"))}

    def payload_base(self) -> type[PayloadBase]:
        """Payloads carry the occupied ≤ total check."""
        return ParkingPayloadBase
