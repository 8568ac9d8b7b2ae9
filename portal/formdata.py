"""Turn posted form fields into a `SubmissionForm`, or into Chinese messages naming each field."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from models.errors import InputError
from models.forms import (
    NARRATIVE_MAX,
    NEXT_STEPS_MAX,
    PROBLEMS_MAX,
    REASON_MAX,
    VALUE_MAX,
    ExtensionRequest,
    SubmissionForm,
)
from models.limits import check_extension_date, normalise_text
from portal.pages import PageTarget

FIELD_LABELS = {
    "status": "进展状态",
    "narrative": "进展情况",
    "problems": "存在问题",
    "next_steps": "下步打算",
    "extension_date": "延期至",
    "extension_reason": "延期理由",
}
TEXT_LIMITS = {
    "narrative": NARRATIVE_MAX,
    "problems": PROBLEMS_MAX,
    "next_steps": NEXT_STEPS_MAX,
    "extension_reason": REASON_MAX,
}


@dataclass
class ParsedForm:
    """The validated form, or the errors to show next to the re-rendered form."""

    form: SubmissionForm | None
    errors: list[str] = field(default_factory=list)


def _text(raw: Mapping[str, str], name: str) -> str:
    return normalise_text(raw.get(name, "")).strip()


def _number(text: str) -> float | None:
    try:
        number = float(text.replace(",", "").replace("，", ""))
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0 or number > VALUE_MAX:
        return None
    return number


def parse_form(
    raw: Mapping[str, str], *, targets: Sequence[PageTarget], due_date: date, plan_year: int
) -> ParsedForm:
    """Validate posted fields against the item's targets; never raises for bad input.

    Text is normalised (`models.limits.normalise_text`: no NUL or other control
    characters). Target fields are `value_<target id>`; an empty one is left out. The
    extension needs both a date and a reason, or neither, and its date must be within
    `models.limits.check_extension_date` of the check-in's `due_date` and `plan_year`.
    """
    errors: list[str] = []
    for name, limit in TEXT_LIMITS.items():
        if len(_text(raw, name)) > limit:
            errors.append(f"{FIELD_LABELS[name]}不能超过{limit}字。")
    values: dict[str, float] = {}
    for target in targets:
        text = _text(raw, f"value_{target.id}")
        if not text:
            continue
        number = _number(text)
        if number is None:
            errors.append(f"指标“{target.text}”须填写不小于0的数字。")
        else:
            values[str(target.id)] = number
    extension: dict[str, Any] | None = None
    new_date, reason = _text(raw, "extension_date"), _text(raw, "extension_reason")
    if new_date or reason:
        if not new_date or not reason:
            errors.append("申请延期须同时填写延期日期和理由。")
        else:
            try:
                day = date.fromisoformat(new_date)
            except ValueError:
                errors.append("延期日期格式应为 YYYY-MM-DD。")
            else:
                try:
                    check_extension_date(day, due_date=due_date, plan_year=plan_year)
                    extension = {"new_date": day, "reason": reason}
                except InputError as exc:
                    errors.append(exc.reason)
    if errors:
        return ParsedForm(form=None, errors=errors)
    try:
        form = SubmissionForm(
            status=_text(raw, "status"),
            narrative=_text(raw, "narrative"),
            values=values,
            problems=_text(raw, "problems"),
            next_steps=_text(raw, "next_steps"),
            extension=ExtensionRequest(**extension) if extension else None,
        )
    except ValidationError as exc:
        return ParsedForm(form=None, errors=_messages(exc))
    return ParsedForm(form=form)


def _messages(exc: ValidationError) -> list[str]:
    messages: list[str] = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        label = FIELD_LABELS.get(name, name)
        if name == "status":
            messages.append("请选择进展状态。")
        elif error["type"] in {"string_too_short", "missing"}:
            messages.append(f"请填写{label}。")
        else:
            messages.append(f"{label}填写有误。")
    return messages
