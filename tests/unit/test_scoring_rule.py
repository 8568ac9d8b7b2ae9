"""The 考核 rule and the 序时进度 classes, case by case (models/scoring.py, progress.py)."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from models.calendar import WorkCalendar
from models.progress import ItemPaceFacts, PaceVerdict, TargetFigure, item_pace, tally
from models.scoring import (
    CheckinFact,
    EscalationFact,
    InstructionFact,
    ReturnFact,
    ScoreInputs,
    ScoringRule,
    TaskFact,
    score_departments,
)
from models.vocabulary import DeductionKind, ItemProgress

START, END = date(2021, 1, 1), date(2021, 12, 31)
SEP30 = date(2021, 9, 30)  # 273 of 365 days: 200 expects 149.6


def pace(*targets: TargetFigure, **facts: object) -> ItemProgress:
    verdict = item_pace(ItemPaceFacts(targets=targets, **facts), start=START, end=END, as_of=SEP30)  # type: ignore[arg-type]
    return verdict.progress


@pytest.mark.parametrize(
    ("reported", "expected"),
    [(149.0, ItemProgress.BEHIND), (150.0, ItemProgress.ON_PACE), (164.0, ItemProgress.ON_PACE),
     (165.0, ItemProgress.AHEAD), (200.0, ItemProgress.DONE)],
)  # fmt: skip
def test_a_numeric_target_against_the_share_of_the_year(
    reported: float, expected: ItemProgress
) -> None:
    assert pace(TargetFigure("ge", 200.0, reported)) == expected


def test_the_lowest_target_decides_and_a_cap_is_on_pace_within_it() -> None:
    assert (
        pace(TargetFigure("ge", 200.0, 180.0), TargetFigure("ge", 5.0, 1.0)) == ItemProgress.BEHIND
    )
    assert (
        pace(TargetFigure("le", 5.0, 3.0), TargetFigure("ge", 200.0, 170.0)) == ItemProgress.ON_PACE
    )
    assert (
        pace(TargetFigure("le", 5.0, 6.0), TargetFigure("ge", 200.0, 190.0)) == ItemProgress.BEHIND
    )


def test_the_items_own_deadline_shortens_the_line() -> None:
    facts = ItemPaceFacts(targets=(TargetFigure("ge", 200.0, 150.0),))
    by_june = item_pace(facts, start=START, end=date(2021, 6, 30), as_of=SEP30)
    assert by_june.progress == ItemProgress.BEHIND and by_june.ratio == pytest.approx(0.75)


def test_items_without_figures_go_by_their_reports() -> None:
    assert pace(latest_status="done") == ItemProgress.DONE
    assert pace(latest_status="blocked", reported=True) == ItemProgress.BEHIND
    assert pace(latest_status="on_track", reported=True, missed=1) == ItemProgress.BEHIND
    assert pace(latest_status="on_track", reported=True) == ItemProgress.ON_PACE
    assert pace(TargetFigure("ge", 200.0, None)) == ItemProgress.OTHER
    assert pace() == ItemProgress.OTHER
    verdicts = {1: PaceVerdict(ItemProgress.BEHIND), 2: PaceVerdict(ItemProgress.BEHIND)}
    assert tally(verdicts) == {
        ItemProgress.DONE: 0,
        ItemProgress.AHEAD: 0,
        ItemProgress.ON_PACE: 0,
        ItemProgress.BEHIND: 2,
        ItemProgress.OTHER: 0,
    }


CAL = WorkCalendar()
Q3 = {"start": date(2021, 7, 1), "until": SEP30, "as_of": SEP30}


def scores(**facts: object) -> dict[str, object]:
    rule = facts.pop("rule", ScoringRule())
    inputs = ScoreInputs(departments={1: "甲", 2: "乙"}, **Q3, **facts)  # type: ignore[arg-type]
    return {line.name: line for line in score_departments(inputs, rule, CAL)}  # type: ignore[arg-type]


TASK = TaskFact(10, "3", "任务", 1, "lead")


def test_late_points_grow_with_working_days_up_to_the_cap() -> None:
    # Due Fri 9 Jul; reported Mon 12 Jul is 1 working day late; Fri 30 Jul is 15.
    one = scores(
        tasks=[TASK], checkins=[CheckinFact(1, 10, 1, date(2021, 7, 9), date(2021, 7, 12))]
    )
    assert one["甲"].deductions[0].points == 1.2  # type: ignore[attr-defined]
    many = scores(
        tasks=[TASK], checkins=[CheckinFact(1, 10, 1, date(2021, 7, 9), date(2021, 7, 30))]
    )
    assert many["甲"].deductions[0].points == 3.0  # type: ignore[attr-defined]


def test_checkins_outside_the_period_or_still_open_cost_nothing() -> None:
    lines = scores(
        tasks=[TASK],
        checkins=[
            CheckinFact(1, 10, 1, date(2021, 6, 30), None),  # before the period
            CheckinFact(2, 10, 1, SEP30, None),  # due today: still open
        ],
    )
    assert lines["甲"].deductions == ()  # type: ignore[attr-defined]


def test_only_the_highest_level_of_a_checkin_counts_and_each_return_counts() -> None:
    lines = scores(
        tasks=[TASK],
        escalations=[
            EscalationFact(10, 1, 5, 1, date(2021, 8, 2)),
            EscalationFact(10, 1, 5, 3, date(2021, 8, 9)),
            EscalationFact(10, 1, 6, 1, date(2021, 8, 9)),
            EscalationFact(10, 1, 7, 2, date(2021, 6, 1)),  # before the period
        ],
        returns=[ReturnFact(10, 1, 5, date(2021, 8, 3)), ReturnFact(10, 1, 5, date(2021, 8, 20))],
    )
    kinds = [(d.kind, d.points) for d in lines["甲"].deductions]  # type: ignore[attr-defined]
    assert kinds == [
        (DeductionKind.ESCALATION, 2.0),
        (DeductionKind.ESCALATION, 0.5),
        (DeductionKind.RETURNED, 0.5),
        (DeductionKind.RETURNED, 0.5),
    ]


def test_an_instruction_costs_the_lead_until_it_is_answered() -> None:
    open_one = InstructionFact(10, date(2021, 8, 1), None)
    answered = InstructionFact(10, date(2021, 8, 1), date(2021, 8, 20))
    support = TaskFact(10, "3", "任务", 2, "support")
    lines = scores(tasks=[TASK, support], instructions=[open_one, answered])
    assert [d.kind for d in lines["甲"].deductions] == [DeductionKind.INSTRUCTION]  # type: ignore[attr-defined]
    assert lines["乙"].deductions == ()  # type: ignore[attr-defined]


def test_weighted_mean_load_factor_grade_and_shared_ranks() -> None:
    tasks = [TaskFact(n, str(n), "任务", 1, "lead") for n in range(6)] + [
        TaskFact(9, "9", "任务", 2, "lead")
    ]
    behind = {0: PaceVerdict(ItemProgress.BEHIND, 0.5)}
    lines = scores(tasks=tasks, progress=behind)
    first, second = lines["甲"], lines["乙"]
    assert first.mean == round((99 + 5 * 100) / 6, 2) and first.load_factor == 1.0  # type: ignore[attr-defined]
    assert first.score == 99.83 and first.grade == "优秀" and first.rank == 1  # type: ignore[attr-defined]
    assert "完成序时进度的50%" in first.deductions[0].detail  # type: ignore[attr-defined]
    assert second.load_factor == 0.95 and second.score == 95.0 and second.rank == 2  # type: ignore[attr-defined]
    equal = scores(tasks=[TaskFact(1, "1", "任务", 1, "lead"), TaskFact(2, "2", "任务", 2, "lead")])
    assert [line.rank for line in equal.values()] == [1, 1]  # type: ignore[attr-defined]


def test_a_rule_with_other_points_changes_the_score_and_bad_steps_are_refused() -> None:
    harsh = ScoringRule(missing_points=10, load_factors=((0.0, 1.0),))
    lines = scores(
        tasks=[TASK], checkins=[CheckinFact(1, 10, 1, date(2021, 7, 9), None)], rule=harsh
    )
    assert lines["甲"].score == 90.0  # type: ignore[attr-defined]
    assert ScoringRule().escalation_for(5) == 2.0
    with pytest.raises(ValidationError, match="分档"):
        ScoringRule(grades=((70.0, "合格"), (90.0, "优秀"), (0.0, "不合格")))
    with pytest.raises(ValidationError):
        ScoringRule(surprise=1)  # type: ignore[call-arg]


def test_points_round_half_up_as_an_office_does() -> None:
    """99.425 is 99.42499… as a float; an office's 四舍五入 gives 99.43, and so does duban."""
    from models.scoring import _points

    assert _points((700 + 95.4) / 8) == 99.43
    assert _points(0.1 + 0.2) == 0.3
    assert _points(97.005) == 97.01
    assert _points(88.724999) == 88.72
