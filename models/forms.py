"""The check-in form as typed input: what a department may submit, with limits."""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from models.vocabulary import SelfStatusValue

NARRATIVE_MAX = 4000
PROBLEMS_MAX = 2000
NEXT_STEPS_MAX = 2000
REASON_MAX = 1000
VALUE_MAX = 1e12
MAX_VALUES = 200


def _text(limit: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, max_length=limit)


class ExtensionRequest(BaseModel):
    """A request to move the due date (申请延期): the new date and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    new_date: date
    reason: Annotated[str, _text(REASON_MAX), Field(min_length=1)]


class SubmissionForm(BaseModel):
    """One answer to a check-in: status, narrative, a number per target, problems, next steps.

    `values` maps a target id (as a string of digits) to a finite number >= 0. Text is kept
    as typed (HTML is never interpreted; templates escape it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: SelfStatusValue
    narrative: Annotated[str, _text(NARRATIVE_MAX), Field(min_length=1)]
    values: dict[str, float] = Field(default_factory=dict, max_length=MAX_VALUES)
    problems: Annotated[str, _text(PROBLEMS_MAX)] = ""
    next_steps: Annotated[str, _text(NEXT_STEPS_MAX)] = ""
    extension: ExtensionRequest | None = None

    @field_validator("values")
    @classmethod
    def _finite_non_negative(cls, values: dict[str, float]) -> dict[str, float]:
        for key, number in values.items():
            if not key.isdigit() or len(key) > 12:
                raise ValueError(f"unknown target key {key[:20]!r}")
            if not math.isfinite(number) or number < 0 or number > VALUE_MAX:
                raise ValueError("target values must be finite numbers >= 0")
        return values
