"""The leader instruction page (领导批示): `GET|HEAD /i/{token}` shows one item's summary and a
text area (reads only), `POST /i/{token}` records the instruction.

The token is an instruct token (`notifications.links.verify_instruct_token`: purpose
`instruct`, one item, one leader); a check-in form token, a tampered or expired one gets
the same page (404), and on POST that page keeps what the leader typed. POSTs carry the
form's signed double-submit CSRF value (`portal.security`, cookie path `/i/`) and the item
id the page was shown for. Rate limits are those of the form, keyed on the verified claims.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
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

from models.daily_pass import item_label
from models.db import transaction
from models.directory import Department
from models.errors import InputError
from models.instruction import INSTRUCTION_MAX, InstructionFact, leader_title
from models.limits import normalise_text
from models.plan import Item
from models.settings import Settings
from models.supervision import LATEST_FIRST, Checkin, Submission
from models.vocabulary import InstructionSource, SelfStatusValue
from notifications.links import (
    InstructClaims,
    InvalidLink,
    instruct_claims_key,
    token_digest,
    verify_instruct_token,
)
from portal.pages import format_moment
from portal.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    Limiter,
    RateLimits,
    client_address,
    csrf_token,
    csrf_valid,
    new_nonce,
)
from tasks.instructions import instruction_facts, lead_departments, leader_of, record_instruction

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
WRITE_ATTEMPTS = 8
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
UNSAVED = "系统暂时无法保存批示，您填写的内容仍保留在下方，请稍后再提交。"
STALE = "页面已过期或来源不明，请重新打开邮件中的批示链接后再提交；您填写的内容保留在下方。"

Render = Callable[..., Response]


@dataclass(frozen=True)
class InstructPage:
    """What the leader's page shows, loaded in one session."""

    item: Item
    leader: str
    leader_name: str
    leads: list[str]
    latest: list[dict[str, str]]
    instructions: list[InstructionFact]


def load_instruct_page(*, session: Session, claims: InstructClaims) -> InstructPage:
    """The item and leader a verified instruct link names; `InvalidLink` when the item or
    the leader's department is gone. Reads only."""
    item = session.scalars(
        select(Item)
        .where(Item.id == claims.item_id)
        .options(selectinload(Item.plan), selectinload(Item.targets))
    ).first()
    department = session.get(Department, claims.department_id)
    if item is None or department is None:
        raise InvalidLink
    name, _ = leader_of(department, claims.role)
    leads = lead_departments(session=session, item_id=item.id)
    latest = []
    for dept in leads:
        submission = session.scalars(
            select(Submission)
            .join(Checkin, Checkin.id == Submission.checkin_id)
            .where(Checkin.item_id == item.id, Checkin.department_id == dept.id)
            .order_by(*LATEST_FIRST)
            .limit(1)
        ).first()
        if submission is not None:
            latest.append(
                {
                    "department": dept.name,
                    "submitted_at": format_moment(submission.submitted_at),
                    "status": SelfStatusValue.label_of(submission.status),
                    "narrative": submission.narrative,
                    "problems": submission.problems,
                }
            )
    return InstructPage(
        item=item,
        leader=leader_title(claims.role, name or department.name),
        leader_name=name or f"{department.name}{leader_title(claims.role, '')}",
        leads=[dept.name for dept in leads],
        latest=latest,
        instructions=instruction_facts(session=session, item_ids=[item.id]),
    )


def instruct_context(page: InstructPage) -> dict[str, Any]:
    """Template variables of the leader's page (all text escaped by the template)."""
    item = page.item
    return {
        "plan_title": item.plan.title,
        "item_id": item.id,
        "item_label": item_label(item),
        "item_body": item.body,
        "colour": item.colour.badge,
        "leads": "、".join(page.leads) or "（尚未交办）",
        "targets": [target.text for target in item.targets],
        "latest": page.latest,
        "leader": page.leader,
        "text_max": INSTRUCTION_MAX,
        "instructions": [
            {
                "leader": fact.leader,
                "given_at": format_moment(fact.given_at),
                "text": fact.text,
                "state": fact.state.label,
                "answer": fact.answer,
                "answered_by": fact.answered_by,
            }
            for fact in page.instructions
        ],
    }


def instruct_routes(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    now: Callable[[], datetime],
    render: Render,
    limiter: Limiter,
    limits: RateLimits,
    secure_cookie: bool,
    emit: Callable[[datetime], BackgroundTask],
) -> list[Route]:
    """The `/i/{token}` routes over the portal's `render`, rate `limiter` and `emit` (the
    background task that publishes pending domain events after a commit)."""

    def refused(request: Request, message: str, text: str, status: int) -> Response:
        context = {"message": message, "text": text}
        return render(request, "instruct_refused.html", context, status)

    def verified(request: Request, moment: datetime, text: str) -> InstructClaims | Response:
        window = limits.window_seconds
        address = client_address(request)
        if not limiter.allow(f"ip:{address}", limit=limits.per_address, window=window):
            return render(request, "limited.html", {}, 429)
        try:
            claims = verify_instruct_token(
                request.path_params["token"], settings=settings, now=moment
            )
        except InvalidLink:
            if not limiter.allow(f"bad:{address}", limit=limits.per_address_invalid, window=window):
                return render(request, "limited.html", {}, 429)
            return invalid(request, text)
        post = request.method == "POST"
        limit = limits.per_token_post if post else limits.per_token_get
        key = f"{request.method}:{instruct_claims_key(claims)}"
        if not limiter.allow(key, limit=limit, window=window):
            return render(request, "limited.html", {}, 429)
        return claims

    def invalid(request: Request, text: str = "") -> Response:
        message = (
            "该批示链接无效、已过期，或不是批示链接（报送链接不能用于批示）。"
            "请使用最近一封督办邮件中的批示链接，或请督查室代为录入。"
        )
        return refused(request, message, text, 404)

    def read(claims: InstructClaims) -> InstructPage:
        with sessions() as session:
            return load_instruct_page(session=session, claims=claims)

    def page_response(
        request: Request,
        page: InstructPage,
        *,
        text: str = "",
        errors: list[str] | None = None,
        status: int = 200,
    ) -> Response:
        nonce = request.cookies.get(CSRF_COOKIE) or ""
        if not NONCE_PATTERN.fullmatch(nonce):
            nonce = new_nonce()
        digest = token_digest(request.path_params["token"])
        context = instruct_context(page) | {
            "csrf_field": CSRF_FIELD,
            "csrf": csrf_token(settings=settings, link_digest=digest, nonce=nonce),
            "submit_id": secrets.token_urlsafe(16),
            "text": text,
            "errors": errors or [],
        }
        response = render(request, "instruct.html", context, status)
        response.set_cookie(
            CSRF_COOKIE, nonce, path="/i/", httponly=True, samesite="strict", secure=secure_cookie
        )
        return response

    async def show(request: Request) -> Response:
        claims = verified(request, now(), "")
        if isinstance(claims, Response):
            return claims
        try:
            page = await run_in_threadpool(read, claims)
        except InvalidLink:
            return invalid(request)
        return page_response(request, page)

    async def submit(request: Request) -> Response:
        moment = now()
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            return render(request, "error.html", {"message": "提交内容过长。"}, 413)
        async with request.form(max_files=0, max_fields=20, max_part_size=MAX_BODY_BYTES) as data:
            raw = {
                normalise_text(key): normalise_text(value)
                for key, value in data.items()
                if isinstance(value, str)
            }
        text = raw.get("text", "")
        claims = verified(request, moment, text)
        if isinstance(claims, Response):
            return claims
        if not csrf_valid(
            settings=settings,
            link_digest=token_digest(request.path_params["token"]),
            nonce=request.cookies.get(CSRF_COOKIE),
            value=raw.get(CSRF_FIELD, ""),
        ):
            return refused(request, STALE, text, 403)
        try:
            page = await run_in_threadpool(read, claims)
        except InvalidLink:
            return invalid(request, text)
        except Exception:
            logger.exception("portal: the instruction page could not be read")
            return refused(request, UNSAVED, text, 503)
        if raw.get("item_id", "") != str(claims.item_id):
            message = (
                f"该批示链接只能用于“{item_label(page.item)}”，不能对其他任务批示；"
                "请打开该任务督办邮件中的批示链接。"
            )
            return refused(request, message, text, 422)
        try:
            created = await run_in_threadpool(write, claims, page, raw, moment)
        except InputError as exc:
            return page_response(request, page, text=text, errors=[exc.reason], status=422)
        except Exception:
            logger.exception("portal: an instruction could not be stored; the page keeps it")
            return page_response(request, page, text=text, errors=[UNSAVED], status=503)
        context = instruct_context(page) | {"text": text.strip(), "created": created}
        return render(request, "instruct_done.html", context, 200, emit(moment))

    def write(
        claims: InstructClaims, page: InstructPage, raw: dict[str, str], moment: datetime
    ) -> bool:
        attempt = 0
        while True:
            try:
                with transaction(sessions) as session:
                    recorded = record_instruction(
                        session=session,
                        item_id=claims.item_id,
                        leader_role=claims.role,
                        leader_name=page.leader_name,
                        leader_department_id=claims.department_id,
                        text=raw.get("text", ""),
                        source=InstructionSource.LINK,
                        now=moment,
                        submit_id=raw.get("submit_id", ""),
                        settings=settings,
                    )
                    return recorded.created
            except IntegrityError:
                attempt += 1
                if attempt >= WRITE_ATTEMPTS:
                    raise

    return [
        Route("/i/{token}", show, methods=["GET", "HEAD"]),
        Route("/i/{token}", submit, methods=["POST"]),
    ]
