"""`duban instruct` end to end, as the supervision office records a paper instruction."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from duban.runtime import open_store
from models.clock import LOCAL_TZ
from models.db import transaction
from models.instruction import Instruction
from models.outbox import DomainEvent, OutboxMessage
from models.settings import Settings
from tests.builders import make_department
from tests.portal_rows import make_checkin

DUBAN = Path(sys.executable).with_name("duban")


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DUBAN_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    env.pop("DUBAN_DATABASE_URL", None)
    return subprocess.run(  # noqa: S603
        [str(DUBAN), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.mark.slow
def test_office_records_a_paper_instruction_once_and_bad_input_changes_nothing(
    tmp_path: Path,
) -> None:
    assert run(tmp_path, "init").returncode == 0
    store = open_store(Settings(data_dir=tmp_path, _env_file=None))
    with transaction(store.sessions) as session:
        rows = make_checkin(session)
        office = make_department(session, "督查室", office=True)
    item, department = str(rows.item.id), rows.department
    args = (
        "instruct",
        item,
        "--leader",
        department.leader_name,
        "--text",
        "抓紧推进，[b]年底前[/b]见效。",
    )

    first = run(tmp_path, *args, "--given-on", "2021-09-18", "--by", "王秘书")
    assert first.returncode == 0, first.stderr
    assert "已记录批示" in first.stdout and f"分管领导 {department.leader_name}" in first.stdout
    assert f"已通知：{department.name}、督查室" in first.stdout
    again = run(tmp_path, *args, "--given-on", "2021-09-18", "--by", "王秘书")
    assert again.returncode == 0 and "未重复记录" in again.stdout

    head = run(
        tmp_path, "instruct", item, "--leader", "李主席", "--role", "head", "--text", "同意。"
    )
    assert head.returncode == 0, head.stderr
    assert "主要负责人 李主席" in head.stdout

    refused = [
        (("instruct", item, "--leader", "张三", "--text", "  "), "批示内容不能为空"),
        (("instruct", item, "--leader", "张三", "--text", "字" * 2001), "不能超过2000字"),
        (("instruct", "999999", "--leader", "张三", "--text", "抓紧"), "没有编号为 999999 的任务"),
        (
            ("instruct", item, "--leader", "张三", "--text", "抓紧", "--given-on", "9月"),
            "YYYY-MM-DD",
        ),
        (
            ("instruct", item, "--leader", "张三", "--text", "抓紧", "--given-on", "2099-01-01"),
            "晚于今天",
        ),
        (("instruct", item, "--leader", "张三", "--text", "抓紧", "--role", "boss"), "--role"),
        (("instruct", item, "--leader", "", "--text", "抓紧"), "批示领导的姓名"),
    ]
    for command, message in refused:
        result = run(tmp_path, *command)
        assert result.returncode == 1, (command, result.stdout)
        assert message in result.stderr and "Traceback" not in result.stderr

    listed = run(tmp_path, "instructions")
    assert listed.returncode == 0, listed.stderr
    assert "共 2 条" in listed.stdout and "督查室代录（书面批示）" in listed.stdout
    assert "[b]年底前[/b]" in listed.stdout and "待落实" in listed.stdout
    assert "共 2 条" in run(tmp_path, "instructions", "--open").stdout

    with store.sessions() as session:
        instructions = session.scalars(select(Instruction).order_by(Instruction.id)).all()
        events = session.scalar(
            select(func.count()).where(DomainEvent.type == "duban.item.instructed")
        )
        mails = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "instruction")
        ).all()
    assert len(instructions) == 2 and events == 2 and len(mails) == 2
    paper = instructions[0]
    assert (paper.source, paper.leader_role, paper.leader_department_id) == (
        "paper",
        "leader",
        department.id,
    )
    assert paper.text == "抓紧推进，[b]年底前[/b]见效。" and paper.recorded_by == "王秘书"
    assert paper.given_at == datetime(2021, 9, 18, 9, 0, tzinfo=LOCAL_TZ)
    assert (instructions[1].leader_role, instructions[1].leader_department_id) == ("head", None)
    assert mails[0].to_addrs == department.contact_emails
    assert mails[0].cc_addrs == office.contact_emails
    assert "督查室代录（书面批示）" in mails[0].text_body
    store.engine.dispose()
