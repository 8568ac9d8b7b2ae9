"""Group robots: the directory entry, who gets what, the text, the keys (pure)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from models.directory import Department
from models.directory_file import load_directory_file
from models.errors import InputError
from models.plan import Item
from models.policy import SupervisionPolicy, default_policy
from models.robots import Robot, robot_rows, robot_token, robots_for
from models.supervision import Checkin, Notice
from models.vocabulary import Channel
from notifications.chat import (
    TEXT_LIMIT,
    chat_key,
    escalation_chat_messages,
    escalation_text,
    feishu_sign,
    mask_url,
    plain,
)

WECOM = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DING = "https://oapi.dingtalk.com/robot/send?access_token=abc123def456"
FEISHU = "https://open.feishu.cn/open-apis/bot/v2/hook/2d4c7e0a-0b1c-4f32-9d8e-77aa11bb22cc"


def write(tmp_path: Path, robots: str) -> Path:
    path = tmp_path / "departments.yaml"
    path.write_text(
        "departments:\n  - name: 学会部\n    contact: {name: 张三, email: a@example.org}\n"
        f"    robots:\n{robots}",
        encoding="utf-8",
    )
    return path


def test_the_three_apps_load_with_chinese_or_english_kinds(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"      - {{kind: 企业微信, url: '{WECOM}'}}\n"
        f"      - {{kind: dingtalk, url: '{DING}', secret: SEC0123abcd}}\n"
        f"      - {{kind: 飞书, url: '{FEISHU}', name: 学会部工作群}}\n",
    )
    robots = load_directory_file(path).departments[0].robots
    assert [robot.kind for robot in robots] == [Channel.WECOM, Channel.DINGTALK, Channel.FEISHU]
    assert robot_token(Channel.WECOM, WECOM) == "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
    assert robot_token(Channel.DINGTALK, DING) == "abc123def456"
    assert robot_token(Channel.FEISHU, FEISHU) == "2d4c7e0a-0b1c-4f32-9d8e-77aa11bb22cc"


@pytest.mark.parametrize(
    ("robot", "needle"),
    [
        (f"{{kind: 钉钉, url: '{DING.replace('https', 'http')}'}}", "必须是 https 地址"),
        ("{kind: 微信, url: 'https://example.org/x'}", "应为 企业微信、钉钉 或 飞书"),
        ("{kind: 钉钉, url: 'https://oapi.dingtalk.com/robot/send'}", "access_token="),
        (f"{{kind: 企业微信, url: '{WECOM}', secret: SECabc12345}}", "请删除 secret"),
        (f"{{kind: 飞书, url: '{FEISHU}', secret: 'a b'}}", "只能由字母和数字组成"),
        (f"{{kind: 飞书, url: '{FEISHU}', token: x}}", "未知字段"),
    ],
)
def test_a_bad_robot_names_file_line_and_fix(tmp_path: Path, robot: str, needle: str) -> None:
    path = write(tmp_path, f"      - kind: 企业微信\n        url: '{WECOM}'\n      - {robot}\n")
    with pytest.raises(InputError) as caught:
        load_directory_file(path)
    assert caught.value.line == 7
    assert needle in caught.value.reason
    assert str(path) in str(caught.value)


def test_robots_follow_the_roles_of_a_notice_each_webhook_once() -> None:
    group = Robot(kind=Channel.WECOM, url=WECOM)
    leader = Robot(kind=Channel.DINGTALK, url=DING)
    stored = robot_rows(department=[group, group], leader=[leader])
    office = robot_rows(department=[Robot(kind=Channel.FEISHU, url=FEISHU)])
    assert [r["url"] for r in robots_for(stored, ["contact"], [office])] == [WECOM]
    assert [r["url"] for r in robots_for(stored, ["leader"], [office])] == [DING]
    assert [r["url"] for r in robots_for(stored, ["head", "office"], [office])] == [FEISHU]
    assert robots_for(stored, ["head"], [office]) == []
    assert [r["url"] for r in robots_for(stored, ["contact", "leader", "office"], [stored])] == [
        WECOM,
        DING,
    ]


def test_text_is_one_plain_message_without_links() -> None:
    text = escalation_text(
        item_label="第4项 搭建\n高水平\x1b[31m平台",
        department="学会部",
        level=2,
        level_label="分管领导督办",
        due_date="2021-06-30",
        what="实施方案",
        catch_up=True,
    )
    assert text.splitlines() == [
        "【督办提醒】第2级督办（分管领导督办）",
        "事项：第4项 搭建 高水平 [31m平台",
        "责任部门：学会部",
        "逾期：实施方案截止日为2021-06-30，至今未报送",
        "（系统补发）",
        "详情请查收督办邮件，或登录督办系统查看；如已报送请忽略。",
    ]
    assert len(escalation_text(**{**_long(), "catch_up": False})) <= TEXT_LIMIT
    assert plain("x" * 300, 10) == "x" * 9 + "…"


def _long() -> dict[str, object]:
    return {
        "item_label": "长" * 5000,
        "department": "部" * 5000,
        "level": 1,
        "level_label": "级" * 5000,
        "due_date": "2021-06-30",
        "what": "进展报告",
    }


def test_keys_are_per_robot_and_bounded() -> None:
    one = chat_key("wecom", WECOM, "checkin:1:escalation:1:e0")
    assert one.startswith("chat:wecom:") and one.endswith(":checkin:1:escalation:1:e0")
    assert chat_key("wecom", WECOM + "x", "checkin:1:escalation:1:e0") != one
    assert len(chat_key("feishu", FEISHU, "k" * 400)) <= 200


def test_masked_webhooks_hide_the_token() -> None:
    assert mask_url(DING) == "https://oapi.dingtalk.com/…abc1…"
    assert "def456" not in mask_url(DING)
    assert mask_url(FEISHU) == "https://open.feishu.cn/…2d4c…"


def test_feishu_signature_follows_the_documented_recipe() -> None:
    # 飞书: HMAC-SHA256 with key "timestamp\nsecret" over an empty message, base64.
    expected = base64.b64encode(
        hmac.new(b"1599360473\ndemo", digestmod=hashlib.sha256).digest()
    ).decode()
    assert feishu_sign("1599360473", "demo") == expected


def test_the_example_directory_with_robots_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "departments-robots.example.yaml"
    departments = load_directory_file(example).departments
    assert [robot.kind for robot in departments[0].robots] == [Channel.FEISHU]
    assert departments[1].leader is not None
    assert [robot.kind for robot in departments[1].leader.robots] == [Channel.DINGTALK]


def _escalation_facts(
    recipients: list[dict[str, str]], level: int
) -> tuple[Notice, dict[int, Item], dict[int, Checkin], dict[int, Department], list[Department]]:
    department = Department(
        id=5,
        name="学会部",
        robots=robot_rows(
            department=[Robot(kind=Channel.WECOM, url=WECOM)],
            leader=[Robot(kind=Channel.DINGTALK, url=DING)],
        ),
    )
    office = Department(
        id=6, name="办公室", robots=robot_rows(department=[Robot(kind=Channel.FEISHU, url=FEISHU)])
    )
    item = Item(id=3, number="4", title="搭建平台", plan_id=1)
    checkin = Checkin(id=9, item_id=3, department_id=5, due_date=date(2021, 6, 30), kind="progress")
    notice = Notice(
        id=11,
        key=f"checkin:9:escalation:{level}:e0",
        kind="escalation",
        level=level,
        item_id=3,
        department_id=5,
        checkin_id=9,
        recipients=recipients,
        reason="…",
    )
    return notice, {3: item}, {9: checkin}, {5: department}, [office]


def _chat(notice: Notice, facts: tuple[Any, ...], policy: SupervisionPolicy) -> list[str]:
    _, items, checkins, departments, offices = facts
    messages = escalation_chat_messages(
        notices=[notice],
        items=items,
        checkins=checkins,
        departments=departments,
        offices=offices,
        policy=policy,
        level_label={},
    )
    return [message.to[0] for message in messages]


def test_an_escalation_goes_to_the_groups_of_its_level() -> None:
    policy = default_policy()
    level3 = _escalation_facts([{"role": "head", "email": "h@example.org"}], 3)
    assert _chat(level3[0], level3, policy) == [FEISHU]  # head has no robot; the office's
    level2 = _escalation_facts([{"role": "leader", "email": "l@example.org"}], 2)
    assert _chat(level2[0], level2, policy) == [DING]
    assert _chat(level2[0], level2, policy.model_copy(update={"chat_notices": ()})) == []


def test_a_role_the_catch_up_cap_held_gets_no_chat_either() -> None:
    held = [
        {"role": "head", "email": "h@example.org", "held": "1"},
        {"role": "office", "email": "o@example.org", "held": "1"},
    ]
    facts = _escalation_facts(held, 3)
    assert _chat(facts[0], facts, default_policy()) == []
    partly = [*held[:1], {"role": "office", "email": "o@example.org"}]
    facts = _escalation_facts(partly, 3)
    assert _chat(facts[0], facts, default_policy()) == [FEISHU]
