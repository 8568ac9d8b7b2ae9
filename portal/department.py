"""A department's own page (本部门督办事项): `GET|HEAD /d/{token}`, read-only.

The token is a department token (`notifications.links.verify_department_token`: purpose
`department`, one department, expiring like the other links); a form, instruct or
attachment token, a tampered or an expired one gets the same Chinese page with status 404.
The page lists what the department owes across all plans (`models.department_page`,
loaded by `tasks.department_page` in a fixed number of queries) and nothing of another
department. Every row links to `GET|HEAD /d/{token}/c/{checkin_id}`, which verifies the
department token again, checks that the check-in is the department's own (else the same
Chinese page, 404) and answers 303 to a freshly signed form link: the page itself signs
nothing per row (signing ~500 form links was a third of its CPU, issue 14), and a link
can only reach the form of a check-in of the department whose token it carries.
Opening either writes nothing; there is no POST. Rate limits are the form's, keyed on the
verified claims; the security headers are set app-wide (`portal.app.SecurityHeaders`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from models.clock import local_date
from models.department_page import DepartmentPage, PageRow
from models.settings import Settings
from notifications.links import (
    DepartmentClaims,
    InvalidLink,
    department_claims_key,
    form_url,
    verify_department_token,
)
from portal.pages import format_date, format_moment
from portal.security import Limiter, RateLimits, client_address
from tasks.department_page import department_checkin_due, load_department_page

__all__ = ["RowView", "department_context", "department_routes"]

Render = Callable[..., Response]


_CHECKIN_ID = re.compile(r"[1-9][0-9]{0,9}")
_MAX_ID = 2**31 - 1  # the column is a 32-bit integer on PostgreSQL


class RowView(NamedTuple):
    """One row as the template shows it. An object, not a dict: Jinja2 looks `row.x` up as
    an attribute first, and on a dict each of a row's dozen lookups failed and fell back
    to a subscript (40% of the page's rendering time); a named tuple is also cheaper to
    build than a frozen dataclass."""

    plan: str
    item: str
    kind: str
    role: str
    due: str
    overdue_days: int | None
    colour: str
    colour_label: str
    level: int
    level_label: str
    detail: str
    by: str
    since: str
    form_url: str


def _row(row: PageRow, *, base: str) -> RowView:
    return RowView(
        plan=row.plan_title,
        item=row.item_label,
        kind=row.kind_label,
        role=row.role_label,
        due=format_date(row.due_date),
        overdue_days=row.overdue_days,
        colour=row.colour,
        colour_label=row.colour_label,
        level=row.level,
        level_label=row.level_label,
        detail=row.detail,
        by=row.by,
        since=format_moment(row.since) if row.since is not None else "",
        form_url=f"{base}{row.checkin_id}",
    )


def department_context(
    page: DepartmentPage, *, settings: Settings, token: str, expires_on: str
) -> dict[str, Any]:
    """Template variables of the page (all text escaped by the template); `token` is the
    verified department token the page was opened with, which its row links carry."""
    base = f"{settings.public_url}/d/{token}/c/"

    def rows(section: tuple[PageRow, ...]) -> list[RowView]:
        return [_row(row, base=base) for row in section]

    record = page.record
    rate = record.on_time_rate
    return {
        "department": page.department_name,
        "today": format_date(page.today),
        "expires_on": expires_on,
        "overdue": page.overdue,
        "open": rows(page.open),
        "returned": rows(page.returned),
        "instructions": rows(page.instructions),
        "closed": rows(page.closed),
        "record": {
            "due": record.settled,
            "on_time": record.on_time,
            "late": record.late,
            "missing": record.missing,
            "rate": "—" if rate is None else f"{rate:.1f}%",
        },
    }


def department_routes(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    now: Callable[[], datetime],
    render: Render,
    limiter: Limiter,
    limits: RateLimits,
) -> list[Route]:
    """The `/d/{token}` page and its rows' `/d/{token}/c/{checkin_id}` redirects, over the
    portal's `render` and rate `limiter`."""

    def invalid(request: Request) -> Response:
        return render(request, "department_invalid.html", {}, 404)

    def refused(request: Request) -> Response:
        """The invalid page, counted against the address's budget of invalid links."""
        address = client_address(request)
        if not limiter.allow(
            f"bad:{address}", limit=limits.per_address_invalid, window=limits.window_seconds
        ):
            return render(request, "limited.html", {}, 429)
        return invalid(request)

    def verified(
        request: Request, moment: datetime, scope: str = ""
    ) -> DepartmentClaims | Response:
        """The claims of the request's department token, or the page to answer with. The
        page's GETs share one budget per department; a row link's (`scope` `row:<id>`) one
        per check-in, as the form's own links do."""
        window = limits.window_seconds
        if not limiter.allow(
            f"ip:{client_address(request)}", limit=limits.per_address, window=window
        ):
            return render(request, "limited.html", {}, 429)
        try:
            claims = verify_department_token(
                request.path_params["token"], settings=settings, now=moment
            )
        except InvalidLink:
            return refused(request)
        key = f"{request.method}:{department_claims_key(claims)}"
        if scope:
            key = f"{key}:{scope}"
        if not limiter.allow(key, limit=limits.per_token_get, window=window):
            return render(request, "limited.html", {}, 429)
        return claims

    def read(claims: DepartmentClaims, moment: datetime) -> DepartmentPage | None:
        with sessions() as session:
            return load_department_page(
                session=session, department_id=claims.department_id, now=moment
            )

    async def show(request: Request) -> Response:
        moment = now()
        claims = verified(request, moment)
        if isinstance(claims, Response):
            return claims
        page = await run_in_threadpool(read, claims, moment)
        if page is None:
            return invalid(request)
        context = department_context(
            page,
            settings=settings,
            token=request.path_params["token"],
            expires_on=format_date(claims.expires_on),
        )
        return render(request, "department.html", context)

    def due_of(claims: DepartmentClaims, checkin_id: int) -> date | None:
        with sessions() as session:
            return department_checkin_due(
                session=session, department_id=claims.department_id, checkin_id=checkin_id
            )

    async def open_row(request: Request) -> Response:
        moment = now()
        raw = str(request.path_params["checkin_id"])
        well_formed = _CHECKIN_ID.fullmatch(raw) is not None and int(raw) <= _MAX_ID
        claims = verified(request, moment, scope=f"row:{raw}" if well_formed else "row")
        if isinstance(claims, Response):
            return claims
        if not well_formed:
            return refused(request)
        checkin_id = int(raw)
        due_date = await run_in_threadpool(due_of, claims, checkin_id)
        if due_date is None:  # no such check-in, or another department's
            return refused(request)
        url = form_url(
            settings=settings,
            checkin_id=checkin_id,
            department_id=claims.department_id,
            due_date=due_date,
            issued_on=local_date(moment),
        )
        return RedirectResponse(url, status_code=303)

    return [
        Route("/d/{token}", show, methods=["GET", "HEAD"]),
        Route("/d/{token}/c/{checkin_id}", open_row, methods=["GET", "HEAD"]),
    ]
