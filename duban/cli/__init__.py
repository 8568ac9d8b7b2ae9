"""The `duban` command line: one Typer app; each command group lives in its own module."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from duban.cli import calendar as calendar_cli
from duban.cli import closure as closure_cli
from duban.cli import db as db_cli
from duban.cli import departments as departments_cli
from duban.cli import deploy as deploy_cli
from duban.cli import events as events_cli
from duban.cli import inbox as inbox_cli
from duban.cli import instruct as instruct_cli
from duban.cli import mail as mail_cli
from duban.cli import misc as misc_cli
from duban.cli import plan as plan_cli
from duban.cli import portal as portal_cli
from duban.cli import report as report_cli
from duban.cli import review as review_cli
from duban.cli import score as score_cli
from duban.cli import serve as serve_cli
from duban.cli import supervise as supervise_cli
from duban.cli.output import fail
from models.errors import DubanError

app = typer.Typer(
    name="duban",
    help="督办：把年度工作计划变成可督办的任务流程（基于 Prefect）。",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(calendar_cli.app, name="calendar")
app.add_typer(db_cli.app, name="db")
app.add_typer(departments_cli.app, name="departments")
app.add_typer(events_cli.app, name="events")
app.add_typer(mail_cli.app, name="mail")
app.add_typer(plan_cli.app, name="plan")
misc_cli.register(app)
deploy_cli.register(app)
instruct_cli.register(app)
portal_cli.register(app)
report_cli.register(app)
score_cli.register(app)
serve_cli.register(app)
supervise_cli.register(app)
closure_cli.register(supervise_cli.item_app)
review_cli.register(app)
inbox_cli.register(app)


def main() -> None:
    """Entry point: run the CLI and turn user errors into one Chinese line and exit code 1."""
    from duban.runtime import configure_prefect_defaults
    from models.settings import get_settings

    try:
        configure_prefect_defaults(get_settings())
        app()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = "DUBAN_" + "_".join(str(part) for part in error["loc"]).upper()
        fail(f"配置错误：{name}：{error['msg'].removeprefix('Value error, ')}")
    except DubanError as exc:
        fail(str(exc))
    except OperationalError as exc:
        from models.db import database_problem

        fail(str(database_problem(exc, get_settings().effective_database_url)))
    except KeyboardInterrupt:
        fail("已中断。", code=130)
    sys.exit(0)
