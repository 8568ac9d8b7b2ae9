"""`duban start --policy` checks the per-recipient `delivery` lists against the directory:
an unknown department is one Chinese line with file and line and starts nothing; a good
file is stored with canonical names (SQLite, in a subprocess; the rule itself runs on both
databases in test_digest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from models.db import make_engine, make_sessionmaker, upgrade
from models.plan import Plan
from models.supervision import Checkin

DUBAN = Path(sys.executable).with_name("duban")
REPO = Path(__file__).resolve().parents[2]


def duban(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [str(DUBAN), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_start_refuses_an_unknown_department_and_stores_canonical_names(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    upgrade(engine)
    env = {**os.environ, "DUBAN_DATABASE_URL": url, "DUBAN_DATA_DIR": str(tmp_path / "data")}
    env["COLUMNS"] = "240"
    assert duban(env, "departments", "import", "examples/departments.yaml").returncode == 0
    imported = duban(
        env,
        *("plan", "import", "examples/changzhi_2021_work_points.txt"),
        *("--departments", "examples/departments.yaml", "--yes"),
    )
    assert imported.returncode == 0, imported.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "delivery:\n  digest_departments:\n    - 学会部\n    - 宣传部\n", encoding="utf-8"
    )
    refused = duban(env, "start", "1", "--as-of", "2021-05-24", "--policy", str(bad))
    assert refused.returncode != 0
    out = " ".join((refused.stdout + refused.stderr).split())
    assert f"{bad}:4" in out and "部门“宣传部”不在部门名录中" in out, out
    assert "Traceback" not in out
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        assert session.scalars(select(Checkin.id)).first() is None  # nothing started
    good = tmp_path / "good.yaml"
    good.write_text(
        "delivery:\n  digest_departments: [學會部]\n  digest_leaders: [刘卫东]\n",
        encoding="utf-8",
    )
    started = duban(env, "start", "1", "--as-of", "2021-05-24", "--policy", str(good))
    assert started.returncode == 0, started.stdout + started.stderr
    with sessions() as session:
        plan = session.scalars(select(Plan)).one()
        assert plan.policy["delivery"]["digest_departments"] == ["学会部"]
        assert plan.policy["delivery"]["digest_leaders"] == ["刘卫东"]
    engine.dispose()
