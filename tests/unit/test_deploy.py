"""deploy/: the unit, the compose files and the DaemonSet parse and hold together."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SOCKET = "/var/run/docker.sock"
STATE = "/var/lib/berth"


def _load(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text())


def _unit() -> configparser.ConfigParser:
    # systemd repeats keys (SystemCallFilter); the last one is enough here.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((DEPLOY / "berth.service").read_text())
    return parser


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")), ids=str)
def test_every_yaml_file_parses(path: Path) -> None:
    """Each YAML document in deploy/ is a mapping."""
    documents = list(yaml.safe_load_all(path.read_text()))

    assert documents
    assert all(isinstance(d, dict) for d in documents)


def test_unit_runs_berth_after_docker() -> None:
    """The unit serves berth once the engine is up, with a state folder."""
    unit = _unit()

    assert "docker.service" in unit["Unit"]["After"].split()
    service = unit["Service"]
    assert "berth serve" in service["ExecStart"]
    assert service["StateDirectory"] == "berth"
    assert service["StateDirectoryMode"] == "0700"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_unit_is_hardened() -> None:
    """The unit holds no capabilities and closes what berth does not need."""
    service = _unit()["Service"]

    assert service["CapabilityBoundingSet"] == ""
    assert service.get("AmbientCapabilities", "") == ""
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ProtectHome"] in ("yes", "read-only", "tmpfs")
    assert service["PrivateTmp"] == "yes"
    assert set(service["RestrictAddressFamilies"].split()) == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
    }


def test_unit_passes_systemd_verify(tmp_path: Path) -> None:
    """systemd knows every directive of the unit (no typo is ignored)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    # verify also checks that ExecStart exists, and berth is not installed
    # system-wide here.
    text = (DEPLOY / "berth.service").read_text()
    lines = [
        "ExecStart=/bin/true" if line.startswith("ExecStart=") else line
        for line in text.splitlines()
    ]
    unit = tmp_path / "berth.service"
    unit.write_text("\n".join(lines) + "\n")

    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Unknown" not in output and "ignoring" not in output, output


def _berth_service(compose: dict[str, Any]) -> dict[str, Any]:
    service: dict[str, Any] = compose["services"]["berth"]
    return service


def test_compose_mounts_the_socket_and_a_state_volume() -> None:
    """Compose gives berth the engine's socket, its group and a named volume."""
    compose = _load("compose.yaml")
    berth = _berth_service(compose)

    mounts = dict(v.rsplit(":", 1)[::-1] for v in berth["volumes"])
    assert mounts[SOCKET] == SOCKET
    assert mounts[STATE] in compose["volumes"]
    assert berth["group_add"]
    assert "BERTH_HOST_ID" in berth["environment"]
    assert "BERTH_API_TOKEN_FILE" in berth["environment"]


def test_compose_runs_berth_locked_down() -> None:
    """Read-only root, no capabilities, no privilege gain, loopback port."""
    berth = _berth_service(_load("compose.yaml"))

    assert berth["read_only"] is True
    assert berth["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in berth["security_opt"]
    assert not berth.get("privileged", False)
    assert "user" not in berth
    assert all(port.startswith("127.0.0.1:") for port in berth["ports"])


def _daemonset() -> dict[str, Any]:
    documents = list(
        yaml.safe_load_all((DEPLOY / "kubernetes/daemonset.yaml").read_text())
    )
    kinds = {d["kind"]: d for d in documents}
    daemonset: dict[str, Any] = kinds["DaemonSet"]
    return daemonset


def test_daemonset_uses_the_node_socket_and_a_host_path() -> None:
    """The pod mounts the node's socket and keeps its database on the node."""
    pod = _daemonset()["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    berth = next(c for c in pod["containers"] if c["name"] == "berth")
    mounts = {m["mountPath"]: m["name"] for m in berth["volumeMounts"]}

    assert volumes[mounts[SOCKET]]["hostPath"] == {"path": SOCKET, "type": "Socket"}
    assert volumes[mounts[STATE]]["hostPath"]["path"] == STATE
    assert pod["securityContext"]["supplementalGroups"]
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_daemonset_probes_readiness_and_liveness() -> None:
    """Readiness asks /readyz, liveness /healthz, on the port berth serves."""
    pod = _daemonset()["spec"]["template"]["spec"]
    berth = next(c for c in pod["containers"] if c["name"] == "berth")
    ports = {p["name"]: p["containerPort"] for p in berth["ports"]}

    assert berth["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert berth["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert ports[berth["readinessProbe"]["httpGet"]["port"]] == 8000
    assert "8000" in berth["args"]


def test_daemonset_takes_the_node_name_as_host_id() -> None:
    """The host ID is the node's name, which outlives every pod."""
    pod = _daemonset()["spec"]["template"]["spec"]
    berth = next(c for c in pod["containers"] if c["name"] == "berth")
    env = {e["name"]: e for e in berth["env"]}

    assert env["BERTH_HOST_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "spec.nodeName"
    )
    assert berth["securityContext"]["readOnlyRootFilesystem"] is True
    assert berth["securityContext"]["allowPrivilegeEscalation"] is False


def _env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and key.isidentifier(), line
        pairs[key] = value
    return pairs


def test_fleet_example_shares_postgresql_without_a_password_in_the_url() -> None:
    """The fleet's settings point at PostgreSQL; the password is in a file."""
    env = _env_file(DEPLOY / "fleet/berth.env")
    compose = _load("fleet/compose.yaml")
    berth = _berth_service(compose)

    for url in (env["BERTH_DATABASE_URL"], berth["environment"]["BERTH_DATABASE_URL"]):
        assert url.startswith("postgresql+psycopg://")
        credentials = url.split("://", 1)[1].split("@", 1)[0]
        assert ":" not in credentials
    assert env["BERTH_HOST_ID"]
    assert "PGPASSFILE" in env
    assert "postgres" in compose["services"]
    assert berth["depends_on"]["postgres"]["condition"] == "service_healthy"
