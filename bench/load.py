"""Clients for the benchmark: keep-alive HTTP over TCP or a Unix socket.

The same thin client (the standard library's ``http.client``) drives berth
and, for reads, the engine's own socket, so that what a figure includes on
the client side is the same for both. Creates on the direct side go
through docker-py, as a caller of the engine would make them.
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Long enough for a create on a loaded engine; a benchmark that hits it
# has found a hang, not a slow answer.
REQUEST_TIMEOUT_S = 60.0


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over a Unix socket, as the engine listens."""

    def __init__(self, path: str, timeout: float = REQUEST_TIMEOUT_S) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        self.sock = sock


class Client:
    """One keep-alive connection; one request at a time."""

    def __init__(self, base: str) -> None:
        if base.startswith("unix://"):
            self._conn: http.client.HTTPConnection = UnixHTTPConnection(
                base.removeprefix("unix://")
            )
        else:
            host, _, port = base.removeprefix("http://").partition(":")
            self._conn = http.client.HTTPConnection(
                host, int(port), timeout=REQUEST_TIMEOUT_S
            )

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data else {}
        try:
            self._conn.request(method, path, body=data, headers=headers)
            response = self._conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError):
            # The server closed a keep-alive connection left idle; nothing
            # was read of this request, so it is sent again on a new one.
            self._conn.close()
            self._conn.request(method, path, body=data, headers=headers)
            response = self._conn.getresponse()
        return response.status, response.read()

    def json(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.request(method, path, body)
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {data[:300]!r}")
        return json.loads(data) if data else None

    def close(self) -> None:
        self._conn.close()


@dataclass(frozen=True)
class Run:
    """What a batch of timed calls took: each call and the whole batch."""

    latencies: list[float]
    wall_s: float

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.wall_s

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated between closest ranks."""
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=1000, method="inclusive")
    return cuts[min(int(q * 10) - 1, len(cuts) - 1)]


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def in_parallel(workers: Sequence[Callable[[], list[float]]]) -> Run:
    """Run each worker on a thread of its own, all released at once."""
    results: list[list[float]] = [[] for _ in workers]
    gate = threading.Barrier(len(workers) + 1)

    def run(i: int) -> None:
        gate.wait()
        results[i] = workers[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return Run([t for r in results for t in r], wall)
