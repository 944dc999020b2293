"""The ``berth`` command."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.config import Settings
from app.errors import BerthError
from app.logs import configure as configure_logging

# A Unix socket is made for berth's own user only: whoever can connect can
# run containers. Widen it with --uds-mode (a group, say) on purpose.
DEFAULT_UDS_MODE = "600"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
        return all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)
    except (OSError, ValueError):
        return False


def _fail(message: str) -> int:
    print(f"berth: {message}", file=sys.stderr)
    return 2


def _token_problem(args: argparse.Namespace, settings: Settings) -> str | None:
    """Why serving as asked would be unsafe or impossible, if it would."""
    try:
        token = settings.token
    except OSError as exc:
        return f"cannot read the API token file {settings.api_token_file}: {exc}"
    except ValueError as exc:
        return str(exc)
    if args.uds is None and token is None and not _is_loopback(args.host):
        return (
            f"refusing to listen on {args.host} without an API token; set "
            "BERTH_API_TOKEN or BERTH_API_TOKEN_FILE, or bind to 127.0.0.1"
        )
    return None


def _remove_stale_socket(path: Path) -> None:
    """Remove a socket nobody listens on; refuse to touch anything else."""
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_socket():
        raise OSError(f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink()
            return
    raise OSError(f"another process is serving on {path}")


def _bind_unix_socket(path: Path, mode: int) -> socket.socket:
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Created owner-only, so nobody can connect in the moment before chmod.
    previous = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(previous)
    os.chmod(path, mode)
    return sock


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    problem = _token_problem(args, settings)
    if problem is not None:
        return _fail(problem)

    # Logging first: whatever the imports below warn about is logged too.
    configure_logging(settings.log_level, settings.log_format)

    import uvicorn

    from app.main import create_app
    from app.store.migrate import upgrade

    upgrade(settings.resolved_database_url)
    listen: dict[str, Any] = {"host": args.host, "port": args.port}
    sock = None
    if args.uds is not None:
        try:
            sock = _bind_unix_socket(Path(args.uds), int(args.uds_mode, 8))
        except OSError as exc:
            return _fail(f"cannot serve on {args.uds}: {exc}")
        listen = {"fd": sock.fileno()}
    try:
        uvicorn.run(
            create_app(settings),
            **listen,
            log_config=None,
            access_log=True,
            timeout_graceful_shutdown=10,
        )
    finally:
        if sock is not None:
            sock.close()
            Path(args.uds).unlink(missing_ok=True)
    return 0


def _db(args: argparse.Namespace, settings: Settings) -> int:
    from app.store import migrate

    configure_logging(settings.log_level, settings.log_format)
    url = settings.resolved_database_url
    if args.action == "upgrade":
        migrate.upgrade(url, args.revision or "head")
    elif args.action == "downgrade":
        migrate.downgrade(url, args.revision or "base")
    else:
        from alembic.util.exc import CommandError

        try:
            migrate.check(url)
        except CommandError as exc:
            # Not at head, or the models drifted from the migrations: an
            # answer to the question asked, not a crash.
            print(f"berth: database check failed: {exc}", file=sys.stderr)
            return 1
    return 0


def _reconcile(args: argparse.Namespace, settings: Settings) -> int:
    from app.main import build_context
    from app.service.reconcile import reconcile
    from app.store.migrate import upgrade

    configure_logging(settings.log_level, settings.log_format)
    upgrade(settings.resolved_database_url)
    ctx = build_context(settings)
    try:
        report = reconcile(ctx, remove_orphans=args.remove_orphans)
    except BerthError as exc:
        message = f"berth: reconcile failed: {exc.error_name}: {exc.detail}"
        print(message, file=sys.stderr)
        return 1
    finally:
        ctx.engine.close()
        ctx.db.dispose()
    print(json.dumps(report.model_dump(), indent=2))
    return 0


def _openapi(_args: argparse.Namespace, settings: Settings) -> int:
    from app.main import create_app
    from app.openapi import render

    print(render(create_app(settings)), end="")
    return 0


def _octal_mode(text: str) -> str:
    try:
        mode = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an octal mode: {text!r}") from None
    if not 0 <= mode <= 0o777:
        raise argparse.ArgumentTypeError(f"not a permission mode: {text!r}")
    return text


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="berth",
        description="A per-host container agent with a REST API. "
        "Settings come from BERTH_* environment variables.",
        epilog="Run 'berth COMMAND --help' for the options of a command.",
    )
    commands = top.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND"
    )

    serve = commands.add_parser(
        "serve",
        help="apply pending migrations, then serve the API",
        description="Apply pending database migrations, then serve the API.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind")
    serve.add_argument("--port", type=int, default=8000, help="port to bind")
    serve.add_argument(
        "--uds", default=None, help="serve on this Unix socket instead of TCP"
    )
    serve.add_argument(
        "--uds-mode",
        default=DEFAULT_UDS_MODE,
        type=_octal_mode,
        help="permissions of the Unix socket, in octal (default: %(default)s, "
        "berth's user only)",
    )
    serve.set_defaults(run=_serve)

    db = commands.add_parser(
        "db",
        help="manage the database schema (upgrade, downgrade, check)",
        description="Manage berth's database schema with its migrations.",
    )
    db.add_argument("action", choices=["upgrade", "downgrade", "check"])
    db.add_argument("revision", nargs="?", default=None)
    db.set_defaults(run=_db)

    rec = commands.add_parser(
        "reconcile",
        help="bring the database in line with the engine and report",
        description="Run recovery once: adopt, refresh, mark removed, and "
        "report orphans as JSON.",
    )
    rec.add_argument(
        "--remove-orphans",
        action="store_true",
        help="also remove labelled containers that berth has no row for",
    )
    rec.set_defaults(run=_reconcile)

    spec = commands.add_parser(
        "openapi",
        help="print the API's OpenAPI document as JSON",
        description="Print the OpenAPI document that berth serves at "
        "/openapi.json; docs/openapi.json is this output.",
    )
    spec.set_defaults(run=_openapi)
    return top


def _settings() -> Settings | str:
    """The settings, or what is wrong with them, one line a setting."""
    try:
        return Settings()
    except ValidationError as exc:
        return "; ".join(
            f"BERTH_{'_'.join(str(p) for p in e['loc']).upper()}: "
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = _settings()
    if isinstance(settings, str):
        return _fail(f"invalid settings: {settings}")
    code: int = args.run(args, settings)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
