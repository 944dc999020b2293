"""Ownership labels: set last, so they always win."""

from __future__ import annotations

from app.service.labels import (
    CLUSTER,
    CONTAINER_NAME,
    FAMILY,
    HOST_ID,
    TASK_ARN,
    VERSION,
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


def test_owned_by_needs_both_the_arn_and_the_container_name() -> None:
    """A container is ours only when task ARN and name both match."""
    labels = ours()

    assert owned_by(labels, PREFIX, "arn:task/1", "app.v1_x")
    assert not owned_by(labels, PREFIX, "arn:task/2", "app.v1_x")
    assert not owned_by(labels, PREFIX, "arn:task/1", "other")
    assert not owned_by(None, PREFIX, "arn:task/1", "app.v1_x")
