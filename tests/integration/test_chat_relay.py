"""Escalations posted to 企业微信/钉钉/飞书 robots through the outbox, on SQLite and
PostgreSQL, against a loopback HTTPS receiver that checks each app's documented format."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from models.calendar import WorkCalendar
from models.clock import resolve
from models.db import make_sessionmaker, transaction
from models.directory import Department
from models.directory_file import load_directory_file
from models.outbox import OutboxMessage
from models.policy import default_policy
from models.settings import Settings
from models.vocabulary import Channel
from notifications.outbox import RetryPolicy
from notifications.relay import RelayOptions, relay_once
from tasks.assignment import start_supervision
from tasks.directory import upsert_directory
from tasks.reconcile import reconcile_items
from tests.builders import make_plan
from tests.integration.chat_receivers import RobotReceiver, RobotServer, self_signed
from tests.integration.relay_db import clear_outbox, relay_db_fixture  # noqa: F401 - fixture
from tests.integration.smtp_servers import ScriptedServer

CALENDAR = WorkCalendar()
POLICY = default_policy()
TITLE = "搭建**高水平**科技[开放](https://evil.example)交流<font color=red>平台</font>"
DING_SECRET = "SEC0123456789abcdef0123456789abcdef"
FEISHU_SECRET = "feishu0secret0key"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("robot-tls"))


@pytest.fixture
def receiver(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[RobotReceiver]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    with RobotServer(*certificate) as state:
        state.secrets = {"dingtoken01": DING_SECRET, "feishutoken01": FEISHU_SECRET}
        yield state


@pytest.fixture
def sessions(relay_db: tuple[str, Engine]) -> sessionmaker[Session]:
    clear_outbox(relay_db[1])
    return make_sessionmaker(relay_db[1])


def directory(tmp_path: Path, receiver: RobotReceiver, suffix: str) -> Path:
    path = tmp_path / "departments.yaml"
    path.write_text(
        f"""organisation: 测试科协
departments:
  - name: 办公室
    contact: {{name: 王敏, email: office@example.org}}
    supervision_office: true
    robots:
      - {{kind: 飞书, url: "{receiver.url("feishu", "feishutoken01")}", secret: {FEISHU_SECRET}}}
  - name: 学会部{suffix}
    contact: {{name: 陈晓, email: xuehui-{suffix}@example.org}}
    leader: {{name: 刘卫东, email: liu-{suffix}@example.org,
              robots: [{{kind: 钉钉, url: "{receiver.url("dingtalk", "dingtoken01")}",
                        secret: {DING_SECRET}}}]}}
    head: {{name: 赵志刚, email: zhao-{suffix}@example.org}}
    robots:
      - {{kind: 企业微信, url: "{receiver.url("wecom", "wecomtoken01")}"}}
""",
        encoding="utf-8",
    )
    return path


def overdue_plan(sessions: sessionmaker[Session], path: Path, suffix: str) -> tuple[int, int]:
    """A started plan whose one item's 06-30 work plan was never sent (its department from
    the directory file); returns (plan id, item id)."""
    with transaction(sessions) as session:
        upsert_directory(
            session=session, directory=load_directory_file(path), now=resolve(date(2021, 5, 20))
        )
        department = session.scalars(
            select(Department).where(Department.name == f"学会部{suffix}")
        ).one()
        built = make_plan(session, items=[(TITLE, [department], [])])
        start_supervision(
            session=session,
            plan_id=built.plan.id,
            now=resolve(date(2021, 5, 24)),
            policy=POLICY,
            calendar=CALENDAR,
        )
        return built.plan.id, built.items[0].id


def run_pass(sessions: sessionmaker[Session], plan_id: int, item_id: int, day: date) -> None:
    with transaction(sessions) as session:
        reconcile_items(
            session=session,
            plan_id=plan_id,
            item_ids=[item_id],
            as_of=resolve(day),
            policy=POLICY,
            calendar=CALENDAR,
        )


def chat_rows(sessions: sessionmaker[Session]) -> list[OutboxMessage]:
    with sessions() as session:
        return list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.channel != Channel.EMAIL)
                .order_by(OutboxMessage.key)
            )
        )


def settings_for(server: ScriptedServer) -> Settings:
    return Settings(
        smtp_port=server.port, smtp_timeout_seconds=5, mail_from_address="duban@example.org"
    )


FAST = RelayOptions(chat_interval_seconds=0)


async def test_escalations_reach_each_app_in_its_format_once(
    sessions: sessionmaker[Session], receiver: RobotReceiver, tmp_path: Path
) -> None:
    plan_id, item_id = overdue_plan(sessions, directory(tmp_path, receiver, "a"), "a")
    run_pass(sessions, plan_id, item_id, date(2021, 7, 7))
    run_pass(sessions, plan_id, item_id, date(2021, 7, 7))
    rows = chat_rows(sessions)
    # Catch-up on 07-07 sends levels 1-3: level 1 to the department's group (企业微信),
    # level 2 to the 分管领导's group (钉钉), level 3 to the office's group (飞书; the head
    # has no robot). The second pass writes nothing more.
    assert sorted((row.channel, row.key.rsplit(":", 2)[-2]) for row in rows) == [
        ("dingtalk", "2"),
        ("feishu", "3"),
        ("wecom", "1"),
    ]
    with ScriptedServer() as smtp:
        now = resolve(date(2021, 7, 7)) + timedelta(hours=1)
        result = await relay_once(
            sessions=sessions, settings=settings_for(smtp), now=now, options=FAST
        )
        again = await relay_once(
            sessions=sessions, settings=settings_for(smtp), now=now, options=FAST
        )
        emails = len(smtp.handler.deliveries)
    assert result.dead == 0 and result.retried == 0, result.errors
    # The 交办, levels 1-2, and level 3 twice: the head's own copy (their instruct link is
    # theirs alone) and the office's.
    assert result.sent == 3 + emails and emails == 5
    assert again.claimed == 0
    assert receiver.rejected == []
    by_app = {message.app: message for message in receiver.received}
    assert sorted(by_app) == ["dingtalk", "feishu", "wecom"] and len(receiver.received) == 3
    assert set(by_app["dingtalk"].query) == {"access_token", "timestamp", "sign"}
    assert {"timestamp", "sign"} <= set(by_app["feishu"].body)
    assert "timestamp" not in by_app["wecom"].query
    for message in receiver.received:
        # Plain text: the outside title arrives verbatim in a text message, never as markup,
        # and no link (no signed form link in a group).
        assert TITLE in message.text
        assert "学会部a" in message.text
        assert "https://" not in message.text.replace("https://evil.example", "")
        assert "token" not in message.text
    assert "第1级督办" in by_app["wecom"].text and "实施方案" in by_app["wecom"].text
    assert "截止日为2021-06-30" in by_app["wecom"].text
    # Levels 1 and 2 were due on 07-01 and 07-05 (a late catch-up), level 3 today.
    assert "补发" in by_app["wecom"].text and "补发" in by_app["dingtalk"].text
    assert "第3级督办" in by_app["feishu"].text and "补发" not in by_app["feishu"].text
    assert all(row.status == "sent" for row in chat_rows(sessions))


async def test_a_failing_robot_is_retried_then_dead_lettered_with_the_reason(
    sessions: sessionmaker[Session], receiver: RobotReceiver, tmp_path: Path
) -> None:
    plan_id, item_id = overdue_plan(sessions, directory(tmp_path, receiver, "b"), "b")
    run_pass(sessions, plan_id, item_id, date(2021, 7, 7))
    receiver.fail_with["wecomtoken01"] = 503
    receiver.secrets["dingtoken01"] = "SECanotherkeythanconfigured"
    options = RelayOptions(chat_interval_seconds=0, policy=RetryPolicy(max_attempts=2))
    now = resolve(date(2021, 7, 7)) + timedelta(hours=1)
    with ScriptedServer() as smtp:
        first = await relay_once(
            sessions=sessions, settings=settings_for(smtp), now=now, options=options
        )
        status = {
            row.channel: (row.status, row.attempts, row.last_error) for row in chat_rows(sessions)
        }
        later = await relay_once(
            sessions=sessions,
            settings=settings_for(smtp),
            now=now + timedelta(hours=3),
            options=options,
        )
    # 503 is worth retrying; a signature the app refuses (HTTP 200, errcode 310000) is
    # not: dead at once, with the app's answer. The 飞书 robot was fine.
    assert status[Channel.WECOM][:2] == ("pending", 1) and status[Channel.WECOM][2] == "HTTP 503"
    assert status[Channel.DINGTALK][0] == "dead" and "310000" in status[Channel.DINGTALK][2]
    assert status[Channel.FEISHU][0] == "sent", status
    assert first.retried == 1 and first.dead == 1
    assert later.claimed == 1 and later.dead == 1
    final = {row.channel: row for row in chat_rows(sessions)}
    assert final[Channel.WECOM].status == "dead"
    assert final[Channel.WECOM].last_error == "HTTP 503（已重试2次）"
    assert [message.app for message in receiver.received] == ["feishu"]


async def test_a_robot_removed_from_the_directory_is_a_dead_letter(
    sessions: sessionmaker[Session], receiver: RobotReceiver, tmp_path: Path
) -> None:
    plan_id, item_id = overdue_plan(sessions, directory(tmp_path, receiver, "c"), "c")
    run_pass(sessions, plan_id, item_id, date(2021, 7, 7))
    with transaction(sessions) as session:
        for department in session.scalars(
            select(Department).where(Department.name.in_(["学会部c", "办公室"]))
        ):
            department.robots = []
    with ScriptedServer() as smtp:
        await relay_once(
            sessions=sessions,
            settings=settings_for(smtp),
            now=resolve(date(2021, 7, 8)),
            options=FAST,
        )
    rows = chat_rows(sessions)
    assert [row.status for row in rows] == ["dead"] * 3
    assert all("已不在部门名录中" in row.last_error for row in rows)
    assert receiver.received == []
