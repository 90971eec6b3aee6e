"""The job store's database: the engine (SQLite or PostgreSQL), JSON columns, migrations."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

from service import migrations


def open_engine(url: str) -> Engine:
    """An engine for `url` with the schema brought up to date."""
    parsed = database_url(url)
    kwargs: dict[str, Any] = {"json_serializer": strict_json}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if parsed.database in (None, "", ":memory:"):
            kwargs["poolclass"] = StaticPool
    else:
        kwargs["pool_pre_ping"] = True  # survive a database restart between requests
    engine = create_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    _migrate(engine)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def database_url(url: str) -> URL:
    """The SQLAlchemy URL, with `postgresql://` (and `postgres://`) meaning psycopg 3.

    Example:
        >>> database_url("postgresql://rldojo@db:5432/rldojo").drivername
        'postgresql+psycopg'
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def strict_json(value: Any) -> str:
    """Standard JSON for the JSON columns: NaN and infinities become null.

    PostgreSQL's json type refuses them and so do JSON clients; SQLite would store them.

    Example:
        >>> strict_json({"a": float("inf"), "b": [1.5, float("nan")]})
        '{"a": null, "b": [1.5, null]}'
    """
    return json.dumps(_finite(value), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


_SCHEMA_LOCK = 0x726C646F6A6F  # "rldojo": the advisory lock serialising schema upgrades
_FIRST_REVISION = "0001"  # the tables as `create_all` made them before migrations existed


_MIGRATING = threading.Lock()  # Alembic keeps its running context in module globals


def _migrate(engine: Engine, attempts: int = 5) -> None:
    """Bring the schema to the newest revision; safe when several API processes start at once.

    PostgreSQL serialises the upgrade with an advisory lock. SQLite has none: a process that
    loses the race sees "already exists" (its transaction rolled back) and tries again.
    """
    for attempt in range(attempts):
        try:
            with _MIGRATING, engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK}
                    )
                config = Config()
                config.set_main_option("script_location", str(Path(migrations.__file__).parent))
                config.attributes["connection"] = connection
                tables = inspect(connection)
                if tables.has_table("jobs") and not tables.has_table("alembic_version"):
                    command.stamp(config, _FIRST_REVISION)
                command.upgrade(config, "head")
            return
        except DBAPIError as error:
            lost_race = "already exists" in str(error) or "duplicate column" in str(error)
            if not lost_race or attempt == attempts - 1:
                raise
