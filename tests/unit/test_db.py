"""How durably each kind of transaction commits on SQLite."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from app.store.db import Database

# SQLite's numbers for PRAGMA synchronous.
NORMAL, FULL = 1, 2


def _synchronous(db: Database, durable: bool) -> int:
    with db.transaction(durable=durable) as session:
        return int(session.execute(text("PRAGMA synchronous")).scalar_one())


def test_transactions_wait_for_the_disk_unless_told_otherwise(
    tmp_path: Path,
) -> None:
    """Every commit is on disk when it returns (the create protocol's name
    commit relies on it); only writes that reconcile can redo skip that."""
    db = Database(f"sqlite:///{tmp_path / 'berth.db'}")
    try:
        assert _synchronous(db, durable=True) == FULL
        assert _synchronous(db, durable=False) == NORMAL
        assert _synchronous(db, durable=True) == FULL
    finally:
        db.dispose()


def test_both_kinds_of_transaction_see_one_database(tmp_path: Path) -> None:
    """A row written by either kind of transaction is read by the other."""
    db = Database(f"sqlite:///{tmp_path / 'berth.db'}")
    try:
        with db.transaction() as session:
            session.execute(text("CREATE TABLE t (v INTEGER)"))
            session.execute(text("INSERT INTO t VALUES (1)"))
        with db.transaction(durable=False) as session:
            session.execute(text("INSERT INTO t VALUES (2)"))
            seen = session.execute(text("SELECT count(*) FROM t")).scalar_one()
        with db.transaction() as session:
            total = session.execute(text("SELECT sum(v) FROM t")).scalar_one()
    finally:
        db.dispose()

    assert (seen, total) == (2, 3)
