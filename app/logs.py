"""Structured logs: JSON lines off a terminal, readable lines on one.

uvicorn's, Alembic's and SQLAlchemy's stdlib loggers go through the same
pipeline, so every line of a request carries its request ID and every line
of the process is one JSON object: a line that is not would be lost to a
log shipper. Python warnings and uncaught exceptions, which would print
bare tracebacks, are logged too.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from types import TracebackType
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

# Field names whose values are never written, whoever logs them, in any
# letter case; and words that mark a field name as secret wherever they
# appear in it (``registry_password``, ``x-registry-auth``).
SECRET_KEYS = frozenset({"environment", "env", "body"})
SECRET_WORDS = ("auth", "token", "password", "secret", "credential")
REDACTED = "[redacted]"


def is_secret_field(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_KEYS or any(word in lowered for word in SECRET_WORDS)


# uvicorn's access line: a message with these positional arguments.
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")

log = structlog.get_logger(__name__)


def _redact(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    for key in [k for k in event if is_secret_field(k)]:
        event[key] = REDACTED
    return event


def _access_fields(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """uvicorn's access line as a stable event with fields, not a sentence."""
    args = event.pop("positional_args", None)
    record = event.get("_record")
    if record is None or record.name != "uvicorn.access":
        return event
    if not isinstance(args, tuple) or len(args) != len(_ACCESS_FIELDS):
        return event
    event.update(zip(_ACCESS_FIELDS, args, strict=True))
    event["event"] = "http.request"
    return event


def _log_uncaught(
    kind: type[BaseException],
    value: BaseException,
    traceback: TracebackType | None,
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, traceback)
        return
    log.critical("process.crashed", exc_info=(kind, value, traceback))


def _log_thread_crash(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None:
        return
    log.error(
        "thread.crashed",
        thread=args.thread.name if args.thread else None,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _wants_json(fmt: str) -> bool:
    return fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())


def _renderer(as_json: bool) -> Any:
    if as_json:
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors="NO_COLOR" not in os.environ)


def configure(level: str = "INFO", fmt: str = "auto") -> None:
    """Set up structlog and route the stdlib's loggers through it.

    ``fmt`` is ``json``, ``console``, or ``auto``: JSON unless standard
    error is a terminal.
    """
    as_json = _wants_json(fmt)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]

    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _access_fields],
        pass_foreign_args=True,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _renderer(as_json),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy", "alembic"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    # urllib3 logs every pooled connection at DEBUG; at INFO it is silent
    # except for real trouble.
    logging.getLogger("urllib3").setLevel(logging.WARNING)

    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_crash
