"""structlog set-up: JSON lines when the stream is not a terminal, readable lines when it is.

Callers log facts (ids, positions, counts); never a token, key or password.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure_logging(stream: TextIO | None = None, *, level: int = logging.INFO) -> None:
    out = stream or sys.stderr
    renderer: structlog.types.Processor
    if out.isatty():
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # One write per line: workers share stdout, and print() writes the text and its
        # newline separately, so two workers' lines could run together.
        logger_factory=structlog.WriteLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
