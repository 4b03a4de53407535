"""Dependency checks for readiness: the SQL store and Redis."""

from __future__ import annotations

import logging

import redis
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.runtime import Runtime

log = logging.getLogger(__name__)


def check_dependencies(runtime: Runtime) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as error:
        log.warning("readiness: database unreachable: %s", type(error).__name__)
        checks["database"] = "unreachable"
    try:
        runtime.redis.ping()
        checks["redis"] = "ok"
    except redis.RedisError as error:
        log.warning("readiness: redis unreachable: %s", type(error).__name__)
        checks["redis"] = "unreachable"
    return checks
