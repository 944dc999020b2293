"""The named errors of berth's contract.

Every layer raises these; the HTTP layer maps them to problem+json in one
handler. Each carries the HTTP status it answers with and a stable
``error_name`` that clients switch on.
"""

from __future__ import annotations


class BerthError(Exception):
    """A failure with a stable name that clients can act on."""

    status: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title

    @property
    def error_name(self) -> str:
        return type(self).__name__


class ValidationError(BerthError):
    status = 422
    title = "The request is not valid"


class RequestTooLargeError(BerthError):
    status = 413
    title = "The request body is too large"


class UnsupportedDockerAPIVersionError(BerthError):
    status = 422
    title = "The Docker API version is not supported by the engine"


class ImageNotFoundError(BerthError):
    status = 422
    title = "The image does not exist on the engine"


class CannotPullImageError(BerthError):
    """The registry could not be reached, or failed: worth trying again,
    unlike an image that is not there (ImageNotFoundError)."""

    status = 502
    title = "The image could not be pulled"


class CannotCreateContainerError(BerthError):
    """The engine would not create the container.

    A refused configuration is the caller's fault (422); a failing engine is
    not (502). The status is chosen where the engine's answer is read.
    """

    status = 502
    title = "The engine could not create the container"

    def __init__(self, detail: str = "", *, status: int = 502) -> None:
        super().__init__(detail)
        self.status = status


class CannotInspectContainerError(BerthError):
    status = 502
    title = "The engine could not inspect the container"


class CannotStartContainerError(BerthError):
    """The engine would not start the container.

    As with create: the container's own configuration (a command or user
    the image does not have) is the caller's fault (422); a failing engine
    is not (502).
    """

    status = 502
    title = "The engine could not start the container"

    def __init__(self, detail: str = "", *, status: int = 502) -> None:
        super().__init__(detail)
        self.status = status


class CannotStopContainerError(BerthError):
    status = 502
    title = "The engine could not stop the container"


class CannotRemoveContainerError(BerthError):
    status = 502
    title = "The engine could not remove the container"


class AuthenticationError(BerthError):
    status = 401
    title = "A valid bearer token is required"


class PolicyDeniedError(BerthError):
    status = 403
    title = "The host policy denies this container"

    def __init__(self, detail: str = "", *, rule: str | None = None) -> None:
        super().__init__(detail)
        self.rule = rule


class TaskNotFoundError(BerthError):
    status = 404
    title = "No such task"


class ContainerNotFoundError(BerthError):
    status = 404
    title = "No such container"


class TaskConflictError(BerthError):
    status = 409
    title = "A different task is registered under this ARN"


class NameConflictError(BerthError):
    status = 409
    title = "The Docker name belongs to a container berth does not own"


class DependencyNotCreatedError(BerthError):
    status = 409
    title = "A container this one depends on has not been created"


class ContainerStateError(BerthError):
    status = 409
    title = "The container is not in a state that allows this"


class EngineUnavailableError(BerthError):
    status = 503
    title = "The Docker engine cannot be reached"


class DockerTimeoutError(BerthError):
    status = 504
    title = "The Docker engine did not answer in time"


class EngineError(BerthError):
    """The engine answered with an error that has no better name."""

    status = 502
    title = "The Docker engine answered with an error"
