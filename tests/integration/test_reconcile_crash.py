"""A pass killed half way (SIGKILL) and re-run finishes the job without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from models.calendar import default_calendar
from models.clock import resolve
from models.db import make_sessionmaker, transaction
from models.outbox import OutboxMessage
from models.policy import default_policy
from models.supervision import Notice
from tasks.assignment import start_supervision
from tasks.reconcile import reconcile_items
from tests.builders import make_department, make_plan

REPO = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent(
    """
    import sys
    from datetime import date
    from models.calendar import default_calendar
    from models.clock import resolve
    from models.db import make_engine, make_sessionmaker, transaction
    from models.policy import default_policy
    from tasks.reconcile import reconcile_items

    url, plan_id, *items = sys.argv[1:]
    sessions = make_sessionmaker(make_engine(url))
    for item_id in items:
        with transaction(sessions) as session:
            reconcile_items(session=session, plan_id=int(plan_id), item_ids=[int(item_id)],
                            as_of=resolve(date(2021, 7, 5)), policy=default_policy(),
                            calendar=default_calendar())
        print("done", item_id, flush=True)
        sys.stdin.readline()
    """
)


@pytest.mark.slow
def test_killed_pass_rerun_sends_each_notice_once(migrated_engine: Engine) -> None:
    if migrated_engine.dialect.name != "sqlite":
        pytest.skip("one backend suffices for the kill test; uniqueness is tested on both")
    sessions = make_sessionmaker(migrated_engine)
    with transaction(sessions) as session:
        make_department(session, office=True)
        depts = [make_department(session) for _ in range(2)]
        built = make_plan(session, items=[(f"任务{n}", depts, []) for n in range(6)])
        start_supervision(
            session=session,
            plan_id=built.plan.id,
            now=resolve(date(2021, 5, 24)),
            policy=default_policy(),
            calendar=default_calendar(),
        )
        plan_id, item_ids = built.plan.id, [item.id for item in built.items]
    url = migrated_engine.url.render_as_string(hide_password=False)
    worker = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", WORKER, url, str(plan_id), *map(str, item_ids)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdin is not None and worker.stdout is not None
    for _ in range(3):
        assert worker.stdout.readline().startswith("done")
        worker.stdin.write("\n")
        worker.stdin.flush()
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    worker.stdout.close()
    worker.stdin.close()
    with sessions() as session:
        partial = session.scalar(
            select(func.count()).select_from(Notice).where(Notice.item_id.in_(item_ids))
        )
    with transaction(sessions) as session:
        reconcile_items(
            session=session,
            plan_id=plan_id,
            item_ids=item_ids,
            as_of=resolve(date(2021, 7, 5)),
            policy=default_policy(),
            calendar=default_calendar(),
        )
    with sessions() as session:
        keys = list(session.scalars(select(Notice.key).where(Notice.item_id.in_(item_ids))))
        mails = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .join(Notice, Notice.id == OutboxMessage.notice_id)
            .where(Notice.item_id.in_(item_ids))
        )
    assert len(keys) == len(set(keys))
    per_item = len(keys) // len(item_ids)
    assert partial is not None and 0 < partial < len(keys)
    assert len(keys) == per_item * len(item_ids)
    assert sum(":escalation:" in key for key in keys) == 2 * 2 * len(item_ids)
    assert mails == len(keys)
