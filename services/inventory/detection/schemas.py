from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chassis.principal import DISTRICT_ID_PATTERN

Check = Literal["near_duplicates", "dormant", "orphaned"]
ALL_CHECKS: list[Check] = ["near_duplicates", "dormant", "orphaned"]


class DetectionRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checks: list[Check] = Field(
        default_factory=lambda: list(ALL_CHECKS), min_length=1, max_length=3
    )
    district_id: str | None = Field(
        default=None,
        pattern=DISTRICT_ID_PATTERN,
        description="Only this district's subtree; every district the caller manages if absent",
    )


class CheckCounts(BaseModel):
    flagged: int = Field(description="New flags (each published as account.flagged)")
    resolved: int = Field(description="Open flags that no longer hold, now resolved")


class DetectionReport(BaseModel):
    counts: dict[Check, CheckCounts]
