"""tasks and containers

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("arn", sa.String(length=1600), nullable=False),
        sa.Column("family", sa.String(length=255), nullable=False),
        sa.Column("version", sa.String(length=255), nullable=False),
        sa.Column("cluster", sa.String(length=255), nullable=False),
        sa.Column("network_mode", sa.String(length=16), nullable=False),
        sa.Column("host_id", sa.String(length=255), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("arn", name=op.f("uq_tasks_arn")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasks_cluster_family", ["cluster", "family"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_tasks_host_id"), ["host_id"], unique=False)

    op.create_table(
        "containers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.String(length=255), nullable=False),
        sa.Column("docker_name", sa.String(length=255), nullable=True),
        sa.Column("docker_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_name", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_containers_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_containers")),
        sa.UniqueConstraint("docker_id", name=op.f("uq_containers_docker_id")),
        sa.UniqueConstraint("docker_name", name=op.f("uq_containers_docker_name")),
        sa.UniqueConstraint("task_id", "name", name=op.f("uq_containers_task_id_name")),
    )
    with op.batch_alter_table("containers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_containers_host_status", ["host_id", "status"], unique=False
        )



def downgrade() -> None:
    with op.batch_alter_table("containers", schema=None) as batch_op:
        batch_op.drop_index("ix_containers_host_status")

    op.drop_table("containers")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_host_id"))
        batch_op.drop_index("ix_tasks_cluster_family")

    op.drop_table("tasks")
