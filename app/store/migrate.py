"""Apply Alembic migrations from code: ``berth serve`` and ``berth db``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from app.store.db import database_url, prepare_sqlite_path

_HERE = Path(__file__).resolve()

# Berths of a fleet start together against one PostgreSQL database, and
# each migrates at start-up. The first to take this advisory lock migrates;
# the rest wait, then find nothing left to do. (The number spells "berth".)
MIGRATION_LOCK_KEY = 0x6265727468

# In a checkout the scripts sit at the top of the tree; an installed wheel
# carries them inside the package.
_CANDIDATES = (_HERE.parents[2] / "migrations", _HERE.parents[1] / "migrations")


def alembic_config(url: str) -> Config:
    location = next((p for p in _CANDIDATES if (p / "env.py").exists()), None)
    if location is None:
        raise RuntimeError("berth's migration scripts are missing")
    prepare_sqlite_path(url)
    config = Config()
    config.set_main_option("script_location", str(location))
    # ConfigParser reads % as interpolation; a URL-escaped path has them.
    config.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def check(url: str) -> None:
    """Raise when the models and the migrations disagree."""
    command.check(alembic_config(url))
