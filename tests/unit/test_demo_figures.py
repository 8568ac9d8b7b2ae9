"""The demo's second plan file keeps seed 000's eight actions verbatim, every item has a lead
of the demo directory, and the figures departments report never fall below their line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from duban.demo.plans import SECOND_PLAN_FILE, SECOND_POLICY_FILE
from duban.demo.script import DEMO_SCRIPT, reported_value
from models.directory_file import load_directory_file
from models.plan_reader.document import read_plan_file
from models.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "000_speech_actions_targets.expected.json"


@pytest.mark.skipif(not FIXTURE.is_file(), reason="shared fixtures not present")
def test_the_eight_actions_are_seed_000s_with_the_demo_year_and_leads() -> None:
    plan = read_plan_file(SECOND_PLAN_FILE)
    actions = json.loads(FIXTURE.read_text(encoding="utf-8"))["actions"]
    assert [(i.number, i.title, [t.text for t in i.targets]) for i in plan.items] == [
        (a["number"], a["title"], a["targets"]) for a in actions
    ]
    assert (plan.year, plan.organisation) == (2021, "长治市科学技术协会")  # the demo's, see header
    directory = load_directory_file(ROOT / "examples" / "departments.yaml")
    names = {entry.name for entry in directory.departments}
    assert all(len(item.lead) == 1 and item.lead[0] in names for item in plan.items)
    assert {item.lead[0] for item in plan.items} <= set(DEMO_SCRIPT)


def test_the_quarterly_policy_asks_for_progress_at_each_quarters_end() -> None:
    phases = load_policy(SECOND_POLICY_FILE).phases
    assert (phases["implement"].cadence, phases["implement"].day) == ("quarterly", 30)


@pytest.mark.parametrize("target", [2.0, 5.0, 6.0, 10.0, 200.0])
def test_a_reported_figure_is_rounded_up_and_never_below_the_paced_line(target: float) -> None:
    for day in range(1, 223):
        share = day / 222
        figure = reported_value(target, share=share, pace=1.0)
        assert target * share <= figure < target * share + 0.1 + 1e-9
    assert reported_value(6.0, share=37 / 222, pace=1.05) == 1.1  # 1.05 rounds up
    assert reported_value(5.0, share=1.0, pace=1.5) == 7.5
