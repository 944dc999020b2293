"""A berth server in a subprocess, for tests that kill it for real."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

READY_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BerthServer:
    """``berth serve`` on a free loopback port, with its own environment.

    ``env`` holds BERTH_* settings; the output goes to ``log_path`` so a
    test can read what the server wrote. ``python`` is the interpreter it
    runs on: this one, unless another environment is wanted.
    """

    def __init__(
        self, env: dict[str, str], log_path: Path, python: str = sys.executable
    ) -> None:
        self.env = {**os.environ, **env}
        self.python = python
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True, **extra_env: str) -> BerthServer:
        env = {**self.env, **extra_env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [self.python, "-m", "app.cli", "serve", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"berth exited with {self.process.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"berth did not answer within {timeout} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, exactly like a crash."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self, **extra_env: str) -> BerthServer:
        self.kill()
        return self.start(**extra_env)

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 60)
        return httpx.Client(base_url=self.url, **kwargs)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
