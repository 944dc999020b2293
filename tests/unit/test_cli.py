"""The ``berth`` command's help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import parser

BERTH = Path(sys.executable).with_name("berth")


def test_help_lists_every_command_with_what_it_does() -> None:
    """`berth --help` names serve, db, reconcile and openapi, each explained."""
    done = subprocess.run(
        [str(BERTH), "--help"], capture_output=True, text=True, timeout=30, check=True
    )

    text = " ".join(done.stdout.split())
    assert "serve apply pending migrations, then serve the API" in text
    assert "db manage the database schema (upgrade, downgrade, check)" in text
    assert "reconcile bring the database in line with the engine and report" in text
    assert "openapi print the API's OpenAPI document as JSON" in text
    assert "BERTH_" in text


@pytest.mark.parametrize("command", ["serve", "db", "reconcile", "openapi"])
def test_each_command_has_its_own_help(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`berth COMMAND --help` describes the command and exits cleanly."""
    with pytest.raises(SystemExit) as exited:
        parser().parse_args([command, "--help"])

    assert exited.value.code == 0
    assert f"usage: berth {command}" in capsys.readouterr().out


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    """`berth` alone is a usage error, not a silent success."""
    with pytest.raises(SystemExit) as exited:
        parser().parse_args([])

    assert exited.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def _berth(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BERTH), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_an_engine_address_docker_cannot_use_is_refused_by_name() -> None:
    """A BERTH_DOCKER_HOST that is no engine address stops every command
    with one line naming the setting, not a traceback."""
    done = _berth("reconcile", BERTH_DOCKER_HOST="garbage://x")

    assert done.returncode == 2
    assert done.stderr.startswith("berth: invalid settings: BERTH_DOCKER_HOST")
    assert "unix://" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_a_blank_api_token_is_refused(host: str) -> None:
    """A token of spaces would lock every caller out, or pass for none:
    serve refuses to start and says which setting is blank."""
    done = _berth("serve", "--host", host, BERTH_API_TOKEN="   ")

    assert done.returncode == 2
    assert "BERTH_API_TOKEN is set but blank" in done.stderr


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("BERTH_LOG_LEVEL", "LOUD"),
        ("BERTH_LOG_FORMAT", "bogus"),
        ("BERTH_HOST_ID", ""),
        ("BERTH_HOST_ID", "   "),
    ],
)
def test_a_setting_berth_cannot_use_is_named_not_a_traceback(
    setting: str, value: str
) -> None:
    """An unknown log level or format, or a blank host ID, stops berth with
    one line naming the setting, exit status 2."""
    done = _berth("reconcile", **{setting: value})

    assert done.returncode == 2
    assert done.stderr.startswith(f"berth: invalid settings: {setting}")
    assert "Traceback" not in done.stderr


def test_db_check_of_an_old_database_says_so(tmp_path: Path) -> None:
    """`berth db check` on a database behind the migrations exits 1 with one
    line saying so; once upgraded it exits 0."""
    url = f"sqlite:///{tmp_path / 'berth.db'}"
    quiet = {"BERTH_DATABASE_URL": url, "BERTH_LOG_LEVEL": "warning"}
    assert _berth("db", "upgrade", "0001", **quiet).returncode == 0

    behind = _berth("db", "check", **quiet)
    assert _berth("db", "upgrade", **quiet).returncode == 0
    current = _berth("db", "check", **quiet)

    assert behind.returncode == 1
    assert "berth: database check failed: Target database is not up to date" in (
        behind.stderr
    )
    assert "Traceback" not in behind.stderr
    assert current.returncode == 0
