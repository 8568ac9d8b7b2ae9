"""The canonical plan format: what every reader produces and what offices may write by hand.

The same models are the JSON contract of `duban plan parse --format json`; field order here is
the key order of that output.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

Comparator = Literal["ge", "le", "gt", "lt", "eq", "approx"]
PhaseKey = Literal["mobilize", "implement", "review"]


def _one_line(value: str) -> str:
    """Refuse CR/LF and other line breaks: titles reach mail subjects and table cells."""
    if any(ch in value for ch in "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"):
        raise ValueError("不能包含换行符（标题须为一行）")
    return value


OneLine = Annotated[str, AfterValidator(_one_line)]


class ParsedTarget(BaseModel):
    """A quantitative target: `不少于200场次` is text as written, `ge`, 200, `场次`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1, max_length=200)
    comparator: Comparator = "eq"
    value: float
    unit: str = Field(default="", max_length=40)

    @model_validator(mode="before")
    @classmethod
    def _from_phrase(cls, data: Any) -> Any:
        """Accept a bare phrase (`不少于200场次`) in hand-written plans and read it."""
        if isinstance(data, str):
            from models.plan_reader.targets import find_targets

            found = find_targets(data, anywhere=True)
            if not found:
                raise ValueError(f"无法识别的指标：{data!r}")
            return found[0].model_dump()
        return data


class ParsedPhase(BaseModel):
    """A phase with its name and dates: `start`/`end` as written, dates inclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: PhaseKey
    name: str = Field(min_length=1, max_length=100)
    start: str = Field(default="", max_length=40)
    end: str = Field(default="", max_length=40)
    start_date: date
    end_date: date

    @model_validator(mode="after")
    def _ordered(self) -> ParsedPhase:
        if self.end_date < self.start_date:
            raise ValueError(f"阶段 {self.name} 的结束日期早于开始日期")
        return self


class ParsedSection(BaseModel):
    """A numbered section (`一`, `二`, …) and its heading."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: OneLine = Field(min_length=1, max_length=20)
    title: OneLine = Field(max_length=2000)


class ParsedGroup(BaseModel):
    """A grouped list introduced by a heading line (`八项行动是:`) and how many items it holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    heading: str
    items: int = Field(ge=0)


DeadlineKind = Literal["date", "recurring", "ongoing"]
Recurrence = Literal["monthly", "quarterly", "half_yearly", "yearly"]


class ParsedDeadline(BaseModel):
    """An item's own 完成时限: a date, a recurring rule or ongoing, with the text it came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: DeadlineKind
    text: str = Field(min_length=1, max_length=200)
    due: date | None = None
    rule: Recurrence | None = None

    @model_validator(mode="after")
    def _complete(self) -> ParsedDeadline:
        if self.kind == "date" and self.due is None:
            raise ValueError(f"完成时限 {self.text} 缺少日期")
        if self.kind == "recurring" and self.rule is None:
            raise ValueError(f"完成时限 {self.text} 缺少周期")
        return self


class ParsedMilestone(BaseModel):
    """One period of an item's 时序进度 (inclusive dates) and the output expected by its end."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1, max_length=100)
    start: date
    end: date
    output: str = Field(default="", max_length=2000)
    line: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> ParsedMilestone:
        if self.end < self.start:
            raise ValueError(f"时序进度 {self.text} 的结束日期早于开始日期")
        return self


class ParsedItem(BaseModel):
    """One item: number as written (no trailing `.`/`、`), section number, units as written."""

    model_config = ConfigDict(extra="forbid")

    number: OneLine = Field(min_length=1, max_length=20)
    section: str | None = None
    group: str | None = None
    title: OneLine = Field(min_length=1, max_length=2000)
    body: str = ""
    lead: list[str] = Field(default_factory=list)
    support: list[str] = Field(default_factory=list)
    targets: list[ParsedTarget] = Field(default_factory=list)
    line: int = Field(default=0, ge=0)
    lead_departments: list[str] | None = None
    support_departments: list[str] | None = None
    deadline: ParsedDeadline | None = None
    milestones: list[ParsedMilestone] = Field(default_factory=list)
    criteria: str = Field(default="", max_length=2000)


class ParseWarning(BaseModel):
    """Something the reader could not use or had to guess, with its 1-based line (0: none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line: int = Field(default=0, ge=0)
    reason: str


class ParsedPlan(BaseModel):
    """A whole plan in canonical form; `encoding` says how a text file was decoded."""

    model_config = ConfigDict(extra="forbid")

    title: OneLine = Field(min_length=1, max_length=300)
    organisation: OneLine = Field(default="", max_length=200)
    year: int = Field(ge=1900, le=2200)
    issued: date | None = None
    document_number: str | None = Field(default=None, max_length=60)
    sections: list[ParsedSection] = Field(default_factory=list)
    groups: list[ParsedGroup] = Field(default_factory=list)
    items: list[ParsedItem] = Field(min_length=1)
    phases: list[ParsedPhase] = Field(default_factory=list)
    warnings: list[ParseWarning] = Field(default_factory=list)
    encoding: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ParsedPlan:
        numbers = {section.number for section in self.sections}
        for item in self.items:
            if item.section is not None and item.section not in numbers:
                raise ValueError(f"任务 {item.number} 所属章节 {item.section} 不存在")
        keys = [phase.key for phase in self.phases]
        if len(keys) != len(set(keys)):
            raise ValueError("阶段重复：每种阶段（动员部署、组织实施、总结验收）只能出现一次")
        return self

    def contract(self) -> dict[str, Any]:
        """The JSON contract of `duban plan parse`: stable key order, ISO dates.

        `document_number` (文号) appears only when the document has one;
        `lead_departments`/`support_departments` only when a directory resolved them,
        and `deadline`/`milestones`/`criteria` only when the document gives them, so a plan
        without them reads exactly as before.
        """
        data = self.model_dump(mode="json", exclude={"encoding"})
        if data["document_number"] is None:
            del data["document_number"]
        for item in data["items"]:
            for key in ("lead_departments", "support_departments"):
                if item[key] is None:
                    del item[key]
            for key in ("deadline", "milestones", "criteria"):
                if not item[key]:
                    del item[key]
        return data
