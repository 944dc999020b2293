"""The docker-py adapter: the only module that talks to the engine.

Everything berth asks of Docker goes through :class:`Engine`, a narrow
interface listing only the calls we use, so that tests can fake *our*
interface instead of docker-py. docker-py and ``requests`` exceptions are
translated here, at the edge, into the named errors of ``app.errors``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import docker
import docker.auth
import docker.errors
import requests.exceptions
from docker.auth import INDEX_NAME, resolve_repository_name
from docker.constants import MINIMUM_DOCKER_API_VERSION
from docker.transport import UnixHTTPAdapter
from docker.utils import parse_repository_tag

from app.errors import (
    BerthError,
    CannotCreateContainerError,
    CannotInspectContainerError,
    CannotPullImageError,
    CannotRemoveContainerError,
    CannotStartContainerError,
    CannotStopContainerError,
    ContainerStateError,
    DockerTimeoutError,
    EngineError,
    EngineUnavailableError,
    ImageNotFoundError,
)

T = TypeVar("T")

# The API version used before the engine has told us its own: docker-py's
# floor, which every engine berth supports still serves.
BOOTSTRAP_API_VERSION = MINIMUM_DOCKER_API_VERSION

# Readiness must answer fast even when the engine hangs; a probe that
# waits longer than this counts the engine as down.
PING_TIMEOUT_S = 2.0

# Extra seconds granted to ``stop`` beyond the container's own grace
# period: the engine answers only after the container has exited.
STOP_SLACK_S = 15.0

# Connecting to the local engine's socket is instant when it is up; the
# pull's own timeout is for the registry, not for this.
PULL_CONNECT_TIMEOUT_S = 10.0


class NameInUseError(BerthError):
    """Docker refused a create because the name is taken."""

    status = 409
    title = "The Docker name is already in use"


@dataclass(frozen=True)
class EngineVersion:
    version: str
    api_version: str
    min_api_version: str
    os: str = ""
    arch: str = ""


def api_tuple(version: str) -> tuple[int, int]:
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)


class Engine(Protocol):
    """What berth needs from a Docker engine, and nothing more."""

    def version(self) -> EngineVersion: ...

    def ping(self) -> None: ...

    def create(
        self, name: str, body: Mapping[str, Any], api_version: str | None = None
    ) -> str: ...

    def inspect(self, ref: str) -> dict[str, Any] | None: ...

    def start(self, ref: str) -> None: ...

    def stop(self, ref: str, timeout: int) -> None: ...

    def remove(self, ref: str) -> bool: ...

    def remove_volume(self, name: str) -> bool: ...

    def list_labelled(self, *labels: str) -> list[dict[str, Any]]: ...

    def events(self, filters: Mapping[str, Any]) -> EventStream: ...

    def image_present(self, image: str) -> bool: ...

    def pull(
        self, image: str, auth: Mapping[str, str] | None, timeout: float
    ) -> None: ...

    def close(self) -> None: ...


def normalise_registry(address: str) -> str:
    """One spelling per registry: Docker Hub has several."""
    address = address.strip().lower().removeprefix("https://")
    address = address.removeprefix("http://").rstrip("/")
    if address in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return INDEX_NAME
    return address


def registry_of(image: str) -> str:
    """The registry an image reference names (Docker Hub when none)."""
    repository, _ = parse_repository_tag(image)
    registry, _ = resolve_repository_name(repository)
    return normalise_registry(registry)


class EventStream:
    """An open event subscription that another thread may close."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._closed = False
        self._guard = threading.Lock()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            for event in self._stream:
                if isinstance(event, dict):
                    yield event
        except (requests.exceptions.RequestException, OSError) as exc:
            raise EngineUnavailableError("the event stream was cut") from exc
        except AttributeError:
            # urllib3 drops the socket under a read in progress when another
            # thread closes the stream; that is how a stop looks.
            return

    def close(self) -> None:
        """Close once, from any thread; a second close does nothing."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
        close = getattr(self._stream, "close", None)
        if close is None:
            return
        try:
            close()
        except (AttributeError, OSError):
            # docker-py reaches into the response's socket, which is gone
            # once the engine has closed the stream itself.
            return


def _is_name_conflict(exc: docker.errors.APIError) -> bool:
    if exc.status_code == 409:
        return True
    text = str(exc.explanation or exc).lower()
    return exc.status_code in (400, 500) and "already in use" in text


def _explanation(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc)


def _refused_configuration(exc: docker.errors.APIError) -> bool:
    """Whether the engine refused what it was asked, rather than failed.

    Engines before 23.0 answer 500, not 400, when a create body does not
    decode into their types (a label that is a number, say); that is the
    caller's error all the same, and retrying it cannot help.
    """
    if exc.is_client_error():
        return True
    return exc.status_code == 500 and _explanation(exc).startswith(
        "json: cannot unmarshal"
    )


# What the engine says, with status 500, when a container cannot start
# because of its own configuration: runc refused what the container asked
# (its command, its limits), or its user is not in the image. Anything
# else from the engine stays the engine's failure.
_CONTAINER_FAULTS = (
    "oci runtime create failed",
    "executable file not found",
    "unable to find user",
    "unable to find group",
    "error while mounting volume",
)


# What the engine says when a start cannot happen *now* because of the
# state of something else: a link target that is not running, a removal
# under way, a host port another container holds. Neither the engine nor
# the container's configuration is at fault, and the same start succeeds
# once that state changes: a conflict (409), not a failure to retry (502).
_STATE_CONFLICTS = (
    "cannot link to a non running container",
    "marked for removal",
    "port is already allocated",
    "address already in use",
)


def _state_conflict(exc: docker.errors.APIError) -> bool:
    text = _explanation(exc).lower()
    return any(conflict in text for conflict in _STATE_CONFLICTS)


def _blames_container(exc: docker.errors.APIError) -> bool:
    """Whether a failed start is the container's configuration's fault."""
    if exc.is_client_error():
        return True
    text = _explanation(exc).lower()
    return any(fault in text for fault in _CONTAINER_FAULTS)


class _SocketAdapter(UnixHTTPAdapter):
    """docker-py's Unix socket adapter with one connection pool, not one a URL.

    docker-py keys its pools by the whole request URL, container ID and
    query included, and keeps the 25 most recent: every inspect of a new
    container opened a new connection and closed an old pool. Every URL
    leads to the same socket, so one pool serves them all.
    """

    def get_connection(self, url: Any, proxies: Any = None) -> Any:
        return super().get_connection(self.socket_path, proxies)


def _api_client(
    base_url: str, version: str, timeout: float | None, pool_size: int
) -> docker.APIClient:
    client = docker.APIClient(
        base_url=base_url, version=version, timeout=timeout, max_pool_size=pool_size
    )
    stock = client.adapters.get("http+docker://")
    if isinstance(stock, UnixHTTPAdapter):
        adapter = _SocketAdapter(stock.socket_path, timeout, max_pool_size=pool_size)
        client._custom_adapter = adapter
        client.mount("http+docker://", adapter)
        stock.close()
    return client


class DockerEngine:
    """:class:`Engine` on docker-py's low-level client.

    Clients are pinned to an API version (never ``auto``, which asks the
    engine at construction and fails while it is down), made on first use,
    and kept one per version. A semaphore bounds calls in flight by the
    connection pool, so threads queue here instead of in urllib3.
    """

    def __init__(self, base_url: str, timeout: float, pool_size: int = 10) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.pool_size = pool_size
        self._clients: dict[tuple[str, float | None], docker.APIClient] = {}
        self._guard = threading.Lock()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._version: EngineVersion | None = None

    def _client(
        self, api_version: str | None = None, timeout: float | None = -1.0
    ) -> docker.APIClient:
        version = api_version or self.version().api_version
        wait = self.timeout if timeout == -1.0 else timeout
        key = (version, wait)
        with self._guard:
            client = self._clients.get(key)
            if client is None:
                try:
                    client = _api_client(self.base_url, version, wait, self.pool_size)
                except docker.errors.DockerException as exc:
                    # An address docker-py will not use (an ssh:// one without
                    # paramiko, say): as good as an engine that is down.
                    raise EngineUnavailableError(
                        f"cannot use the engine at {self.base_url}: {exc}"
                    ) from exc
                self._clients[key] = client
            return client

    @contextmanager
    def _bounded(self) -> Iterator[None]:
        # Waiting for a free connection counts against the same timeout as
        # the call itself: a hung engine must not pile up waiters forever.
        if not self._slots.acquire(timeout=self.timeout):
            raise DockerTimeoutError(
                f"no connection to the engine came free within {self.timeout:g} s"
            )
        try:
            yield
        finally:
            self._slots.release()

    def _call(
        self,
        func: Callable[[], T],
        failure: type[BerthError] = EngineError,
        *,
        shared_pool: bool = True,
    ) -> T:
        """Run one Docker call, translating what can go wrong.

        ``shared_pool=False`` is for calls on a client of their own, which
        must not hold the slots every other call queues for.
        """
        slot: AbstractContextManager[None] = (
            self._bounded() if shared_pool else nullcontext()
        )
        try:
            with slot:
                return func()
        except requests.exceptions.Timeout as exc:
            raise DockerTimeoutError(
                f"the engine did not answer within {self.timeout:g} s"
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise EngineUnavailableError(
                f"cannot reach the engine at {self.base_url}"
            ) from exc
        except requests.exceptions.RequestException as exc:
            # An answer cut off half-way (a chunked body that never ends,
            # say): the engine went away in the middle of the call.
            raise EngineUnavailableError(
                f"lost the connection to the engine at {self.base_url}"
            ) from exc
        except docker.errors.APIError as exc:
            raise failure(_explanation(exc)) from exc
        except docker.errors.DockerException as exc:
            raise EngineError(str(exc)) from exc

    def version(self) -> EngineVersion:
        if self._version is not None:
            return self._version

        client = self._client(BOOTSTRAP_API_VERSION)
        info = self._call(client.version)
        self._version = EngineVersion(
            version=str(info.get("Version", "")),
            api_version=str(info.get("ApiVersion", BOOTSTRAP_API_VERSION)),
            min_api_version=str(info.get("MinAPIVersion", BOOTSTRAP_API_VERSION)),
            os=str(info.get("Os", "")),
            arch=str(info.get("Arch", "")),
        )
        return self._version

    def ping(self) -> None:
        client = self._client(BOOTSTRAP_API_VERSION, PING_TIMEOUT_S)
        try:
            client.ping()
        except requests.exceptions.Timeout as exc:
            raise DockerTimeoutError("the engine did not answer a ping") from exc
        except (
            requests.exceptions.ConnectionError,
            docker.errors.DockerException,
        ) as exc:
            raise EngineUnavailableError(
                f"cannot reach the engine at {self.base_url}"
            ) from exc

    def create(
        self, name: str, body: Mapping[str, Any], api_version: str | None = None
    ) -> str:
        client = self._client(api_version)

        def call() -> str:
            try:
                # The raw Engine API body: berth builds it itself so that a
                # caller's docker_config can use the API's own field names.
                answer = client.create_container_from_config(dict(body), name)
            except docker.errors.ImageNotFound as exc:
                raise ImageNotFoundError(_explanation(exc)) from exc
            except docker.errors.APIError as exc:
                if _is_name_conflict(exc):
                    raise NameInUseError(_explanation(exc)) from exc
                if exc.status_code == 404 and "image" in _explanation(exc).lower():
                    raise ImageNotFoundError(_explanation(exc)) from exc
                status = 422 if _refused_configuration(exc) else 502
                raise CannotCreateContainerError(
                    _explanation(exc), status=status
                ) from exc
            return str(answer["Id"])

        return self._call(call, CannotCreateContainerError)

    def inspect(self, ref: str) -> dict[str, Any] | None:
        """The inspect document, or None when the engine has no such container."""
        _require_ref(ref)
        client = self._client()

        def call() -> dict[str, Any] | None:
            try:
                return dict(client.inspect_container(ref))
            except docker.errors.NotFound:
                return None

        return self._call(call, CannotInspectContainerError)

    def start(self, ref: str) -> None:
        _require_ref(ref)
        client = self._client()

        def call() -> None:
            try:
                client.start(ref)
            except docker.errors.NotFound:
                raise
            except docker.errors.APIError as exc:
                if _state_conflict(exc):
                    raise ContainerStateError(_explanation(exc)) from exc
                status = 422 if _blames_container(exc) else 502
                raise CannotStartContainerError(
                    _explanation(exc), status=status
                ) from exc

        self._call(call, CannotStartContainerError)

    def stop(self, ref: str, timeout: int) -> None:
        _require_ref(ref)
        client = self._client(timeout=self.timeout + timeout + STOP_SLACK_S)
        self._call(lambda: client.stop(ref, timeout=timeout), CannotStopContainerError)

    def remove(self, ref: str) -> bool:
        """Remove by force; False when there was nothing to remove."""
        _require_ref(ref)
        client = self._client()

        def call() -> bool:
            try:
                # v=True: the container's anonymous volumes go with it, as
                # nothing could ever name them again. Named volumes stay,
                # and the engine skips any volume another container uses.
                client.remove_container(ref, force=True, v=True)
            except docker.errors.NotFound:
                return False
            except docker.errors.APIError as exc:
                # A removal already under way is as good as done.
                if exc.status_code == 409 and "in progress" in _explanation(exc):
                    return True
                raise
            return True

        return self._call(call, CannotRemoveContainerError)

    def remove_volume(self, name: str) -> bool:
        """Remove a named volume; False when it was absent or still in use."""
        _require_ref(name)
        client = self._client()

        def call() -> bool:
            try:
                client.remove_volume(name)
            except docker.errors.NotFound:
                return False
            except docker.errors.APIError as exc:
                # In use by a container berth does not own: leave it be.
                if exc.status_code == 409:
                    return False
                raise
            return True

        return self._call(call)

    def list_labelled(self, *labels: str) -> list[dict[str, Any]]:
        """Every container, running or not, that carries all ``labels``.

        Each is a key, or ``key=value`` for a key with that value.
        """
        if not labels:
            raise ValueError("a labelled list needs at least one label")
        client = self._client()
        filters = {"label": list(labels)}
        return self._call(lambda: list(client.containers(all=True, filters=filters)))

    def events(self, filters: Mapping[str, Any]) -> EventStream:
        """Subscribe to the engine's events; connected when this returns.

        The stream simply ends when the engine goes away: no exception.
        """
        client = self._client(timeout=None)
        stream = self._call(lambda: client.events(decode=True, filters=dict(filters)))
        return EventStream(stream)

    def image_present(self, image: str) -> bool:
        client = self._client()

        def call() -> bool:
            try:
                client.inspect_image(image)
            except docker.errors.ImageNotFound:
                return False
            except docker.errors.NotFound:
                return False
            return True

        return self._call(call)

    def pull(self, image: str, auth: Mapping[str, str] | None, timeout: float) -> None:
        """Pull ``image``, giving up after ``timeout`` seconds.

        docker-py's own ``pull`` sends no timeout at all (an engine stuck
        on a silent registry holds it for as long as the engine likes), so
        the request is made here on the client's session: silence longer
        than the timeout ends it, and so does the first progress message
        after the deadline. Closing the connection cancels the engine's
        pull. Pulls run on a client of their own, outside the shared slots,
        since one may rightly take minutes.
        """
        client = self._client(timeout=timeout)
        repository, tag = parse_repository_tag(image)
        deadline = time.monotonic() + timeout

        def call() -> None:
            response = client.post(
                f"{client.base_url}/v{client.api_version}/images/create",
                params={"fromImage": repository, "tag": tag or "latest"},
                headers=_registry_auth(auth),
                stream=True,
                timeout=(PULL_CONNECT_TIMEOUT_S, timeout),
            )
            with closing(response):
                if response.status_code >= 400:
                    raise _pull_failure(image, _error_message(response))
                _follow_pull(image, response.iter_lines(), deadline, timeout)

        try:
            self._call(call, ImageNotFoundError, shared_pool=False)
        except DockerTimeoutError as exc:
            raise DockerTimeoutError(
                f"pull of {image} took longer than {timeout:g} s"
            ) from exc

    def close(self) -> None:
        with self._guard:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.close()


# What registries say when the image is not there for the asking: absent,
# or refused to these credentials. Retrying cannot help. Anything else (a
# registry that cannot be reached, a timeout, a server error, a rate limit)
# may pass, and is CannotPullImageError.
_NOT_THERE = (
    "not found",
    "manifest unknown",
    "does not exist",
    "pull access denied",
    "unauthorized",
    "authentication required",
    "no basic auth credentials",
    "denied",
    "invalid reference format",
)


def _pull_failure(image: str, reason: str) -> BerthError:
    detail = f"pull of {image} failed: {reason}"
    if any(words in reason.lower() for words in _NOT_THERE):
        return ImageNotFoundError(detail)
    return CannotPullImageError(detail)


def _registry_auth(auth: Mapping[str, str] | None) -> dict[str, str]:
    # Only the credentials berth was given: never the Docker CLI's
    # config.json of whoever runs berth, which docker-py would read.
    if not auth:
        return {}
    return {"X-Registry-Auth": docker.auth.encode_header(dict(auth)).decode()}


def _error_message(response: Any) -> str:
    try:
        return str(response.json().get("message") or response.reason)
    except ValueError:
        return str(response.text or response.reason)


def _follow_pull(
    image: str, lines: Iterator[bytes], deadline: float, timeout: float
) -> None:
    """Read the engine's progress messages until the pull ends or fails."""
    for line in lines:
        if time.monotonic() > deadline:
            raise DockerTimeoutError(f"pull of {image} took longer than {timeout:g} s")
        if not line.strip():
            continue
        message = json.loads(line)
        if isinstance(message, dict) and message.get("error"):
            raise _pull_failure(image, str(message["error"]))


def _require_ref(ref: str) -> None:
    # An empty reference would address the collection, not a container:
    # DELETE /containers/ with no name is never what berth means.
    if not ref or not ref.strip():
        raise ValueError("a Docker call needs a container ID or name")
