"""A Unix-socket proxy in front of a Docker engine that can lose answers.

The engine behind it does every request for real; the proxy only holds
back (``delay``) or throws away (``drop``) the *answer* to the requests
that match a rule. That is exactly the fault the create protocol has to
survive: the container exists, but berth never heard so, because its call
timed out or its connection was cut.

Docker clients send one request at a time per connection, so the answer
that follows a matching request is the one to tamper with.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CHUNK = 65536


@dataclass
class Rule:
    """What to do with the answer to a request whose head holds ``pattern``."""

    pattern: bytes
    action: str  # "delay" or "drop"
    seconds: float = 0.0
    hits: int = 0


class _Link:
    """One client connection and its own connection to the engine."""

    def __init__(self, proxy: EngineProxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.upstream.connect(proxy.upstream)
        self.pending: Rule | None = None

    def start(self) -> None:
        for pump in (self._requests, self._answers):
            threading.Thread(target=pump, daemon=True).start()

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _requests(self) -> None:
        try:
            while data := self.client.recv(CHUNK):
                rule = self.proxy.match(data)
                if rule is not None:
                    self.pending = rule
                self.upstream.sendall(data)
        except OSError:
            pass
        self.close()

    def _answers(self) -> None:
        try:
            while data := self.upstream.recv(CHUNK):
                rule, self.pending = self.pending, None
                if rule is not None and rule.action == "drop":
                    break
                if rule is not None:
                    time.sleep(rule.seconds)
                self.client.sendall(data)
        except OSError:
            pass
        self.close()


class EngineProxy:
    """``start`` it, point berth at ``url``, add rules, ``close`` it."""

    def __init__(self, upstream: str, root: Path) -> None:
        self.upstream = upstream.removeprefix("unix://")
        self.socket = root / "proxy.sock"
        self.rules: list[Rule] = []
        self._guard = threading.Lock()
        self._links: list[_Link] = []
        self._listener: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> EngineProxy:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.socket))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def delay(self, pattern: str, seconds: float) -> Rule:
        """Hold back each matching answer for ``seconds``."""
        return self._add(Rule(pattern.encode(), "delay", seconds))

    def drop(self, pattern: str) -> Rule:
        """Cut the connection instead of passing each matching answer on."""
        return self._add(Rule(pattern.encode(), "drop"))

    def clear(self) -> None:
        with self._guard:
            self.rules.clear()

    def match(self, request: bytes) -> Rule | None:
        head = request.split(b"\r\n\r\n", 1)[0]
        with self._guard:
            for rule in self.rules:
                if rule.pattern in head:
                    rule.hits += 1
                    return rule
        return None

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        with self._guard:
            links, self._links = self._links, []
        for link in links:
            link.close()

    def _add(self, rule: Rule) -> Rule:
        with self._guard:
            self.rules.append(rule)
        return rule

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                link = _Link(self, client)
            except OSError:
                # The engine is down: the client sees its connection cut,
                # as it would without the proxy.
                client.close()
                continue
            with self._guard:
                self._links.append(link)
            link.start()
