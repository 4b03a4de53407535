from __future__ import annotations

from service.config import Settings
from service.queueing import check_celery_config, make_celery
from service.tasks import Queue, TaskName, queue_for


def test_the_celery_configuration_holds_the_reliability_invariants(settings: Settings) -> None:
    app = make_celery(settings)

    assert check_celery_config(app.conf) == []


def test_a_mismatched_visibility_timeout_is_reported(settings: Settings) -> None:
    app = make_celery(settings)
    app.conf.broker_transport_options = {"visibility_timeout": 10}

    assert any("visibility_timeout" in problem for problem in check_celery_config(app.conf))


def test_tasks_are_routed_to_the_queue_of_their_kind() -> None:
    routes = {name: queue_for(name) for name in TaskName}

    assert routes[TaskName.OUTBOX_RELAY] is Queue.MAINTENANCE
    assert routes[TaskName.JOBS_SWEEP] is Queue.MAINTENANCE
    assert routes[TaskName.JOBS_SUBMIT] is Queue.JOBS
    assert routes[TaskName.WEBHOOKS_DELIVER] is Queue.WEBHOOKS
    assert routes[TaskName.FILES_VALIDATE] is Queue.FILES
    assert routes[TaskName.FILES_SWEEP] is Queue.MAINTENANCE


def test_beat_sweeps_orphan_blobs_on_the_maintenance_queue() -> None:
    from workers.celery_app import celery_app

    entry = celery_app.conf.beat_schedule["files-sweep"]

    assert entry["task"] == TaskName.FILES_SWEEP.value
    assert queue_for(entry["task"]) is Queue.MAINTENANCE


def test_beat_expires_uploads_on_the_maintenance_queue_with_a_registered_task() -> None:
    from workers.celery_app import celery_app

    entry = celery_app.conf.beat_schedule["uploads-sweep"]
    celery_app.loader.import_default_modules()

    assert entry["task"] == TaskName.UPLOADS_SWEEP.value
    assert queue_for(entry["task"]) is Queue.MAINTENANCE
    assert TaskName.UPLOADS_SWEEP.value in celery_app.tasks


def test_file_validation_gets_its_own_longer_limit_within_half_the_visibility_timeout(
    settings: Settings,
) -> None:
    conf = make_celery(settings).conf

    annotation = conf.task_annotations["files.validate"]

    assert annotation["time_limit"] == settings.files_validate_time_limit_s > conf.task_time_limit
    assert annotation["time_limit"] * 2 <= conf.visibility_timeout
    assert check_celery_config(conf) == []


def test_a_validation_limit_past_half_the_visibility_timeout_is_reported(settings: Settings) -> None:
    conf = make_celery(settings).conf
    conf.task_annotations = {"files.validate": {"time_limit": conf.visibility_timeout}}

    assert check_celery_config(conf) == [
        "files.validate's time_limit must be at most half the visibility timeout"
    ]


def test_preparing_a_large_source_runs_on_the_files_queue_with_the_validations_limit(
    settings: Settings,
) -> None:
    import workers.files_tasks  # noqa: F401  # a worker imports it through celery_app.conf.include
    from workers.celery_app import celery_app

    conf = make_celery(settings).conf

    assert "workers.files_tasks" in celery_app.conf.include
    assert TaskName.FILES_PREPARE.value in celery_app.tasks
    assert queue_for(TaskName.FILES_PREPARE) is Queue.FILES
    assert conf.task_annotations["files.prepare"] == conf.task_annotations["files.validate"]
