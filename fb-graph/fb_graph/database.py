"""Databases named by a setting: a SQLite file path or any SQLAlchemy URL (the target's ledger,
the webhook spool). SQLite files are private (mode 0600), in WAL mode with full sync, so a
commit is on disk before it returns.

SQLAlchemy (about a quarter of a second to import) is imported when a database is opened, not
with this module: a run of the target without a ledger never loads it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa


def database_url(location: str) -> str:
    """A SQLAlchemy URL from a URL or a plain file path (SQLite)."""
    if "://" in location:
        return location
    path = Path(location).expanduser().resolve()
    return f"sqlite:///{path}"


def sqlite_path(location: str) -> Path | None:
    """The file of a SQLite location, or None for another database."""
    import sqlalchemy as sa

    url = sa.engine.make_url(database_url(location))
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def open_engine(location: str, **engine_options: Any) -> sa.Engine:
    """An engine for ``location``; a SQLite file is created private, its folder too."""
    import sqlalchemy as sa

    path = sqlite_path(location)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)
        engine_options.setdefault("connect_args", {}).setdefault("timeout", 30)
    engine = sa.create_engine(database_url(location), **engine_options)
    if path is not None:

        @sa.event.listens_for(engine, "connect")
        def _durable(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

    return engine
