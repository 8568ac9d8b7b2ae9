"""The supervision policy: the default, the shipped example, and refusal of bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from models.errors import InputError
from models.policy import SupervisionPolicy, default_policy, load_policy, parse_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_file_is_the_default_policy() -> None:
    assert load_policy(EXAMPLE) == default_policy()


def test_default_values_are_the_documented_ones() -> None:
    policy = default_policy()
    assert policy.request_lead_workdays == 5
    assert policy.reminder_on_due_date is True
    assert policy.support_departments_report is False
    assert [(r.level, r.delay_workdays, r.recipients) for r in policy.escalation] == [
        (1, 1, ("contact",)),
        (2, 3, ("leader",)),
        (3, 5, ("head", "office")),
    ]
    assert policy.rule_for("implement") is not None
    assert policy.rule_for("unknown") is None


def test_round_trip_through_json_mapping() -> None:
    policy = default_policy()
    assert parse_policy(policy.to_mapping()) == policy
    assert parse_policy(None) == policy
    assert parse_policy({}) == policy


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "request_lead_workdays: 3\nphases:\n  implement: {kind: progress, cadence: quarterly}\n",
    )
    policy = load_policy(path)
    assert policy.request_lead_workdays == 3
    assert set(policy.phases) == {"implement"}
    assert policy.phases["implement"].cadence == "quarterly"
    assert policy.escalation == default_policy().escalation


LADDER = "escalation:\n  - level: 1\n    delay_workdays: 1\n    recipients: [contact]\n"


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (
            "escalation:\n  - level: 1\n    delay_workdays: -2\n    recipients: [contact]\n",
            3,
            "不能为负数",
        ),
        (
            LADDER + "  - level: 2\n    delay_workdays: 1\n    recipients: [leader]\n",
            1,
            "必须大于",
        ),
        (LADDER + "  - level: 3\n    delay_workdays: 4\n    recipients: [leader]\n", 1, "连续"),
        ("escalation:\n  - level: 1\n    delay_workdays: 2\n    recipients: [boss]\n", 4, "boss"),
        (
            "default_phases:\n"
            "  - {key: mobilize, name: a, start: '03-01', end: '04-10'}\n"
            "  - {key: implement, name: b, start: '04-01', end: '12-15'}\n",
            1,
            "重叠",
        ),
        (
            "default_phases:\n"
            "  - {key: implement, name: b, start: '04-01', end: '12-15'}\n"
            "  - {key: mobilize, name: a, start: '03-01', end: '03-10'}\n",
            1,
            "顺序",
        ),
        ("default_phases:\n  - {key: review, name: c, start: '12-31', end: '12-16'}\n", 2, "早于"),
        ("default_phases:\n  - {key: review, name: c, start: '02-30', end: '12-16'}\n", 2, "无效"),
        ("phases:\n  implement:\n    kind: progress\n    cadense: monthly\n", 4, "未知字段"),
        ("phases:\n  implement:\n    kind: progress\n    day: 40\n", 4, "过大"),
        ("request_lead_workdays: many\n", 1, "整数"),
        ("escalation: [\n", 2, "YAML"),
        ("- a list\n", 1, "映射"),
    ],
)
def test_bad_files_name_the_line(tmp_path: Path, text: str, line: int, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        load_policy(path)
    assert caught.value.line == line, caught.value.render()
    assert needle in caught.value.reason
    assert caught.value.path == str(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="无法读取"):
        load_policy(tmp_path / "nope.yaml")


def test_policy_is_immutable() -> None:
    policy = default_policy()
    with pytest.raises(ValueError, match="frozen"):
        policy.request_lead_workdays = 1  # type: ignore[misc]
    assert isinstance(policy, SupervisionPolicy)


def test_docs_print_the_default_policy_in_full() -> None:
    docs = (EXAMPLE.parents[1] / "docs" / "policy.md").read_text(encoding="utf-8")
    block = docs.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert parse_policy(yaml.safe_load(block)) == default_policy()
    assert block == EXAMPLE.read_text(encoding="utf-8")
