"""Apply Alembic migrations from code: ``berth serve`` and ``berth db``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, pool, text
from sqlalchemy.exc import DBAPIError

from app.store.db import database_url, prepare_sqlite_path

if TYPE_CHECKING:
    from alembic.config import Config

_HERE = Path(__file__).resolve()

# Berths of a fleet start together against one PostgreSQL database, and
# each migrates at start-up. The first to take this advisory lock migrates;
# the rest wait, then find nothing left to do. (The number spells "berth".)
MIGRATION_LOCK_KEY = 0x6265727468

# The newest migration's revision. A database already there (every start
# but the first after an upgrade) is served without loading Alembic and
# its scripts, which cost a restart a fifth of a second and 10 MB for
# good. A unit test keeps this equal to Alembic's own head.
HEAD_REVISION = "0002"

# In a checkout the scripts sit at the top of the tree; an installed wheel
# carries them inside the package.
_CANDIDATES = (_HERE.parents[2] / "migrations", _HERE.parents[1] / "migrations")


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    location = next((p for p in _CANDIDATES if (p / "env.py").exists()), None)
    if location is None:
        raise RuntimeError("berth's migration scripts are missing")
    prepare_sqlite_path(url)
    config = Config()
    config.set_main_option("script_location", str(location))
    # ConfigParser reads % as interpolation; a URL-escaped path has them.
    config.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return config


def current_revision(url: str) -> str | None:
    """The revision the database is at; None when it has none yet."""
    prepare_sqlite_path(url)
    engine = create_engine(database_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.scalar(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:
        # No alembic_version table: a database never migrated.
        return None
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    if revision in ("head", HEAD_REVISION) and current_revision(url) == HEAD_REVISION:
        return
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def check(url: str) -> None:
    """Raise when the models and the migrations disagree."""
    from alembic import command

    command.check(alembic_config(url))
