"""A private Docker engine, so that tests can pause, kill and restart one
without disturbing the engine every other test uses.

It has its own socket, data root, exec root, pid file and bridge, and gets
the test image imported from the machine's static busybox, as the shared
engine does (scripts/ensure-engine.sh).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import docker

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 40.0


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


class PrivateEngine:
    """A second ``dockerd``; ``start`` it, ``pause``/``resume`` it, ``close`` it."""

    def __init__(
        self, root: Path, subnet_octet: int = 77, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.root = root
        self.extra_args = extra_args
        self.tag = uuid.uuid4().hex[:6]
        self.bridge = f"brt{self.tag}"
        self.bip = f"10.{subnet_octet}.{int(self.tag[:2], 16)}.1/24"
        self.socket = root / "docker.sock"
        self.pidfile = root / "docker.pid"
        self.log = root / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def _make_bridge(self) -> None:
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", self.bip, "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")

    def start(self) -> PrivateEngine:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.process is None:
            self._make_bridge()
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            [
                "dockerd",
                "--host",
                self.url,
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                str(self.root / "exec"),
                "--pidfile",
                str(self.pidfile),
                "--bridge",
                self.bridge,
                "--iptables=false",
                "--ip-masq=false",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self._wait_up()
        self._import_image()
        return self

    def _wait_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited:\n{self.log.read_text()[-3000:]}")
            try:
                client = docker.APIClient(base_url=self.url, version="1.41", timeout=2)
                client.ping()
                client.close()
                return
            except Exception:  # noqa: BLE001 - not up yet, whatever the reason
                time.sleep(0.2)
        raise TimeoutError(f"private dockerd not up:\n{self.log.read_text()[-3000:]}")

    def _import_image(self) -> None:
        subprocess.run(
            ["bash", str(REPO / "scripts" / "ensure-engine.sh")],
            check=True,
            capture_output=True,
            env={**os.environ, "BERTH_ENGINE_SOCKET": str(self.socket)},
        )

    def api(self, timeout: float = 30) -> docker.APIClient:
        return docker.APIClient(base_url=self.url, version="1.41", timeout=timeout)

    def pause(self) -> None:
        """SIGSTOP the engine: it accepts connections and answers nothing."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop the engine (SIGTERM, as a service manager would)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Remove every container, stop the engine, drop the bridge."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGCONT)
                client = self.api(timeout=10)
                for container in client.containers(all=True):
                    client.remove_container(container["Id"], force=True)
                client.close()
            except Exception as exc:  # noqa: BLE001 - best effort before the stop
                print(f"private engine cleanup: {exc!r}")
        self.stop()
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True)
