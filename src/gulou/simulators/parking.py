"""Parking: lots fill during office hours (office, hospital, commercial, scenic) or at night (residential)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from gulou.devices.registry import Device
from gulou.simulators.base import Active, Environment, Noise, Pattern, Values, window
from gulou.simulators.model import bump, clamp, local_hour

NORMAL_MAX = 0.97  # outside a lot_full incident a lot keeps a few spots free


def occupancy_profile(lot_type: str, hour: float, weekend: bool) -> float:
    """Expected occupied fraction of a lot of this type at this local hour."""
    if lot_type == "office":
        day = window(hour, 8.0, 18.5, 0.5)
        return 0.06 + (0.2 if weekend else 0.86) * day
    if lot_type == "hospital":
        return 0.25 + (0.5 if weekend else 0.7) * window(hour, 7.5, 17.5, 0.6)
    if lot_type == "commercial":
        level = 0.1 + 0.5 * window(hour, 10.0, 22.0, 0.7) + 0.25 * bump(hour, 19.5, 1.8)
        return level * (1.15 if weekend else 1.0)
    if lot_type == "residential":
        away = window(hour, 7.5, 18.5, 0.9)
        return (0.93 - (0.35 if weekend else 0.55) * away)
    if lot_type == "shared":
        # Time-shared lots: office users by day, residents by night, a dip at the change-over.
        return 0.2 + 0.55 * window(hour, 8.5, 18.0, 0.6) + 0.6 * (1 - window(hour, 7.0, 19.5, 0.7))
    # scenic (三坊七巷 and the like): visitors by day, busiest at weekends
    return 0.12 + (0.78 if weekend else 0.55) * window(hour, 9.0, 18.0, 0.9)


class ParkingPattern(Pattern):
    """An entrance/exit counter; total spots is the site's capacity."""

    type_name: ClassVar[str] = "parking_lot"
    incidents: ClassVar[tuple[str, ...]] = ("lot_full",)

    def __init__(self, device: Device, seed: int, env: Environment) -> None:
        super().__init__(device, seed, env)
        self.capacity = device.site.capacity or 100
        self.lot_type = device.site.lot_type or "shared"
        self.popularity = self.rng.uniform(0.85, 1.08)
        self.n_occ = Noise(0.04, 1800)

    def sample(self, moment: datetime, offset_s: float, dt_s: float, active: Active) -> Values:
        """Occupied spots from the lot type's daily profile plus slow noise; full during lot_full."""
        target = occupancy_profile(self.lot_type, local_hour(moment), self.env.weekend(moment))
        fraction = clamp(target * self.popularity + self.noise(self.n_occ, dt_s), 0.0, NORMAL_MAX)
        occupied = round(self.capacity * fraction)
        if "lot_full" in active:
            occupied = self.capacity
        return {"total_spots": self.capacity, "occupied_spots": min(occupied, self.capacity)}
