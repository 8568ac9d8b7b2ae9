"""The database handle: an engine and its session factory for the configured database.

The one place that turns settings into a connected, migrated store. The CLI opens a store per
command (`open_store`); flows and tasks that run many times in one process (a worker, the
demo) share a cached one per URL (`store_for`). Flows receive the session factory from here
and pass it down to the tasks, so nothing below `flows/` reaches into the CLI's wiring.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from models.db import ensure_migrated, make_engine, make_sessionmaker
from models.settings import Settings, get_settings


@dataclass(frozen=True)
class Store:
    """An engine and its session factory for the configured database."""

    engine: Engine
    sessions: sessionmaker[Session]


def open_store(settings: Settings | None = None, *, check_migrated: bool = True) -> Store:
    """Connect to the configured database; refuse an un-migrated one with a clear error."""
    settings = settings or get_settings()
    engine = make_engine(settings.effective_database_url)
    if check_migrated:
        ensure_migrated(engine)
    return Store(engine=engine, sessions=make_sessionmaker(engine))


@lru_cache(maxsize=4)
def store_for(url: str) -> Store:
    """A cached, migrated store for `url` (for flows that run many times in a process)."""
    engine = make_engine(url)
    ensure_migrated(engine)
    return Store(engine=engine, sessions=make_sessionmaker(engine))


def configured_sessions() -> sessionmaker[Session]:
    """The session factory of the database the current settings name (cached per URL)."""
    return store_for(get_settings().effective_database_url).sessions
