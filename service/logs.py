"""JSON logs with a request id on every line, and no secret ever written.

The request id lives in a context variable set by the API's middleware (and by tasks from their
own id), so every line logged while handling a request carries it. A redacting filter masks API
keys, provider keys, webhook secrets and bearer tokens, whatever logged them.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
REQUEST_ID_HEADER = "ftm_request_id"  # the task message header that carries it to workers

SECRET_PATTERNS = re.compile(
    r"(?P<keep>ftm_[A-Za-z0-9_-]{8})[A-Za-z0-9_-]{8,}"
    r"|(?P<keep2>sk-[A-Za-z0-9]{0,4})[A-Za-z0-9_-]{8,}"
    r"|whsec_[A-Za-z0-9+/=]{8,}"
    r"|(?i:(?P<keep3>bearer\s+))[^\s\"']+"
)


def redact(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        keep = match.group("keep") or match.group("keep2") or match.group("keep3") or ""
        return f"{keep}***"

    return SECRET_PATTERNS.sub(mask, text)


class RedactingFilter(logging.Filter):
    """Masks secrets in the message, its arguments and any exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: str = "INFO") -> None:
    """Route every logger (ours, uvicorn's, Celery's) through one redacting JSON handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
            timestamp=False,
        )
    )
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "celery.task"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Celery logs every task received and succeeded; with the relay and sweeps every second that
    # drowns everything else. Failures still show (they are warnings and errors).
    for name in ("celery.worker.strategy", "celery.app.trace", "celery.beat"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
