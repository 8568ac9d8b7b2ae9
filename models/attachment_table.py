"""The attachment table: evidence files (附件) with their bytes, owned by a submission.

An attachment belongs to exactly one owner: a submission (报送) today, a completion request
(申请办结) later (`completion_request_id`, whose foreign key the closure work adds). Its bytes
are in `content` (the database store) or, with `storage == directory`, in the configured
shared directory under their sha256; `content` is deferred so listing never loads bytes.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, deferred, mapped_column

from models.base import Base, IntPK, StrEnumColumn, Timestamp
from models.vocabulary import AttachmentStorage, AttachmentType


class Attachment(Base):
    """One evidence file: display name, sniffed type, size, sha256, owner and bytes."""

    __tablename__ = "attachment"
    __table_args__ = (
        CheckConstraint(
            "(submission_id IS NULL) <> (completion_request_id IS NULL)", name="one_owner"
        ),
    )

    id: Mapped[IntPK]
    submission_id: Mapped[int | None] = mapped_column(
        ForeignKey("submission.id", ondelete="CASCADE"), index=True, default=None
    )
    completion_request_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    file_name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[AttachmentType] = mapped_column(StrEnumColumn(AttachmentType, 10))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    storage: Mapped[AttachmentStorage] = mapped_column(StrEnumColumn(AttachmentStorage, 10))
    content: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, default=None))
    uploaded_at: Mapped[Timestamp]
