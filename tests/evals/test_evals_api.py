"""The evals API through the official SDK in strict response validation: evals, runs of a `jsonl`
data source, output items; and every refusal names its parameter and changes nothing."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from service.db import session_scope
from service.evals.models import EvalRow
from service.runtime import Runtime
from tests.conftest import bearer, make_key, sdk_for
from tests.evals.conftest import EXACT, ITEM_SCHEMA, ROUGE_L, work

CONFIG: Any = {"type": "custom", "item_schema": ITEM_SCHEMA, "include_sample_schema": True}
ITEMS = [
    {
        "item": {"question": "Capital of France?", "answer": "Paris"},
        "sample": {"model": "m", "choices": [], "output_text": "Paris"},
    },
    {
        "item": {"question": "Capital of Italy?", "answer": "Rome"},
        "sample": {"model": "m", "choices": [], "output_text": "Milan"},
    },
]


def inline(content: list[Any]) -> Any:
    return {"type": "jsonl", "source": {"type": "file_content", "content": content}}


def create_eval(sdk: openai.OpenAI, criteria: list[Any] | None = None) -> Any:
    return sdk.evals.create(
        name="capitals",
        data_source_config=CONFIG,
        testing_criteria=criteria or [EXACT, ROUGE_L],
        metadata={"team": "geo"},
    )


def test_an_eval_is_created_retrieved_updated_listed_and_deleted(sdk: openai.OpenAI) -> None:
    created = create_eval(sdk)

    assert created.id.startswith("eval_")
    assert created.data_source_config.type == "custom"
    assert created.data_source_config.schema_["properties"]["item"] == ITEM_SCHEMA
    assert [c.name for c in created.testing_criteria] == ["exact", "rouge"]
    assert sdk.evals.retrieve(created.id).name == "capitals"
    updated = sdk.evals.update(created.id, name="capitals v2", metadata={"team": "maps"})
    assert (updated.name, updated.metadata) == ("capitals v2", {"team": "maps"})
    assert [e.id for e in sdk.evals.list()] == [created.id]
    deleted = sdk.evals.delete(created.id)
    assert (deleted.deleted, deleted.eval_id) == (True, created.id)
    with pytest.raises(openai.NotFoundError):
        sdk.evals.retrieve(created.id)


def test_a_jsonl_run_grades_each_item_and_reports_counts(sdk: openai.OpenAI, runtime: Runtime) -> None:
    evaluation = create_eval(sdk)
    run = sdk.evals.runs.create(
        evaluation.id,
        name="given samples",
        data_source=inline(ITEMS),
    )
    assert run.status == "queued"

    work(runtime, run.id)

    done = sdk.evals.runs.retrieve(run.id, eval_id=evaluation.id)
    assert done.status == "completed"
    assert done.result_counts.model_dump() == {"total": 2, "passed": 1, "failed": 1, "errored": 0}
    assert [(r.testing_criteria, r.passed, r.failed) for r in done.per_testing_criteria_results] == [
        ("exact", 1, 1),
        ("rouge", 1, 1),
    ]
    items = sdk.evals.runs.output_items.list(run.id, eval_id=evaluation.id).data
    assert [(i.datasource_item_id, i.status) for i in items] == [(0, "pass"), (1, "fail")]
    assert [(r.name, r.score) for r in items[1].results] == [("exact", 0.0), ("rouge", 0.0)]
    one = sdk.evals.runs.output_items.retrieve(items[0].id, eval_id=evaluation.id, run_id=run.id)
    assert one.datasource_item == ITEMS[0]["item"]
    assert [i.id for i in sdk.evals.runs.output_items.list(run.id, eval_id=evaluation.id, status="fail")] == [
        items[1].id
    ]


def test_a_run_over_a_file_id_reads_the_tenants_jsonl_file(sdk: openai.OpenAI, runtime: Runtime) -> None:
    import io
    import json

    body = b"".join(json.dumps(row).encode() + b"\n" for row in ITEMS)
    file = sdk.files.create(file=("items.jsonl", io.BytesIO(body)), purpose="fine-tune")
    evaluation = create_eval(sdk)
    run = sdk.evals.runs.create(
        evaluation.id, data_source={"type": "jsonl", "source": {"type": "file_id", "id": file.id}}
    )

    work(runtime, run.id)

    assert sdk.evals.runs.retrieve(run.id, eval_id=evaluation.id).result_counts.passed == 1


def test_runs_are_listed_cancelled_and_deleted(sdk: openai.OpenAI) -> None:
    evaluation = create_eval(sdk)
    source = inline(ITEMS)
    first = sdk.evals.runs.create(evaluation.id, data_source=source)
    second = sdk.evals.runs.create(evaluation.id, data_source=source)

    canceled = sdk.evals.runs.cancel(second.id, eval_id=evaluation.id)

    assert canceled.status == "canceled"
    assert [r.id for r in sdk.evals.runs.list(evaluation.id)] == [first.id, second.id]
    assert [r.id for r in sdk.evals.runs.list(evaluation.id, status="canceled")] == [second.id]
    with pytest.raises(openai.ConflictError):
        sdk.evals.runs.cancel(second.id, eval_id=evaluation.id)
    assert sdk.evals.runs.delete(first.id, eval_id=evaluation.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        sdk.evals.runs.retrieve(first.id, eval_id=evaluation.id)


@pytest.mark.parametrize(
    ("criteria", "param", "code"),
    [
        (
            [{"type": "python", "name": "p", "source": "def grade(s, i): return 1"}],
            "testing_criteria[0].type",
            "unsupported_grader",
        ),
        ([{**EXACT, "operation": "contains"}], "testing_criteria[0].operation", "invalid_value"),
        (
            [{**ROUGE_L, "evaluation_metric": "rouge_9"}],
            "testing_criteria[0].evaluation_metric",
            "invalid_value",
        ),
        ([{**ROUGE_L, "pass_threshold": None}], "testing_criteria[0].pass_threshold", "invalid_value"),
        ([EXACT, EXACT], "testing_criteria[1].name", "invalid_value"),
        ([{**EXACT, "input": "{{output.text}}"}], "testing_criteria[0].input", "invalid_value"),
        (
            [
                {
                    "type": "label_model",
                    "name": "l",
                    "model": "gpt-4o-mini-2024-07-18",
                    "input": [{"role": "user", "content": "x"}],
                    "labels": ["a"],
                    "passing_labels": ["b"],
                }
            ],
            "testing_criteria[0].passing_labels",
            "invalid_value",
        ),
        (
            [
                {
                    "type": "score_model",
                    "name": "s",
                    "model": "ft:not-mine",
                    "input": [{"role": "user", "content": "x"}],
                }
            ],
            "testing_criteria",
            "model_not_found",
        ),
        (
            [
                {
                    "type": "multi",
                    "name": "m",
                    "graders": {"a": EXACT},
                    "calculate_output": "a + __import__('os')",
                    "pass_threshold": 1,
                }
            ],
            "testing_criteria[0].calculate_output",
            "invalid_value",
        ),
    ],
)
def test_bad_testing_criteria_are_a_400_naming_the_field(
    sdk: openai.OpenAI, runtime: Runtime, criteria: list[Any], param: str, code: str
) -> None:
    with pytest.raises(openai.APIStatusError) as raised:
        create_eval(sdk, criteria)

    assert raised.value.status_code in (400, 404)
    assert (raised.value.body["param"], raised.value.body["code"]) == (param, code)  # type: ignore[index]
    with session_scope(runtime.sessions) as session:
        assert session.query(EvalRow).count() == 0


@pytest.mark.parametrize("kind", ["logs", "stored_completions"])
def test_stored_traffic_data_source_configs_are_refused(sdk: openai.OpenAI, kind: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.evals.create(data_source_config={"type": kind}, testing_criteria=[EXACT])  # type: ignore[arg-type, list-item, misc]

    assert raised.value.body["param"] == "data_source_config.type"  # type: ignore[index]


@pytest.mark.parametrize(
    ("data_source", "param"),
    [
        ({"type": "responses", "source": {"type": "responses"}}, "data_source.type"),
        ({"type": "logs"}, "data_source.type"),
        (
            {
                "type": "completions",
                "model": "gpt-4o-mini-2024-07-18",
                "source": {"type": "stored_completions"},
            },
            "data_source.source.type",
        ),
        (
            {
                "type": "completions",
                "source": {"type": "file_content", "content": [{"item": ITEMS[0]["item"]}]},
            },
            "data_source.model",
        ),
        (
            {
                "type": "jsonl",
                "source": {"type": "file_content", "content": [ITEMS[0], {"item": {"question": "Q?"}}]},
            },
            "data_source.source.content[1].item",
        ),
        (
            {
                "type": "completions",
                "model": "gpt-4o-mini-2024-07-18",
                "source": {"type": "file_content", "content": [ITEMS[0]]},
                "input_messages": {
                    "type": "template",
                    "template": [{"role": "user", "content": "{{item.question}}"}],
                },
                "sampling_params": {"temperature": 3},
            },
            "data_source.sampling_params.temperature",
        ),
    ],
)
def test_bad_run_data_sources_are_a_400_naming_the_parameter(
    sdk: openai.OpenAI, data_source: dict[str, Any], param: str
) -> None:
    evaluation = create_eval(sdk)

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.evals.runs.create(evaluation.id, data_source=data_source)  # type: ignore[arg-type]

    assert raised.value.body["param"] == param  # type: ignore[index]
    assert list(sdk.evals.runs.list(evaluation.id)) == []


def test_an_item_that_does_not_match_the_schema_is_named_with_its_field(sdk: openai.OpenAI) -> None:
    evaluation = create_eval(sdk)
    content = [ITEMS[0], {"item": {"question": "Q?", "answer": 3}}]

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.evals.runs.create(
            evaluation.id,
            data_source=inline(content),
        )

    assert "Item 1" in raised.value.message
    assert "item.answer" in raised.value.message


def test_another_tenants_eval_and_run_are_404(
    client: TestClient, sdk: openai.OpenAI, runtime: Runtime
) -> None:
    evaluation = create_eval(sdk)
    run = sdk.evals.runs.create(evaluation.id, data_source=inline(ITEMS))
    other = sdk_for(client, make_key(runtime, "globex"))

    with pytest.raises(openai.NotFoundError):
        other.evals.retrieve(evaluation.id)
    with pytest.raises(openai.NotFoundError):
        other.evals.runs.retrieve(run.id, eval_id=evaluation.id)
    assert list(other.evals.list()) == []
    response = client.get(
        f"/v1/evals/{evaluation.id}/runs/{run.id}/output_items", headers=bearer(make_key(runtime, "globex"))
    )
    assert response.status_code == 404


def test_a_file_item_that_does_not_match_the_schema_is_named_by_its_line(sdk: openai.OpenAI) -> None:
    import io
    import json

    rows = [ITEMS[0]["item"], {}, {"question": "Q?", "answer": False}]
    body = b"\n".join(json.dumps(row).encode() for row in [rows[0]]) + b"\n\n" + json.dumps(rows[2]).encode()
    file = sdk.files.create(file=("items.jsonl", io.BytesIO(body)), purpose="fine-tune")
    evaluation = create_eval(sdk)

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.evals.runs.create(
            evaluation.id, data_source={"type": "jsonl", "source": {"type": "file_id", "id": file.id}}
        )

    assert raised.value.body["param"] == "data_source.source.id"  # type: ignore[index]
    assert "line 3 of the file" in raised.value.message
