"""The engine client's connections: one pool per socket, whatever the URL."""

from __future__ import annotations

from app.engine.client import _api_client

SOCKET = "unix:///var/run/docker.sock"


def test_every_url_shares_one_connection_pool() -> None:
    """Requests about different containers reuse the same connections,
    instead of a pool (and a new connection) per container URL."""
    client = _api_client(SOCKET, "1.41", 30, 10)
    adapter = client.get_adapter("http+docker://localhost/v1.41/containers/a/json")

    pools = {
        id(adapter.get_connection(f"http+docker://localhost/v1.41/containers/{c}/json"))
        for c in ("a", "b", "c", "create?name=x")
    }

    assert len(pools) == 1
    client.close()


def test_a_tcp_engine_keeps_requests_own_pooling() -> None:
    """An engine reached over TCP needs no help: requests pools by host."""
    client = _api_client("tcp://127.0.0.1:2375", "1.41", 30, 10)

    adapter = client.get_adapter("http://127.0.0.1:2375/v1.41/containers/a/json")

    assert type(adapter).__name__ == "HTTPAdapter"
    client.close()
