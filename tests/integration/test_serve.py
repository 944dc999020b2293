"""``berth serve`` on a fresh machine: no state directory, no database."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.support.server import BerthServer


def test_serve_makes_its_state_directory_and_database(
    tmp_path: Path, host_id: str
) -> None:
    """A state directory that does not exist yet is made, owner-only."""
    state = tmp_path / "fresh" / "berth"
    server = BerthServer(
        {"BERTH_STATE_DIR": str(state), "BERTH_HOST_ID": host_id},
        tmp_path / "berth.log",
    )
    server.env.pop("BERTH_DATABASE_URL", None)

    try:
        server.start()
        with server.client() as http:
            ready = http.get("/readyz")
            tasks = http.get("/v1/tasks")
    finally:
        server.stop()

    assert ready.status_code == 200, server.output()
    assert tasks.json()["total"] == 0
    assert (state / "berth.db").is_file()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
