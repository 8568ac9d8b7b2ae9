"""The completion-request page (申请办结), reached from the check-in form's signed link.

Routes: `GET|HEAD /c/{token}/close` shows the item, its completion state and the earlier
requests with their decisions (reads only); `POST /c/{token}/close` records a request with
its closing summary (CSRF-checked like the form, idempotent on the form's submit id; a
request racing another for the item's one pending slot is retried once, then refused like
any second request). The link is the check-in form's own token, so it expires and verifies
the same way; only the item's lead department may request (`models.closure`). A refused
request (closed item, a request already pending, no summary) shows the page again with the
Chinese reason and what was typed.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models.clock import local_date
from models.closure import MAX_SUMMARY_CHARS, ItemClosureFacts
from models.completion import CompletionRequest
from models.db import transaction
from models.directory import Department
from models.errors import InputError
from models.limits import normalise_text
from models.plan import Item
from models.settings import Settings
from models.supervision import Checkin, CheckinReview
from models.vocabulary import AssignmentRole, ReviewDecision
from notifications.links import InvalidLink, LinkClaims, token_digest
from portal.pages import CheckinPage, format_date, format_moment
from portal.security import CSRF_COOKIE, CSRF_FIELD, csrf_token, csrf_valid, new_nonce
from tasks.closure import closure_facts, request_completion

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
PATH_SUFFIX = "/close"

Render = Callable[..., Response]
Verify = Callable[[Request, datetime], LinkClaims | Response]
Emit = Callable[[datetime], BackgroundTask]


def completion_path(request: Request, page: CheckinPage) -> str:
    """The completion page's path for the form of a lead check-in, "" for a support one."""
    if page.checkin.role != AssignmentRole.LEAD:
        return ""
    return f"{request.url.path}{PATH_SUFFIX}"


@dataclass(frozen=True)
class CompletionPage:
    """What the completion page shows: the item, the department, the rules' facts and the
    department's earlier requests (newest first)."""

    item: Item
    department: Department
    facts: ItemClosureFacts
    requests: list[CompletionRequest]


def load_completion_page(*, session: Session, claims: LinkClaims) -> CompletionPage:
    """The page of the check-in a verified link names; `InvalidLink` if the check-in is gone
    or not the department's. A closed item's cancelled check-in still opens the page (it
    says the item is closed). Reads only."""
    checkin = session.get(Checkin, claims.checkin_id)
    if checkin is None or checkin.department_id != claims.department_id:
        raise InvalidLink
    item = session.scalars(
        select(Item).where(Item.id == checkin.item_id).options(selectinload(Item.plan))
    ).first()
    department = session.get(Department, checkin.department_id)
    if item is None or department is None:
        raise InvalidLink
    requests = list(
        session.scalars(
            select(CompletionRequest)
            .where(
                CompletionRequest.item_id == item.id,
                CompletionRequest.department_id == department.id,
            )
            .order_by(CompletionRequest.requested_at.desc(), CompletionRequest.id.desc())
        )
    )
    return CompletionPage(
        item=item,
        department=department,
        facts=closure_facts(session=session, item=item),
        requests=requests,
    )


def page_context(page: CompletionPage) -> dict[str, Any]:
    """Template variables of the completion page (all text escaped by the template)."""
    facts = page.facts
    return {
        "plan_title": page.item.plan.title,
        "item_number": page.item.number,
        "item_title": page.item.title,
        "department": page.department.name,
        "is_lead": page.department.id in facts.lead_department_ids,
        "closed_on": format_date(facts.closed_on) if facts.closed_on else "",
        "pending_id": facts.pending_request_id,
        "max_chars": MAX_SUMMARY_CHARS,
        "requests": [
            {
                "id": request.id,
                "requested_at": format_moment(request.requested_at),
                "summary": request.summary,
                "decision": request.decision.label,
                "reason": request.reason,
            }
            for request in page.requests
        ],
    }


def completion_routes(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    now: Callable[[], datetime],
    render: Render,
    verified: Verify,
    invalid: Callable[[Request], Response],
    emit: Emit,
    secure_cookie: bool,
) -> list[Route]:
    """The completion page's routes, sharing the form's rendering, link checks, rate limits
    and event publishing (`portal.app.create_app` passes them)."""

    def read(claims: LinkClaims) -> CompletionPage:
        with sessions() as session:
            return load_completion_page(session=session, claims=claims)

    def token_of(request: Request) -> str:
        return str(request.path_params["token"])

    def page_response(
        request: Request,
        page: CompletionPage,
        *,
        summary: str = "",
        errors: list[str] | None = None,
        status: int = 200,
    ) -> Response:
        nonce = request.cookies.get(CSRF_COOKIE) or ""
        if not NONCE_PATTERN.fullmatch(nonce):
            nonce = new_nonce()
        digest = token_digest(token_of(request))
        context = page_context(page) | {
            "csrf_field": CSRF_FIELD,
            "csrf": csrf_token(settings=settings, link_digest=digest, nonce=nonce),
            "submit_id": secrets.token_urlsafe(16),
            "summary": summary,
            "errors": errors or [],
            "form_path": request.url.path.removesuffix(PATH_SUFFIX),
        }
        response = render(request, "completion.html", context, status=status)
        response.set_cookie(
            CSRF_COOKIE, nonce, path="/c/", httponly=True, samesite="strict", secure=secure_cookie
        )
        return response

    async def show(request: Request) -> Response:
        claims = verified(request, now())
        if isinstance(claims, Response):
            return claims
        try:
            page = await run_in_threadpool(read, claims)
        except InvalidLink:
            return invalid(request)
        return page_response(request, page)

    async def submit(request: Request) -> Response:
        moment = now()
        claims = verified(request, moment)
        if isinstance(claims, Response):
            return claims
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            return render(request, "error.html", {"message": "提交内容过长。"}, status=413)
        async with request.form(max_files=0, max_fields=20, max_part_size=MAX_BODY_BYTES) as data:
            raw = {
                normalise_text(key): normalise_text(value)
                for key, value in data.items()
                if isinstance(value, str)
            }
        summary = raw.get("summary", "")
        try:
            page = await run_in_threadpool(read, claims)
        except InvalidLink:
            return invalid(request)
        if not csrf_valid(
            settings=settings,
            link_digest=token_digest(token_of(request)),
            nonce=request.cookies.get(CSRF_COOKIE),
            value=raw.get(CSRF_FIELD, ""),
        ):
            message = "页面已过期或来源不明，请重新打开邮件中的链接后再提交。"
            return render(request, "error.html", {"message": message}, status=403)
        submit_id = raw.get("submit_id", "")[:64]
        key = None
        if submit_id:
            key = hashlib.sha256(f"completion|{claims.checkin_id}|{submit_id}".encode()).hexdigest()

        def write() -> int:
            for attempt in range(2):
                try:
                    with transaction(sessions) as session:
                        return request_completion(
                            session=session,
                            item_id=page.item.id,
                            department_id=page.department.id,
                            summary=summary,
                            now=moment,
                            requested_by=page.department.name,
                            idempotency_key=key,
                            settings=settings,
                        ).id
                except IntegrityError:
                    if attempt:
                        raise
            raise AssertionError("unreachable")

        try:
            request_id = await run_in_threadpool(write)
        except InputError as exc:
            return page_response(request, page, summary=summary, errors=[exc.reason], status=422)
        except Exception:
            logger.exception("portal: a completion request could not be stored")
            message = "系统暂时无法保存您的办结申请，您填写的内容仍保留在下方，请稍后再提交。"
            return page_response(request, page, summary=summary, errors=[message], status=503)
        context = page_context(page) | {"request_id": request_id}
        return render(request, "completion_done.html", context, background=emit(moment))

    return [
        Route("/c/{token}" + PATH_SUFFIX, show, methods=["GET", "HEAD"]),
        Route("/c/{token}" + PATH_SUFFIX, submit, methods=["POST"]),
    ]


@dataclass(frozen=True)
class SettledLink:
    """Why a form link no longer takes answers, for the page that says so."""

    title: str
    message: str
    item: str


def settled_link(*, session: Session, claims: LinkClaims) -> SettledLink | None:
    """The settled state of the check-in a verified form link names: its item closed
    (已办结, with the date) or its report accepted (审核通过, with the date); None for any
    other link that does not open (gone, not the department's, cancelled otherwise). Reads
    only: the check-in, its item and, for an accepted one, the acceptance's date."""
    checkin = session.get(Checkin, claims.checkin_id)
    if checkin is None or checkin.department_id != claims.department_id:
        return None
    item = session.get(Item, checkin.item_id)
    if item is None:
        return None
    label = f"第{item.number}项 {item.title}"
    if item.closed_at is not None:
        closed_on = format_date(local_date(item.closed_at))
        return SettledLink(
            title="任务已办结",
            message=f"该任务已于{closed_on}办结（销号），无需再报送。",
            item=label,
        )
    if checkin.review != ReviewDecision.ACCEPTED:
        return None
    accepted = session.scalar(
        select(CheckinReview.decided_at)
        .where(
            CheckinReview.checkin_id == checkin.id,
            CheckinReview.decision == ReviewDecision.ACCEPTED,
        )
        .order_by(CheckinReview.id.desc())
        .limit(1)
    )
    when = f"已于{format_date(local_date(accepted))}" if accepted is not None else "已"
    return SettledLink(
        title="报送已审核通过",
        message=f"本次报送（截止{format_date(checkin.due_date)}）{when}经督查室审核通过，无需再报送。",
        item=label,
    )


def settled_responder(
    *,
    sessions: sessionmaker[Session],
    render: Render,
    invalid: Callable[[Request], Response],
) -> Callable[..., Awaitable[Response]]:
    """The answer to a verified form link whose check-in no longer takes answers: the page
    saying the item is closed or the report accepted (410, nothing changed, what a POST
    typed shown to copy), else the generic invalid-link page."""

    def read(claims: LinkClaims) -> SettledLink | None:
        with sessions() as session:
            return settled_link(session=session, claims=claims)

    async def respond(
        request: Request, claims: LinkClaims, typed: Sequence[tuple[str, str]] = ()
    ) -> Response:
        try:
            settled = await run_in_threadpool(read, claims)
        except Exception:
            logger.exception("portal: could not read why a link is closed")
            settled = None
        if settled is None:
            return invalid(request)
        context = {
            "title": settled.title,
            "message": settled.message,
            "item": settled.item,
            "fields": list(typed),
        }
        return render(request, "settled.html", context, status=410)

    return respond
