"""task ARNs unique per host

A task ARN was unique across the whole database, so with berths of several
hosts sharing one PostgreSQL database, a task placed on a second host was
refused (or, worse, answered with the first host's task) while the first
host's row still named it. Each host now has its own namespace of ARNs;
the new constraint also serves every query by host, so the plain index on
``host_id`` goes.

Downgrading fails while one ARN is registered on two hosts: the old
constraint cannot hold then, and which row to drop is not ours to guess.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_host_id"))
        batch_op.drop_constraint(batch_op.f("uq_tasks_arn"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_tasks_host_id_arn"), ["host_id", "arn"]
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_tasks_host_id_arn"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_tasks_arn"), ["arn"])
        batch_op.create_index(batch_op.f("ix_tasks_host_id"), ["host_id"], unique=False)
