"""The check-in portal: a small Starlette app serving the signed-link form and nothing else.

Routes: `GET|HEAD /c/{token}` shows the form (reads only), `POST /c/{token}` records a new
submission version, `GET /healthz`. Every bad, expired, tampered or closed link gets the
same page with status 404. Tokens are never logged (see `portal.server`). Two submissions
racing for one version number (SQLite has no row lock) retry; the form's idempotency key
keeps a retried write to one version.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from models import clock
from models.db import transaction
from models.errors import InputError
from models.settings import Settings
from notifications.links import InvalidLink, LinkClaims, token_digest, verify_token
from portal.formdata import parse_form
from portal.pages import CheckinPage, load_page, page_context, previous_answer
from portal.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    RateLimiter,
    RateLimits,
    csrf_token,
    csrf_valid,
    new_nonce,
)
from tasks.events import publish_pending_events
from tasks.submissions import CheckinClosed, record_submission

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).parent / "templates"
MAX_BODY_BYTES = 128 * 1024
WRITE_ATTEMPTS = 8
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

Publisher = Callable[[sessionmaker[Session], datetime], object]


def publish_if_configured(sessions: sessionmaker[Session], now: datetime) -> int:
    """Emit pending domain events when a Prefect API is configured; else leave them pending.

    Without `PREFECT_API_URL` Prefect would start a throw-away server for every call; the
    events then wait for the next supervision pass, which publishes whatever is pending.
    """
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        logger.info("no PREFECT_API_URL: domain events stay pending for the next flow run")
        return 0
    return publish_pending_events(sessions=sessions, now=now)


def _prefect_api_configured() -> bool:
    """Whether submissions are emitted to a Prefect server at once (`duban doctor` asks)."""
    from prefect.settings import get_current_settings

    return bool(get_current_settings().api.url)


def template_environment() -> jinja2.Environment:
    """The portal's one Jinja2 environment: autoescape on, undefined variables are errors."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def create_app(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    now: Callable[[], datetime] = clock.now,
    publish: Publisher = publish_if_configured,
    limits: RateLimits | None = None,
    limiter: RateLimiter | None = None,
) -> Starlette:
    """Build the portal ASGI app over `sessions`.

    `now` is the clock seam; `publish(sessions, now)` emits pending domain events after a
    submission commits, as a background task once the confirmation is sent (its failures
    are logged and leave the events for a later pass).
    """
    templates = Jinja2Templates(env=template_environment())
    limits = limits or RateLimits()
    limiter = limiter or RateLimiter()
    secure_cookie = settings.public_url.startswith("https://")

    def render(
        request: Request,
        name: str,
        context: dict[str, Any],
        status: int = 200,
        background: BackgroundTask | None = None,
    ) -> Response:
        response = templates.TemplateResponse(
            request, name, context, status_code=status, background=background
        )
        response.headers.update(SECURITY_HEADERS)
        return response

    def invalid(request: Request) -> Response:
        return render(request, "invalid.html", {}, status=404)

    def rate_limited(request: Request, digest: str | None) -> Response | None:
        window = limits.window_seconds
        address = request.client.host if request.client else "unknown"
        if not limiter.allow(f"ip:{address}", limit=limits.per_address, window=window):
            return render(request, "limited.html", {}, status=429)
        if digest is not None:
            post = request.method == "POST"
            limit = limits.per_token_post if post else limits.per_token_get
            if not limiter.allow(f"{request.method}:{digest}", limit=limit, window=window):
                return render(request, "limited.html", {}, status=429)
        return None

    def read_page(claims: LinkClaims) -> CheckinPage:
        with sessions() as session:
            return load_page(session=session, claims=claims)

    def form_page(
        request: Request,
        page: CheckinPage,
        *,
        digest: str,
        values: dict[str, str] | None = None,
        errors: list[str] | None = None,
        status: int = 200,
    ) -> Response:
        nonce = request.cookies.get(CSRF_COOKIE) or ""
        if not NONCE_PATTERN.fullmatch(nonce):
            nonce = new_nonce()
        context = page_context(page) | {
            "csrf_field": CSRF_FIELD,
            "csrf": csrf_token(settings=settings, link_digest=digest, nonce=nonce),
            "submit_id": secrets.token_urlsafe(16),
            "values": values if values is not None else previous_answer(page),
            "errors": errors or [],
        }
        response = render(request, "form.html", context, status=status)
        response.set_cookie(
            CSRF_COOKIE,
            nonce,
            path="/c/",
            httponly=True,
            samesite="strict",
            secure=secure_cookie,
        )
        return response

    async def show(request: Request) -> Response:
        token = request.path_params["token"]
        digest = token_digest(token)
        limited = rate_limited(request, digest)
        if limited is not None:
            return limited
        try:
            claims = verify_token(token, settings=settings, now=now())
            page = await run_in_threadpool(read_page, claims)
        except InvalidLink:
            return invalid(request)
        return form_page(request, page, digest=digest)

    async def submit(request: Request) -> Response:
        token = request.path_params["token"]
        digest = token_digest(token)
        limited = rate_limited(request, digest)
        if limited is not None:
            return limited
        moment = now()
        try:
            claims = verify_token(token, settings=settings, now=moment)
            page = await run_in_threadpool(read_page, claims)
        except InvalidLink:
            return invalid(request)
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            return render(request, "error.html", {"message": "提交内容过长。"}, status=413)
        async with request.form(max_files=0, max_fields=200, max_part_size=MAX_BODY_BYTES) as data:
            raw = {key: value for key, value in data.items() if isinstance(value, str)}
        if not csrf_valid(
            settings=settings,
            link_digest=digest,
            nonce=request.cookies.get(CSRF_COOKIE),
            value=raw.get(CSRF_FIELD, ""),
        ):
            message = "页面已过期或来源不明，请重新打开邮件中的链接后再提交。"
            return render(request, "error.html", {"message": message}, status=403)
        parsed = parse_form(raw, targets=page.targets)
        if parsed.form is None:
            return form_page(
                request, page, digest=digest, values=raw, errors=parsed.errors, status=422
            )
        submit_id = raw.get("submit_id", "")[:64]
        key = None
        if submit_id:
            key = hashlib.sha256(f"{claims.checkin_id}|{submit_id}".encode()).hexdigest()
        form = parsed.form

        def write() -> int:
            attempt = 0
            while True:
                try:
                    with transaction(sessions) as session:
                        submission = record_submission(
                            session=session,
                            checkin_id=claims.checkin_id,
                            department_id=claims.department_id,
                            form=form,
                            source="form",
                            now=moment,
                            idempotency_key=key,
                            settings=settings,
                        )
                        return submission.version
                except IntegrityError:
                    attempt += 1
                    if attempt >= WRITE_ATTEMPTS:
                        raise

        try:
            version = await run_in_threadpool(write)
        except CheckinClosed:
            return invalid(request)
        except InputError as exc:
            return form_page(
                request, page, digest=digest, values=raw, errors=[exc.reason], status=422
            )
        context = page_context(page) | {"version": version, "extension": form.extension}
        emit = BackgroundTask(_publish_quietly, publish, sessions, moment)
        return render(request, "done.html", context, background=emit)

    async def healthz(request: Request) -> Response:  # noqa: ARG001
        def ping() -> None:
            with sessions() as session:
                session.execute(text("select 1"))

        try:
            await run_in_threadpool(ping)
        except Exception:
            logger.exception("portal health check: database unreachable")
            return JSONResponse({"status": "database unavailable"}, status_code=503)
        return JSONResponse({"status": "ok", "prefect_api": _prefect_api_configured()})

    routes = [
        Route("/c/{token}", show, methods=["GET", "HEAD"]),
        Route("/c/{token}", submit, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
    ]
    return Starlette(routes=routes)


def _publish_quietly(publish: Publisher, sessions: sessionmaker[Session], now: datetime) -> None:
    """Emit pending events; on failure log and keep them pending for the next pass."""
    try:
        publish(sessions, now)
    except Exception:
        logger.exception("could not emit domain events to Prefect; they stay pending")
