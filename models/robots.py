"""Group chat robots (群机器人) of 企业微信, 钉钉 and 飞书: the directory's robot entry and
which robots a notice goes to. Pure: no session, no network.

A robot is configured by the webhook address the chat app shows when the robot is added to
a group (always https), and for 钉钉 and 飞书 optionally the signing secret (加签). A
department's robots are its group's (role `contact`); a leader's or head's robots are
their own groups' (role `leader` / `head`); `office` means the supervision offices' groups.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.vocabulary import Channel, RecipientRole

__all__ = ["KIND_NAMES", "Robot", "robot_rows", "robot_token", "robots_for"]

KIND_NAMES: dict[str, Channel] = {
    "wecom": Channel.WECOM,
    "企业微信": Channel.WECOM,
    "dingtalk": Channel.DINGTALK,
    "钉钉": Channel.DINGTALK,
    "feishu": Channel.FEISHU,
    "飞书": Channel.FEISHU,
}
"""The names a directory file may give a robot's `kind`."""

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
_SECRET = re.compile(r"^[A-Za-z0-9]{8,128}$")
_EXAMPLES = {
    Channel.WECOM: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…",
    Channel.DINGTALK: "https://oapi.dingtalk.com/robot/send?access_token=…",
    Channel.FEISHU: "https://open.feishu.cn/open-apis/bot/v2/hook/…",
}


def robot_token(kind: Channel, url: str) -> str:
    """The robot's token inside its webhook `url`: WeCom's `key`, DingTalk's `access_token`,
    Feishu's last path segment; ValueError (Chinese, with the expected form) if absent."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if kind is Channel.WECOM:
        values = query.get("key", [])
    elif kind is Channel.DINGTALK:
        values = query.get("access_token", [])
    else:
        segments = [segment for segment in parts.path.split("/") if segment]
        values = segments[-1:] if "hook" in segments[:-1] else []
    if len(values) != 1 or not _TOKEN.fullmatch(values[0]):
        raise ValueError(
            f"{kind.label}群机器人地址中找不到机器人令牌，"
            f"应形如 {_EXAMPLES[kind]}（复制群机器人设置中的完整地址）"
        )
    return values[0]


class Robot(BaseModel):
    """One group robot: its chat app, webhook address, optional signing secret and a name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Channel
    url: str = Field(max_length=500)
    secret: str = Field(default="", max_length=200)
    name: str = Field(default="", max_length=100)

    @field_validator("kind", mode="before")
    @classmethod
    def _known_kind(cls, value: Any) -> Channel:
        found = KIND_NAMES.get(str(value).strip().lower())
        if found is None:
            raise ValueError(f"机器人类型 {value!r} 无效，应为 企业微信、钉钉 或 飞书")
        return found

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(
                f"群机器人地址必须是 https 地址（现为 {value[:80]!r}），"
                "请复制群机器人设置中以 https:// 开头的完整地址"
            )
        if parts.username or parts.password or any(ch.isspace() for ch in value):
            raise ValueError("群机器人地址不能含有空格或用户名密码，请复制群机器人设置中的地址")
        return value

    @field_validator("name")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("机器人名称含有换行或控制字符，请删除该字符后重新导入")
        return value

    @model_validator(mode="after")
    def _token_and_secret(self) -> Robot:
        robot_token(self.kind, self.url)
        if self.secret and self.kind is Channel.WECOM:
            raise ValueError("企业微信群机器人没有加签密钥，请删除 secret 一项")
        if self.secret and not _SECRET.fullmatch(self.secret):
            raise ValueError(
                f"{self.kind.label}机器人的加签密钥只能由字母和数字组成（如 SEC 开头的一串），"
                "请从机器人安全设置中重新复制"
            )
        return self

    def row(self, role: str) -> dict[str, str]:
        """The stored form (`Department.robots` entry) of this robot for `role`."""
        return {
            "role": role,
            "kind": self.kind.value,
            "url": self.url,
            "secret": self.secret,
            "name": self.name,
        }


def robot_rows(
    *,
    department: Iterable[Robot],
    leader: Iterable[Robot] = (),
    head: Iterable[Robot] = (),
) -> list[dict[str, str]]:
    """A department's stored robots: its group's (`contact`), its leader's and its head's."""
    return [
        *(robot.row(RecipientRole.CONTACT) for robot in department),
        *(robot.row(RecipientRole.LEADER) for robot in leader),
        *(robot.row(RecipientRole.HEAD) for robot in head),
    ]


def robots_for(
    robots: Sequence[Mapping[str, Any]],
    roles: Iterable[str],
    office_robots: Sequence[Sequence[Mapping[str, Any]]] = (),
) -> list[dict[str, str]]:
    """The stored robots a notice for `roles` goes to, each webhook once, in role order.

    `robots` are the department's (`Department.robots`); `office` expands to the group
    robots (role `contact`) of every supervision office in `office_robots`.
    """
    found: list[dict[str, str]] = []
    seen: set[str] = set()

    def add(entries: Sequence[Mapping[str, Any]], role: str) -> None:
        for entry in entries:
            url = str(entry.get("url", ""))
            if entry.get("role") == role and url and url not in seen:
                seen.add(url)
                found.append({str(key): str(value) for key, value in entry.items()})

    for role in roles:
        if role == RecipientRole.OFFICE:
            for office in office_robots:
                add(office, RecipientRole.CONTACT)
        else:
            add(robots, role)
    return found
