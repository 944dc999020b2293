"""A Docker registry of the test's own, from Debian's ``docker-registry``.

It serves plain HTTP on a free loopback port, which the engine accepts
without TLS (127.0.0.0/8 is an insecure registry by default), and keeps
its blobs in a temporary directory. With a user and password it demands
HTTP basic authentication from an htpasswd file.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from pathlib import Path

import httpx

from tests.support.server import free_port

REGISTRY_BIN = "/usr/bin/docker-registry"
START_TIMEOUT_S = 20.0


def _bcrypt(password: str) -> str:
    # The registry reads only bcrypt hashes; the standard library's crypt
    # makes them through the system's libxcrypt, so no extra dependency.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    # bcrypt is the one scheme the registry accepts, and a test password.
    salt = crypt.mksalt(crypt.METHOD_BLOWFISH)  # noqa: S324 - see above
    return crypt.crypt(password, salt)


def _config(root: Path, port: int, htpasswd: Path | None) -> str:
    auth = ""
    if htpasswd is not None:
        auth = f"auth:\n  htpasswd:\n    realm: berth-test\n    path: {htpasswd}\n"
    return (
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"{auth}"
    )


class LocalRegistry:
    """``start`` it, push to :attr:`address`, ``stop`` it."""

    def __init__(self, username: str | None = None, password: str | None = None):
        self.username = username
        self.password = password
        self.root = Path(tempfile.mkdtemp(prefix="berth-registry-"))
        self.port = free_port()
        self.log = self.root / "registry.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def auth(self) -> dict[str, str] | None:
        if self.username is None or self.password is None:
            return None
        return {"username": self.username, "password": self.password}

    def _write_config(self) -> Path:
        htpasswd = None
        if self.username is not None and self.password is not None:
            htpasswd = self.root / "htpasswd"
            htpasswd.write_text(f"{self.username}:{_bcrypt(self.password)}\n")
        config = self.root / "config.yml"
        config.write_text(_config(self.root, self.port, htpasswd))
        return config

    def start(self) -> LocalRegistry:
        if not Path(REGISTRY_BIN).exists():
            raise RuntimeError(
                f"{REGISTRY_BIN} is missing; scripts/bootstrap.sh installs "
                "Debian's docker-registry"
            )
        config = self._write_config()
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self._wait_up()
        return self

    def _wait_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"registry exited:\n{self.output()}")
            try:
                # 200 open, 401 with auth: either way it is serving.
                answer = httpx.get(f"http://{self.address}/v2/", timeout=1)
                if answer.status_code in (200, 401):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"registry not up:\n{self.output()}")

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)


class SilentRegistry:
    """A registry address that accepts connections and never answers: the
    shape of a registry behind a black-holing network, for pull timeouts."""

    def __init__(self) -> None:
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.getsockname()[1]}"

    def start(self) -> SilentRegistry:
        self._thread.start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._held.append(conn)

    def stop(self) -> None:
        # shutdown, not just close: it wakes the thread blocked in accept.
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        for conn in self._held:
            conn.close()
        self._thread.join(5)
