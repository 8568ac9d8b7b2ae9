"""The digest hook in the real flows (Prefect test server, SQLite): a batch pass in chunks
composes one digest per department at its end; a `supervise-item` run later that day
records its notice for the next pass's digest and composes none itself."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime

import pytest
from sqlalchemy import Engine, select

from flows.supervise import supervise_item, supervise_plan
from models.calendar import default_calendar
from models.clock import resolve
from models.db import make_sessionmaker, transaction
from models.digest import DeliveryRule, DigestEntry
from models.outbox import OutboxMessage
from models.policy import default_policy
from models.settings import get_settings
from models.supervision import Notice
from tasks.assignment import start_supervision
from tests.builders import make_department, make_plan

pytestmark = [
    pytest.mark.prefect,
    pytest.mark.slow,
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in.*socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]


@pytest.fixture
def flow_db(own_migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A database of its own: the flows commit (an office among them), and other modules
    (the instruction mail's Cc, for one) count the offices of the shared database."""
    migrated_engine = own_migrated_engine
    if migrated_engine.dialect.name != "sqlite":
        pytest.skip("flows are exercised on SQLite; storage is covered on both elsewhere")
    monkeypatch.setenv("DUBAN_DATABASE_URL", migrated_engine.url.render_as_string(False))
    monkeypatch.setenv("DUBAN_PASS_CHUNK_SIZE", "2")
    get_settings.cache_clear()
    yield migrated_engine
    get_settings.cache_clear()


def _started(engine: Engine) -> tuple[int, list[int], list[str]]:
    """Five items of two departments (0, 1, 0, 1, 0) with digests on, and their contacts."""
    with transaction(make_sessionmaker(engine)) as session:
        make_department(session, office=True)
        departments = [make_department(session, f"部门{uuid.uuid4().hex[:6]}") for _ in range(2)]
        built = make_plan(session, items=[(f"任务{n}", [departments[n % 2]], []) for n in range(5)])
        start_supervision(
            session=session,
            plan_id=built.plan.id,
            now=resolve(date(2021, 5, 24)),
            policy=default_policy().model_copy(
                update={"delivery": DeliveryRule(departments="digest")}
            ),
            calendar=default_calendar(),
        )
        return (
            built.plan.id,
            [item.id for item in built.items],
            [department.contact_emails[0] for department in departments],
        )


def _digests(engine: Engine, contacts: list[str]) -> dict[str, list[str]]:
    with make_sessionmaker(engine)() as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "digest"))
        return {
            contact: sorted(row.key for row in rows_ if row.to_addrs == [contact])
            for rows_ in [list(rows)]
            for contact in contacts
        }


async def test_a_batch_pass_in_chunks_composes_one_digest_per_department(
    flow_db: Engine, prefect_harness: None
) -> None:
    plan_id, item_ids, contacts = _started(flow_db)
    state = await supervise_plan(
        plan_id, as_of=resolve(date(2021, 6, 23)), batch=True, return_state=True
    )
    assert state.name == "Supervised"
    digests = _digests(flow_db, contacts)
    assert [len(keys) for keys in digests.values()] == [1, 1]
    with make_sessionmaker(flow_db)() as session:
        bodies = {
            row.to_addrs[0]: row.text_body
            for row in session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "digest"))
            if row.to_addrs[0] in contacts
        }
        singles = session.scalars(
            select(OutboxMessage.key).where(OutboxMessage.kind == "request")
        ).all()
    assert [bodies[contacts[0]].count(f" 任务{n}\n") for n in (0, 2, 4)] == [1, 1, 1]
    assert [bodies[contacts[1]].count(f" 任务{n}\n") for n in (1, 3)] == [1, 1]
    assert not [key for key in singles if any(f":{i}:" in key for i in item_ids)]

    again = await supervise_plan(
        plan_id, as_of=resolve(date(2021, 6, 23)), batch=True, return_state=True
    )
    assert again.name == "Supervised" and _digests(flow_db, contacts) == digests

    # An event-triggered supervise-item run on the due date's afternoon records item 0's
    # reminder (到期提醒) after nothing was reported; it composes no digest itself.
    late = datetime.fromisoformat("2021-06-30T16:00:00+08:00")
    state = await supervise_item(item_id=item_ids[0], as_of=late, return_state=True)
    assert state.is_completed()
    with make_sessionmaker(flow_db)() as session:
        waiting = session.scalars(
            select(DigestEntry)
            .join(Notice, Notice.id == DigestEntry.notice_id)
            .where(Notice.item_id == item_ids[0], DigestEntry.digest_key.is_(None))
        ).all()
    assert len(waiting) == 1  # the 30 June reminder waits for the next pass
    assert _digests(flow_db, contacts) == digests
    await supervise_plan(plan_id, as_of=resolve(date(2021, 7, 1)), batch=True, return_state=True)
    after = _digests(flow_db, contacts)
    assert [len(keys) for keys in after.values()] == [2, 2]
    assert all(key.startswith("digest:2021-07-01:") for key in after[contacts[0]][-1:])
