"""The long-lived things every use-case needs, made once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from app.config import Settings
from app.engine.client import Engine
from app.metrics import Metrics
from app.service.policy import Policy
from app.store.db import Database, KeyedLocks


@dataclass
class Context:
    settings: Settings
    db: Database
    engine: Engine
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    metrics: Metrics = field(default_factory=Metrics)

    @cached_property
    def policy(self) -> Policy:
        s = self.settings
        return Policy(
            allow_privileged=s.allow_privileged,
            allow_host_network=s.allow_host_network,
            allow_host_pid=s.allow_host_pid,
            allow_cap_add=s.allow_cap_add,
            allowed_host_paths=tuple(s.allowed_host_paths),
            allowed_log_drivers=tuple(s.allowed_log_drivers),
            extra_sockets=_unix_socket(s.docker_host),
        )


def _unix_socket(docker_host: str) -> tuple[str, ...]:
    # The engine berth drives may listen somewhere unusual; its socket is
    # guarded like the usual ones.
    scheme = "unix://"
    return (docker_host[len(scheme) :],) if docker_host.startswith(scheme) else ()
