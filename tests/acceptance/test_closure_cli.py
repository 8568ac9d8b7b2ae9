"""`duban item completion list|approve|reject` and `duban item close|reopen`, end to end."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from duban.runtime import open_store
from models.completion import CompletionRequest, ItemClosure
from models.db import transaction
from models.outbox import DomainEvent, OutboxMessage
from models.plan import Item
from models.settings import Settings
from models.supervision import Checkin
from models.vocabulary import CheckinStatus, CompletionDecision
from tasks.closure import request_completion
from tests.acceptance.test_extension_cli import run
from tests.integration.test_reconcile import started_plan


@pytest.mark.slow
def test_supervisor_decides_completion_requests_and_closes_and_reopens(tmp_path: Path) -> None:
    assert run(tmp_path, "init").returncode == 0
    store = open_store(Settings(data_dir=tmp_path, _env_file=None))
    with transaction(store.sessions) as session:
        built, lead, _support = started_plan(session)
        item_id = built.items[0].id
        first = request_completion(
            session=session,
            item_id=item_id,
            department_id=lead,
            summary="平台建成，全年活动212场次",
            now=datetime(2021, 9, 1, 2, 0, tzinfo=UTC),
        ).id

    listed = run(tmp_path, "item", "completion", "list")
    assert listed.returncode == 0, listed.stderr
    assert "平台建成，全年活动212场次" in listed.stdout and "共 1 条" in listed.stdout

    no_reason = run(tmp_path, "item", "completion", "reject", str(first))
    assert no_reason.returncode == 1
    assert "请填写驳回理由（--reason）" in no_reason.stderr
    assert "Traceback" not in no_reason.stderr
    rejected = run(tmp_path, "item", "completion", "reject", str(first), "--reason", "缺少佐证材料")
    assert rejected.returncode == 0, rejected.stderr
    assert "已驳回" in rejected.stdout
    twice = run(tmp_path, "item", "completion", "approve", str(first))
    assert twice.returncode == 1 and "已处理（已驳回）" in twice.stderr
    missing = run(tmp_path, "item", "completion", "approve", "999999")
    assert missing.returncode == 1 and "没有编号为 999999 的办结申请" in missing.stderr

    with transaction(store.sessions) as session:
        second = request_completion(
            session=session,
            item_id=item_id,
            department_id=lead,
            summary="补充佐证材料后再次申请",
            now=datetime(2021, 9, 10, 2, 0, tzinfo=UTC),
        ).id
    approved = run(tmp_path, "item", "completion", "approve", str(second), "--by", "王主任")
    assert approved.returncode == 0, approved.stderr
    assert f"任务 {item_id} 已销号（已办结）" in approved.stdout
    every = run(tmp_path, "item", "completion", "list", "--all")
    assert "已驳回：缺少佐证材料" in every.stdout and "已销号" in every.stdout
    assert "共 0 条" in run(tmp_path, "item", "completion", "list").stdout

    status = run(tmp_path, "status")
    assert status.returncode == 0, status.stderr
    assert "已办结" in status.stdout

    closed_again = run(tmp_path, "item", "close", str(item_id), "--reason", "重复")
    assert closed_again.returncode == 1 and "无需再次销号" in closed_again.stderr
    no_reopen_reason = run(tmp_path, "item", "reopen", str(item_id))
    assert no_reopen_reason.returncode == 1
    assert "请填写重新打开的理由（--reason）" in no_reopen_reason.stderr
    reopened = run(tmp_path, "item", "reopen", str(item_id), "--reason", "整改未到位")
    assert reopened.returncode == 0, reopened.stderr
    assert "已重新打开，恢复督办" in reopened.stdout
    no_close_reason = run(tmp_path, "item", "close", str(item_id))
    assert no_close_reason.returncode == 1 and "请填写销号理由" in no_close_reason.stderr
    closed = run(tmp_path, "item", "close", str(item_id), "--reason", "经党组会研究取消")
    assert closed.returncode == 0, closed.stderr

    with store.sessions() as session:
        rows = session.execute(select(CompletionRequest.id, CompletionRequest.decision))
        decisions = dict(rows.tuples().all())
        closures = list(session.scalars(select(ItemClosure).order_by(ItemClosure.id)))
        item = session.get_one(Item, item_id)
        pending = session.scalar(
            select(func.count()).where(
                Checkin.item_id == item_id, Checkin.status == CheckinStatus.PENDING
            )
        )
        types = list(
            session.scalars(select(DomainEvent.type).where(DomainEvent.type.like("duban.item.%")))
        )
        closure_mails = session.scalar(select(func.count()).where(OutboxMessage.kind == "closure"))
    assert decisions == {first: CompletionDecision.REJECTED, second: CompletionDecision.APPROVED}
    assert [(c.completion_request_id, c.reopen_reason) for c in closures] == [
        (second, "整改未到位"),
        (None, ""),
    ]
    assert closures[1].reason == "经党组会研究取消"
    assert item.closed_at is not None and pending == 0
    for expected in (
        "duban.item.completion_requested",
        "duban.item.completion_rejected",
        "duban.item.closed",
        "duban.item.reopened",
    ):
        assert expected in types
    assert closure_mails == 6, "requested ×2, rejected, approved, reopened, closed"
    store.engine.dispose()
