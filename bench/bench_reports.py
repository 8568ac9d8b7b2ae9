"""Review reports at province scale: a 5,000-item plan with a year of monthly check-ins.

Seeds a fresh SQLite database (or `--url`): 50 sections, 5,000 items with one target each,
500 departments, 60,000 check-ins due on the 15th of every month, submissions for those
due by the report date (most on time, some late, some missing), escalations and status
events. Then, in a fresh interpreter (so its peak memory is the report's alone), generates
the Q3 report: load + compute + HTML (target < 10 s), DOCX (target < 30 s), peak RSS
(target < 500 MB). Prints the machine and library versions.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import tempfile
import time
from datetime import UTC, date, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from models.clock import LOCAL_TZ

AS_OF = datetime(2021, 9, 30, 17, 0, tzinfo=LOCAL_TZ)
CREATED = datetime(2021, 3, 1, tzinfo=UTC)


def seed(url: str, *, items: int, departments: int) -> int:
    """Create the plan and its year of supervision rows; return the plan id."""
    from models.db import make_engine, make_sessionmaker, transaction, upgrade
    from models.directory import Department
    from models.outbox import DomainEvent
    from models.plan import Item, Plan, Section, Target
    from models.supervision import Assignment, Checkin, Notice, Submission

    engine = make_engine(url)
    upgrade(engine)
    with transaction(make_sessionmaker(engine)) as session:
        plan = Plan(
            title="某省2021年重点工作任务",
            organisation="某省督查室",
            year=2021,
            source_sha256=os.urandom(32).hex(),
            created_at=CREATED,
        )
        session.add(plan)
        session.flush()
        sections = 50
        session.execute(
            insert(Section),
            [
                {
                    "plan_id": plan.id,
                    "position": s,
                    "number": str(s + 1),
                    "title": f"第{s + 1}批任务",
                }
                for s in range(sections)
            ],
        )
        section_ids = [row.id for row in session.query(Section.id).filter_by(plan_id=plan.id)]
        session.execute(
            insert(Department),
            [{"name": f"部门{d}-{plan.id}", "created_at": CREATED} for d in range(departments)],
        )
        dept_ids = [
            row.id
            for row in session.query(Department.id).filter(Department.name.like(f"%-{plan.id}"))
        ]
        colours = ["green", "green", "amber", "red"]
        session.execute(
            insert(Item),
            [
                {
                    "plan_id": plan.id,
                    "section_id": section_ids[n * sections // items],
                    "position": n,
                    "number": str(n + 1),
                    "title": f"推进第{n + 1}项重点工作落地见效",
                    "colour": colours[n % 4],
                    "needs_assignment": n % 997 == 0,
                }
                for n in range(items)
            ],
        )
        item_ids = [row.id for row in session.query(Item.id).filter_by(plan_id=plan.id)]
        session.execute(
            insert(Target),
            [
                {
                    "item_id": i,
                    "position": 0,
                    "text": "不少于100场次",
                    "comparator": "ge",
                    "value": 100.0,
                    "unit": "场次",
                }
                for i in item_ids
            ],
        )
        target_of: dict[int, int] = {
            int(item_id): int(target_id)
            for item_id, target_id in session.query(Target.item_id, Target.id).filter(
                Target.item_id.in_(item_ids)
            )
        }
        lead = {i: dept_ids[n % departments] for n, i in enumerate(item_ids)}
        session.execute(
            insert(Assignment),
            [
                {"item_id": i, "department_id": lead[i], "role": "lead", "assigned_at": CREATED}
                for i in item_ids
            ],
        )
        checkins = []
        for n, item_id in enumerate(item_ids):
            for month in range(1, 13):
                due = date(2021, month, 15)
                fate = (n + month) % 20
                submitted = None
                if due <= AS_OF.date() and fate != 0:
                    day = 20 if fate == 1 else 14
                    submitted = datetime(2021, month, day, 10, tzinfo=LOCAL_TZ)
                checkins.append(
                    {
                        "item_id": item_id,
                        "department_id": lead[item_id],
                        "phase_key": "implement",
                        "seq": month,
                        "kind": "progress",
                        "due_date": due,
                        "original_due_date": due,
                        "status": "submitted" if submitted else "pending",
                        "submitted_at": submitted,
                        "escalation_level": 0,
                        "created_at": CREATED,
                    }
                )
        session.execute(insert(Checkin), checkins)
        rows = (
            session.query(Checkin.id, Checkin.item_id, Checkin.seq, Checkin.submitted_at)
            .filter(Checkin.item_id.in_(item_ids))
            .all()
        )
        narrative = "本月组织开展专项活动，覆盖基层单位，群众反响良好。" * 3
        session.execute(
            insert(Submission),
            [
                {
                    "checkin_id": cid,
                    "version": 1,
                    "submitted_at": sub,
                    "status": "blocked" if (item_id + seq) % 50 == 0 else "on_track",
                    "narrative": narrative,
                    "problems": "经费不足" if seq % 3 == 0 else "",
                    "next_steps": "继续推进",
                    "values": {str(target_of[item_id]): seq * 8},
                }
                for cid, item_id, seq, sub in rows
                if sub is not None
            ],
        )
        missing = [
            (cid, item_id, seq) for cid, item_id, seq, sub in rows if sub is None and seq <= 9
        ]
        session.execute(
            insert(Notice),
            [
                {
                    "key": f"checkin:{cid}:escalation:1:r0",
                    "kind": "escalation",
                    "level": 1,
                    "item_id": item_id,
                    "department_id": lead[item_id],
                    "checkin_id": cid,
                    "decided_at": datetime(2021, seq, 20, 9, tzinfo=LOCAL_TZ),
                }
                for cid, item_id, seq in missing
            ],
        )
        session.execute(
            insert(DomainEvent),
            [
                {
                    "type": "duban.item.status_changed",
                    "resource_id": f"duban.item.{i}",
                    "payload": {"colour": colours[(n + m) % 4]},
                    "occurred_at": datetime(2021, m, 1, tzinfo=UTC),
                    "created_at": datetime(2021, m, 1, tzinfo=UTC),
                }
                for n, i in enumerate(item_ids)
                for m in (3, 6, 9)
                if n % 5 == 0
            ],
        )
        plan_id = plan.id
    engine.dispose()
    return plan_id


def measure(url: str, plan_id: int, out_dir: str, queue: Any) -> None:
    """Generate the Q3 report in this (fresh) process and put timings and peak RSS."""
    from models.db import make_engine, make_sessionmaker
    from models.review_figures import build_review
    from tasks.reporting.data import choose_period, load_plan_row, load_review_inputs
    from tasks.reporting.docx import build_docx
    from tasks.reporting.html import render_html
    from tasks.reporting.markdown import render_markdown

    engine = make_engine(url)
    generated = datetime(2021, 9, 30, 10, tzinfo=UTC)
    with make_sessionmaker(engine)() as session:
        started = time.perf_counter()
        plan = load_plan_row(session=session, plan_id=plan_id)
        period = choose_period(plan=plan, as_of=AS_OF, quarter="2021Q3")
        inputs = load_review_inputs(session=session, plan=plan, period=period, as_of=AS_OF)
        loaded = time.perf_counter()
    review = build_review(inputs)
    computed = time.perf_counter()
    html = render_html(review, generated_at=generated)
    html_done = time.perf_counter()
    docx = build_docx(review, generated_at=generated)
    docx_done = time.perf_counter()
    markdown = render_markdown(review, generated_at=generated)
    Path(out_dir, "bench.html").write_text(html, encoding="utf-8")
    Path(out_dir, "bench.docx").write_bytes(docx)
    queue.put(
        {
            "checkins": len(inputs.checkins),
            "load": loaded - started,
            "compute": computed - loaded,
            "html": html_done - started,
            "docx_only": docx_done - html_done,
            "docx": (docx_done - html_done) + (computed - started),
            "html_mb": len(html) / 1e6,
            "docx_mb": len(docx) / 1e6,
            "md_kb": len(markdown) / 1e3,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "summary": review.summary,
        }
    )


def main() -> None:
    """Seed, generate in a fresh interpreter, print the figures against the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--departments", type=int, default=500)
    parser.add_argument("--url", default="", help="database URL (default: a temp SQLite file)")
    args = parser.parse_args()
    print(
        f"{platform.platform()} | CPUs {os.cpu_count()} | Python {platform.python_version()} | "
        f"SQLAlchemy {version('sqlalchemy')} | Jinja2 {version('jinja2')} | "
        f"python-docx {version('python-docx')}"
    )
    with tempfile.TemporaryDirectory(prefix="duban-bench-reports-") as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        started = time.perf_counter()
        plan_id = seed(url, items=args.items, departments=args.departments)
        print(f"seeded {args.items} items in {time.perf_counter() - started:.1f} s")
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        child = context.Process(target=measure, args=(url, plan_id, tmp, queue))
        child.start()
        result = queue.get(timeout=600)
        child.join()
    s = result["summary"]
    print(
        f"check-ins loaded {result['checkins']}, due in Q3 {s['checkins_due']}, "
        f"on time {s['on_time']}, late {s['late']}, missing {s['missing']}"
    )
    print(f"load {result['load']:.2f} s, compute {result['compute']:.2f} s")
    for name, limit, unit in (("html", 10, "s"), ("docx", 30, "s"), ("peak_mb", 500, "MB")):
        verdict = "OK" if result[name] < limit else "OVER"
        print(f"{name}: {result[name]:.2f} {unit} (target < {limit} {unit}) {verdict}")
    print(
        f"sizes: HTML {result['html_mb']:.1f} MB, DOCX {result['docx_mb']:.1f} MB, "
        f"Markdown {result['md_kb']:.0f} kB"
    )


if __name__ == "__main__":
    main()
