"""The evals tests: the local provider on a real socket (the jobs tests' fixtures), and helpers that
work a run through as a worker would."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from service.cache_changes import Change
from service.clock import utcnow
from service.db import session_scope
from service.evals import job_evaluations, job_outcomes
from service.evals.runner import Outcome, process_run
from service.outbox.models import OutboxRow
from service.runtime import Runtime
from service.tasks import TaskName
from tests.jobs.conftest import emulator, emulator_url, sdk, settings

__all__ = ["emulator", "emulator_url", "sdk", "settings"]

ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
}
EXACT = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "eq",
}
ROUGE_L = {
    "type": "text_similarity",
    "name": "rouge",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "evaluation_metric": "rouge_l",
    "pass_threshold": 0.6,
}


def work(runtime: Runtime, run_id: str, *, rounds: int = 50) -> list[Outcome]:
    """Call the run task until the run is final (as the worker and the sweep would)."""
    outcomes = []
    for _ in range(rounds):
        outcome = process_run(runtime.sessions, runtime.providers, runtime.settings, run_id)
        outcomes.append(outcome)
        if outcome == Outcome.FINISHED:
            return outcomes
    raise AssertionError(f"the run did not finish: {outcomes}")


def completions_source(items: list[dict[str, Any]], model: str, **extra: Any) -> Any:
    return {
        "type": "completions",
        "model": model,
        "source": {"type": "file_content", "content": [{"item": item} for item in items]},
        "input_messages": {
            "type": "template",
            "template": [
                {"role": "system", "content": "You are a factual assistant about Jonny Whizbang."},
                {"role": "user", "content": "{{item.question}}"},
            ],
        },
        **extra,
    }


def take_tasks(runtime: Runtime, task: TaskName) -> list[dict[str, Any]]:
    """The kwargs of the queued `task` tasks, oldest first, marked sent (as the relay would)."""
    with session_scope(runtime.sessions) as session:
        rows = list(
            session.scalars(
                select(OutboxRow)
                .where(OutboxRow.task_name == task.value, OutboxRow.sent_at.is_(None))
                .order_by(OutboxRow.id)
            )
        )
        for row in rows:
            row.sent_at = utcnow()
        return [dict(row.kwargs) for row in rows]


def evaluate_jobs(runtime: Runtime) -> list[Change]:
    """Do what the workers do after jobs succeed: start each queued evaluation, work its runs
    through, and conclude what their ends queued; the route changes a conclusion announced."""
    for kwargs in take_tasks(runtime, TaskName.EVALS_EVALUATE_JOB):
        with session_scope(runtime.sessions) as session:
            job_evaluations.start(session, runtime.blobs, runtime.settings, kwargs["evaluation_id"])
    for kwargs in take_tasks(runtime, TaskName.EVALS_RUN):
        work(runtime, kwargs["run_id"])
    changes: list[Change] = []
    for kwargs in take_tasks(runtime, TaskName.EVALS_CONCLUDE_JOB):
        with session_scope(runtime.sessions) as session:
            changes += job_outcomes.conclude(session, kwargs["job_id"])
    return changes
