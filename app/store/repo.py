"""Repository functions: every query berth makes, and nothing else.

They take a session and never commit; the service decides where a
transaction ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from app.store.models import ContainerRow, TaskRow, utcnow


def add_task(session: Session, task: TaskRow) -> None:
    session.add(task)
    session.flush()


# Statements on every request's path are built once, with their parameters
# bound at execution: building one and its cache key anew on every call
# cost as much as running it.
_TASK_WITH_CONTAINERS = (
    select(TaskRow)
    .where(TaskRow.id == bindparam("task_id"))
    .options(joinedload(TaskRow.containers))
)


def get_task(session: Session, task_id: str) -> TaskRow | None:
    """The task with its containers, in one query."""
    found = session.execute(_TASK_WITH_CONTAINERS, {"task_id": task_id})
    return found.unique().scalar_one_or_none()


def get_task_by_arn(session: Session, host_id: str, arn: str) -> TaskRow | None:
    return session.scalars(
        select(TaskRow).where(TaskRow.host_id == host_id, TaskRow.arn == arn)
    ).first()


def list_tasks(
    session: Session,
    *,
    host_id: str,
    arn: str | None = None,
    cluster: str | None = None,
    family: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[Sequence[TaskRow], int]:
    """A page of tasks, oldest first, and how many match in all."""
    query = select(TaskRow).where(TaskRow.host_id == host_id)
    if arn is not None:
        query = query.where(TaskRow.arn == arn)
    if cluster is not None:
        query = query.where(TaskRow.cluster == cluster)
    if family is not None:
        query = query.where(TaskRow.family == family)

    total = session.scalar(select(func.count()).select_from(query.subquery()))
    page = session.scalars(
        query.order_by(TaskRow.created_at, TaskRow.id).limit(limit).offset(offset)
    ).all()
    return page, total or 0


def delete_task(session: Session, task_id: str) -> None:
    session.execute(delete(ContainerRow).where(ContainerRow.task_id == task_id))
    session.execute(delete(TaskRow).where(TaskRow.id == task_id))


def get_container(session: Session, task_id: str, name: str) -> ContainerRow | None:
    return session.scalars(
        select(ContainerRow).where(
            ContainerRow.task_id == task_id, ContainerRow.name == name
        )
    ).first()


# The read that control planes poll.
_CONTAINER_WITH_ARN = (
    select(ContainerRow, TaskRow.arn)
    .join(TaskRow, ContainerRow.task_id == TaskRow.id)
    .where(
        ContainerRow.task_id == bindparam("task_id"),
        ContainerRow.name == bindparam("name"),
        TaskRow.host_id == bindparam("host_id"),
    )
)


def get_container_with_arn(
    session: Session, host_id: str, task_id: str, name: str
) -> tuple[ContainerRow, str] | None:
    """A host's container row with its task's ARN, in one query.

    For reads: the task's spec and siblings are not loaded.
    """
    found = session.execute(
        _CONTAINER_WITH_ARN, {"task_id": task_id, "name": name, "host_id": host_id}
    ).first()
    return None if found is None else (found[0], str(found[1]))


def task_exists(session: Session, host_id: str, task_id: str) -> bool:
    found = session.scalar(
        select(TaskRow.id).where(TaskRow.id == task_id, TaskRow.host_id == host_id)
    )
    return found is not None


def find_container_by_docker_ref(
    session: Session, host_id: str, ref: str
) -> ContainerRow | None:
    """The host's row owning a Docker ID (or a unique prefix of one) or name."""
    name = ref.removeprefix("/")
    mine = select(ContainerRow).where(ContainerRow.host_id == host_id)
    row = session.scalars(
        mine.where(or_(ContainerRow.docker_id == ref, ContainerRow.docker_name == name))
    ).first()
    if row is not None or len(ref) < 12:
        return row

    matches = session.scalars(
        mine.where(ContainerRow.docker_id.startswith(ref, autoescape=True)).limit(2)
    ).all()
    return matches[0] if len(matches) == 1 else None


def find_container_by_docker_id(
    session: Session, host_id: str, docker_id: str
) -> ContainerRow | None:
    return session.scalars(
        select(ContainerRow).where(
            ContainerRow.host_id == host_id, ContainerRow.docker_id == docker_id
        )
    ).first()


def containers_with_arns(
    session: Session, host_id: str
) -> list[tuple[ContainerRow, str]]:
    """Every container row of a host with its task's ARN, in one query."""
    rows = session.execute(
        select(ContainerRow, TaskRow.arn)
        .join(TaskRow, ContainerRow.task_id == TaskRow.id)
        .where(ContainerRow.host_id == host_id)
    )
    return [(row, str(arn)) for row, arn in rows]


def find_container_by_docker_name(
    session: Session, host_id: str, docker_name: str
) -> ContainerRow | None:
    return session.scalars(
        select(ContainerRow).where(
            ContainerRow.host_id == host_id, ContainerRow.docker_name == docker_name
        )
    ).first()


def docker_name_holder(session: Session, docker_name: str) -> int | None:
    """The row, of any host, that holds a Docker name: names are unique
    across the database."""
    return session.scalar(
        select(ContainerRow.id).where(ContainerRow.docker_name == docker_name)
    )


def find_container_of_task(
    session: Session, host_id: str, task_arn: str, name: str
) -> ContainerRow | None:
    """The host's row for container ``name`` of the task with ``task_arn``."""
    return session.scalars(
        select(ContainerRow)
        .join(TaskRow, ContainerRow.task_id == TaskRow.id)
        .where(
            ContainerRow.host_id == host_id,
            TaskRow.arn == task_arn,
            ContainerRow.name == name,
        )
    ).first()


def claim_docker_name(
    session: Session, container_id: int, old: str | None, new: str
) -> bool:
    """Set the Docker name only if it is still ``old``: a compare-and-set.

    Two processes that race to name one container both read the row; only
    one of them may win, and the loser must reuse the winner's name.
    """
    expected = (
        ContainerRow.docker_name.is_(None)
        if old is None
        else ContainerRow.docker_name == old
    )
    result = session.execute(
        update(ContainerRow)
        .where(ContainerRow.id == container_id, expected)
        .values(
            docker_name=new,
            docker_id=None,
            # A fresh name means a fresh container: nothing seen of the
            # old one (its ports, say) may leak into the new one's answer.
            meta=None,
            status="CREATING",
            error_name=None,
            error_message=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def update_container_if(
    session: Session, container_id: int, expected: Mapping[str, Any], **values: Any
) -> bool:
    """Update the row only if its columns still hold ``expected``.

    For writers that read a row, asked the engine, and must not overwrite
    what another writer stored meanwhile: False means the row moved on.
    """
    conditions = [ContainerRow.id == container_id]
    for key, value in expected.items():
        column = getattr(ContainerRow, key)
        conditions.append(column.is_(None) if value is None else column == value)

    values.setdefault("updated_at", utcnow())
    result = session.execute(
        update(ContainerRow)
        .where(*conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def update_container(session: Session, container_id: int, **values: Any) -> None:
    values.setdefault("updated_at", utcnow())
    session.execute(
        update(ContainerRow)
        .where(ContainerRow.id == container_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def count_containers_by_status(session: Session, host_id: str) -> dict[str, int]:
    """How many of a host's containers are in each state (one indexed query)."""
    rows = session.execute(
        select(ContainerRow.status, func.count())
        .where(ContainerRow.host_id == host_id)
        .group_by(ContainerRow.status)
    )
    return {str(status): int(number) for status, number in rows}
