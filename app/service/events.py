"""Live state from the engine's event stream.

A background thread keeps rows current between reconciles: start, die
(with its exit code), oom, health, rename and destroy. The stream *ends* without an
error when the engine restarts, and the engine keeps only a short backlog,
so an ended stream is treated as lost: reconnect with backoff, then
reconcile to catch whatever happened while nobody listened.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError

from app.engine.client import EventStream
from app.engine.metadata import ContainerMetadata
from app.errors import BerthError, ContainerNotFoundError
from app.service.context import Context
from app.service.create import create_in_flight, creating_name
from app.service.labels import HOST_ID, TASK_ARN, owned_by
from app.service.observe import record_gone, record_inspect
from app.service.reconcile import reconcile
from app.service.views import State, load_metadata
from app.store import repo
from app.store.models import ContainerRow, utcnow

log = structlog.get_logger(__name__)

# Backoff between reconnects: quick at first, since an engine restart
# takes seconds, then every five seconds, which bounds how long berth stays
# deaf after the engine is back.
FIRST_BACKOFF_S = 0.25
MAX_BACKOFF_S = 5.0

# Actions after which an inspect tells something new; "rename" because the
# row follows the container's name while it has the container's ID.
_REFRESHING = {
    "start",
    "die",
    "oom",
    "stop",
    "kill",
    "pause",
    "unpause",
    "restart",
    "rename",
}


def _exit_code(event: dict[str, Any]) -> int | None:
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    try:
        return int(attributes["exitCode"])
    except (KeyError, TypeError, ValueError):
        return None


def _from_event_only(row: ContainerRow, action: str, event: dict[str, Any]) -> None:
    """What an event says by itself, for when the engine cannot be asked."""
    meta = load_metadata(row.meta) or ContainerMetadata()
    if action == "die":
        meta.running = False
        meta.exit_code = _exit_code(event)
        row.status = State.STOPPED
    elif action == "start":
        meta.running = True
        meta.exit_code = None
        row.status = State.RUNNING
    elif action == "oom":
        meta.oom_killed = True
    elif action.startswith("health_status:"):
        meta.health = action.split(":", 1)[1].strip()
    row.meta = meta.model_dump(mode="json")
    row.updated_at = utcnow()


class EventWatcher:
    """The consumer thread; ``start`` once, ``stop`` at shutdown."""

    def __init__(self, ctx: Context, reconcile_on_start: bool = True) -> None:
        self.ctx = ctx
        self.reconcile_on_start = reconcile_on_start
        self.reconnects = 0
        self.connected = threading.Event()
        self._stopping = threading.Event()
        self._stream: EventStream | None = None
        self._thread = threading.Thread(
            target=self._run, name="berth-events", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 2.0) -> None:
        self._stopping.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread.ident is not None:
            self._thread.join(wait)

    def _run(self) -> None:
        backoff = FIRST_BACKOFF_S
        connections = 0
        while not self._stopping.is_set():
            try:
                reconnect = connections > 0
                self._subscribe(reconnect)
                connections += 1
                # Subscribed first, reconciled second: nothing can fall
                # between. After a reconnect always, since the engine kept
                # no backlog for us; a catch-up that fails is retried with
                # the connection, never skipped.
                if reconnect or self.reconcile_on_start:
                    reconcile(self.ctx)
                self.connected.set()
                self.ctx.metrics.event_stream_connected.set(1)
                backoff = FIRST_BACKOFF_S
                self._listen()
            except BerthError as exc:
                log.warning("events.unavailable", error_name=exc.error_name)
            except Exception:
                log.exception("events.failed")
            finally:
                self._close_stream()
            self.connected.clear()
            self.ctx.metrics.event_stream_connected.set(0)
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _subscribe(self, reconnect: bool) -> None:
        # Both labels must match: another host's berth on this engine keeps
        # its own containers current, and this one need not hear of them.
        labels = [
            self.ctx.settings.label_prefix + TASK_ARN,
            f"{HOST_ID}={self.ctx.settings.host_id}",
        ]
        self._stream = self.ctx.engine.events({"type": ["container"], "label": labels})
        if reconnect:
            self.reconnects += 1
            self.ctx.metrics.event_reconnects.inc()
        log.info("events.connected", reconnect=reconnect)

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def _listen(self) -> None:
        assert self._stream is not None
        for event in self._stream:
            if self._stopping.is_set():
                return
            try:
                self.handle(event)
            except IntegrityError as exc:
                # This event's write conflicts with another row (a name a
                # row elsewhere holds): skip it, and keep following the
                # rest, rather than lose the stream over one container.
                log.warning(
                    "events.unrecorded",
                    action=event.get("Action"),
                    docker_id=(event.get("Actor") or {}).get("ID"),
                    error=str(exc.orig),
                )
        if not self._stopping.is_set():
            log.warning("events.lost")

    def handle(self, event: dict[str, Any]) -> None:
        """Apply one engine event to the row of the container it concerns."""
        if event.get("Type") != "container":
            return
        action = str(event.get("Action") or "")
        docker_id = str((event.get("Actor") or {}).get("ID") or "")
        if not docker_id:
            return
        if action == "create":
            if self._adopt(docker_id, event):
                self._apply(docker_id, action, event, inspect=True)
        elif action == "destroy":
            self._apply(docker_id, action, event, inspect=False)
        elif action in _REFRESHING or action.startswith("health_status"):
            self._apply(docker_id, action, event, inspect=True)

    def _adopt(self, docker_id: str, event: dict[str, Any]) -> bool:
        """Store the ID of a container made under a name a row waits on.

        That is the late answer to a create whose call timed out: the
        engine finished it after berth stopped waiting.
        """
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        name = str(attributes.get("name") or "")
        ctx = self.ctx
        if not name or creating_name(ctx, name):
            # Its own create stores this ID: no need to read the row.
            return False

        # Events only tell what the engine did; reconcile tells it again.
        with ctx.db.transaction(durable=False) as session:
            row = repo.find_container_by_docker_name(
                session, ctx.settings.host_id, name
            )
            if row is None or row.docker_id is not None:
                return False
            if create_in_flight(ctx, row.task_id, row.name):
                # Its own create is about to store this ID, with an inspect.
                return False
            # An event's attributes carry the container's labels.
            if not owned_by(
                attributes,
                ctx.settings.label_prefix,
                row.task.arn,
                row.name,
                ctx.settings.host_id,
            ):
                return False
            adopted = repo.update_container_if(
                session,
                row.id,
                {"docker_id": None, "docker_name": name},
                docker_id=docker_id,
                status=State.CREATED,
                error_name=None,
                error_message=None,
            )
            arn, container = row.task.arn, row.name
        if adopted:
            log.info(
                "container.adopted",
                task_arn=arn,
                container=container,
                docker_name=name,
                docker_id=docker_id,
                reason="create_event",
            )
        return adopted

    def _apply(
        self, docker_id: str, action: str, event: dict[str, Any], inspect: bool
    ) -> None:
        ctx = self.ctx
        # Only this host's rows: another berth sharing the database (or the
        # engine) owns the rest, and its own watcher keeps them current.
        host = ctx.settings.host_id
        with ctx.db.transaction() as session:
            row = repo.find_container_by_docker_id(session, host, docker_id)
            if row is None:
                return

        doc = None
        failed = False
        if inspect:
            try:
                doc = ctx.engine.inspect(docker_id)
            except BerthError:
                failed = True

        try:
            self._record(docker_id, action, event, doc, inspect, failed)
        except ContainerNotFoundError:
            # The task was deleted while the event was handled: nothing is
            # left to keep current.
            return

    def _record(
        self,
        docker_id: str,
        action: str,
        event: dict[str, Any],
        doc: dict[str, Any] | None,
        inspect: bool,
        failed: bool,
    ) -> None:
        ctx = self.ctx
        host = ctx.settings.host_id
        with ctx.db.transaction(durable=False) as session:
            row = repo.find_container_by_docker_id(session, host, docker_id)
            if row is None:
                return
            if doc is not None:
                record_inspect(row, doc)
            elif not inspect or not failed:
                record_gone(row)
            else:
                _from_event_only(row, action, event)
            log.info(
                "container.event",
                action=action,
                task_arn=row.task.arn,
                container=row.name,
                docker_name=row.docker_name,
                docker_id=docker_id,
                status=row.status,
            )
