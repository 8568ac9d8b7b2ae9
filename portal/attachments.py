"""Evidence on the form: read a multipart answer with its files under the limits, and serve
a stored file through its signed download link (`GET|HEAD /f/{token}`).

`read_upload` parses `multipart/form-data` as it streams in: text fields up to the form's
byte budget, each file into a spooled temporary file (memory up to `SPOOL_BYTES`, then disk)
that stops growing once it passes the size limit, files past the count limit not kept at
all. It never raises for a refused file: the refusals are Chinese messages the form shows
above the text the department typed. The download answers only a valid, unexpired token of
purpose `attachment` for the department that owns the file, with `Content-Disposition:
attachment` (RFC 5987 `filename*`), the sniffed media type and `nosniff`; bytes stream in
slices (`tasks.attachments.iter_content`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from tempfile import SpooledTemporaryFile
from typing import Any, BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from models.attachments import (
    AttachmentLimits,
    AttachmentRefused,
    check_count,
    content_disposition,
    judge_file,
    size_refusal,
)
from models.limits import normalise_text
from models.settings import Settings
from notifications.links import InvalidLink, verify_attachment_token
from portal.pages import CheckinPage
from portal.security import Limiter, RateLimits
from tasks.attachments import (
    AttachmentLink,
    NewAttachment,
    attachment_limits,
    iter_content,
    links_of,
    load_attachment,
)

FILE_FIELD = "attachments"
SPOOL_BYTES = 1024 * 1024
PART_OVERHEAD = 16 * 1024
MAX_FIELDS = 200
NOT_KEPT = "本次提交未保存任何内容；您填写的文字仍在下方，请修改附件后重新选择并提交。"


class FormTooLarge(Exception):
    """The text part of the form is over its byte budget or has too many fields."""


def is_multipart(request: Request) -> bool:
    """Whether the request carries `multipart/form-data` (the form with its file input)."""
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


def body_limit(limits: AttachmentLimits, *, text_bytes: int) -> int:
    """The largest Content-Length a valid multipart answer can have; more is refused at once."""
    return limits.max_count * (limits.max_bytes + PART_OVERHEAD) + text_bytes + PART_OVERHEAD


@dataclass
class _FilePart:
    name: str
    spool: SpooledTemporaryFile[bytes] | None
    digest: Any = field(default_factory=hashlib.sha256)
    size: int = 0


@dataclass
class UploadedForm:
    """The text fields, the files kept (judged later) and the refusals said while reading."""

    fields: dict[str, str] = field(default_factory=dict)
    files: list[_FilePart] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    accepted: list[NewAttachment] = field(default_factory=list)

    def close(self) -> None:
        """Remove every temporary file."""
        for part in self.files:
            if part.spool is not None:
                part.spool.close()


class _Reader:
    """python-multipart callbacks collecting fields and files under `limits`."""

    def __init__(self, limits: AttachmentLimits, text_bytes: int, form: UploadedForm) -> None:
        self.limits, self.text_budget, self.form = limits, text_bytes, form
        self.header_name = self.header_value = b""
        self.disposition = b""
        self.field: str | None = None
        self.data = bytearray()
        self.file: _FilePart | None = None
        self.files_seen = 0
        self.fields_seen = 0
        self.oversized: set[int] = set()

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value_data,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def part_begin(self) -> None:
        self.disposition, self.field, self.file, self.data = b"", None, None, bytearray()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def header_value_data(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        if self.header_name.lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name = self.header_value = b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in options:
            self.fields_seen += 1
            if self.fields_seen > MAX_FIELDS:
                raise FormTooLarge
            self.field = name
            return
        file_name = normalise_text(options[b"filename"].decode("utf-8", "replace"))
        if name != FILE_FIELD or not file_name:
            return
        self.files_seen += 1
        keep = self.files_seen <= self.limits.max_count
        spool = SpooledTemporaryFile(max_size=SPOOL_BYTES) if keep else None
        self.file = _FilePart(name=file_name, spool=spool)
        self.form.files.append(self.file)

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.field is not None:
            self.text_budget -= end - start
            if self.text_budget < 0:
                raise FormTooLarge
            self.data += data[start:end]
            return
        part = self.file
        if part is None or part.spool is None:
            return
        part.size += end - start
        if part.size > self.limits.max_bytes:
            part.spool.close()
            part.spool = None
            self.form.refusals.append(size_refusal(part.name, self.limits).reason)
            return
        chunk = data[start:end]
        part.digest.update(chunk)
        part.spool.write(chunk)

    def part_end(self) -> None:
        if self.field is not None:
            self.form.fields[normalise_text(self.field)] = normalise_text(
                self.data.decode("utf-8", "replace")
            )
        self.field, self.file = None, None


def _judge(form: UploadedForm, limits: AttachmentLimits) -> None:
    """Judge each kept file (type from its bytes, name, size); refusals join `form.refusals`."""
    try:
        check_count(len(form.files), limits)
    except AttachmentRefused as exc:
        form.refusals.insert(0, exc.reason)
        return
    for part in form.files:
        if part.spool is None:
            continue
        spool: BinaryIO = part.spool  # type: ignore[assignment]
        try:
            judged = judge_file(part.name, spool, size=part.size, limits=limits)
        except AttachmentRefused as exc:
            form.refusals.append(exc.reason)
            continue
        form.accepted.append(
            NewAttachment(
                judged=judged, size=part.size, sha256=part.digest.hexdigest(), spool=spool
            )
        )


async def read_upload(request: Request, *, settings: Settings, text_bytes: int) -> UploadedForm:
    """Read a multipart answer; raise `FormTooLarge` if its text is over `text_bytes`, and
    `HTTPException(400)` (as Starlette's own form parser does) if it is not multipart at all.

    The caller closes the result (`UploadedForm.close`). A refused file is a message in
    `refusals` (with `NOT_KEPT` last), never an exception.
    """
    limits = attachment_limits(settings)
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise HTTPException(400, "Missing boundary in multipart.")
    form = UploadedForm()
    reader = _Reader(limits, text_bytes, form)
    parser = MultipartParser(boundary, reader.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        await run_in_threadpool(_judge, form, limits)
    except FormParserError as exc:
        form.close()
        raise HTTPException(400, "Invalid multipart data.") from exc
    except BaseException:
        form.close()
        raise
    if form.refusals:
        form.refusals.append(NOT_KEPT)
    return form


def history_files(
    page: CheckinPage, *, settings: Settings, now: datetime
) -> dict[int, list[AttachmentLink]]:
    """Each earlier version's files with fresh signed links, keyed by version number."""
    return {
        sub.version: links_of(page.attachments.get(sub.id, []), settings=settings, now=now)
        for sub in page.submissions
    }


def attachment_routes(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    now: Callable[[], datetime],
    counter: Limiter,
    limits: RateLimits,
    address_of: Callable[[Request], str],
    invalid: Callable[[Request], Response],
    limited: Callable[[Request], Response],
) -> list[Route]:
    """The download route, rate-limited like the form (per address; bad links stricter)."""

    async def download(request: Request) -> Response:
        window, address = limits.window_seconds, address_of(request)
        if not counter.allow(f"ip:{address}", limit=limits.per_address, window=window):
            return limited(request)
        try:
            attachment_id, department_id = verify_attachment_token(
                request.path_params["token"], settings=settings, now=now()
            )
        except InvalidLink:
            if not counter.allow(f"bad:{address}", limit=limits.per_address_invalid, window=window):
                return limited(request)
            return invalid(request)

        def read() -> Any:
            with sessions() as session:
                return load_attachment(session=session, attachment_id=attachment_id)

        info = await run_in_threadpool(read)
        if info is None or info.department_id != department_id:
            return invalid(request)
        headers = {
            "Content-Disposition": content_disposition(info.file_name),
            "Content-Length": str(info.size),
            "X-Content-Type-Options": "nosniff",
        }
        if request.method == "HEAD":
            return Response(b"", media_type=info.media_type, headers=headers)
        chunks = iter_content(sessions=sessions, info=info, settings=settings)
        return StreamingResponse(
            iterate_in_threadpool(chunks), media_type=info.media_type, headers=headers
        )

    return [Route("/f/{token}", download, methods=["GET", "HEAD"])]
