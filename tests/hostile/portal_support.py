"""Shared set-up for the portal's hostile tests: a portal over rolled-back rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from models.db import transaction
from tests.integration.test_portal import Portal
from tests.portal_rows import make_checkin, rolled_back_sessions


@pytest.fixture(name="sessions")
def sessions_fixture(migrated_engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions joined to an outer transaction that is rolled back after the test."""
    with rolled_back_sessions(migrated_engine) as factory:
        yield factory


@pytest.fixture(name="portal")
def portal_fixture(sessions: sessionmaker[Session]) -> Portal:
    """A portal (test clock, in-memory limiter) over one pending check-in."""
    with transaction(sessions) as session:
        rows = make_checkin(session)
    return Portal(sessions=sessions, rows=rows)
