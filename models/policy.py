"""The per-plan supervision policy: what each phase asks of departments, and the ladder.

A policy is YAML (see `docs/policy.md` and `examples/policy.yaml`) validated into the frozen
pydantic `SupervisionPolicy`. `default_policy()` is what a plan without its own policy gets.
`load_policy(path)` and `parse_policy(data)` turn bad input into one Chinese `InputError`
naming the file and line.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.digest import DeliveryRule, leader_key
from models.errors import InputError
from models.orders import OrderRule
from models.scoring import ScoringRule

__all__ = [
    "CheckinKind",
    "DeliveryNames",
    "EscalationLevel",
    "PhaseKey",
    "PhaseRule",
    "PhaseTemplate",
    "RecipientRole",
    "ReviewRule",
    "SupervisionPolicy",
    "default_policy",
    "load_policy",
    "parse_policy",
]

PhaseKey = Literal["mobilize", "implement", "review"]
CheckinKind = Literal["work_plan", "progress", "self_assessment"]
Cadence = Literal["once", "monthly", "quarterly"]
RecipientRole = Literal["contact", "leader", "head", "office"]
"""`contact` 部室联系人, `leader` 分管领导, `head` 主要负责人, `office` 督查室."""

ChatNotice = Literal["escalation", "report"]
"""What a group chat robot (`models.robots`) is sent as well as the email."""

_PHASE_ORDER: dict[str, int] = {"mobilize": 0, "implement": 1, "review": 2}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PhaseRule(_Frozen):
    """What a department owes in one phase.

    `once`: one check-in due on the phase's last working day. `monthly` / `quarterly`: one
    check-in on `day` of each month (of each quarter's last month) inside the phase, moved to
    the previous working day; a `day` past the month's end means the month's last day.
    """

    kind: CheckinKind
    cadence: Cadence = "once"
    day: int = Field(default=25, ge=1, le=31)


class EscalationLevel(_Frozen):
    """One rung of the ladder: fires `delay_workdays` working days after the due date."""

    level: int = Field(ge=1)
    delay_workdays: int
    recipients: tuple[RecipientRole, ...] = Field(min_length=1)

    @field_validator("delay_workdays")
    @classmethod
    def _delay_positive(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"延迟工作日不能为负数（{value}）")
        if value == 0:
            raise ValueError("延迟工作日至少为1（截止当天由到期提醒负责）")
        return value


ReviewScope = Literal["lead", "all", "none"]
"""Which check-ins the office reviews (审核): the lead departments', every one, or none."""


class ReviewRule(_Frozen):
    """The office's review (审核) of reports: which need it and how long each side may take.

    `checkins`: `lead` (default: the lead department's reports), `all`, or `none` (no review,
    today's behaviour). `office_workdays`: working days after a report arrives before one
    left unreviewed escalates to the office's own 主要负责人 (None: the office is not
    chased). `return_workdays`: working days a returned check-in gets for its next version.
    The policy also accepts the scope alone (`review: none`).
    """

    checkins: ReviewScope = "lead"
    office_workdays: int | None = Field(default=None, ge=1)
    return_workdays: int = Field(default=5, ge=1)

    @property
    def enabled(self) -> bool:
        """True when some check-in needs review."""
        return self.checkins != "none"


class PhaseTemplate(_Frozen):
    """A default phase as month-day strings (`"03-01"`), used when a plan names no phases.

    `02-29` means the last day of February in any year.
    """

    key: PhaseKey
    name: str
    start: str = Field(pattern=r"^\d{2}-\d{2}$")
    end: str = Field(pattern=r"^\d{2}-\d{2}$")

    @model_validator(mode="after")
    def _valid_days(self) -> PhaseTemplate:
        for text in (self.start, self.end):
            try:
                date(2024, int(text[:2]), int(text[3:]))
            except ValueError:
                raise ValueError(f"日期“{text}”无效，应为 MM-DD") from None
        if self.end < self.start:
            raise ValueError(f"阶段 {self.key} 的结束日期早于开始日期")
        return self

    def dates(self, year: int) -> tuple[date, date]:
        """The inclusive start and end dates of this phase in `year` (02-29 -> 02-28)."""
        return _month_day(year, self.start), _month_day(year, self.end)


def _month_day(year: int, text: str) -> date:
    month, day = int(text[:2]), int(text[3:])
    try:
        return date(year, month, day)
    except ValueError:
        return date(year, month, day - 1)


class SupervisionPolicy(_Frozen):
    """The check-in and escalation policy of one plan (stored as JSON on `Plan.policy`).

    `chat_notices` are the notices also posted to the recipients' group robots;
    `catch_up_limit` caps the late catch-up escalations one pass sends each recipient
    (`models.catch_up`; None: no cap).

    Invariants: ladder levels are numbered 1..n with strictly increasing delays; default
    phases are in mobilize -> implement -> review order and do not overlap.
    """

    version: Literal[1] = 1
    phases: dict[PhaseKey, PhaseRule]
    support_departments_report: bool = False
    request_lead_workdays: int = Field(default=5, ge=0)
    reminder_on_due_date: bool = True
    item_milestones: bool = True
    item_deadlines: bool = True
    escalation: tuple[EscalationLevel, ...]
    default_phases: tuple[PhaseTemplate, ...]
    scoring: ScoringRule = Field(default_factory=ScoringRule)
    orders: OrderRule = Field(default_factory=OrderRule)
    delivery: DeliveryRule = Field(default_factory=DeliveryRule)
    review: ReviewRule = ReviewRule()

    @field_validator("review", mode="before")
    @classmethod
    def _review_scope_alone(cls, value: object) -> object:
        if value is None:
            return {}
        if isinstance(value, str):
            return {"checkins": value}
        return value

    chat_notices: tuple[ChatNotice, ...] = ("escalation", "report")
    catch_up_limit: int | None = Field(default=5, ge=1)

    @field_validator("escalation")
    @classmethod
    def _ladder_increasing(cls, ladder: tuple[EscalationLevel, ...]) -> tuple[EscalationLevel, ...]:
        for index, rung in enumerate(ladder):
            if rung.level != index + 1:
                raise ValueError(f"督办级别应从1开始连续编号，第{index + 1}级写成了{rung.level}")
            if index and rung.delay_workdays <= ladder[index - 1].delay_workdays:
                raise ValueError(
                    f"第{rung.level}级的延迟（{rung.delay_workdays}个工作日）必须大于"
                    f"第{rung.level - 1}级（{ladder[index - 1].delay_workdays}个工作日）"
                )
        return ladder

    @field_validator("default_phases")
    @classmethod
    def _phases_ordered(cls, phases: tuple[PhaseTemplate, ...]) -> tuple[PhaseTemplate, ...]:
        keys = [phase.key for phase in phases]
        if len(set(keys)) != len(keys):
            raise ValueError("默认阶段重复")
        if keys != sorted(keys, key=_PHASE_ORDER.__getitem__):
            raise ValueError("默认阶段顺序应为 mobilize、implement、review")
        for before, after in pairwise(phases):
            if after.start <= before.end:
                raise ValueError(f"默认阶段 {before.key} 与 {after.key} 的日期重叠")
        return phases

    def rule_for(self, phase_key: str) -> PhaseRule | None:
        """The rule for `phase_key`, or None when that phase asks for no check-in."""
        for key, rule in self.phases.items():
            if key == phase_key:
                return rule
        return None

    def to_mapping(self) -> dict[str, Any]:
        """A JSON-ready dict that `parse_policy` reads back to an equal policy."""
        return self.model_dump(mode="json")


def default_policy() -> SupervisionPolicy:
    """The documented default policy (identical to `examples/policy.yaml`).

    Its default phases equal the plan reader's (`models.plan_reader.phases.default_phases`).
    """
    return SupervisionPolicy(
        phases={
            "mobilize": PhaseRule(kind="work_plan", cadence="once"),
            "implement": PhaseRule(kind="progress", cadence="monthly", day=25),
            "review": PhaseRule(kind="self_assessment", cadence="once"),
        },
        support_departments_report=False,
        request_lead_workdays=5,
        reminder_on_due_date=True,
        escalation=(
            EscalationLevel(level=1, delay_workdays=1, recipients=("contact",)),
            EscalationLevel(level=2, delay_workdays=3, recipients=("leader",)),
            EscalationLevel(level=3, delay_workdays=5, recipients=("head", "office")),
        ),
        default_phases=(
            PhaseTemplate(key="mobilize", name="动员部署阶段", start="01-01", end="02-29"),
            PhaseTemplate(key="implement", name="组织实施阶段", start="03-01", end="11-30"),
            PhaseTemplate(key="review", name="总结验收阶段", start="12-01", end="12-31"),
        ),
    )


def parse_policy(
    data: Mapping[str, Any] | None, *, source: Path | str | None = None
) -> SupervisionPolicy:
    """Validate a policy mapping; an empty or None mapping gives `default_policy()`.

    Missing top-level keys take the default's values. Raises InputError (Chinese reason).
    """
    return _validate(data, source=source, node=None)


@dataclass(frozen=True)
class DeliveryNames:
    """What the directory knows for the policy's per-recipient `delivery` lists: every
    department name and alias (to its canonical name) and every leader's name and address
    (分管领导, 主要负责人, 督查室 contacts; addresses in lower case)."""

    departments: Mapping[str, str] = field(default_factory=dict)
    leaders: Collection[str] = frozenset()


def load_policy(path: Path | str, *, names: DeliveryNames | None = None) -> SupervisionPolicy:
    """Read and validate a policy YAML file; InputError names the file and line of a fault.

    With `names` (the directory's, `tasks.digest.delivery_names`) the `delivery` lists are
    checked against the directory: an unknown department or leader is refused with its line,
    and an alias is replaced by the department's canonical name."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"无法读取策略文件：{exc.strerror or exc}", path=path) from None
    except UnicodeDecodeError:
        raise InputError("策略文件不是 UTF-8 编码", path=path) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise InputError(
            f"YAML 格式错误：{getattr(exc, 'problem', exc)}", path=path, line=line
        ) from None
    if data is not None and not isinstance(data, Mapping):
        raise InputError("策略文件顶层应为映射（键: 值）", path=path, line=1)
    policy = _validate(data, source=path, node=node)
    if names is None:
        return policy
    return resolve_delivery(policy, names=names, source=path, node=node)


def resolve_delivery(
    policy: SupervisionPolicy,
    *,
    names: DeliveryNames,
    source: Path | str | None = None,
    node: yaml.Node | None = None,
) -> SupervisionPolicy:
    """`policy` with its `delivery` department lists in canonical names; InputError (with
    the line under `node`) for a department or leader the directory does not know."""
    rule = policy.delivery
    resolved: dict[str, tuple[str, ...]] = {}
    for key in ("digest_departments", "each_departments"):
        canonical: list[str] = []
        for index, name in enumerate(getattr(rule, key)):
            found = names.departments.get(name.strip())
            if found is None:
                raise InputError(
                    f"delivery.{key}：部门“{name}”不在部门名录中，请写名录中的部门名称或别名",
                    path=source,
                    line=_line_of(node, ("delivery", key, index)),
                )
            if key == "each_departments" and found in resolved["digest_departments"]:
                raise InputError(
                    f"delivery.{key}：“{name}”即部门“{found}”，已列在 digest_departments 中，"
                    "只能选一种发送方式",
                    path=source,
                    line=_line_of(node, ("delivery", key, index)),
                )
            canonical.append(found)
        resolved[key] = tuple(dict.fromkeys(canonical))
    known = {leader_key(name) for name in names.leaders}
    for key in ("digest_leaders", "each_leaders"):
        for index, name in enumerate(getattr(rule, key)):
            if leader_key(name) not in known:
                raise InputError(
                    f"delivery.{key}：“{name}”不是部门名录中任何分管领导、主要负责人或督查室"
                    "联系人的姓名或邮箱",
                    path=source,
                    line=_line_of(node, ("delivery", key, index)),
                )
    try:
        delivery = DeliveryRule.model_validate(rule.model_dump() | resolved)
    except ValidationError as exc:
        reason = _reason(exc.errors()[0])
        raise InputError(
            f"delivery：{reason}", path=source, line=_line_of(node, ("delivery",))
        ) from None
    return policy.model_copy(update={"delivery": delivery})


def _validate(
    data: Mapping[str, Any] | None, *, source: Path | str | None, node: yaml.Node | None
) -> SupervisionPolicy:
    merged = default_policy().to_mapping()
    merged.update(dict(data or {}))
    try:
        return SupervisionPolicy.model_validate(merged)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        raise InputError(
            f"{_loc_text(loc)}：{_reason(error)}", path=source, line=_line_of(node, loc)
        ) from None


def _loc_text(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "策略"


def _reason(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    fixed = {
        "missing": "缺少此字段",
        "extra_forbidden": "未知字段",
        "int_parsing": "应为整数",
        "int_type": "应为整数",
        "bool_parsing": "应为 true 或 false",
        "bool_type": "应为 true 或 false",
        "string_pattern_mismatch": "格式应为 MM-DD",
        "greater_than_equal": "取值过小",
        "less_than_equal": "取值过大",
        "too_short": "不能为空",
        "dict_type": "应为映射（键: 值）",
        "tuple_type": "应为列表",
    }
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"取值“{error.get('input')}”无效，应为 {expected}"
    return fixed.get(kind, f"取值无效（{error['msg']}）")


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the deepest YAML node along `loc` (0 without a node)."""
    if node is None:
        return 0
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                child = node.value[part]
                line = child.start_mark.line + 1
        if child is None:
            return line
        node = child
    return line
