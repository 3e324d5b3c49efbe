"""Sorting inspection counter at a collection point: inspected and correctly sorted drop-offs."""

from collections.abc import Mapping
from typing import ClassVar

from pydantic import model_validator

from gulou.devices.base import DeviceType, Metric, PayloadBase, Value


class SortingPayloadBase(PayloadBase):
    """Adds the cross-field rule: correct drop-offs cannot exceed inspected ones."""

    @model_validator(mode="after")
    def _correct_not_above_inspected(self) -> "SortingPayloadBase":
        values = self.metrics()
        inspected, correct = values.get("inspected"), values.get("correct")
        if inspected is not None and correct is not None and correct > inspected:
            raise ValueError(f"correct ({correct}) exceeds inspected ({inspected})")
        return self


class SortingPoint(DeviceType):
    """Camera or supervisor tablet at a 四定 collection point reporting inspection counts."""

    name: ClassVar[str] = "sorting_point"
    domain: ClassVar[str] = "waste"
    description: ClassVar[str] = "Sorting inspection counts per report (inspected, correctly sorted)"
    default_interval_s: ClassVar[int] = 900
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("inspected", "count", "Drop-offs inspected in this report", kind="int", minimum=0,
               maximum=100000),
        Metric("correct", "count", "Inspected drop-offs sorted correctly", kind="int", minimum=0,
               maximum=100000),
    )
    site_kind: ClassVar[str] = "collection_point"
    battery: ClassVar[bool] = True
    synthetic_share: ClassVar[float] = 0.12
    calm: ClassVar[Mapping[str, Value]] = {"inspected": 40, "correct": 39}
    simulator: ClassVar[str] = "gulou.simulators.waste:SortingPattern"

    def payload_base(self) -> type[PayloadBase]:
        """Payloads carry the inspected ≥ correct check."""
        return SortingPayloadBase
