"""A department's own page (本部门督办事项): `GET|HEAD /d/{token}`, read-only.

The token is a department token (`notifications.links.verify_department_token`: purpose
`department`, one department, expiring like the other links); a form, instruct or
attachment token, a tampered or an expired one gets the same Chinese page with status 404.
The page lists what the department owes across all plans (`models.department_page`,
loaded by `tasks.department_page` in a fixed number of queries) and nothing of another
department; every row links to its check-in's form with a freshly signed form link.
Opening it writes nothing; there is no POST. Rate limits are the form's, keyed on the
verified claims; the security headers are set app-wide (`portal.app.SecurityHeaders`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
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
from portal.security import Limiter, RateLimits
from tasks.department_page import load_department_page

__all__ = ["department_context", "department_routes"]

Render = Callable[..., Response]


def _row(row: PageRow, *, settings: Settings, department_id: int, now: datetime) -> dict[str, Any]:
    return {
        "plan": row.plan_title,
        "item": row.item_label,
        "kind": row.kind_label,
        "role": row.role_label,
        "due": format_date(row.due_date),
        "overdue_days": row.overdue_days,
        "colour": row.colour,
        "colour_label": row.colour_label,
        "level": row.level,
        "level_label": row.level_label,
        "detail": row.detail,
        "by": row.by,
        "since": format_moment(row.since) if row.since is not None else "",
        "form_url": form_url(
            settings=settings,
            checkin_id=row.checkin_id,
            department_id=department_id,
            due_date=row.due_date,
            issued_on=local_date(now),
        ),
    }


def department_context(
    page: DepartmentPage, *, settings: Settings, now: datetime, expires_on: str
) -> dict[str, Any]:
    """Template variables of the page (all text escaped by the template)."""

    def rows(section: tuple[PageRow, ...]) -> list[dict[str, Any]]:
        return [
            _row(row, settings=settings, department_id=page.department_id, now=now)
            for row in section
        ]

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
    """The `/d/{token}` route over the portal's `render` and rate `limiter`."""

    def address_of(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def invalid(request: Request) -> Response:
        return render(request, "department_invalid.html", {}, 404)

    def verified(request: Request, moment: datetime) -> DepartmentClaims | Response:
        window = limits.window_seconds
        address = address_of(request)
        if not limiter.allow(f"ip:{address}", limit=limits.per_address, window=window):
            return render(request, "limited.html", {}, 429)
        try:
            claims = verify_department_token(
                request.path_params["token"], settings=settings, now=moment
            )
        except InvalidLink:
            if not limiter.allow(f"bad:{address}", limit=limits.per_address_invalid, window=window):
                return render(request, "limited.html", {}, 429)
            return invalid(request)
        key = f"{request.method}:{department_claims_key(claims)}"
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
            page, settings=settings, now=moment, expires_on=format_date(claims.expires_on)
        )
        return render(request, "department.html", context)

    return [Route("/d/{token}", show, methods=["GET", "HEAD"])]
