"""Evidence files (附件): store them with their owner, list them, stream their bytes back.

Repository functions; the caller owns the transaction, so a submission and its files commit
together (`tasks.submissions.record_submission(attachments=...)`). Bytes go to the database
row (default: every portal and worker reads the same database) or, with
`DUBAN_ATTACHMENT_DIR`, to a shared directory under their sha256 (never a user's name).
Bytes are inserted one file at a time with a Core statement (no ORM object keeps them) and
read back in `CHUNK_BYTES` slices, each in its own short session.

The API other parts call:
- `store_attachments(session=, files=, department_id=, now=, settings=, submission_id=|
  completion_request_id=)` stores accepted uploads (`NewAttachment`) for one owner;
- `attachments_of_submissions(session=, submission_ids=)` / `attachments_of_completion_requests`
  list metadata (no bytes) per owner;
- `submission_attachment_links(session=, submission_id=, settings=, now=)` the files of one
  submission with signed download URLs (`AttachmentLink`), for the receipt, review and form;
- `notifications.links.attachment_url` signs one URL; `portal.attachments` serves it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, cast

from sqlalchemy import LargeBinary, func, insert, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import InstrumentedAttribute

from models.attachment_table import Attachment
from models.attachments import AttachmentLimits, JudgedFile, format_size, limits_of
from models.settings import Settings
from models.vocabulary import AttachmentStorage, AttachmentType
from notifications.context import chunked
from notifications.links import attachment_url

CHUNK_BYTES = 256 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class NewAttachment:
    """An accepted upload waiting to be stored: its judgement, size, sha256 and bytes (a
    seekable file, read from its start)."""

    judged: JudgedFile
    size: int
    sha256: str
    spool: BinaryIO


@dataclass(frozen=True)
class AttachmentInfo:
    """A stored attachment without its bytes."""

    id: int
    submission_id: int | None
    completion_request_id: int | None
    department_id: int
    position: int
    file_name: str
    kind: AttachmentType
    media_type: str
    size: int
    sha256: str
    storage: AttachmentStorage
    uploaded_at: datetime


@dataclass(frozen=True)
class AttachmentLink:
    """An attachment as a reader sees it: name, type, size and a signed download URL."""

    id: int
    file_name: str
    kind_label: str
    size_text: str
    url: str


def attachment_limits(settings: Settings) -> AttachmentLimits:
    """The upload limits in the settings (`DUBAN_ATTACHMENT_MAX_BYTES`, `_MAX_COUNT`, `_TYPES`)."""
    return limits_of(
        max_bytes=settings.attachment_max_bytes,
        max_count=settings.attachment_max_count,
        types=settings.attachment_types,
    )


def directory_path(root: Path, sha256: str) -> Path:
    """Where the directory store keeps the bytes whose digest is `sha256` (`<root>/ab/ab…`)."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError("not a sha256 hex digest")
    return root / sha256[:2] / sha256


def _write_to_directory(root: Path, new: NewAttachment) -> None:
    """Write `new`'s bytes under their digest, atomically; an existing copy is kept."""
    target = directory_path(root, new.sha256)
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    new.spool.seek(0)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            while chunk := new.spool.read(CHUNK_BYTES):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def store_attachments(
    *,
    session: Session,
    files: Iterable[NewAttachment],
    department_id: int,
    now: datetime,
    settings: Settings,
    submission_id: int | None = None,
    completion_request_id: int | None = None,
) -> list[int]:
    """Insert `files` (in order) for exactly one owner; return their ids. Does not commit.

    With `settings.attachment_dir` the bytes are written there first (content-addressed, so
    a rolled-back transaction leaves at most an unreferenced copy); else into the row.
    """
    if (submission_id is None) == (completion_request_id is None):
        raise ValueError("an attachment has exactly one owner")
    root = settings.attachment_dir
    ids: list[int] = []
    for position, new in enumerate(files, start=1):
        content: bytes | None = None
        if root is not None:
            _write_to_directory(root, new)
        else:
            new.spool.seek(0)
            content = new.spool.read()
        row_id = session.execute(
            insert(Attachment)
            .values(
                submission_id=submission_id,
                completion_request_id=completion_request_id,
                department_id=department_id,
                position=position,
                file_name=new.judged.file_name,
                kind=new.judged.kind,
                media_type=new.judged.media_type,
                size=new.size,
                sha256=new.sha256,
                storage=AttachmentStorage.DATABASE if root is None else AttachmentStorage.DIRECTORY,
                content=content,
                uploaded_at=now,
            )
            .returning(Attachment.id)
        ).scalar_one()
        del content
        ids.append(int(row_id))
    return ids


_INFO_COLUMNS = (
    Attachment.id,
    Attachment.submission_id,
    Attachment.completion_request_id,
    Attachment.department_id,
    Attachment.position,
    Attachment.file_name,
    Attachment.kind,
    Attachment.media_type,
    Attachment.size,
    Attachment.sha256,
    Attachment.storage,
    Attachment.uploaded_at,
)


def _infos(
    session: Session, owner: InstrumentedAttribute[int | None], ids: Collection[int]
) -> dict[int, list[AttachmentInfo]]:
    found: dict[int, list[AttachmentInfo]] = {}
    if not ids:
        return found
    rows = session.execute(
        select(*_INFO_COLUMNS)
        .where(owner.in_(list(ids)))
        .order_by(owner, Attachment.position, Attachment.id)
    )
    for row in rows:
        info = AttachmentInfo(*row)
        key = (
            info.submission_id if owner is Attachment.submission_id else info.completion_request_id
        )
        if key is not None:
            found.setdefault(key, []).append(info)
    return found


def attachments_of_submissions(
    *, session: Session, submission_ids: Collection[int]
) -> dict[int, list[AttachmentInfo]]:
    """Each listed submission's attachments in upload order (one query; no bytes loaded)."""
    return _infos(session, Attachment.submission_id, submission_ids)


def attachments_of_completion_requests(
    *, session: Session, completion_request_ids: Collection[int]
) -> dict[int, list[AttachmentInfo]]:
    """Each listed completion request's attachments in upload order (one query, no bytes)."""
    return _infos(session, Attachment.completion_request_id, completion_request_ids)


def load_attachment(*, session: Session, attachment_id: int) -> AttachmentInfo | None:
    """One attachment's metadata, or None."""
    row = session.execute(select(*_INFO_COLUMNS).where(Attachment.id == attachment_id)).first()
    return AttachmentInfo(*row) if row is not None else None


def links_of(
    infos: Iterable[AttachmentInfo], *, settings: Settings, now: datetime
) -> list[AttachmentLink]:
    """`infos` as reader-facing links, each URL signed at `now` (`attachment_link_days`)."""
    return [
        AttachmentLink(
            id=info.id,
            file_name=info.file_name,
            kind_label=info.kind.label,
            size_text=format_size(info.size),
            url=attachment_url(
                settings=settings,
                attachment_id=info.id,
                department_id=info.department_id,
                now=now,
            ),
        )
        for info in infos
    ]


def submission_attachment_links(
    *, session: Session, submission_id: int, settings: Settings, now: datetime
) -> list[AttachmentLink]:
    """The attachments of one submission with signed download URLs (receipt, review)."""
    infos = attachments_of_submissions(session=session, submission_ids=[submission_id])
    return links_of(infos.get(submission_id, []), settings=settings, now=now)


def iter_content(
    *,
    sessions: sessionmaker[Session],
    info: AttachmentInfo,
    settings: Settings,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[bytes]:
    """The attachment's bytes in slices of at most `chunk_bytes`, each read in its own short
    session (the database store) or from the shared directory; never the whole file at once.
    """
    if info.storage is AttachmentStorage.DIRECTORY:
        if settings.attachment_dir is None:
            raise FileNotFoundError("DUBAN_ATTACHMENT_DIR is not set")
        with directory_path(settings.attachment_dir, info.sha256).open("rb") as stored:
            while piece := stored.read(chunk_bytes):
                yield piece
        return
    for offset in range(0, info.size, chunk_bytes):
        with sessions() as session:
            chunk = _read_slice(session, info.id, offset, chunk_bytes)
        if not chunk:
            return
        yield chunk


def _read_slice(session: Session, attachment_id: int, offset: int, size: int) -> bytes:
    """`size` bytes of one stored row's content from `offset`: SQLite's incremental blob
    I/O (a `substr` there reads the whole value), PostgreSQL's `substr` on the bytea."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        raw = cast(sqlite3.Connection, connection.connection.dbapi_connection)
        with raw.blobopen("attachment", "content", attachment_id, readonly=True) as blob:
            blob.seek(offset)
            return blob.read(size)
    chunk = session.scalar(
        select(func.substr(Attachment.content, offset + 1, size, type_=LargeBinary)).where(
            Attachment.id == attachment_id
        )
    )
    return bytes(chunk or b"")


def file_names_by_item(
    *, session: Session, latest: Mapping[int, int]
) -> dict[int, tuple[str, ...]]:
    """Per item, the file names of the submission `latest` maps it to (the reports pass each
    item's latest submission), in upload order; items whose submission has none are left out.
    """
    ids = sorted(set(latest.values()))
    files: dict[int, list[AttachmentInfo]] = {}
    for part in chunked(ids):
        files.update(attachments_of_submissions(session=session, submission_ids=part))
    return {
        item_id: tuple(info.file_name for info in files[submission_id])
        for item_id, submission_id in latest.items()
        if submission_id in files
    }
