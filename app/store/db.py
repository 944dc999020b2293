"""Database engine, sessions, and the locks that outlive a transaction."""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from app.errors import ContainerNotFoundError

# How long a SQLite writer waits for another before giving up. Writes are
# short (no Docker call is ever made inside one), so a long wait means
# something is wrong rather than busy.
SQLITE_BUSY_TIMEOUT_MS = 10_000

# SQLite lock files are bucketed so their number stays bounded; two keys
# in one bucket only serialize each other, which is safe.
LOCK_BUCKETS = 4096

# Connections for transactions. Every one is short (no Docker call runs
# inside a transaction), so a few serve the whole thread pool; the overflow
# absorbs bursts.
POOL_SIZE = 10
POOL_OVERFLOW = 40

# PostgreSQL advisory locks each hold a connection for as long as a create
# runs, Docker calls included, so they get a pool of their own: held locks
# must never starve the transactions that the lock holders still need.
LOCK_POOL_SIZE = 10
LOCK_POOL_OVERFLOW = 40

# A database that does not accept a connection within this long is down
# for readiness' sake; without it a dead host hangs for minutes of TCP
# retries.
PG_CONNECT_TIMEOUT_S = 10


def _sqlite_pragmas(synchronous: str) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def prepare_sqlite_path(url: str) -> None:
    """Make the folder of a SQLite file, which SQLite will not make itself.

    Every way in (the app, ``berth db``, the migrations ``berth serve``
    applies first) must call this before it connects, or a fresh
    machine's first start fails with "unable to open database file".
    """
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database:
        return
    if database == ":memory:" or database.startswith("file:"):
        return
    # Owner-only: the task specs stored there may hold secrets.
    Path(database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)


def database_url(url: str) -> str:
    """The URL with berth's driver for PostgreSQL made explicit.

    ``postgresql://`` alone would mean psycopg2, which berth does not ship;
    operators write it that way everywhere, so it means psycopg 3 here.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(
            f"berth stores its state in SQLite or PostgreSQL, not {backend}"
        )
    return parsed.render_as_string(hide_password=False)


def _postgres_engine(url: str, size: int, overflow: int) -> Engine:
    return create_engine(
        url,
        pool_size=size,
        max_overflow=overflow,
        # A server restart or an idle timeout leaves dead connections in
        # the pool; a ping on checkout replaces them instead of failing a
        # request.
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": PG_CONNECT_TIMEOUT_S,
            "application_name": "berth",
        },
    )


def _key_number(key: str) -> int:
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Database:
    """The SQLAlchemy engine and the session factories bound to it."""

    def __init__(self, url: str) -> None:
        url = database_url(url)
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        # FULL: a commit is on disk when it returns; the create protocol's
        # name commit, and every answer berth gives, rely on that.
        self.engine = self._make_engine(url, "FULL")
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._redoable = self.sessions
        self._redoable_engine: Engine | None = None
        if self.is_sqlite:
            self._redoable_engine = self._make_engine(url, "NORMAL")
            self._redoable = sessionmaker(self._redoable_engine, expire_on_commit=False)
        self._lock_dir = self._sqlite_lock_dir()
        self._lock_engine = None if self.is_sqlite else self._make_lock_engine(url)

    def _make_engine(self, url: str, synchronous: str) -> Engine:
        if not self.is_sqlite:
            return _postgres_engine(url, POOL_SIZE, POOL_OVERFLOW)

        prepare_sqlite_path(url)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
        )
        event.listen(engine, "connect", _sqlite_pragmas(synchronous))
        return engine

    def _make_lock_engine(self, url: str) -> Engine:
        return _postgres_engine(url, LOCK_POOL_SIZE, LOCK_POOL_OVERFLOW)

    def _sqlite_lock_dir(self) -> Path | None:
        database = self.url.database
        if not self.is_sqlite or not database or database == ":memory:":
            return None
        return Path(database).parent / (Path(database).name + ".locks")

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[Session]:
        """A session whose work commits when the block ends, or rolls back.

        ``durable=False`` is for writes that only record what the engine
        said (an ID it just gave, a state it reported), which reconcile
        redoes from the engine if a power cut loses them. On SQLite they
        commit without waiting for the disk (WAL, ``synchronous=NORMAL``),
        which still loses nothing when only the process dies.

        A row that another request deleted while this one changed it (a
        task deleted under a refresh, say) is gone, not a server fault.
        """
        sessions = self.sessions if durable else self._redoable
        try:
            with sessions.begin() as session:
                yield session
        except StaleDataError as exc:
            raise ContainerNotFoundError(
                "the container was deleted while this request changed it"
            ) from exc

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold an exclusive lock on ``key`` shared by every process.

        On PostgreSQL this is a session-level advisory lock on a connection
        of its own, so it outlives any commit made meanwhile. On SQLite it
        is an flock on a file beside the database.
        """
        if self.is_sqlite:
            with self._file_lock(key):
                yield
            return

        assert self._lock_engine is not None
        number = _key_number(key)
        with self._lock_engine.connect() as conn:
            conn.execute(select(func.pg_advisory_lock(number)))
            conn.commit()
            try:
                yield
            finally:
                conn.execute(select(func.pg_advisory_unlock(number)))
                conn.commit()

    @contextmanager
    def _file_lock(self, key: str) -> Iterator[None]:
        if self._lock_dir is None:
            yield
            return

        self._lock_dir.mkdir(parents=True, exist_ok=True)
        bucket = _key_number(key) % LOCK_BUCKETS
        path = self._lock_dir / f"{bucket:03x}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
        if self._redoable_engine is not None:
            self._redoable_engine.dispose()
        if self._lock_engine is not None:
            self._lock_engine.dispose()


class KeyedLocks:
    """One lock per key inside this process, made on first use.

    A lock lives only while someone holds or waits for it, so a host that
    creates containers for months keeps no lock per container it ever made.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        lock = self._join(key)
        try:
            with lock:
                yield
        finally:
            self._leave(key)

    def busy(self, key: str) -> bool:
        """Whether a thread of this process holds or awaits ``key``."""
        with self._guard:
            return key in self._locks

    def _join(self, key: str) -> threading.Lock:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
            return lock

    def _leave(self, key: str) -> None:
        with self._guard:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
