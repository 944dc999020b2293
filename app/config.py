"""Settings, read from the environment with the ``BERTH_`` prefix."""

from __future__ import annotations

import os
import socket
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_STATE_DIR = Path("/var/lib/berth")
LOCAL_DOCKER_SOCKET = "unix:///var/run/docker.sock"

# The engine addresses docker-py can reach.
DOCKER_SCHEMES = ("unix", "tcp", "http", "https", "ssh", "npipe")


def _default_state_dir() -> Path:
    # root gets the system place; anyone else a per-user one, so that a
    # developer can run berth without sudo.
    if os.geteuid() == 0:
        return DEFAULT_STATE_DIR
    return Path.home() / ".local" / "state" / "berth"


def _default_docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or LOCAL_DOCKER_SOCKET


class Settings(BaseSettings):
    """Everything an operator can set; each field is ``BERTH_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="BERTH_", extra="ignore")

    state_dir: Path = Field(default_factory=_default_state_dir)
    database_url: str | None = None
    docker_host: str = Field(default_factory=_default_docker_host)
    docker_timeout: float = Field(default=30.0, gt=0)
    docker_pool_size: int = Field(default=10, ge=1, le=256)
    host_id: str = Field(default_factory=socket.gethostname, min_length=1)
    cluster: str = "default"
    name_prefix: str = "ecs"
    label_prefix: str = "com.amazonaws.ecs."

    api_token: SecretStr | None = None
    api_token_file: Path | None = None
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    allow_privileged: bool = False
    allow_host_network: bool = False
    allow_host_pid: bool = False
    allow_cap_add: bool = False
    allowed_host_paths: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Drivers that keep a container's log on the host. The others send it
    # over the network from the host's own namespace, reaching what only
    # the host should (its loopback, its socket), so each is opted into.
    allowed_log_drivers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["json-file", "local", "journald", "none"]
    )

    image_pull_timeout: float = Field(default=300.0, gt=0)
    registry_username: str | None = None
    registry_password: SecretStr | None = None
    # The only registry the credentials are ever sent to. Without it, a
    # caller could name an image on a registry of its own and collect them.
    registry_address: str = "docker.io"

    reconcile_on_start: bool = True
    events: bool = True
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    # Test-only crash points: the process exits at once at the named step,
    # so tests can place a crash exactly where the protocol is weakest.
    crash_at: str | None = None

    @field_validator("docker_host")
    @classmethod
    def _engine_address(cls, value: str) -> str:
        scheme, separator, rest = value.partition("://")
        if not separator or scheme.lower() not in DOCKER_SCHEMES or not rest:
            schemes = ", ".join(f"{s}://" for s in DOCKER_SCHEMES)
            raise ValueError(f"not an engine address; use one of {schemes}")
        return value

    @field_validator("host_id")
    @classmethod
    def _named_host(cls, value: str) -> str:
        # Stamped on every container and matched by every adoption: a blank
        # one would be shared by every berth configured the same way.
        if not value.strip():
            raise ValueError("must name this host")
        return value.strip()

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _format_in_any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("allowed_host_paths", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [p for p in value.replace(",", ":").split(":") if p]
        return value

    @field_validator("allowed_log_drivers", mode="before")
    @classmethod
    def _split_drivers(cls, value: object) -> object:
        if isinstance(value, str):
            return [d.strip() for d in value.split(",") if d.strip()]
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.state_dir / 'berth.db'}"

    @cached_property
    def token(self) -> str | None:
        """The bearer token, from the setting or the file it names.

        A token that is set but blank is refused (ValueError): it would
        lock every caller out, or read as no token at all.
        """
        if self.api_token is not None:
            token = self.api_token.get_secret_value().strip()
            if not token:
                raise ValueError("BERTH_API_TOKEN is set but blank")
            return token
        if self.api_token_file is not None:
            token = self.api_token_file.read_text().strip()
            if not token:
                raise ValueError(f"the API token file {self.api_token_file} is empty")
            return token
        return None


def get_settings() -> Settings:
    return Settings()
