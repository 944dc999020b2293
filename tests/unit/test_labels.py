"""Ownership labels: set last, so they always win."""

from __future__ import annotations

from app.service.labels import (
    CLUSTER,
    CONTAINER_NAME,
    FAMILY,
    HOST_ID,
    TASK_ARN,
    VERSION,
    made_here,
    owned_by,
    ownership_labels,
    with_ownership,
)

PREFIX = "com.amazonaws.ecs."


def ours() -> dict[str, str]:
    return ownership_labels(
        PREFIX,
        task_arn="arn:task/1",
        container_name="app.v1_x",
        family="web",
        version="3",
        cluster="prod",
        host_id="host-a",
    )


def test_ownership_labels_carry_the_five_ecs_keys_and_the_host() -> None:
    """The ECS keys hold the task's values; the name is kept uncleaned."""
    labels = ours()

    assert labels == {
        PREFIX + TASK_ARN: "arn:task/1",
        PREFIX + CONTAINER_NAME: "app.v1_x",
        PREFIX + FAMILY: "web",
        PREFIX + VERSION: "3",
        PREFIX + CLUSTER: "prod",
        HOST_ID: "host-a",
    }


def test_ours_override_the_users_labels_of_the_same_key() -> None:
    """A user's label cannot impersonate another task or container."""
    user = {PREFIX + TASK_ARN: "arn:someone-else", HOST_ID: "host-b"}

    merged = with_ownership(user, ours())

    assert merged[PREFIX + TASK_ARN] == "arn:task/1"
    assert merged[HOST_ID] == "host-a"


def test_the_users_other_labels_are_kept() -> None:
    """Labels under keys berth does not own pass through unchanged."""
    user = {"team": "payments", PREFIX + "custom": "yes"}

    merged = with_ownership(user, ours())

    assert merged["team"] == "payments"
    assert merged[PREFIX + "custom"] == "yes"
    assert len(merged) == len(ours()) + 2


def test_no_user_labels_gives_ours_alone() -> None:
    """None and an empty mapping both give exactly the ownership labels."""
    assert with_ownership(None, ours()) == ours()
    assert with_ownership({}, ours()) == ours()


def test_with_ownership_leaves_its_inputs_alone() -> None:
    """Merging copies: the user's mapping is not changed."""
    user = {PREFIX + TASK_ARN: "x"}

    with_ownership(user, ours())

    assert user == {PREFIX + TASK_ARN: "x"}


def test_owned_by_needs_the_arn_the_container_name_and_the_host() -> None:
    """A container is ours only when task ARN, name and host ID all match."""
    labels = ours()

    assert owned_by(labels, PREFIX, "arn:task/1", "app.v1_x", "host-a")
    assert not owned_by(labels, PREFIX, "arn:task/2", "app.v1_x", "host-a")
    assert not owned_by(labels, PREFIX, "arn:task/1", "other", "host-a")
    assert not owned_by(None, PREFIX, "arn:task/1", "app.v1_x", "host-a")


def test_another_hosts_container_is_not_owned_by_this_host() -> None:
    """Same task ARN and container name, another host's ID: not ours."""
    labels = ours()

    assert not owned_by(labels, PREFIX, "arn:task/1", "app.v1_x", "host-b")


def test_a_container_with_no_host_label_is_owned_by_no_host() -> None:
    """ECS labels without berth's host label: made by something else."""
    labels = {k: v for k, v in ours().items() if k != HOST_ID}

    assert not owned_by(labels, PREFIX, "arn:task/1", "app.v1_x", "host-a")
    assert not made_here(labels, "host-a")
    assert made_here(ours(), "host-a") and not made_here(ours(), "host-b")
