"""Numbers about this host's containers, for the metrics endpoint."""

from __future__ import annotations

from app.service.context import Context
from app.service.views import State
from app.store import repo


def containers_by_state(ctx: Context) -> dict[str, int]:
    """Every state with its count, zeros included, so no series goes missing."""
    with ctx.db.transaction() as session:
        counts = repo.count_containers_by_status(session, ctx.settings.host_id)
    return {state.value: counts.get(state.value, 0) for state in State}
