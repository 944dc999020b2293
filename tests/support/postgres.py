"""A PostgreSQL server for the tests: the one named in the environment, or
a throwaway cluster started from Debian's binaries and stopped at the end.

``BERTH_TEST_POSTGRES_URL`` names a server (and a database to connect to
for administration) that the tests may create databases on. Without it,
``initdb`` makes a cluster in a temporary directory, as the ``postgres``
user (PostgreSQL refuses to run as root), listening only on a Unix socket
in that directory, so no port is ever taken from another suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from app.store.db import database_url

ENV_URL = "BERTH_TEST_POSTGRES_URL"
BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVICE_USER = "postgres"

# Durability of the test cluster itself is not under test (berth is killed,
# never the server), so it skips the fsyncs that make initdb and every
# commit slow on a shared machine.
SERVER_OPTIONS = (
    "-c listen_addresses='' -c fsync=off -c full_page_writes=off -c max_connections=300"
)
START_TIMEOUT_S = 60


def _bin_dir() -> Path:
    found = sorted(Path("/").glob(BIN_GLOB.lstrip("/")), key=_version_key)
    if not found:
        raise RuntimeError(
            "no PostgreSQL binaries under /usr/lib/postgresql; run "
            f"scripts/bootstrap.sh, or set {ENV_URL}"
        )
    return found[-1]


def _version_key(path: Path) -> tuple[int, ...]:
    digits = path.parent.name.split(".")
    return tuple(int(d) for d in digits if d.isdigit())


def _as_service_user(*args: str) -> list[str]:
    if os.geteuid() != 0:
        return list(args)
    return ["runuser", "-u", SERVICE_USER, "--", *args]


class ThrowawayPostgres:
    """A cluster of its own: ``start``, use :attr:`url`, ``stop``."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="berth-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"

    @property
    def url(self) -> URL:
        return URL.create(
            "postgresql+psycopg",
            username=SERVICE_USER,
            database="postgres",
            query={"host": str(self.root)},
        )

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            _as_service_user(*args), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def start(self) -> ThrowawayPostgres:
        if os.geteuid() == 0:
            shutil.chown(self.root, SERVICE_USER, SERVICE_USER)
        self._run(
            str(self.bin / "initdb"),
            "--pgdata",
            str(self.data),
            "--username",
            SERVICE_USER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "start",
            "--pgdata",
            str(self.data),
            "--log",
            str(self.log),
            "--wait",
            "--timeout",
            str(START_TIMEOUT_S),
            "--options",
            f"{SERVER_OPTIONS} -c unix_socket_directories='{self.root}'",
        )
        return self

    def stop(self) -> None:
        # immediate: nothing in it is worth a checkpoint.
        if (self.data / "postmaster.pid").exists():
            self._run(
                str(self.bin / "pg_ctl"),
                "stop",
                "--pgdata",
                str(self.data),
                "--mode",
                "immediate",
                "--wait",
            )
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[URL]:
    """The administrative URL of a server the tests may make databases on."""
    given = os.environ.get(ENV_URL)
    if given:
        yield make_url(database_url(given))
        return

    server = ThrowawayPostgres().start()
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def scratch_database(admin_url: URL) -> Iterator[str]:
    """A new, empty database on the server, dropped afterwards.

    Yields its URL as a string (with any password in it), ready for
    ``BERTH_DATABASE_URL``.
    """
    name = f"berth_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            # FORCE: a berth killed with -9 may leave its sessions behind
            # until the server notices the broken connections.
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
