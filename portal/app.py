"""The check-in portal: a small Starlette app serving the signed-link form and nothing else.

Routes: `GET|HEAD /c/{token}` shows the form (reads only), `POST /c/{token}` records a new
submission version, `GET /healthz`; `/i/{token}` is a leader's instruction page
(`portal.instruct`). Every bad, expired, tampered or closed link gets the
same page with status 404. Tokens are never logged (see `portal.server`). Two submissions
racing for one version number (SQLite has no row lock) retry; the form's idempotency key
keeps a retried write to one version. The completion-request page (申请办结,
`/c/{token}/close`) is `portal.closure`'s.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import jinja2
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models import clock
from models.db import transaction
from models.errors import InputError
from models.instruction import ANSWER_FIELD_PREFIX, parse_answers
from models.limits import normalise_text
from models.settings import Settings
from notifications.links import (
    InvalidLink,
    LinkClaims,
    claims_key,
    token_digest,
    verify_token,
)
from notifications.rendering import make_environment
from portal.attachments import (
    FormTooLarge,
    UploadedForm,
    attachment_routes,
    body_limit,
    history_files,
    is_multipart,
    read_upload,
)
from portal.closure import completion_path, completion_routes, settled_responder
from portal.department import department_routes
from portal.formdata import FIELD_LABELS, ParsedForm, parse_form
from portal.instruct import instruct_routes
from portal.pages import CheckinPage, load_page, page_context, previous_answer
from portal.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    Limiter,
    RateLimiter,
    RateLimits,
    client_address,
    csrf_token,
    csrf_valid,
    new_nonce,
)
from tasks.attachments import attachment_limits
from tasks.events import publish_pending_events
from tasks.instructions import record_answers
from tasks.submissions import CheckinClosed, record_submission

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).parent / "templates"
MAX_BODY_BYTES = 128 * 1024
# Page reads and answers run in at most this many threads per process: the engine's pool
# size, so no request opens (and closes again) an overflow connection, and few threads
# contend for the GIL with the event loop.
DB_THREADS = 5
T = TypeVar("T")
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
TOO_LARGE_MESSAGE = "提交内容过大（附件合计超出允许的大小或数量），请减少附件后重新打开链接提交。"
UNSAVED_MESSAGE = (
    "系统暂时无法保存您的报送，您填写的内容仍保留在下方，请稍后再点击提交；"
    "如多次失败，请复制保存后联系督查室。"
)

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
    return make_environment(jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)


def reading_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions for the page's reads: on a PostgreSQL engine without a transaction
    (autocommit: no BEGIN and ROLLBACK round trips around three SELECTs); otherwise, and
    for sessions bound to a connection (the tests' rolled-back ones), `sessions` itself.
    SQLite keeps its transactions: its `BEGIN IMMEDIATE` is emitted by `models.db`."""
    bind = sessions.kw.get("bind")
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        return sessionmaker(bind.execution_options(isolation_level="AUTOCOMMIT"))
    return sessions


def create_app(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    now: Callable[[], datetime] = clock.now,
    publish: Publisher = publish_if_configured,
    limits: RateLimits | None = None,
    limiter: Limiter | None = None,
) -> ASGIApp:
    """Build the portal ASGI app over `sessions`.

    `now` is the clock seam; `publish(sessions, now)` emits pending domain events after a
    submission commits, as a background task once the confirmation is sent (its failures
    are logged and leave the events for a later pass). `limiter` counts requests (in this
    process by default; `portal.security.SharedRateLimiter` for several worker processes).
    Every response, errors and unrouted paths included, carries `SECURITY_HEADERS`.
    """
    templates = Jinja2Templates(env=template_environment())
    read_sessions = reading_sessions(sessions)
    db_threads: list[anyio.CapacityLimiter] = []  # made in the event loop, on first use

    async def in_db_thread(function: Callable[[], T]) -> T:
        """`function()` in a worker thread, at most `DB_THREADS` at a time."""
        if not db_threads:
            db_threads.append(anyio.CapacityLimiter(DB_THREADS))
        return await anyio.to_thread.run_sync(function, limiter=db_threads[0])

    limits = limits or RateLimits()
    counter: Limiter = limiter or RateLimiter()
    secure_cookie = settings.public_url.startswith("https://")

    def render(
        request: Request,
        name: str,
        context: dict[str, Any],
        status: int = 200,
        background: BackgroundTask | None = None,
    ) -> Response:
        return templates.TemplateResponse(
            request, name, context, status_code=status, background=background
        )

    def invalid(request: Request) -> Response:
        return render(request, "invalid.html", {}, status=404)

    def limited(request: Request) -> Response:
        return render(request, "limited.html", {}, status=429)

    def verified(request: Request, moment: datetime) -> LinkClaims | Response:
        """The link's claims, or the page to answer with (rate-limited or invalid).

        The per-address count is a generous backstop; a bad link also counts against the
        address's stricter budget of failed links, so guessing stays bounded, while the
        per-link limits are keyed on the verified claims, not on the URL's spelling. The
        address is counted first: a refused address counts nothing else.
        """
        address, window = f"ip:{client_address(request)}", limits.window_seconds
        try:
            claims = verify_token(request.path_params["token"], settings=settings, now=moment)
        except InvalidLink:
            bad = (f"bad:{client_address(request)}", limits.per_address_invalid)
            checks = [(address, limits.per_address), bad]
            if not counter.allow_each(checks, window=window):
                return limited(request)
            return invalid(request)
        post = request.method == "POST"
        limit = limits.per_token_post if post else limits.per_token_get
        link = (f"{request.method}:{claims_key(claims)}", limit)
        # one count (one transaction when shared): the address first, then the link
        if not counter.allow_each([(address, limits.per_address), link], window=window):
            return limited(request)
        return claims

    settled = settled_responder(sessions=sessions, render=render, invalid=invalid)

    def read_page(claims: LinkClaims, history: bool = True) -> CheckinPage:
        with read_sessions() as session:
            return load_page(session=session, claims=claims, history=history)

    async def form_again(
        request: Request,
        claims: LinkClaims,
        page: CheckinPage | None,
        *,
        digest: str,
        raw: dict[str, str],
        errors: list[str],
        status: int,
    ) -> Response:
        """The form again with what was typed and `errors`, over the full page (history
        included) when it can still be read, else over `page`, else the kept-text page.
        """
        try:
            page = await in_db_thread(lambda: read_page(claims))
        except Exception:
            logger.exception("portal: could not reload the form page")
        if page is None:
            return unsaved(request, raw)
        try:
            return form_page(request, page, digest=digest, values=raw, errors=errors, status=status)
        except Exception:
            logger.exception("portal: could not re-render the form")
            return unsaved(request, raw)

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
            "completion_path": completion_path(request, page),
            "upload": attachment_limits(settings),
            "history_files": history_files(page, settings=settings, now=now()),
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

    def typed(raw: dict[str, str]) -> list[tuple[str, str]]:
        """What the department typed, labelled, for a page that keeps it."""
        fields = [(label, raw[name]) for name, label in FIELD_LABELS.items() if raw.get(name)]
        fields += [(name, value) for name, value in raw.items() if name.startswith("value_")]
        fields += [
            ("落实批示情况", value)
            for name, value in raw.items()
            if name.startswith(ANSWER_FIELD_PREFIX) and value
        ]
        return fields

    def unsaved(request: Request, raw: dict[str, str]) -> Response:
        """The answer could not be stored: the page that lists what was typed, and says so."""
        context = {"message": UNSAVED_MESSAGE, "fields": typed(raw)}
        return render(request, "unsaved.html", context, 503)

    async def show(request: Request) -> Response:
        claims = verified(request, now())
        if isinstance(claims, Response):
            return claims
        try:
            page = await in_db_thread(lambda: read_page(claims))
        except InvalidLink:
            return await settled(request, claims)
        return form_page(request, page, digest=token_digest(request.path_params["token"]))

    async def submit(request: Request) -> Response:
        moment = now()
        claims = verified(request, moment)
        if isinstance(claims, Response):
            return claims
        length = request.headers.get("content-length", "")
        upload: UploadedForm | None = None
        multipart = is_multipart(request)
        limit = MAX_BODY_BYTES
        if multipart:
            limit = body_limit(attachment_limits(settings), text_bytes=MAX_BODY_BYTES)
        if not length.isdigit() or int(length) > limit:
            message = TOO_LARGE_MESSAGE if multipart else "提交内容过长。"
            return render(request, "error.html", {"message": message}, status=413)
        if multipart:
            try:
                upload = await read_upload(request, settings=settings, text_bytes=MAX_BODY_BYTES)
            except FormTooLarge:
                return render(request, "error.html", {"message": TOO_LARGE_MESSAGE}, status=413)
            raw = upload.fields
        else:
            async with request.form(
                max_files=0, max_fields=200, max_part_size=MAX_BODY_BYTES
            ) as data:
                raw = {
                    normalise_text(key): normalise_text(value)
                    for key, value in data.items()
                    if isinstance(value, str)
                }
        try:
            return await answer(request, claims, raw, upload, moment)
        finally:
            if upload is not None:
                upload.close()

    async def answer(
        request: Request,
        claims: LinkClaims,
        raw: dict[str, str],
        upload: UploadedForm | None,
        moment: datetime,
    ) -> Response:
        digest = token_digest(request.path_params["token"])
        csrf_ok = csrf_valid(
            settings=settings,
            link_digest=digest,
            nonce=request.cookies.get(CSRF_COOKIE),
            value=raw.get(CSRF_FIELD, ""),
        )
        submit_id = raw.get("submit_id", "")[:64]
        key = None
        if submit_id:
            key = hashlib.sha256(f"{claims.checkin_id}|{submit_id}".encode()).hexdigest()
        read: list[CheckinPage] = []  # the page once read, for the form shown again
        refusals = upload.refusals if upload is not None else []

        def store() -> tuple[ParsedForm | None, list[str], int]:
            """One transaction (one thread hop): read the page (`InvalidLink` if gone or
            closed), then refuse a bad CSRF value (None), invalid fields, unanswered leader
            instructions or refused files (their messages), else store the version with its
            files and its answers to the instructions. A version number raced for is
            retried."""
            attempt = 0
            while True:
                try:
                    with transaction(sessions) as session:
                        page = load_page(session=session, claims=claims, history=False)
                        read[:] = [page]
                        if not csrf_ok:
                            return None, [], 0
                        checkin = page.checkin
                        parsed = parse_form(
                            raw,
                            targets=page.targets,
                            due_date=checkin.due_date,
                            plan_year=checkin.item.plan.year,
                        )
                        answered = parse_answers(raw, [i.id for i in page.instructions])
                        errors = answered.errors + parsed.errors + refusals
                        if parsed.form is None or errors:
                            return parsed, errors, 0
                        submission = record_submission(
                            session=session,
                            checkin_id=claims.checkin_id,
                            department_id=claims.department_id,
                            form=parsed.form,
                            source="form",
                            now=moment,
                            idempotency_key=key,
                            settings=settings,
                            attachments=upload.accepted if upload is not None else (),
                        )
                        record_answers(
                            session=session,
                            submission=submission,
                            answers=answered.answers,
                            now=moment,
                        )
                        return parsed, [], submission.version
                except IntegrityError:
                    attempt += 1
                    if attempt >= WRITE_ATTEMPTS:
                        raise

        try:
            parsed, errors, version = await in_db_thread(store)
        except (InvalidLink, CheckinClosed):
            return await settled(request, claims, typed(raw))
        except InputError as exc:
            errors, status = [exc.reason], 422
        except Exception:
            logger.exception("portal: an answer could not be stored; the form keeps it")
            errors, status = [UNSAVED_MESSAGE], 503
        else:
            page = read[0]
            if parsed is None:
                message = "页面已过期或来源不明，请重新打开邮件中的链接后再提交。"
                return render(request, "error.html", {"message": message}, status=403)
            if not errors:
                return done(request, page, version, parsed, moment, upload)
            status = 422
        return await form_again(
            request,
            claims,
            read[0] if read else None,
            digest=digest,
            raw=raw,
            errors=errors,
            status=status,
        )

    def done(
        request: Request,
        page: CheckinPage,
        version: int,
        parsed: ParsedForm,
        moment: datetime,
        upload: UploadedForm | None,
    ) -> Response:
        """The confirmation; pending events are published once it is sent."""
        extension = parsed.form.extension if parsed.form is not None else None
        context = page_context(page) | {"version": version, "extension": extension}
        context["attachment_names"] = (
            [new.judged.file_name for new in upload.accepted] if upload else []
        )
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

    async def server_error(request: Request, exc: Exception) -> Response:  # noqa: ARG001
        return render(request, "server_error.html", {}, status=500)

    routes = [
        Route("/c/{token}", show, methods=["GET", "HEAD"]),
        Route("/c/{token}", submit, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        *attachment_routes(
            settings=settings,
            sessions=sessions,
            now=now,
            counter=counter,
            limits=limits,
            address_of=client_address,
            invalid=invalid,
            limited=limited,
        ),
    ]
    routes += instruct_routes(
        settings=settings,
        sessions=sessions,
        now=now,
        render=render,
        limiter=counter,
        limits=limits,
        secure_cookie=secure_cookie,
        emit=lambda moment: BackgroundTask(_publish_quietly, publish, sessions, moment),
    )
    routes += department_routes(
        settings=settings, sessions=sessions, now=now, render=render, limiter=counter, limits=limits
    )
    routes += completion_routes(
        settings=settings,
        sessions=sessions,
        now=now,
        render=render,
        verified=verified,
        invalid=invalid,
        emit=lambda moment: BackgroundTask(_publish_quietly, publish, sessions, moment),
        secure_cookie=secure_cookie,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Prefect's settings take about 0.7 s of CPU to import, holding the GIL: done on the
        # first answer's publish, every request in flight then stalled for seconds
        if publish is publish_if_configured:
            await run_in_threadpool(_prefect_api_configured)
        yield

    app = Starlette(routes=routes, exception_handlers={Exception: server_error}, lifespan=lifespan)
    return SecurityHeaders(app)


_SECURITY_RAW = [
    (name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
]
_SECURITY_NAMES = frozenset(name for name, _ in _SECURITY_RAW)


class SecurityHeaders:
    """ASGI middleware: set `SECURITY_HEADERS` on every HTTP response, whatever produced it.

    It wraps the whole Starlette app, outside its error middleware, so 404 and 405 from the
    router, 400 from a malformed body and the 500 page all carry the headers. A response's
    own value of one of these headers is replaced (the raw header list is rebuilt once).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request through, adding the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if name.lower() not in _SECURITY_NAMES
                ]
                headers += _SECURITY_RAW
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _publish_quietly(publish: Publisher, sessions: sessionmaker[Session], now: datetime) -> None:
    """Emit pending events; on failure log and keep them pending for the next pass."""
    try:
        publish(sessions, now)
    except Exception:
        logger.exception("could not emit domain events to Prefect; they stay pending")
