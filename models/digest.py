"""The daily digest (每日汇总): which notices wait for a digest, and how a digest is grouped.

The policy's `delivery:` (`DeliveryRule`) chooses per recipient kind: `each` (one email per
notice, the default) or `digest`, and lists of departments and leaders override that choice
per recipient (`delivery_decision`). Under `digest` the pass records the notice as always but
sends no email of its own: `held_entries` turns it into `DigestEntry` rows, one per
digest recipient (`department:<id>` for a department's contacts, `leader:<email>` for one
leader). A separate set-based step (`tasks.digest.compose_digests`, at the end of a pass)
claims every entry not yet in a digest and composes one digest per recipient
(`group_digests`): each item once, each of its check-ins once with what is due.

A digest's business key is `digest:<date>:<recipient>:<n>` with `n` the smallest notice id it
carries: the entries it claims are claimed by no other digest, so two composers (shards
finishing together) never make the same key, and a re-run finds nothing to claim.
Notices recorded after the day's digest went out (a `supervise-item` run triggered by an
event) wait for the next pass, normally the next day's: one digest per recipient per day.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator
from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IntPK, JsonList, Timestamp
from models.catch_up import HELD

__all__ = [
    "DEPARTMENT_KINDS",
    "LEADER_KINDS",
    "RETURNED",
    "DeliveryDecision",
    "DeliveryRule",
    "DigestEntry",
    "DigestLine",
    "DigestPlan",
    "EntryFacts",
    "HeldEntry",
    "delivery_decision",
    "department_recipient",
    "digest_key",
    "group_digests",
    "held_entries",
    "leader_key",
    "leader_recipient",
]

Delivery = Literal["each", "digest"]

DEPARTMENT_KINDS = ("request", "reminder", "returned")
"""Notices a department's digest gathers: requests, reminders and returns (退回, recorded as
a `returned` notice only when held for a digest; under `each` a return keeps its email and
records no notice). Assignments and receipts stay single: they carry one event's whole text."""

RETURNED = "returned"

LEADER_KINDS = ("escalation",)
"""Notices a leader's digest gathers (分管领导, 主要负责人 and 督查室 alike; an escalation to
the contacts alone goes to the department's digest)."""

_CONTACT = "contact"


class DeliveryRule(BaseModel):
    """How notices reach their recipients (`delivery:` in the policy).

    `departments`: requests and reminders to a department's contacts; `leaders`: escalations
    to leaders (分管领导, 主要负责人, 督查室). `each` sends one email per notice (today's
    behaviour, the default), `digest` one digest per recipient per day.

    Per recipient, the lists override the kind's choice: `digest_departments` /
    `each_departments` name departments (canonical names; the CLI resolves aliases against
    the directory, `models.policy.resolve_delivery`), `digest_leaders` / `each_leaders` name
    leaders by email address (any case) or by name. A name in both lists of a kind is refused.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    departments: Delivery = "each"
    leaders: Delivery = "each"
    digest_departments: tuple[str, ...] = ()
    each_departments: tuple[str, ...] = ()
    digest_leaders: tuple[str, ...] = ()
    each_leaders: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _no_name_twice(self) -> DeliveryRule:
        for kind, digest, each in (
            ("departments", self.digest_departments, self.each_departments),
            ("leaders", self.digest_leaders, self.each_leaders),
        ):
            both = [name for name in digest if leader_key(name) in {leader_key(n) for n in each}]
            if both:
                raise ValueError(
                    f"“{both[0]}”同时列在 digest_{kind} 和 each_{kind} 中，只能选一种发送方式"
                )
        return self

    @property
    def all_each(self) -> bool:
        """True when no recipient gets a digest (nothing is held, nothing is written)."""
        return (
            self.departments == "each"
            and self.leaders == "each"
            and not self.digest_departments
            and not self.digest_leaders
        )

    def for_department(self, name: str) -> Delivery:
        """The delivery of department `name`'s notices (its override, else `departments`)."""
        if name and name in self.digest_departments:
            return "digest"
        if name and name in self.each_departments:
            return "each"
        return self.departments

    def for_leader(self, name: str, email: str) -> Delivery:
        """The delivery of escalations to the leader `name` <`email`> (override by email,
        then by name, else `leaders`)."""
        keys = {leader_key(email)} | ({name.strip()} if name.strip() else set())
        if keys & {leader_key(n) for n in self.digest_leaders}:
            return "digest"
        if keys & {leader_key(n) for n in self.each_leaders}:
            return "each"
        return self.leaders


def leader_key(text: str) -> str:
    """A leader override's comparison form: an address in lower case, a name stripped."""
    text = text.strip()
    return text.lower() if "@" in text else text


class DigestEntry(Base):
    """One notice waiting for (`digest_key` NULL) or carried by a digest to one recipient.

    `recipient` is `department:<id>` or `leader:<email>`; `addresses` and `names` are the
    digest's To and greeting; `attachments` are the notice's files (a 督办单) that the digest
    carries instead of its email. A notice goes to a recipient once (`uq_digest_entry`).
    """

    __tablename__ = "digest_entry"
    __table_args__ = (
        UniqueConstraint("notice_id", "recipient", name="uq_digest_entry"),
        Index("ix_digest_entry_waiting", "digest_key", "id"),
    )

    id: Mapped[IntPK]
    notice_id: Mapped[int] = mapped_column(ForeignKey("notice.id", ondelete="CASCADE"))
    recipient: Mapped[str] = mapped_column(String(200))
    addresses: Mapped[JsonList]
    names: Mapped[JsonList]
    attachments: Mapped[JsonList]
    day: Mapped[date] = mapped_column(Date)
    digest_key: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[Timestamp]


def department_recipient(department_id: int) -> str:
    return f"department:{department_id}"


def leader_recipient(email: str) -> str:
    return f"leader:{email.strip().lower()}"


@dataclass(frozen=True)
class HeldEntry:
    """A `DigestEntry` to insert for a notice (by its key, as the notice ids come later)."""

    notice_key: str
    recipient: str
    addresses: tuple[str, ...]
    names: tuple[str, ...]


def _people(recipients: Sequence[Any]) -> list[tuple[str, str, str]]:
    """`(role, name, email)` of the recipients with an address the catch-up cap did not hold."""
    people: list[tuple[str, str, str]] = []
    for recipient in recipients:
        if isinstance(recipient, str):
            if recipient:
                people.append((_CONTACT, "", recipient))
            continue
        if not isinstance(recipient, Mapping) or recipient.get(HELD):
            continue
        email = str(recipient.get("email") or "")
        if email:
            role = str(recipient.get("role") or _CONTACT)
            people.append((role, str(recipient.get("name") or ""), email))
    return people


@dataclass(frozen=True)
class DeliveryDecision:
    """How one notice is delivered: its digest `entries`, whether it keeps its own email
    (`single`), and the addresses that email leaves out (`held`: they get the digest)."""

    entries: tuple[HeldEntry, ...] = ()
    single: bool = True
    held: frozenset[str] = frozenset()


def delivery_decision(
    *,
    key: str,
    kind: str,
    department_id: int | None,
    recipients: Sequence[Any],
    rule: DeliveryRule,
    department_name: str = "",
) -> DeliveryDecision:
    """How the notice `key` reaches its recipients under `rule`, per recipient. Pure.

    A request, reminder or return goes to its department's digest when that department gets
    digests (`rule.for_department`). An escalation with leaders among its recipients (分管领导,
    主要负责人, 督查室): each leader on a digest (`rule.for_leader`) gets it in their own
    digest. When every leader is on a digest the notice has no email of its own, and its
    department's contacts (the Cc of the single email) see it in their department's digest
    when their department gets digests (else the Cc is dropped). When some leader keeps
    single emails, the email goes to them with the contacts in Cc, and leaves out the leaders
    on a digest (`held`). An escalation to the contacts alone (the ladder's first rung) is
    a department notice.
    """
    if department_id is None:
        return DeliveryDecision()
    people = _people(recipients)
    contacts = [(name, email) for role, name, email in people if role == _CONTACT]
    leaders = [(name, email) for role, name, email in people if role != _CONTACT]
    department = department_recipient(department_id)
    departments_digest = rule.for_department(department_name) == "digest" and bool(contacts)
    if kind in DEPARTMENT_KINDS or (kind in LEADER_KINDS and not leaders):
        if departments_digest:
            return DeliveryDecision(entries=(_entry(key, department, contacts),), single=False)
        return DeliveryDecision()
    if kind not in LEADER_KINDS:
        return DeliveryDecision()
    entries: list[HeldEntry] = []
    held: set[str] = set()
    single = False
    for name, email in leaders:
        if rule.for_leader(name, email) == "each":
            single = True
            continue
        recipient = leader_recipient(email)
        held.add(email)
        if all(entry.recipient != recipient for entry in entries):
            entries.append(_entry(key, recipient, [(name, email)]))
    if single:
        return DeliveryDecision(entries=tuple(entries), single=True, held=frozenset(held))
    if departments_digest:
        entries.append(_entry(key, department, contacts))
    return DeliveryDecision(entries=tuple(entries), single=False)


def held_entries(
    *,
    key: str,
    kind: str,
    department_id: int | None,
    recipients: Sequence[Any],
    rule: DeliveryRule,
    department_name: str = "",
) -> list[HeldEntry]:
    """The digest entries of one notice under `rule` (`delivery_decision`); empty: every
    recipient keeps the notice's own email."""
    return list(
        delivery_decision(
            key=key,
            kind=kind,
            department_id=department_id,
            recipients=recipients,
            rule=rule,
            department_name=department_name,
        ).entries
    )


def _entry(key: str, recipient: str, people: Sequence[tuple[str, str]]) -> HeldEntry:
    addresses = tuple(dict.fromkeys(email for _, email in people))
    names = tuple(dict.fromkeys(name for name, _ in people if name))
    return HeldEntry(notice_key=key, recipient=recipient, addresses=addresses, names=names)


@dataclass(frozen=True)
class EntryFacts:
    """What grouping needs of one claimed entry and its notice."""

    entry_id: int
    recipient: str
    notice_id: int
    kind: str
    level: int
    item_id: int
    department_id: int
    checkin_id: int | None
    due_date: date | None
    item_order: tuple[Any, ...] = ()
    reason: str = ""


@dataclass
class DigestLine:
    """One check-in (or an item-level notice) in a digest: what is due, once.

    `kinds` are the notice kinds that fell on it (a request and a reminder on one check-in
    make one line); `level` the highest escalation level among them (0: none); `reason`
    the office's reason of its latest return (退回理由, "" when it was not returned).
    """

    item_id: int
    department_id: int
    checkin_id: int | None
    due_date: date | None
    kinds: list[str] = field(default_factory=list)
    level: int = 0
    reason: str = ""


@dataclass
class DigestPlan:
    """One digest to compose: its key, recipient, the entries it carries and its items in
    order (each item once, its lines by due date)."""

    key: str
    recipient: str
    day: date
    entry_ids: list[int]
    notice_ids: list[int]
    items: list[tuple[int, list[DigestLine]]]


def digest_key(day: date, recipient: str, first_notice_id: int) -> str:
    """`digest:<date>:<recipient>:<n>`, hashed below 200 characters for a long address."""
    key = f"digest:{day.isoformat()}:{recipient}:{first_notice_id}"
    if len(key) <= 200:
        return key
    digest = hashlib.sha256(recipient.encode()).hexdigest()
    return f"digest:{day.isoformat()}:sha256:{digest}:{first_notice_id}"


def group_digests(entries: Sequence[EntryFacts], *, day: date) -> list[DigestPlan]:
    """One digest per recipient of `entries`, in recipient order: its items in `item_order`
    (then id) order, each item once; within an item one line per check-in (by due date, then
    id) gathering the kinds and the highest level of its notices, and the reason of its
    latest return. Pure."""
    by_recipient: defaultdict[str, list[EntryFacts]] = defaultdict(list)
    for entry in entries:
        by_recipient[entry.recipient].append(entry)
    plans: list[DigestPlan] = []
    for recipient in sorted(by_recipient):
        mine = by_recipient[recipient]
        orders: dict[int, tuple[Any, ...]] = {}
        lines: dict[tuple[int, int, int | None], DigestLine] = {}
        for entry in sorted(mine, key=lambda e: e.notice_id):
            orders.setdefault(entry.item_id, entry.item_order)
            slot = (entry.item_id, entry.department_id, entry.checkin_id)
            line = lines.get(slot)
            if line is None:
                line = lines[slot] = DigestLine(
                    entry.item_id, entry.department_id, entry.checkin_id, entry.due_date
                )
            if entry.kind not in line.kinds:
                line.kinds.append(entry.kind)
            line.level = max(line.level, entry.level)
            if entry.kind == RETURNED:
                line.reason = entry.reason  # returned twice: the latest return's reason
        per_item: defaultdict[int, list[DigestLine]] = defaultdict(list)
        for line in lines.values():
            per_item[line.item_id].append(line)
        items = [
            (
                item_id,
                sorted(
                    per_item[item_id],
                    key=lambda line: (
                        line.due_date or date.max,
                        line.department_id,
                        line.checkin_id or 0,
                    ),
                ),
            )
            for item_id in sorted(per_item, key=lambda item_id: (orders[item_id], item_id))
        ]
        notice_ids = sorted({entry.notice_id for entry in mine})
        plans.append(
            DigestPlan(
                key=digest_key(day, recipient, notice_ids[0]),
                recipient=recipient,
                day=day,
                entry_ids=sorted(entry.entry_id for entry in mine),
                notice_ids=notice_ids,
                items=items,
            )
        )
    return plans
