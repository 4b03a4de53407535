"""Celery configuration, in one place for the workers (which run tasks) and the API (which only
publishes by name).

The settings follow the reliability rules in DESIGN.md: late acks, redelivery when a worker dies,
prefetch of one, and one visibility timeout everywhere, at least twice the longest task.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from service.config import Settings
from service.tasks import TaskName, queue_for


def celery_config(settings: Settings) -> dict[str, Any]:
    visibility = {"visibility_timeout": settings.celery_visibility_timeout_s}
    return {
        "broker_url": settings.redis_url,
        "broker_transport_options": dict(visibility),
        "result_backend_transport_options": dict(visibility),
        "visibility_timeout": settings.celery_visibility_timeout_s,
        "broker_connection_retry_on_startup": True,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_soft_shutdown_timeout": 10.0,
        "worker_hijack_root_logger": False,
        "task_time_limit": settings.celery_task_time_limit_s,
        "task_soft_time_limit": max(1, settings.celery_task_time_limit_s - 30),
        # Validating or preparing a large file reads all of it: each gets a longer limit of its own
        # (still at most half the visibility timeout, so it is never redelivered while it runs).
        "task_annotations": {
            name.value: {
                "time_limit": settings.files_validate_time_limit_s,
                "soft_time_limit": max(1, settings.files_validate_time_limit_s - 30),
            }
            for name in (TaskName.FILES_VALIDATE, TaskName.FILES_PREPARE, TaskName.FILES_COUNT_TOKENS)
        },
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": "maintenance",
        "task_routes": (route_task,),
        "timezone": "UTC",
        "enable_utc": True,
    }


def route_task(name: str, *_: Any, **__: Any) -> dict[str, str]:
    return {"queue": queue_for(name).value}


def make_celery(settings: Settings, *, main: str = "ftm") -> Celery:
    app = Celery(main)
    app.conf.update(celery_config(settings))
    return app


def check_celery_config(conf: Any) -> list[str]:
    """The invariants the reliability rules need; returns what is wrong (empty when all hold)."""
    problems: list[str] = []
    timeouts = {
        conf.broker_transport_options.get("visibility_timeout"),
        conf.result_backend_transport_options.get("visibility_timeout"),
        conf.visibility_timeout,
    }
    if len(timeouts) != 1:
        problems.append(
            f"visibility_timeout differs between its three settings: {sorted(map(str, timeouts))}"
        )
    visibility = conf.visibility_timeout or 0
    if not conf.task_time_limit or conf.task_time_limit * 2 > visibility:
        problems.append("task_time_limit must be set and at most half the visibility timeout")
    for name, annotation in (conf.task_annotations or {}).items():
        if annotation.get("time_limit", 0) * 2 > visibility:
            problems.append(f"{name}'s time_limit must be at most half the visibility timeout")
    if not conf.task_acks_late:
        problems.append("task_acks_late must be on")
    if not conf.task_reject_on_worker_lost:
        problems.append("task_reject_on_worker_lost must be on")
    if conf.worker_prefetch_multiplier != 1:
        problems.append("worker_prefetch_multiplier must be 1")
    return problems


def publisher(app: Celery) -> Any:
    """A `Publish` callable for the outbox relay: send by name to the task's queue, no retries
    beyond a short one (the outbox is the retry)."""

    def publish(task_name: str, kwargs: dict[str, Any], headers: dict[str, str]) -> None:
        app.send_task(
            task_name,
            kwargs=kwargs,
            headers=headers,
            queue=queue_for(task_name).value,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
        )

    return publish
