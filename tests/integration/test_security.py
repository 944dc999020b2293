"""Guard rails: the token, the host policy, and secrets kept out of logs."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.config import Settings
from app.main import create_app
from app.store.migrate import upgrade
from tests.conftest import HOST_LABEL, TEST_IMAGE, unique_arn
from tests.support.problem import assert_problem
from tests.support.server import BerthServer, free_port

TOKEN = "berth-test-token-3f7c9a1e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "env-secret-value-58d2b7"


def open_client(settings: Settings, **changes: Any) -> TestClient:
    """berth in-process with some settings changed, on the test's database."""
    changed = settings.model_copy(update=changes)
    upgrade(changed.resolved_database_url)
    return TestClient(create_app(changed))


@pytest.fixture
def guarded(settings: Settings) -> Iterator[TestClient]:
    """berth with an API token configured."""
    with open_client(settings, api_token=SecretStr(TOKEN)) as client:
        yield client


def engine_containers(docker_api: docker.APIClient, host_id: str) -> list[Any]:
    found: list[Any] = docker_api.containers(
        all=True, filters={"label": f"{HOST_LABEL}={host_id}"}
    )
    return found


def registered(client: TestClient, arn: str, headers: Any = None) -> int:
    page = client.get("/v1/tasks", params={"arn": arn}, headers=headers).json()
    total: int = page["total"]
    return total


# Authentication


def v1_operations(client: TestClient) -> list[tuple[str, str]]:
    """Every method and path under /v1 in the OpenAPI document, filled in."""
    paths = client.get("/openapi.json").json()["paths"]
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "x", path))
        for path, item in paths.items()
        if path.startswith("/v1")
        for method in item
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
    ids=["none", "wrong", "basic", "bare", "empty", "longer"],
)
def test_every_v1_route_demands_the_token(
    guarded: TestClient, headers: dict[str, str]
) -> None:
    """No token, or any wrong one, is 401 AuthenticationError on every route."""
    operations = v1_operations(guarded)
    assert len(operations) >= 12

    for method, path in operations:
        response = guarded.request(method, path, headers=headers)

        assert_problem(response, 401, "AuthenticationError")
        assert response.headers["www-authenticate"] == "Bearer"


def test_right_token_is_accepted(guarded: TestClient) -> None:
    """The configured token opens the API; the scheme's case does not matter."""
    lower = {"Authorization": f"bearer {TOKEN}"}

    assert guarded.get("/v1/tasks", headers=AUTH).status_code == 200
    assert guarded.get("/v1/tasks", headers=lower).status_code == 200


def test_probes_never_need_the_token(guarded: TestClient) -> None:
    """/healthz and /readyz answer without a token."""
    assert guarded.get("/healthz").status_code == 200
    assert guarded.get("/readyz").status_code == 200


def test_token_is_checked_before_the_body(guarded: TestClient) -> None:
    """Without the token, a broken or oversized body is still just 401."""
    broken = guarded.post(
        "/v1/tasks", content=b"{broken", headers={"content-type": "application/json"}
    )
    huge = guarded.post(
        "/v1/tasks",
        content=b" " * (3 * 1024 * 1024),
        headers={"content-type": "application/json"},
    )
    unknown = guarded.get("/v1/no-such-route")

    assert_problem(broken, 401, "AuthenticationError")
    assert_problem(huge, 401, "AuthenticationError")
    assert_problem(unknown, 401, "AuthenticationError")


def test_token_file_is_read(settings: Settings, tmp_path: Path) -> None:
    """BERTH_API_TOKEN_FILE names a file holding the token (newline ignored)."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")

    with open_client(settings, api_token_file=token_file) as client:
        without = client.get("/v1/tasks")
        with_token = client.get("/v1/tasks", headers=AUTH)

    assert_problem(without, 401, "AuthenticationError")
    assert with_token.status_code == 200


# `berth serve`


def serve_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `berth serve` subprocess, with no token set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_API_TOKEN")}
    env.update(
        BERTH_STATE_DIR=str(settings.state_dir),
        BERTH_DATABASE_URL=settings.resolved_database_url,
        BERTH_HOST_ID=settings.host_id,
        BERTH_EVENTS="false",
        **extra,
    )
    return env


def berth(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_serve_refuses_a_public_address_without_a_token(
    settings: Settings, host: str
) -> None:
    """`berth serve --host 0.0.0.0` with no token exits non-zero and says why."""
    done = berth(
        "serve", "--host", host, "--port", str(free_port()), env=serve_env(settings)
    )

    assert done.returncode != 0
    assert "token" in done.stderr.lower()
    assert "BERTH_API_TOKEN" in done.stderr


def test_serve_refuses_an_unreadable_token_file(
    settings: Settings, tmp_path: Path
) -> None:
    """A token file that cannot be read stops berth with a message."""
    env = serve_env(settings, BERTH_API_TOKEN_FILE=str(tmp_path / "missing"))

    done = berth("serve", "--port", str(free_port()), env=env)

    assert done.returncode != 0
    assert "token file" in done.stderr


def _wait_healthy(http: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    # The socket file exists from the bind; it answers once the app started.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "berth exited early"
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError("berth did not answer on its socket")


def test_serve_on_a_unix_socket(settings: Settings, tmp_path: Path) -> None:
    """`berth serve --uds` answers on a socket only its own user can open."""
    path = tmp_path / "berth.sock"
    log = (tmp_path / "uds.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--uds", str(path)],
        env=serve_env(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport, base_url="http://berth") as http:
            _wait_healthy(http, process)
            health = http.get("/healthz")
            created = http.post(
                "/v1/tasks",
                json={
                    "arn": unique_arn(),
                    "family": "uds",
                    "version": "1",
                    "containers": [{"name": "m", "image": TEST_IMAGE}],
                },
            )
        mode = stat.S_IMODE(path.stat().st_mode)
    finally:
        process.terminate()
        process.wait(15)
        log.close()

    assert health.status_code == 200
    assert created.status_code == 201
    assert mode == 0o600


# The host policy

SOCKET = "/var/run/docker.sock"


def spec(arn: str, container: dict[str, Any] | None = None, **task: Any) -> Any:
    return {
        "arn": arn,
        "family": "policy",
        "version": "1",
        "containers": [{"name": "m", "image": TEST_IMAGE, **(container or {})}],
        **task,
    }


def _mounting(host_path: str) -> dict[str, Any]:
    return {
        "volumes": [{"name": "host", "host_path": host_path}],
        "container": {
            "mount_points": [
                {"source_volume": "host", "container_path": "/h", "read_only": True}
            ]
        },
    }


def _raw(host_config: dict[str, Any]) -> dict[str, Any]:
    return {"container": {"docker_config": {"host_config": host_config}}}


DENIED: dict[str, tuple[dict[str, Any], str]] = {
    "a restart policy": (_raw({"RestartPolicy": {"Name": "always"}}), "restart-policy"),
    "privileged": ({"container": {"privileged": True}}, "privileged"),
    "host network": ({"network_mode": "host"}, "host-network"),
    "bind of /etc": (_mounting("/etc"), "host-path"),
    "bind of the docker socket": (_mounting(SOCKET), "docker-socket"),
    "raw Privileged": (_raw({"Privileged": True}), "privileged"),
    "raw NetworkMode host": (_raw({"NetworkMode": "host"}), "host-network"),
    "raw Binds of /etc": (_raw({"Binds": ["/etc:/x"]}), "host-path"),
    "raw Mounts of the socket": (
        _raw({"Mounts": [{"Type": "bind", "Source": SOCKET, "Target": SOCKET}]}),
        "docker-socket",
    ),
    "raw PidMode host": (_raw({"PidMode": "host"}), "host-pid"),
    "raw CapAdd": (_raw({"CapAdd": ["SYS_ADMIN"]}), "cap-add"),
    "raw CgroupParent": (_raw({"CgroupParent": "/"}), "cgroup-parent"),
    "raw privileged in lower case": (_raw({"privileged": True}), "privileged"),
    "top-level host config": (
        {"container": {"docker_config": {"config": {"Privileged": True}}}},
        "privileged",
    ),
}


def _body(arn: str, case: dict[str, Any]) -> Any:
    fields = dict(case)
    return spec(arn, fields.pop("container", None), **fields)


@pytest.mark.parametrize("case", sorted(DENIED))
def test_default_policy_denies_before_storing(
    client: TestClient, docker_api: docker.APIClient, host_id: str, case: str
) -> None:
    """With default settings each way into the host is 403, and nothing stays."""
    fields, rule = DENIED[case]
    arn = unique_arn()

    response = client.post("/v1/tasks", json=_body(arn, fields))

    problem = assert_problem(response, 403, "PolicyDeniedError")
    assert problem["rule"] == rule
    assert f"rule: {rule}" in problem["detail"]
    assert registered(client, arn) == 0
    assert engine_containers(docker_api, host_id) == []


def test_policy_is_judged_again_at_create(
    settings: Settings, docker_api: docker.APIClient, host_id: str
) -> None:
    """A task registered under a looser policy is refused at create, unnamed."""
    quiet = {"events": False, "reconcile_on_start": False}
    with open_client(settings, allow_privileged=True, **quiet) as loose:
        task = loose.post(
            "/v1/tasks", json=spec(unique_arn(), {"privileged": True})
        ).json()

    with open_client(settings, **quiet) as strict:
        response = strict.post(f"/v1/tasks/{task['id']}/containers/m/create")
        started = strict.post(f"/v1/tasks/{task['id']}/containers/m/start")
        row = strict.get(f"/v1/tasks/{task['id']}/containers/m").json()

    assert assert_problem(response, 403, "PolicyDeniedError")["rule"] == "privileged"
    assert_problem(started, 403, "PolicyDeniedError")
    assert row["docker_name"] is None
    assert row["docker_id"] is None
    assert engine_containers(docker_api, host_id) == []


def _inspect_created(
    client: TestClient, docker_api: docker.APIClient, body: Any
) -> dict[str, Any]:
    task = client.post("/v1/tasks", json=body)
    assert task.status_code == 201, task.text
    created = client.post(f"/v1/tasks/{task.json()['id']}/containers/m/create")
    assert created.status_code == 201, created.text
    host: dict[str, Any] = docker_api.inspect_container(created.json()["docker_id"])[
        "HostConfig"
    ]
    return host


ALLOWED: dict[str, tuple[dict[str, Any], dict[str, Any], str, Any]] = {
    "privileged": (
        {"allow_privileged": True},
        {"container": {"privileged": True}},
        "Privileged",
        True,
    ),
    "host network": (
        {"allow_host_network": True},
        {"network_mode": "host"},
        "NetworkMode",
        "host",
    ),
    "host pid": (
        {"allow_host_pid": True},
        _raw({"PidMode": "host"}),
        "PidMode",
        "host",
    ),
    "cap add": (
        {"allow_cap_add": True},
        _raw({"CapAdd": ["NET_ADMIN"]}),
        "CapAdd",
        ["NET_ADMIN"],
    ),
    "bind of /etc": (
        {"allowed_host_paths": ["/etc"]},
        _mounting("/etc"),
        "Binds",
        ["/etc:/h:ro"],
    ),
    "bind of the named socket": (
        {"allowed_host_paths": [SOCKET]},
        _mounting(SOCKET),
        "Binds",
        [f"{SOCKET}:/h:ro"],
    ),
}


@pytest.mark.parametrize("case", sorted(ALLOWED))
def test_each_setting_allows_its_rule(
    settings: Settings, docker_api: docker.APIClient, case: str
) -> None:
    """With its setting on, what a rule denied is created as asked."""
    changes, fields, key, expected = ALLOWED[case]

    with open_client(settings, events=False, **changes) as client:
        host = _inspect_created(client, docker_api, _body(unique_arn(), fields))

    assert host[key] == expected


@pytest.mark.parametrize("allowed", [["/"], ["/var/run"], ["/run"], ["/var"]])
def test_docker_socket_needs_naming_itself(
    settings: Settings, allowed: list[str]
) -> None:
    """Allowing a folder that holds the Docker socket does not allow the socket."""
    with open_client(settings, events=False, allowed_host_paths=allowed) as client:
        response = client.post("/v1/tasks", json=_body(unique_arn(), _mounting(SOCKET)))

    assert assert_problem(response, 403, "PolicyDeniedError")["rule"] == "docker-socket"


# Other containers


@pytest.fixture
def foreign(docker_api: docker.APIClient) -> Iterator[str]:
    """A container berth did not make, holding the Docker socket; removed after."""
    name = f"berth-test-foreign-{uuid.uuid4().hex[:12]}"
    binds = [f"{SOCKET}:{SOCKET}:ro"]
    docker_api.create_container(
        TEST_IMAGE,
        command=["sleep", "30"],
        name=name,
        host_config=docker_api.create_host_config(binds=binds),
    )
    try:
        yield name
    finally:
        docker_api.remove_container(name, force=True)


Reach = Callable[[str], dict[str, Any]]

REACHING: dict[str, tuple[Reach, str]] = {
    "VolumesFrom": (lambda name: {"VolumesFrom": [name]}, "volumes-from"),
    "volumesfrom read-only": (
        lambda name: {"volumesfrom": [f"{name}:ro"]},
        "volumes-from",
    ),
    "PidMode": (lambda name: {"PidMode": f"container:{name}"}, "container-namespace"),
    "NetworkMode": (
        lambda name: {"NetworkMode": f"container:{name}"},
        "container-namespace",
    ),
    "Links": (lambda name: {"Links": [f"{name}:peer"]}, "links"),
    "a volume not the task's": (
        lambda name: {"Binds": [f"{name}-volume:/steal"]},
        "named-volume",
    ),
}


@pytest.mark.parametrize("case", sorted(REACHING))
def test_docker_config_cannot_reach_another_container(
    client: TestClient,
    docker_api: docker.APIClient,
    host_id: str,
    foreign: str,
    case: str,
) -> None:
    """docker_config naming a container berth did not wire is 403; nothing stays."""
    reach, rule = REACHING[case]
    arn = unique_arn()

    response = client.post("/v1/tasks", json=_body(arn, _raw(reach(foreign))))

    problem = assert_problem(response, 403, "PolicyDeniedError")
    assert problem["rule"] == rule
    assert foreign not in response.text
    assert registered(client, arn) == 0
    assert engine_containers(docker_api, host_id) == []


@pytest.mark.parametrize("case", ["VolumesFrom", "PidMode"])
def test_create_refuses_another_container_stored_unjudged(
    client: TestClient,
    docker_api: docker.APIClient,
    host_id: str,
    foreign: str,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    """A task stored before these rules existed is refused at create, unnamed."""
    reach, rule = REACHING[case]
    # As a berth without these rules would have stored it.
    monkeypatch.setattr("app.service.tasks.check_task", lambda policy, task: None)
    task = client.post("/v1/tasks", json=_body(unique_arn(), _raw(reach(foreign))))
    assert task.status_code == 201, task.text
    base = f"/v1/tasks/{task.json()['id']}/containers/m"

    response = client.post(f"{base}/create")
    row = client.get(base).json()

    assert assert_problem(response, 403, "PolicyDeniedError")["rule"] == rule
    assert row["docker_name"] is None
    assert row["docker_id"] is None
    assert engine_containers(docker_api, host_id) == []


def test_typed_links_and_volumes_from_reach_siblings(
    client: TestClient, docker_api: docker.APIClient
) -> None:
    """The closed policy lets a container link to and share volumes of a sibling."""
    app = {
        "name": "m",
        "image": TEST_IMAGE,
        "links": ["db:database"],
        "volumes_from": [{"source_container": "db", "read_only": True}],
    }
    body = {
        **spec(unique_arn()),
        "containers": [{"name": "db", "image": TEST_IMAGE}, app],
    }
    task = client.post("/v1/tasks", json=body)
    assert task.status_code == 201, task.text
    base = f"/v1/tasks/{task.json()['id']}/containers"

    db = client.post(f"{base}/db/create")
    created = client.post(f"{base}/m/create")

    assert db.status_code == 201, db.text
    assert created.status_code == 201, created.text
    host = docker_api.inspect_container(created.json()["docker_id"])["HostConfig"]
    sibling = db.json()["docker_name"]
    assert host["VolumesFrom"] == [f"{sibling}:ro"]
    assert [link.split(":")[0] for link in host["Links"]] == [f"/{sibling}"]


# Secrets


def test_problems_do_not_echo_input_values(client: TestClient) -> None:
    """A refused body's values, secrets included, are not in the answer."""
    bodies = [
        spec(unique_arn(), {"environment": {"A": SECRET, "B": 5}}),
        spec(unique_arn(), {"environment": {"A": SECRET}, "memory_mib": -1}),
        {
            **spec(unique_arn(), {"environment": {"A": SECRET}}),
            "containers": [
                {"name": "m", "image": TEST_IMAGE, "environment": {"A": SECRET}},
                {"name": "m", "image": TEST_IMAGE, "environment": {"A": SECRET}},
            ],
        },
        spec(unique_arn(), {"environment": {"A": SECRET}, "privileged": True}),
        spec(unique_arn(), {"docker_config": {"config": {"Env": [f"={SECRET}"]}}}),
        spec(unique_arn(), {"command": [SECRET, 5], "docker_labels": {"l": SECRET}}),
        spec(unique_arn(), {"log_configuration": {"options": {"token": SECRET}}}),
    ]

    for body in bodies:
        response = client.post("/v1/tasks", json=body)

        assert response.status_code in (403, 422)
        assert SECRET not in response.text


def test_secrets_never_reach_the_log(settings: Settings, tmp_path: Path) -> None:
    """Neither the API token nor an environment value appears in berth's output."""
    server = BerthServer(
        {
            "BERTH_API_TOKEN": TOKEN,
            "BERTH_DATABASE_URL": settings.resolved_database_url,
            "BERTH_HOST_ID": settings.host_id,
            "BERTH_LOG_LEVEL": "DEBUG",
            "BERTH_LOG_FORMAT": "json",
        },
        tmp_path / "berth.log",
    ).start()
    arn = unique_arn()
    env = {"DB_PASSWORD": SECRET}
    try:
        with server.client(headers=AUTH) as http:
            task = http.post(
                "/v1/tasks",
                json=spec(arn, {"environment": env, "command": ["sleep", "30"]}),
            ).json()
            base = f"/v1/tasks/{task['id']}/containers/m"
            created = http.post(base + "/create").json()
            started = http.post(base + "/start")
            refused = http.post(
                "/v1/tasks", json=spec(arn, {"environment": env, "memory_mib": 1})
            )
            denied = http.post(
                "/v1/tasks",
                json=spec(unique_arn(), {"environment": env, "privileged": True}),
            )
            stranger = http.get("/v1/tasks", headers={"Authorization": "Bearer nope"})
            deleted = http.delete(f"/v1/tasks/{task['id']}", params={"timeout": 0})
    finally:
        server.stop()
    output = server.output()

    assert started.status_code == 200
    assert refused.status_code == 422 and SECRET not in refused.text
    assert denied.status_code == 403 and SECRET not in denied.text
    assert stranger.status_code == 401
    assert deleted.status_code == 204
    assert TOKEN not in output
    assert SECRET not in output
    # Logs name the task by ARN and the container by Docker ID.
    assert arn in output
    assert created["docker_id"] in output


def test_a_key_written_twice_in_two_cases_is_refused(
    client: TestClient, docker_api: docker.APIClient, host_id: str
) -> None:
    """A mount whose Type is written "volume" and again "bind" would bind
    /etc as the engine reads it: refused before anything is stored."""
    arn = unique_arn()
    mount = {"Type": "volume", "type": "bind", "Source": "/etc", "Target": "/x"}

    response = client.post("/v1/tasks", json=_body(arn, _raw({"Mounts": [mount]})))

    problem = assert_problem(response, 422, "ValidationError")
    assert "twice in different letter case" in problem["detail"] + str(
        problem.get("errors")
    )
    assert registered(client, arn) == 0
    assert engine_containers(docker_api, host_id) == []


def test_a_link_made_after_create_is_judged_again_at_start(
    settings: Settings, docker_api: docker.APIClient, host_id: str, tmp_path: Path
) -> None:
    """An allowed folder's entry made a link to / between create and start:
    the start is 403, as the engine would bind what the link reaches."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    task = {
        "arn": unique_arn(),
        "family": "links",
        "version": "1",
        "volumes": [{"name": "later", "host_path": str(allowed / "later")}],
        "containers": [
            {
                "name": "m",
                "image": TEST_IMAGE,
                "command": ["sleep", "300"],
                "mount_points": [{"source_volume": "later", "container_path": "/h"}],
            }
        ],
    }
    with open_client(settings, allowed_host_paths=[str(allowed)]) as client:
        task_id = client.post("/v1/tasks", json=task).json()["id"]
        url = f"/v1/tasks/{task_id}/containers/m"
        created = client.post(f"{url}/create")
        (allowed / "later").symlink_to("/")

        started = client.post(f"{url}/start")

    assert created.status_code == 201, created.text
    problem = assert_problem(started, 403, "PolicyDeniedError")
    assert problem["rule"] in ("host-path", "docker-socket")
    state = docker_api.inspect_container(created.json()["docker_id"])["State"]
    assert not state["Running"] and state["StartedAt"].startswith("0001")
