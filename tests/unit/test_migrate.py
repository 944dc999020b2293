"""The migration shortcut's idea of the newest revision."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory

from app.store.migrate import HEAD_REVISION, alembic_config


def test_head_revision_is_alembics_head(tmp_path: Path) -> None:
    """HEAD_REVISION names the one head of the migration scripts, so a
    database berth skips migrating is one Alembic would leave alone."""
    config = alembic_config(f"sqlite:///{tmp_path / 'berth.db'}")

    heads = ScriptDirectory.from_config(config).get_heads()

    assert heads == [HEAD_REVISION]
