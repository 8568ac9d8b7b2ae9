"""A fresh migrated database per backend for the relay tests, which commit for real."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, delete, text

from models.db import make_engine, upgrade
from models.outbox import OutboxMessage
from tests.conftest import PG_ADMIN_URL


def fresh_database(backend: str, tmp: Path) -> Iterator[tuple[str, Engine]]:
    """Yield (url, engine) of a new migrated database; drops a PostgreSQL one afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'relay.db'}"
        engine = make_engine(url)
        upgrade(engine)
        yield url, engine
        engine.dispose()
        return
    name = f"duban_relay_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        yield url, engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def clear_outbox(engine: Engine) -> None:
    """Delete every outbox row (each relay test starts from an empty outbox)."""
    with engine.begin() as connection:
        connection.execute(delete(OutboxMessage))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"], name="relay_db")
def relay_db_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Engine]]:
    """(url, engine) of a fresh database for the importing test module, once per backend
    (import `relay_db_fixture` into a test module to use it)."""
    if request.param == "postgresql":
        request.getfixturevalue("pg_database_url")
    yield from fresh_database(request.param, tmp_path_factory.mktemp("relay"))
