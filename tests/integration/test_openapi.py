"""The OpenAPI document: committed, shaped for generated clients, and usable."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from fastapi.testclient import TestClient

from tests.conftest import TEST_IMAGE, unique_arn
from tests.support.server import BerthServer

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "openapi.json"
PROBLEM_REF = "#/components/schemas/Problem"
METHODS = {"get", "put", "post", "delete", "patch"}
CLIENT_PACKAGE = "berth_generated_client"

# What reads as a method name: lower-case words joined by underscores.
METHOD_NAME = re.compile(r"^[a-z]+(_[a-z]+)*$")


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


@pytest.fixture
def served(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def test_committed_document_matches_the_served_one(served: dict[str, Any]) -> None:
    """docs/openapi.json is exactly what berth serves; regenerate it if not."""
    committed = json.loads(COMMITTED.read_text())

    assert served == committed, (
        "docs/openapi.json is stale: run `berth openapi > docs/openapi.json`"
    )


def test_operation_ids_read_as_method_names(served: dict[str, Any]) -> None:
    """Every operation has a unique ID with no generated path or verb slugs."""
    ids = [op.get("operationId", "") for _, _, op in _operations(served)]

    assert len(ids) == len(set(ids))
    for operation_id in ids:
        assert METHOD_NAME.match(operation_id), operation_id
        assert "_v1_" not in operation_id
        assert not re.search(r"_(get|post|put|delete|patch)$", operation_id)


def test_every_operation_has_a_declared_tag(served: dict[str, Any]) -> None:
    """Operations are grouped by tags that the document describes."""
    declared = {tag["name"] for tag in served["tags"]}

    for path, method, operation in _operations(served):
        assert operation.get("tags"), (method, path)
        assert set(operation["tags"]) <= declared, (method, path)


def test_v1_errors_are_documented_as_problems(served: dict[str, Any]) -> None:
    """Each /v1 operation lists 4xx answers in problem+json, and nothing else."""
    for path, method, operation in _operations(served):
        if not path.startswith("/v1/"):
            continue
        errors = {
            status: response
            for status, response in operation["responses"].items()
            if int(status) >= 400
        }

        assert any(400 <= int(status) < 500 for status in errors), (method, path)
        assert "422" in errors, (method, path)
        for response in errors.values():
            assert response["content"] == {
                "application/problem+json": {"schema": {"$ref": PROBLEM_REF}}
            }, (method, path)


def test_fastapi_default_validation_schema_is_gone(served: dict[str, Any]) -> None:
    """No operation answers with FastAPI's HTTPValidationError shape."""
    schemas = served["components"]["schemas"]

    assert "HTTPValidationError" not in schemas
    assert "HTTPValidationError" not in json.dumps(served["paths"])
    assert {"error_name", "status", "title", "type"} <= set(
        schemas["Problem"]["properties"]
    )


def test_invalid_request_answers_as_documented(client: TestClient) -> None:
    """A request that fails validation gets a 422 problem, as the document says."""
    answer = client.post("/v1/tasks", json={"arn": "x"})

    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["error_name"] == "ValidationError"


def _generate_client(target: Path) -> str:
    """Run openapi-python-client on the committed document; its output."""
    target.parent.mkdir(parents=True, exist_ok=True)
    config = target.parent / "generator.yaml"
    # No post hooks: formatting the generated code is not what is tested,
    # and the hooks would look for tools on PATH.
    config.write_text("post_hooks: []\n")
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("openapi-python-client")),
            "generate",
            "--path",
            str(COMMITTED),
            "--output-path",
            str(target),
            "--meta",
            "none",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """A client generated from docs/openapi.json, importable; and its output."""
    output = _generate_client(tmp_path / "gen" / CLIENT_PACKAGE)
    sys.path.insert(0, str(tmp_path / "gen"))
    try:
        yield importlib.import_module(CLIENT_PACKAGE), output
    finally:
        sys.path.remove(str(tmp_path / "gen"))
        for name in [m for m in sys.modules if m.startswith(CLIENT_PACKAGE)]:
            del sys.modules[name]


@pytest.fixture
def server(tmp_path: Path, host_id: str) -> Iterator[BerthServer]:
    env = {"BERTH_STATE_DIR": str(tmp_path), "BERTH_HOST_ID": host_id}
    berth = BerthServer(env, tmp_path / "berth.log").start()
    try:
        yield berth
    finally:
        berth.stop()


def test_generated_client_registers_and_creates(
    generated: tuple[Any, str], server: BerthServer, docker_api: docker.APIClient
) -> None:
    """A generated client, made without warnings, drives a real create."""
    package, output = generated
    tasks = f"{CLIENT_PACKAGE}.api.tasks"
    register_task = importlib.import_module(f"{tasks}.register_task")
    create_container = importlib.import_module(f"{tasks}.create_container")
    get_task = importlib.import_module(f"{tasks}.get_task")
    models = importlib.import_module(f"{CLIENT_PACKAGE}.models")
    spec = models.TaskSpec.from_dict(
        {
            "arn": unique_arn("generated"),
            "family": "generated",
            "version": "1",
            "containers": [
                {"name": "main", "image": TEST_IMAGE, "command": ["sleep", "30"]}
            ],
        }
    )

    with package.Client(base_url=server.url, timeout=60) as api:
        task = register_task.sync(client=api, body=spec)
        created = create_container.sync_detailed(
            task_id=task.id, name="main", client=api
        )
        missing = get_task.sync(task_id="no-such-task", client=api)

    assert "warning" not in output.lower(), output
    assert isinstance(task, models.TaskView)
    assert created.status_code == 201
    assert isinstance(created.parsed, models.ContainerView)
    inspected = docker_api.inspect_container(created.parsed.docker_id)
    assert inspected["Name"] == "/" + created.parsed.docker_name
    assert isinstance(missing, models.Problem)
    assert missing.error_name == "TaskNotFoundError"
