"""Structured logs: JSON lines off a terminal, readable lines on one.

uvicorn's and SQLAlchemy's stdlib loggers go through the same pipeline, so
every line of a request carries its request ID.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

# Field names whose values are never written, whoever logs them.
SECRET_KEYS = frozenset(
    {"token", "api_token", "password", "authorization", "environment", "auth"}
)


def _redact(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    for key in SECRET_KEYS.intersection(event):
        event[key] = "[redacted]"
    return event


def configure(level: str = "INFO", fmt: str = "auto") -> None:
    """Set up structlog and route the stdlib's loggers through it."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )

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
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    # urllib3 logs every pooled connection at DEBUG; at INFO it is silent
    # except for real trouble.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
