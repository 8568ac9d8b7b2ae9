"""The inbox against a real Prefect server and a real `duban worker`, on SQLite and PostgreSQL.

`duban deploy` applies prefect.yaml; a `duban worker` runs the `inbox-decision` runs the sync
creates. An extension request appears as a run waiting for input (suspended: no process
held) with its name, tags and form; resuming it through the API applies the decision once,
with its email; a deleted or expired run is re-created by the next sync with nothing lost or
doubled; a decision taken by the CLI ends the waiting run. The deployments' automations
are disabled so that only the test's own syncs create runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.exceptions import PrefectHTTPStatusError
from prefect.flow_runs import aresume_flow_run
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Failed
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from models import clock
from models.attachments import AttachmentLimits, judge_file
from models.completion import CompletionRequest, ItemClosure
from models.db import make_sessionmaker, transaction
from models.forms import ExtensionRequest, SubmissionForm
from models.inbox import INBOX_TAG
from models.outbox import DomainEvent, OutboxMessage
from models.settings import Settings, get_settings
from models.supervision import Checkin, CheckinReview, Extension, Submission
from models.vocabulary import ExtensionDecision, SelfStatusValue
from tasks.attachments import NewAttachment, store_attachments
from tasks.closure import request_completion
from tasks.inbox_runs import sync_inbox
from tasks.submissions import record_submission
from tests import attachment_files
from tests.faults.workers import DUBAN, deploy, duban_env, stop_worker
from tests.portal_rows import CheckinRows, make_checkin
from tests.prefect_server import PrefectServer, start_prefect_server

pytestmark = [pytest.mark.prefect, pytest.mark.slow]
DEADLINE = 180.0
REQUESTED = date(2021, 10, 15)
DEPLOYED: set[str] = set()


@pytest.fixture(scope="module")
def prefect_server(
    tmp_path_factory: pytest.TempPathFactory, own_migrated_engine: Engine
) -> Iterator[PrefectServer]:
    """A Prefect server subprocess (SQLite) per database of the module: one server serves
    one duban database, as deployed (decision keys such as `extension-1` restart in each
    fresh database, and a server that saw another database's would hold its runs)."""
    server = start_prefect_server(tmp_path_factory.mktemp("inbox-prefect"))
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Inbox:
    """The server, the app database the worker uses, and the worker's log."""

    server: PrefectServer
    engine: Engine
    env: dict[str, str]
    log: Path

    @property
    def sessions(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.engine)


def _disable_automations(server: PrefectServer) -> None:
    response = server.api("POST", "/automations/filter", json={}, timeout=10)
    response.raise_for_status()
    for automation in response.json():
        patched = server.api(
            "PATCH", f"/automations/{automation['id']}", json={"enabled": False}, timeout=10
        )
        assert patched.status_code == 204, patched.text


def _start_worker_without_limit(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`duban worker` without `--limit`: a limited Prefect worker dies when a run is resumed
    before its suspended process has exited (its slot is still held; see docs/inbox.md)."""
    with log_path.open("ab") as log:
        return subprocess.Popen(  # noqa: S603
            [DUBAN, "worker"],
            env={**env, "PREFECT_LOGGING_LEVEL": "INFO"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture(scope="module")
def inbox(
    prefect_server: PrefectServer,
    own_migrated_engine: Engine,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Inbox]:
    """`duban deploy` (once per server) and a `duban worker` on the parametrised database."""
    workdir = tmp_path_factory.mktemp("inbox-worker")
    env = duban_env(prefect_server, own_migrated_engine.url.render_as_string(False), workdir)
    if prefect_server.api_url not in DEPLOYED:
        deploy(env, 1, zombie_after=600)
        _disable_automations(prefect_server)
        DEPLOYED.add(prefect_server.api_url)
    log = workdir / "worker.log"
    worker = _start_worker_without_limit(env, log)
    try:
        yield Inbox(server=prefect_server, engine=own_migrated_engine, env=env, log=log)
    finally:
        stop_worker(worker)


@pytest.fixture
async def api(inbox: Inbox, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Inbox]:
    """This process's Prefect client and settings pointed at the server and the database."""
    monkeypatch.setenv("DUBAN_DATABASE_URL", inbox.env["DUBAN_DATABASE_URL"])
    get_settings.cache_clear()
    with temporary_settings(updates={PREFECT_API_URL: inbox.server.api_url}):
        yield inbox
    get_settings.cache_clear()


@dataclass(frozen=True)
class Request:
    plan_id: int
    checkin_id: int
    extension_id: int
    email: str
    department: str


def _report(
    session: Session,
    rows: CheckinRows,
    status: SelfStatusValue,
    extension: ExtensionRequest | None,
) -> Submission:
    """The department's report through the form's path: 120 of the 200 场次 target."""
    return record_submission(
        session=session,
        checkin_id=rows.checkin.id,
        department_id=rows.department.id,
        form=SubmissionForm(
            status=status,
            narrative="已举办学术交流活动120场次。",
            values={str(rows.targets[0].id): 120},
            extension=extension,
        ),
        source="form",
        now=clock.now(),
    )


def _request_extension(inbox: Inbox) -> Request:
    """A department's report (120 of 200 场次) that asks to move its due date to 10-15."""
    with transaction(inbox.sessions) as session:
        rows = make_checkin(session)
        _report(
            session,
            rows,
            SelfStatusValue.AT_RISK,
            ExtensionRequest(new_date=REQUESTED, reason="场地改造，活动顺延。"),
        )
        extension = session.scalars(
            select(Extension).where(Extension.checkin_id == rows.checkin.id)
        ).one()
        return Request(
            plan_id=rows.item.plan_id,
            checkin_id=rows.checkin.id,
            extension_id=extension.id,
            email=rows.department.contact_emails[0],
            department=rows.department.name,
        )


# A read of the test server's API: the server runs on SQLite beside a worker and the test,
# and on a loaded CI machine one answer once took over 10 s (httpx.ReadTimeout).
READ_TIMEOUT = 60.0


def _get(inbox: Inbox, path: str) -> Any:
    response = inbox.server.api("GET", path, timeout=READ_TIMEOUT)
    response.raise_for_status()
    return response.json()


def _inbox_runs(inbox: Inbox, plan_id: int) -> list[dict[str, Any]]:
    response = inbox.server.api(
        "POST",
        "/flow_runs/filter",
        json={"flow_runs": {"tags": {"all_": [INBOX_TAG, f"plan:{plan_id}"]}}},
        timeout=READ_TIMEOUT,
    )
    response.raise_for_status()
    runs: list[dict[str, Any]] = response.json()
    return runs


def _wait_for_state(inbox: Inbox, run_id: UUID | str, *types: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = _get(inbox, f"/flow_runs/{run_id}")
        if run["state_type"] in types:
            return run
        time.sleep(0.5)
    tail = inbox.log.read_text(errors="replace")[-3000:] if inbox.log.exists() else ""
    raise AssertionError(f"run {run_id} stayed {run.get('state_type')}, not {types}\n{tail}")


async def _sync(inbox: Inbox, plan_id: int) -> tuple[int, int, int]:
    result = await sync_inbox(sessions=inbox.sessions, plan_id=plan_id, now=clock.now())
    return result.pending, result.created, result.cancelled


def _only_waiting_run(inbox: Inbox, plan_id: int) -> dict[str, Any]:
    """The plan's one inbox run not ended, once it is suspended waiting for input."""
    runs = [
        run
        for run in _inbox_runs(inbox, plan_id)
        if run["state_type"] not in {"CANCELLED", "FAILED", "COMPLETED", "CRASHED"}
    ]
    assert len(runs) == 1, [(run["name"], run["state_type"]) for run in runs]
    return _wait_for_state(inbox, runs[0]["id"], "PAUSED")


async def _description(run: dict[str, Any]) -> str:
    """The form's description (saved just after the run turns Suspended: polled)."""
    keyset = run["state"]["state_details"]["run_input_keyset"]
    deadline = time.monotonic() + DEADLINE
    async with get_client() as client:
        while True:
            try:
                stored = await client.read_flow_run_input(UUID(run["id"]), keyset["description"])
                break
            except PrefectHTTPStatusError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)
    text: str = json.loads(stored) if stored.startswith('"') else stored
    return text


def _decision_rows(
    inbox: Inbox, request: Request
) -> tuple[Extension, Checkin, list[str], list[str]]:
    with inbox.sessions() as session:
        extension = session.get(Extension, request.extension_id)
        checkin = session.get(Checkin, request.checkin_id)
        mails = [
            message.subject
            for message in session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.key == f"extension-decision:{request.extension_id}"
                )
            )
            if message.to_addrs == [request.email]
        ]
        events = [
            event.type
            for event in session.scalars(
                select(DomainEvent)
                .where(DomainEvent.resource_id == f"duban.checkin.{request.checkin_id}")
                .order_by(DomainEvent.id)
            )
        ]
    assert extension is not None and checkin is not None
    return extension, checkin, mails, events


async def test_an_extension_request_waits_in_the_inbox_and_a_resume_decides_it_once(
    api: Inbox,
) -> None:
    request = _request_extension(api)
    assert await _sync(api, request.plan_id) == (1, 1, 0)
    run = _only_waiting_run(api, request.plan_id)

    assert run["name"] == f"待审批延期：第1项 搭建高水平科技开放交流平台—{request.department}"
    assert {INBOX_TAG, "inbox:extension", f"plan:{request.plan_id}"} <= set(run["tags"])
    assert run["state_name"] == "Suspended"
    assert run["parameters"] == {"kind": "extension", "decision_id": request.extension_id}
    text = await _description(run)
    for expected in (
        "### 待审批延期：第1项 搭建高水平科技开放交流平台",
        "- **申请延期至**：2021-10-15",
        "- **当前截止日期**：2021-09-30",
        "场地改造，活动顺延。",
        "已举办学术交流活动120场次。",
        "| 不少于200场次 | 120场次 | 200场次 |",
        "是否批准延期？",
    ):
        assert expected in text, text

    with pytest.raises(RuntimeError, match="Cannot resume"):
        await aresume_flow_run(UUID(run["id"]), run_input={"decision": "驳回", "reason": " "})
    assert _get(api, f"/flow_runs/{run['id']}")["state_type"] == "PAUSED"

    await aresume_flow_run(UUID(run["id"]), run_input={"decision": "批准", "by": "王芳"})
    done = _wait_for_state(api, run["id"], "COMPLETED", "FAILED", "CRASHED")
    assert (done["state_type"], done["state_name"]) == ("COMPLETED", "已处理"), done["state"]

    extension, checkin, mails, events = _decision_rows(api, request)
    assert (extension.decision, extension.decided_by) == (ExtensionDecision.APPROVED, "王芳")
    assert (checkin.due_date, checkin.original_due_date) == (REQUESTED, date(2021, 9, 30))
    assert len(mails) == 1 and "已批准" in mails[0]
    assert events.count("duban.checkin.extended") == 1
    assert await _sync(api, request.plan_id) == (0, 0, 0)


async def test_a_deleted_or_expired_waiting_run_is_recreated_and_decided_once(api: Inbox) -> None:
    request = _request_extension(api)
    await _sync(api, request.plan_id)
    first = _only_waiting_run(api, request.plan_id)
    async with get_client() as client:
        await client.delete_flow_run(UUID(first["id"]))

    assert await _sync(api, request.plan_id) == (1, 1, 0)
    second = _only_waiting_run(api, request.plan_id)
    assert second["id"] != first["id"] and second["name"] == first["name"]
    async with get_client() as client:  # what the server's pause-expiry service does
        await client.set_flow_run_state(
            UUID(second["id"]), Failed(message="The flow was paused and never resumed."), force=True
        )

    assert await _sync(api, request.plan_id) == (1, 1, 0)
    assert await _sync(api, request.plan_id) == (1, 0, 0)
    third_run = _only_waiting_run(api, request.plan_id)
    assert third_run["id"] not in {first["id"], second["id"]}
    await aresume_flow_run(
        UUID(third_run["id"]), run_input={"decision": "驳回", "reason": "理由不充分，请按期报送。"}
    )
    done = _wait_for_state(api, third_run["id"], "COMPLETED", "FAILED", "CRASHED")
    assert done["state_name"] == "已处理", done["state"]

    extension, checkin, mails, events = _decision_rows(api, request)
    assert extension.decision == ExtensionDecision.REJECTED
    assert checkin.due_date == date(2021, 9, 30)
    assert len(mails) == 1 and "未批准" in mails[0]
    assert events.count("duban.checkin.extension_rejected") == 1
    assert "duban.checkin.extended" not in events
    assert await _sync(api, request.plan_id) == (0, 0, 0)


async def test_a_decision_taken_elsewhere_ends_the_waiting_run(api: Inbox) -> None:
    by_cli = _request_extension(api)
    await _sync(api, by_cli.plan_id)
    waiting = _only_waiting_run(api, by_cli.plan_id)
    decided = subprocess.run(  # noqa: S603
        [DUBAN, "extension", "reject", str(by_cli.extension_id), "--reason", "材料不全"],
        env=api.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert decided.returncode == 0, decided.stdout + decided.stderr
    assert await _sync(api, by_cli.plan_id) == (0, 0, 1)
    ended = _get(api, f"/flow_runs/{waiting['id']}")
    assert (ended["state_type"], ended["state_name"]) == ("CANCELLED", "已撤销")
    assert "已在别处处理" in ended["state"]["message"]

    raced = _request_extension(api)
    await _sync(api, raced.plan_id)
    run = _only_waiting_run(api, raced.plan_id)
    cli = subprocess.run(  # noqa: S603
        [DUBAN, "extension", "approve", str(raced.extension_id)],
        env=api.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    await aresume_flow_run(UUID(run["id"]), run_input={"decision": "驳回", "reason": "晚到的决定"})
    done = _wait_for_state(api, run["id"], "COMPLETED", "FAILED", "CRASHED")
    assert (done["state_type"], done["state_name"]) == ("COMPLETED", "已在别处处理"), done["state"]
    extension, _, mails, events = _decision_rows(api, raced)
    assert (extension.decision, extension.decided_by) == (ExtensionDecision.APPROVED, "督查室")
    assert len(mails) == 1 and "已批准" in mails[0]
    assert "duban.checkin.extension_rejected" not in events


async def test_a_report_waits_for_review_and_a_return_reaches_the_department(api: Inbox) -> None:
    with transaction(api.sessions) as session:
        rows = make_checkin(session)
        submission = _report(session, rows, SelfStatusValue.ON_TRACK, None)
        plan_id, checkin_id, submission_id = rows.item.plan_id, rows.checkin.id, submission.id
        email, department = rows.department.contact_emails[0], rows.department.name
    assert await _sync(api, plan_id) == (1, 1, 0)
    run = _only_waiting_run(api, plan_id)
    assert run["name"] == f"待审核：第1项 搭建高水平科技开放交流平台—{department}"
    assert {INBOX_TAG, "inbox:report_review"} <= set(run["tags"])
    assert run["parameters"] == {"kind": "report_review", "decision_id": submission_id}
    text = await _description(run)
    for expected in (
        "已举办学术交流活动120场次。",
        "| 不少于200场次 | 120场次 | 200场次 |",
        "是否通过",
    ):
        assert expected in text, text

    await aresume_flow_run(
        UUID(run["id"]), run_input={"decision": "退回", "reason": "太简略，请补充活动清单。"}
    )
    done = _wait_for_state(api, run["id"], "COMPLETED", "FAILED", "CRASHED")
    assert (done["state_type"], done["state_name"]) == ("COMPLETED", "已处理"), done["state"]
    with api.sessions() as session:
        reviews = list(
            session.scalars(select(CheckinReview).where(CheckinReview.checkin_id == checkin_id))
        )
        checkin = session.get(Checkin, checkin_id)
        mails = list(
            session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.kind == "returned", OutboxMessage.to_addrs.is_not(None)
                )
            )
        )
    assert [(r.decision, r.reason, r.submission_id) for r in reviews] == [
        ("returned", "太简略，请补充活动清单。", submission_id)
    ]
    assert checkin is not None and (checkin.status, checkin.returns) == ("pending", 1)
    to_department = [mail for mail in mails if mail.to_addrs == [email]]
    assert len(to_department) == 1 and "太简略，请补充活动清单。" in to_department[0].text_body
    assert await _sync(api, plan_id) == (0, 0, 0)


def _upload(name: str, data: bytes) -> NewAttachment:
    judged = judge_file(name, io.BytesIO(data), size=len(data), limits=AttachmentLimits())
    return NewAttachment(
        judged=judged,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        spool=io.BytesIO(data),
    )


async def test_a_completion_request_waits_with_its_evidence_and_approval_closes_the_item(
    api: Inbox,
) -> None:
    with transaction(api.sessions) as session:
        rows = make_checkin(session)
        request = request_completion(
            session=session,
            item_id=rows.item.id,
            department_id=rows.department.id,
            summary="全年举办学术交流活动212场次，任务完成。",
            now=clock.now(),
        )
        store_attachments(
            session=session,
            files=[_upload("验收材料.pdf", attachment_files.pdf())],
            department_id=rows.department.id,
            now=clock.now(),
            settings=Settings(secret_key="i" * 40, _env_file=None),
            completion_request_id=request.id,
        )
        plan_id, item_id, request_id = rows.item.plan_id, rows.item.id, request.id
        checkin_id, email = rows.checkin.id, rows.department.contact_emails[0]
        department = rows.department.name
    assert await _sync(api, plan_id) == (1, 1, 0)
    run = _only_waiting_run(api, plan_id)
    assert run["name"] == f"待销号：第1项 搭建高水平科技开放交流平台—{department}"
    assert "inbox:completion" in run["tags"]
    assert run["parameters"] == {"kind": "completion", "decision_id": request_id}
    text = await _description(run)
    for expected in (
        "全年举办学术交流活动212场次，任务完成。",
        "附件：验收材料.pdf",
        "是否批准办结",
    ):
        assert expected in text, text

    await aresume_flow_run(UUID(run["id"]), run_input={"decision": "批准", "by": "赵敏"})
    done = _wait_for_state(api, run["id"], "COMPLETED", "FAILED", "CRASHED")
    assert (done["state_type"], done["state_name"]) == ("COMPLETED", "已处理"), done["state"]
    with api.sessions() as session:
        stored = session.get(CompletionRequest, request_id)
        closures = list(session.scalars(select(ItemClosure).where(ItemClosure.item_id == item_id)))
        checkin = session.get(Checkin, checkin_id)
        mails = list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "closure")))
    assert stored is not None and (stored.decision, stored.decided_by) == ("approved", "赵敏")
    assert [closure.completion_request_id for closure in closures] == [request_id]
    assert checkin is not None and checkin.status == "cancelled"
    closed = [
        mail
        for mail in mails
        if mail.key.startswith(f"closure:{closures[0].id}:closed") and email in mail.to_addrs
    ]
    assert len(closed) == 1
    assert await _sync(api, plan_id) == (0, 0, 0)
