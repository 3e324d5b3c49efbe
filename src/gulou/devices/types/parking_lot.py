"""Off-street or shared parking lot counter (FIWARE OffStreetParking)."""

from typing import ClassVar

from pydantic import model_validator

from gulou.devices.base import DeviceType, Domain, Metric, PayloadBase


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
    domain: ClassVar[Domain] = "parking"
    description: ClassVar[str] = "Parking lot counter (total and occupied spots)"
    default_interval_s: ClassVar[int] = 60
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("total_spots", "count", "Spots in the lot", kind="int", minimum=0, maximum=20000,
               fiware="totalSpotNumber"),
        Metric("occupied_spots", "count", "Spots occupied", kind="int", minimum=0, maximum=20000,
               fiware="occupiedSpotNumber"),
    )

    def payload_base(self) -> type[PayloadBase]:
        """Payloads carry the occupied ≤ total check."""
        return ParkingPayloadBase
