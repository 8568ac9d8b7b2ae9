"""pending check-ins by item (ix_checkin_status_item_due); email bodies compressed with lz4

Revision ID: e4f1a9c3b2d7
Revises: b5c1e0d2f7a9
Create Date: 2026-12-02 03:40:00

The daily pass reads a chunk's pending check-ins due by the request horizon
(`tasks.daily_pass.with_open_checkins`). With only `ix_checkin_status_due` the database read
every pending check-in of every plan due by the horizon and kept the chunk's (60,000 rows a
chunk at 10,000 items, so a pass grew with the square of the plan); `(status, item_id,
due_date)` reads the chunk's items' own.

On PostgreSQL built with lz4 the outbox's `text_body` and `html_body` are compressed with lz4
instead of pglz (the same values and size; a catch-up chunk's 456 emails compressed in 29 ms
with pglz, 11 ms with lz4). Values stored before keep their compression.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e4f1a9c3b2d7"
down_revision: str | None = "b5c1e0d2f7a9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BODIES = ("text_body", "html_body")


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    methods = bind.scalar(
        sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    )
    return "lz4" in (methods or [])


def _set_compression(method: str) -> None:
    for column in _BODIES:
        op.execute(f"ALTER TABLE outbox_message ALTER COLUMN {column} SET COMPRESSION {method}")


def upgrade() -> None:
    with op.batch_alter_table("checkin", schema=None) as batch_op:
        batch_op.create_index(
            "ix_checkin_status_item_due", ["status", "item_id", "due_date"], unique=False
        )
    if _lz4_available():
        _set_compression("lz4")


def downgrade() -> None:
    if _lz4_available():
        _set_compression("pglz")
    with op.batch_alter_table("checkin", schema=None) as batch_op:
        batch_op.drop_index("ix_checkin_status_item_due")
