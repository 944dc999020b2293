"""The host policy, judged on create bodies without an engine."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import Settings
from app.errors import PolicyDeniedError
from app.service.policy import (
    RULES,
    Policy,
    check_create_body,
    check_host_path,
    check_task,
)
from app.service.request import build_create_body
from app.service.spec import TaskSpec

CLOSED = Policy()
# Every setting on: what is still denied, no operator can allow.
OPEN = Policy(
    allow_privileged=True,
    allow_host_network=True,
    allow_host_pid=True,
    allow_cap_add=True,
    allowed_host_paths=("/",),
)
FOREIGN = "someone-elses-container"


def rule_of(policy: Policy, body: dict[str, Any]) -> str | None:
    """The rule that denies ``body``, or None when it is allowed."""
    try:
        check_create_body(policy, body)
    except PolicyDeniedError as exc:
        return exc.rule
    return None


def path_rule(policy: Policy, path: str) -> str | None:
    try:
        check_host_path(policy, path)
    except PolicyDeniedError as exc:
        return exc.rule
    return None


def host(**fields: Any) -> dict[str, Any]:
    return {"Image": "busybox", "HostConfig": {"NetworkMode": "bridge", **fields}}


def test_plain_body_is_allowed() -> None:
    """A container that asks nothing of the host passes the closed policy."""
    body = host(Memory=64 << 20, Mounts=[{"Type": "volume", "Target": "/cache"}])

    assert rule_of(CLOSED, body) is None


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"Privileged": True}, "privileged"),
        ({"Devices": [{"PathOnHost": "/dev/sda"}]}, "privileged"),
        ({"DeviceCgroupRules": ["b *:* rwm"]}, "privileged"),
        ({"DeviceRequests": [{"Count": -1}]}, "privileged"),
        ({"MaskedPaths": []}, "privileged"),
        ({"ReadonlyPaths": []}, "privileged"),
        ({"SecurityOpt": ["seccomp=unconfined"]}, "privileged"),
        ({"SecurityOpt": ["apparmor:unconfined"]}, "privileged"),
        ({"SecurityOpt": ["label=disable"]}, "privileged"),
        ({"NetworkMode": "host"}, "host-network"),
        ({"NetworkMode": "HOST"}, "host-network"),
        ({"PidMode": "host"}, "host-pid"),
        ({"IpcMode": "host"}, "host-pid"),
        ({"UsernsMode": "host"}, "host-pid"),
        ({"VolumesFrom": [FOREIGN]}, "volumes-from"),
        ({"VolumesFrom": [f"{FOREIGN}:ro"]}, "volumes-from"),
        ({"Links": [f"{FOREIGN}:db"]}, "links"),
        ({"Links": [FOREIGN]}, "links"),
        ({"NetworkMode": f"container:{FOREIGN}"}, "container-namespace"),
        ({"PidMode": f"container:{FOREIGN}"}, "container-namespace"),
        ({"IpcMode": f"container:{FOREIGN}"}, "container-namespace"),
        ({"UTSMode": f"container:{FOREIGN}"}, "container-namespace"),
        ({"UsernsMode": f"container:{FOREIGN}"}, "container-namespace"),
        ({"CgroupnsMode": f"container:{FOREIGN}"}, "container-namespace"),
        ({"Cgroup": f"container:{FOREIGN}"}, "container-namespace"),
        ({"CgroupParent": "/"}, "cgroup-parent"),
        ({"CgroupParent": "system.slice"}, "cgroup-parent"),
        ({"CapAdd": ["SYS_ADMIN"]}, "cap-add"),
        ({"Capabilities": ["CAP_SYS_ADMIN"]}, "cap-add"),
        ({"Binds": ["/etc:/x"]}, "host-path"),
        ({"Binds": ["/var/run/docker.sock:/var/run/docker.sock"]}, "docker-socket"),
        (
            {"Mounts": [{"Type": "bind", "Source": "/var/run/docker.sock"}]},
            "docker-socket",
        ),
        ({"Mounts": [{"Type": "bind", "Source": "/etc", "Target": "/x"}]}, "host-path"),
        (
            {
                "Mounts": [
                    {
                        "Type": "volume",
                        "Target": "/x",
                        "VolumeOptions": {
                            "DriverConfig": {
                                "Options": {"type": "none", "o": "bind", "device": "/"}
                            }
                        },
                    }
                ]
            },
            "docker-socket",
        ),
    ],
)
def test_closed_policy_denies_with_the_rule(fields: dict[str, Any], rule: str) -> None:
    """Each way of reaching into the host is denied, naming its rule."""
    assert rule_of(CLOSED, host(**fields)) == rule


@pytest.mark.parametrize(
    "body",
    [
        {"Image": "busybox", "HostConfig": {"privileged": True}},
        {"Image": "busybox", "HostConfig": {"PRIVILEGED": True}},
        {"Image": "busybox", "hostconfig": {"Privileged": True}},
        {"Image": "busybox", "HostConfig": {}, "hostConfig": {"Privileged": True}},
        # The engine still reads a top-level host config (deprecated form).
        {"Image": "busybox", "Privileged": True, "HostConfig": None},
        {"Image": "busybox", "Privileged": True},
        # Go's case folding maps the long s (U+017F) to s: the engine reads
        # this key as "Binds".
        {"Image": "busybox", "HostConfig": {"Bind\u017f": ["/etc:/x"]}},
    ],
)
def test_spellings_the_engine_accepts_are_judged_too(body: dict[str, Any]) -> None:
    """Field names in any case, and host config at the top level, count."""
    assert rule_of(CLOSED, body) is not None


def test_empty_lists_and_false_flags_are_allowed() -> None:
    """Asking for nothing is not asking: false, null and [] pass."""
    body = host(Privileged=False, CapAdd=[], Devices=None, CapDrop=["ALL"])

    assert rule_of(CLOSED, body) is None


@pytest.mark.parametrize(
    ("policy", "fields"),
    [
        (Policy(allow_privileged=True), {"Privileged": True}),
        (Policy(allow_privileged=True), {"Devices": [{"PathOnHost": "/dev/fuse"}]}),
        (Policy(allow_host_network=True), {"NetworkMode": "host"}),
        (Policy(allow_host_pid=True), {"PidMode": "host"}),
        (Policy(allow_cap_add=True), {"CapAdd": ["NET_ADMIN"]}),
        (Policy(allow_privileged=True), {"CgroupParent": "/"}),
        (Policy(allowed_host_paths=("/etc",)), {"Binds": ["/etc:/x:ro"]}),
        (
            Policy(allowed_host_paths=("/var/run/docker.sock",)),
            {"Binds": ["/var/run/docker.sock:/var/run/docker.sock"]},
        ),
    ],
)
def test_each_setting_allows_its_rule(policy: Policy, fields: dict[str, Any]) -> None:
    """Turning a setting on allows exactly what its rule denied."""
    assert rule_of(policy, host(**fields)) is None


def test_one_setting_does_not_allow_another_rule() -> None:
    """Allowing privileged containers does not allow the host network."""
    policy = Policy(allow_privileged=True)

    assert rule_of(policy, host(Privileged=True, NetworkMode="host")) == "host-network"


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"VolumesFrom": [FOREIGN]}, "volumes-from"),
        ({"Links": [f"{FOREIGN}:x"]}, "links"),
        ({"PidMode": f"container:{FOREIGN}"}, "container-namespace"),
        ({"NetworkMode": f"container:{FOREIGN}"}, "container-namespace"),
    ],
)
def test_no_setting_allows_naming_another_container(
    fields: dict[str, Any], rule: str
) -> None:
    """With every setting on, a body still may not reach into other containers."""
    assert rule_of(OPEN, host(**fields)) == rule


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ({"Image": "b", "HostConfig": {"volumesfrom": [FOREIGN]}}, "volumes-from"),
        ({"Image": "b", "hostconfig": {"VOLUMESFROM": [FOREIGN]}}, "volumes-from"),
        ({"Image": "b", "VolumesFrom": [FOREIGN]}, "volumes-from"),
        ({"Image": "b", "VolumesFrom": [FOREIGN], "HostConfig": None}, "volumes-from"),
        ({"Image": "b", "HostConfig": {"VolumesFrom": FOREIGN}}, "volumes-from"),
        ({"Image": "b", "HostConfig": {"VolumesFrom": [{"x": 1}]}}, "volumes-from"),
        # U+212A, the Kelvin sign, folds to k in Go: the engine reads "Links".
        ({"Image": "b", "HostConfig": {"Lin\u212as": [FOREIGN]}}, "links"),
        ({"Image": "b", "links": [FOREIGN]}, "links"),
        (
            {
                "Image": "b",
                "NetworkingConfig": {
                    "EndpointsConfig": {"bridge": {"Links": [f"{FOREIGN}:x"]}}
                },
            },
            "links",
        ),
        (
            {
                "Image": "b",
                "networkingconfig": {
                    "endpointsconfig": {"bridge": {"links": [FOREIGN]}}
                },
            },
            "links",
        ),
        (
            {"Image": "b", "HostConfig": {"pidmode": f"container:{FOREIGN}"}},
            "container-namespace",
        ),
        (
            {"Image": "b", "HostConfig": {"PidMode": f"Container:{FOREIGN}"}},
            "container-namespace",
        ),
        (
            {"Image": "b", "HostConfig": {"PidMode": f" container:{FOREIGN}"}},
            "container-namespace",
        ),
        ({"Image": "b", "PidMode": f"container:{FOREIGN}"}, "container-namespace"),
        ({"Image": "b", "HostConfig": {"cgroupparent": "/"}}, "cgroup-parent"),
        ({"Image": "b", "CgroupParent": "/"}, "cgroup-parent"),
    ],
)
def test_other_containers_are_found_in_any_spelling(
    body: dict[str, Any], rule: str
) -> None:
    """Other containers and CgroupParent count in any case and wherever read."""
    assert rule_of(CLOSED, body) == rule


def test_empty_references_are_allowed() -> None:
    """Null and empty VolumesFrom and Links name no container and pass."""
    body = host(VolumesFrom=[], Links=None, CgroupParent="", PidMode="")

    assert rule_of(CLOSED, body) is None


@pytest.mark.parametrize("rule", ["volumes-from", "links", "container-namespace"])
def test_reference_denials_name_the_rule_not_the_container(rule: str) -> None:
    """The denial names the rule and its remedy, never the container it was sent."""
    fields = {
        "volumes-from": {"VolumesFrom": [FOREIGN]},
        "links": {"Links": [FOREIGN]},
        "container-namespace": {"PidMode": f"container:{FOREIGN}"},
    }[rule]

    with pytest.raises(PolicyDeniedError) as caught:
        check_create_body(CLOSED, host(**fields))

    assert caught.value.rule == rule
    assert f"rule: {rule}" in caught.value.detail
    assert RULES[rule] in caught.value.detail
    assert FOREIGN not in caught.value.detail


@pytest.mark.parametrize(
    ("allowed", "path", "rule"),
    [
        ((), "/etc", "host-path"),
        (("/etc",), "/etc", None),
        (("/etc",), "/etc/", None),
        (("/etc/",), "/etc/ssl", None),
        (("/etc",), "/etc/../srv", "host-path"),
        (("/etc",), "/etc/../var", "docker-socket"),
        (("/etc",), "/etcetera", "host-path"),
        (("/data",), "/data/../etc/passwd", "host-path"),
        (("/var",), "/etc/../var/run", "docker-socket"),
        (("/var",), "/var/run/", "docker-socket"),
        (("/var",), "/var/run/docker.sock", "docker-socket"),
        (("/",), "/run/docker.sock", "docker-socket"),
        (("/",), "/", "docker-socket"),
        (("/",), "/run/containerd/containerd.sock", "docker-socket"),
        (("/",), "/srv", None),
        (("/var/run/docker.sock",), "/var/run/docker.sock", None),
        (("/var/run/docker.sock",), "/run/docker.sock", None),
        (("/run/docker.sock/",), "//var/run//docker.sock", None),
        (("/var/run/docker.sock",), "/var/run", "docker-socket"),
        (("/var/run/docker.sock",), "/var/run/user", "host-path"),
        (("/var/run/docker.sock",), "/var/run/docker.sock/../docker.pid", "host-path"),
    ],
)
def test_host_paths_are_normalised(
    allowed: tuple[str, ...], path: str, rule: str | None
) -> None:
    """Dots, slashes and /var/run vs /run cannot walk around the allow-list."""
    assert path_rule(Policy(allowed_host_paths=allowed), path) == rule


def test_the_engine_socket_berth_uses_is_guarded() -> None:
    """A socket at an unusual place is the engine's too when berth uses it."""
    policy = Policy(allowed_host_paths=("/srv",), extra_sockets=("/srv/engine.sock",))

    assert path_rule(policy, "/srv") == "docker-socket"
    assert path_rule(policy, "/srv/data") is None


def test_a_link_out_of_an_allowed_folder_is_followed(tmp_path: Any) -> None:
    """A symbolic link inside an allowed folder is judged where it leads."""
    (tmp_path / "escape").symlink_to("/etc")
    policy = Policy(allowed_host_paths=(str(tmp_path),))

    assert path_rule(policy, str(tmp_path / "escape")) == "host-path"
    assert path_rule(policy, str(tmp_path / "plain")) is None


def test_denial_names_the_rule_and_the_setting() -> None:
    """The message says which rule denied and which setting would allow it."""
    with pytest.raises(PolicyDeniedError) as caught:
        check_create_body(CLOSED, host(CapAdd=["SYS_ADMIN"]))

    assert caught.value.rule == "cap-add"
    assert "rule: cap-add" in caught.value.detail
    assert "BERTH_ALLOW_CAP_ADD" in caught.value.detail


def _task(**container: Any) -> TaskSpec:
    return TaskSpec.model_validate(
        {
            "arn": "arn:test",
            "family": "f",
            "version": "1",
            "volumes": [{"name": "etc", "host_path": "/etc"}],
            "containers": [{"name": "a", "image": "busybox", **container}],
        }
    )


@pytest.mark.parametrize(
    ("container", "rule"),
    [
        ({"privileged": True}, "privileged"),
        (
            {"mount_points": [{"source_volume": "etc", "container_path": "/x"}]},
            "host-path",
        ),
        ({"docker_config": {"host_config": {"PidMode": "host"}}}, "host-pid"),
        ({"docker_config": {"config": {"HostConfig": {"CapAdd": ["ALL"]}}}}, "cap-add"),
        (
            {"docker_config": {"host_config": {"VolumesFrom": [FOREIGN]}}},
            "volumes-from",
        ),
        ({"docker_config": {"host_config": {"Links": [FOREIGN]}}}, "links"),
        (
            {"docker_config": {"host_config": {"PidMode": f"container:{FOREIGN}"}}},
            "container-namespace",
        ),
        (
            {"docker_config": {"config": {"HostConfig": None, "Links": [FOREIGN]}}},
            "links",
        ),
        ({"docker_config": {"host_config": {"CgroupParent": "/"}}}, "cgroup-parent"),
    ],
)
def test_task_is_judged_from_its_spec(container: dict[str, Any], rule: str) -> None:
    """A whole task is judged before it is stored, typed fields and raw alike."""
    with pytest.raises(PolicyDeniedError) as caught:
        check_task(CLOSED, _task(**container))

    assert caught.value.rule == rule


def test_task_with_links_and_volumes_passes() -> None:
    """Siblings without Docker names yet do not upset the judgement."""
    spec = TaskSpec.model_validate(
        {
            "arn": "arn:test",
            "family": "f",
            "version": "1",
            "volumes": [{"name": "data"}],
            "containers": [
                {"name": "db", "image": "busybox"},
                {
                    "name": "app",
                    "image": "busybox",
                    "links": ["db:database"],
                    "volumes_from": [{"source_container": "db"}],
                    "mount_points": [{"source_volume": "data", "container_path": "/d"}],
                },
            ],
        }
    )

    check_task(CLOSED, spec)


SIBLINGS = {"db": "ecs-f-1-db-aaaaaaaaaaaaaaaaaaaa"}


def _wired_task(**docker_config: Any) -> TaskSpec:
    """A task whose ``app`` links to and takes volumes from its sibling ``db``."""
    app: dict[str, Any] = {
        "name": "app",
        "image": "busybox",
        "links": ["db:database"],
        "volumes_from": [{"source_container": "db", "read_only": True}],
    }
    if docker_config:
        app["docker_config"] = docker_config
    return TaskSpec.model_validate(
        {
            "arn": "arn:test",
            "family": "f",
            "version": "1",
            "containers": [{"name": "db", "image": "busybox"}, app],
        }
    )


def _created_body_rule(spec: TaskSpec) -> str | None:
    """The rule that denies ``app``'s body as the create path builds it."""
    container = spec.container("app")
    assert container is not None
    return rule_of(CLOSED, build_create_body(spec, "t", container, SIBLINGS, {}))


def test_typed_sibling_references_pass_at_create() -> None:
    """Links and volumes-from berth wired to a sibling's Docker name pass."""
    assert _created_body_rule(_wired_task()) is None


def test_repeating_what_berth_wired_passes() -> None:
    """A docker_config that only restates berth's own wiring names no stranger."""
    spec = _wired_task(
        host_config={
            "VolumesFrom": [f"{SIBLINGS['db']}:ro"],
            "Links": [f"{SIBLINGS['db']}:database"],
        }
    )

    assert _created_body_rule(spec) is None


@pytest.mark.parametrize(
    ("docker_config", "rule"),
    [
        ({"host_config": {"VolumesFrom": [FOREIGN]}}, "volumes-from"),
        (
            {"host_config": {"VolumesFrom": [f"{SIBLINGS['db']}:ro", FOREIGN]}},
            "volumes-from",
        ),
        ({"host_config": {"volumesfrom": [FOREIGN]}}, "volumes-from"),
        ({"host_config": {"VolumesFrom": ["db:ro"]}}, "volumes-from"),
        ({"host_config": {"VolumesFrom": [f"{SIBLINGS['db']}:rw"]}}, "volumes-from"),
        ({"config": {"HostConfig": {"VolumesFrom": [FOREIGN]}}}, "volumes-from"),
        ({"host_config": {"Links": [f"{FOREIGN}:database"]}}, "links"),
        ({"host_config": {"LINKS": [f"{SIBLINGS['db']}:database", FOREIGN]}}, "links"),
        (
            {
                "config": {
                    "NetworkingConfig": {
                        "EndpointsConfig": {"bridge": {"Links": ["x"]}}
                    }
                }
            },
            "links",
        ),
        (
            {"host_config": {"PidMode": f"container:{SIBLINGS['db']}"}},
            "container-namespace",
        ),
        (
            {"host_config": {"NetworkMode": f"container:{SIBLINGS['db']}"}},
            "container-namespace",
        ),
    ],
)
def test_docker_config_cannot_name_other_containers_at_create(
    docker_config: dict[str, Any], rule: str
) -> None:
    """Beside berth's wiring, docker_config may not name or join any container."""
    assert _created_body_rule(_wired_task(**docker_config)) == rule


@pytest.mark.parametrize(
    "docker_config",
    [
        {"host_config": {"VolumesFrom": ["db:ro"]}},
        {"host_config": {"Links": ["db:database"]}},
        {"host_config": {"VolumesFrom": [FOREIGN]}},
    ],
)
def test_registration_refuses_what_create_would(docker_config: dict[str, Any]) -> None:
    """Before siblings have Docker names, docker_config still cannot name one."""
    with pytest.raises(PolicyDeniedError) as caught:
        check_task(CLOSED, _wired_task(**docker_config))

    assert caught.value.rule in ("volumes-from", "links")


def _volume_task(**docker_config: Any) -> TaskSpec:
    """A task whose container mounts its own volume, plus ``docker_config``."""
    return TaskSpec.model_validate(
        {
            "arn": "arn:test",
            "family": "f",
            "version": "1",
            "volumes": [{"name": "data"}],
            "containers": [
                {
                    "name": "app",
                    "image": "busybox",
                    "mount_points": [
                        {"source_volume": "data", "container_path": "/data"}
                    ],
                    **({"docker_config": docker_config} if docker_config else {}),
                }
            ],
        }
    )


def _volume_rule(spec: TaskSpec) -> str | None:
    container = spec.container("app")
    assert container is not None
    return rule_of(CLOSED, build_create_body(spec, "t", container, {}, {}))


def test_the_tasks_own_volumes_pass() -> None:
    """Typed mount points of task volumes, anonymous volumes and tmpfs pass."""
    anonymous = {"Type": "volume", "Target": "/cache"}
    tmpfs = {"Type": "tmpfs", "Target": "/tmp"}

    spec = _volume_task(host_config={"Mounts": [anonymous, tmpfs]})

    assert _volume_rule(_volume_task()) is None
    assert _volume_rule(spec) is None


@pytest.mark.parametrize(
    "host_config",
    [
        {"Binds": ["berth-othertask-data-0123456789ab:/steal"]},
        {"binds": ["operator-secrets:/steal:ro"]},
        {"Mounts": [{"Type": "volume", "Source": "operator-secrets", "Target": "/x"}]},
        {"Mounts": [{"Source": "operator-secrets", "Target": "/x"}]},
        {"MOUNTS": [{"type": "VOLUME", "source": "operator-secrets", "target": "/x"}]},
    ],
)
def test_a_docker_volume_not_the_tasks_own_is_denied(
    host_config: dict[str, Any],
) -> None:
    """Another task's volume, or one the operator made for something else,
    is not reachable through docker_config: rule named-volume."""
    assert _volume_rule(_volume_task(host_config=host_config)) == "named-volume"


def test_registration_refuses_another_docker_volume() -> None:
    """The same judgement at registration, before anything is stored."""
    spec = _volume_task(host_config={"Binds": ["operator-secrets:/x"]})

    with pytest.raises(PolicyDeniedError) as caught:
        check_task(CLOSED, spec)

    assert caught.value.rule == "named-volume"


@pytest.mark.parametrize(
    "body",
    [
        host(NetworkMode="operators-internal-net"),
        host(networkmode=" Internal "),
        host(NetworkMode="Bridge"),
        {"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {"Bridge": {}}}},
        {
            "Image": "busybox",
            "NetworkingConfig": {"EndpointsConfig": {"operators-internal-net": {}}},
        },
    ],
)
def test_a_network_other_than_the_tasks_is_denied(body: dict[str, Any]) -> None:
    """A user-defined network joins the containers someone else put there:
    only bridge, host (when allowed) and none, as the typed field offers."""
    assert rule_of(OPEN, body) == "network"


@pytest.mark.parametrize("mode", ["bridge", "default", "none"])
def test_the_task_networks_pass(mode: str) -> None:
    """The modes the typed network_mode sets pass."""
    body = {
        **host(NetworkMode=mode),
        "NetworkingConfig": {"EndpointsConfig": {mode: {}}},
    }

    assert rule_of(CLOSED, body) is None


def test_the_host_network_as_an_endpoint_is_the_host_network() -> None:
    """Joining "host" through NetworkingConfig is judged as NetworkMode host."""
    body = {"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {"host": {}}}}

    assert rule_of(CLOSED, body) == "host-network"
    assert rule_of(OPEN, body) is None


@pytest.mark.parametrize(
    ("mount", "rule"),
    [
        (
            {"Type": "volume", "type": "bind", "Source": "/etc", "Target": "/x"},
            "host-path",
        ),
        (
            {"type": "volume", "TYPE": "bind", "source": "/", "Target": "/h"},
            "docker-socket",
        ),
        (
            {"Type": "tmpfs", "type": "bind", "Source": "/etc", "Target": "/x"},
            "host-path",
        ),
        (
            {"Type": "bind", "Source": "/srv/ok", "source": "/etc", "Target": "/x"},
            "host-path",
        ),
    ],
)
def test_a_mount_is_judged_by_every_spelling_of_its_keys(
    mount: dict[str, Any], rule: str
) -> None:
    """The engine keeps the last of two spellings of a key; the policy
    judges the mount as each of them, so the bind is seen and refused."""
    policy = Policy(allowed_host_paths=("/srv/ok",))

    assert rule_of(policy, host(Mounts=[mount])) == rule


@pytest.mark.parametrize(
    "option",
    [
        'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}',
        "seccomp:/profiles/allow-all.json",
        "apparmor=docker-permissive",
        "label=type:spc_t",
        " LABEL:level:s0 ",
    ],
)
def test_a_security_profile_of_the_callers_own_is_denied(option: str) -> None:
    """Any seccomp, AppArmor or SELinux option replaces the engine's
    confinement: an inline profile that allows every call is unconfined."""
    assert rule_of(CLOSED, host(SecurityOpt=[option])) == "privileged"
    assert rule_of(OPEN, host(SecurityOpt=[option])) is None


def test_no_new_privileges_only_tightens_and_passes() -> None:
    """no-new-privileges is the security option that takes, never gives."""
    body = host(SecurityOpt=["no-new-privileges", "no-new-privileges:true"])

    assert rule_of(CLOSED, body) is None


@pytest.mark.parametrize(
    ("score", "rule"),
    [(-1000, "privileged"), (-1, "privileged"), (500, None), (0, None)],
)
def test_shielding_from_the_oom_killer_is_denied(score: int, rule: str | None) -> None:
    """A negative OomScoreAdj makes the kernel kill the host's processes
    first; a positive one only volunteers the container."""
    assert rule_of(CLOSED, host(OomScoreAdj=score)) == rule


def _driven(options: dict[str, str], name: str = "local") -> dict[str, Any]:
    driver = {"Name": name, "Options": options}
    mount = {
        "Type": "volume",
        "Target": "/h",
        "VolumeOptions": {"DriverConfig": driver},
    }
    return host(Mounts=[mount])


@pytest.mark.parametrize(
    "body",
    [
        _driven({"type": "overlay", "o": "lowerdir=/etc,upperdir=/u,workdir=/w"}),
        _driven({"type": "nfs", "o": "addr=127.0.0.1", "device": ":/export"}),
        _driven({"O": "bind"}),
        _driven({}, name="some-plugin"),
        host(VolumeDriver="some-plugin", Binds=["x:/x"]),
    ],
)
def test_volume_drivers_and_mount_options_are_privileged(body: dict[str, Any]) -> None:
    """A local volume's type and o options mount host folders (an overlay's
    lower layer) or host networks (NFS); a plugin driver may do anything."""
    assert rule_of(CLOSED, body) == "privileged"


def test_a_plain_anonymous_volume_passes() -> None:
    """A volume with no driver options is only the engine's own storage."""
    assert rule_of(CLOSED, _driven({})) is None


@pytest.mark.parametrize("driver", ["syslog", "fluentd", "gelf", "splunk", "awslogs"])
def test_a_log_driver_that_sends_logs_away_is_denied(driver: str) -> None:
    """Network log drivers connect from the host's own namespace (its
    loopback, its socket): each must be allowed by name."""
    body = host(LogConfig={"Type": driver, "Config": {"syslog-address": "tcp://x"}})

    assert rule_of(CLOSED, body) == "log-driver"
    assert rule_of(Policy(allowed_log_drivers=(driver,)), body) is None


@pytest.mark.parametrize("driver", ["json-file", "local", "journald", "none", ""])
def test_log_drivers_that_keep_the_log_on_the_host_pass(driver: str) -> None:
    """The default allow-list: drivers that write on the host, or nothing."""
    assert rule_of(CLOSED, host(LogConfig={"Type": driver})) is None


def test_the_log_driver_setting_is_a_comma_list() -> None:
    """BERTH_ALLOWED_LOG_DRIVERS names the drivers allowed, comma-separated."""
    settings = Settings(allowed_log_drivers="json-file, awslogs")

    assert settings.allowed_log_drivers == ["json-file", "awslogs"]


@pytest.mark.parametrize(
    "policy",
    [
        {"Name": "always"},
        {"name": "on-failure", "MaximumRetryCount": 3},
        {"Name": "unless-stopped"},
        "always",
    ],
)
def test_a_restart_policy_is_denied(policy: Any) -> None:
    """The engine would restart the container by itself, binding its host
    paths anew each time, past the judgement berth makes at start."""
    assert rule_of(OPEN, host(RestartPolicy=policy)) == "restart-policy"


@pytest.mark.parametrize("policy", [{"Name": "no"}, {"Name": ""}, {}, None])
def test_no_restart_policy_passes(policy: Any) -> None:
    """Not restarting is what berth asks for anyway."""
    assert rule_of(CLOSED, host(RestartPolicy=policy)) is None


@pytest.mark.parametrize(
    "option", ["no-new-privileges:false", "no-new-privileges=false,seccomp=x"]
)
def test_only_no_new_privileges_itself_passes(option: str) -> None:
    """An option that merely starts with no-new-privileges is judged whole."""
    assert rule_of(CLOSED, host(SecurityOpt=[option])) == "privileged"
