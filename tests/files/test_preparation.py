"""Preparation as the CLI and the service share it: every source format, each problem with its
row, the seeded split, deduplication, the advice, and output that passes validation."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any, BinaryIO

import pytest

from service.errors import InvalidRequest
from service.files.preparation import PreparationCreate, PreparationFailed, PreparationSummary, prepare
from service.files.sources import SourceFormat
from service.files.validation import validate_jsonl
from tests.factories import JONNY_QA

QA = PreparationCreate(user_column="question", assistant_column="answer", system_prompt="You know Jonny.")


def csv_of(rows: list[tuple[str, str]], delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(["question", "answer"])
    writer.writerows(rows)
    return out.getvalue().encode()


def opener(body: bytes) -> Callable[[], BinaryIO]:
    return lambda: io.BytesIO(body)


def run(
    body: bytes, kind: SourceFormat = "csv", options: PreparationCreate = QA
) -> tuple[PreparationSummary, list[dict[str, Any]], list[dict[str, Any]]]:
    training, validation = io.BytesIO(), io.BytesIO()
    summary = prepare(opener(body), kind, options, training=training, validation=validation)
    return (
        summary,
        [json.loads(line) for line in training.getvalue().splitlines()],
        [json.loads(line) for line in validation.getvalue().splitlines()],
    )


def failure(body: bytes, kind: SourceFormat = "csv", options: PreparationCreate = QA) -> PreparationFailed:
    with pytest.raises(PreparationFailed) as raised:
        run(body, kind, options)
    return raised.value


def test_a_biography_csv_becomes_chat_examples_with_the_system_prompt() -> None:
    summary, training, _ = run(csv_of(JONNY_QA))

    assert (summary.rows, summary.examples, summary.training_examples) == (13, 13, 13)
    assert training[0] == {
        "messages": [
            {"role": "system", "content": "You know Jonny."},
            {"role": "user", "content": JONNY_QA[0][0]},
            {"role": "assistant", "content": JONNY_QA[0][1]},
        ]
    }


@pytest.mark.parametrize("kind", ["csv", "tsv", "json"])
def test_every_source_format_gives_the_same_examples(kind: SourceFormat) -> None:
    if kind == "json":
        body = json.dumps([{"question": q, "answer": a} for q, a in JONNY_QA]).encode()
    else:
        body = csv_of(JONNY_QA, "," if kind == "csv" else "\t")

    _, training, _ = run(body, kind)

    assert [example["messages"][1]["content"] for example in training] == [q for q, _ in JONNY_QA]


def test_the_output_passes_the_services_validation() -> None:
    training = io.BytesIO()

    prepare(opener(csv_of(JONNY_QA)), "csv", QA, training=training, validation=io.BytesIO())

    report = validate_jsonl(io.BytesIO(training.getvalue()))
    assert (report.ok, report.format, report.examples) == (True, "chat", 13)


def test_a_system_column_overrides_the_system_prompt_and_an_empty_cell_falls_back() -> None:
    body = b"q,a,sys\nWho?,Jonny.,Be brief.\nWhen?,1957.,\n"
    options = PreparationCreate(
        user_column="q", assistant_column="a", system_column="sys", system_prompt="Default."
    )

    _, training, _ = run(body, options=options)

    assert [example["messages"][0]["content"] for example in training] == ["Be brief.", "Default."]


def test_a_missing_column_names_the_header_and_its_columns() -> None:
    problem = failure(csv_of(JONNY_QA), options=PreparationCreate(user_column="question"))

    assert (
        str(problem)
        == "Row 1, column 'assistant': the header has no column 'assistant'; its columns are question, answer."
    )


def test_empty_cells_and_wrong_field_counts_name_their_rows() -> None:
    body = b"question,answer\nWho?,Jonny.\nWhen?,\nWhere?,Nevada,extra\n,Maine.\n"

    problem = failure(body)

    assert [(p.row, p.column, p.category) for p in problem.problems] == [
        (3, "answer", "empty_cell"),
        (4, None, "wrong_field_count"),
        (5, "question", "empty_cell"),
    ]
    assert str(problem).startswith(
        "Row 3, column 'answer': row 3, column 'answer' is empty. (2 more problems)"
    )


def test_bad_quoting_and_invalid_utf8_name_their_rows() -> None:
    quoting = failure(b'question,answer\nWho?,Jonny.\n"When?,1957\n')
    utf8 = failure(b"question,answer\nWho?,Jonny.\nWhen?,\xff\xfe\n" + b"Where?,Nevada.\n" * 2000)

    assert (quoting.problems[0].row, quoting.problems[0].category) == (3, "invalid_csv")
    assert [(p.row, p.category) for p in utf8.problems] == [(3, "invalid_utf8")]


def test_invalid_json_names_its_row_line_and_column() -> None:
    body = b'[\n  {"question": "q1", "answer": "a1"},\n  {"question": "q2", "answer" "a2"}\n]\n'

    problem = failure(body, "json")

    assert str(problem) == "Row 2: invalid JSON in row 2 at line 3, column 31: unexpected symbol '\"a2\"'."


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"question": "q"}', "The file: the file must hold one JSON array of objects."),
        (b'[{"question": "q", "answer": "a"}, 3]', "Row 2: row 2 is a JSON int, not an object."),
        (
            b'[{"question": "q", "answer": ["a"]}]',
            "Row 1, column 'answer': row 1, key 'answer': a list, not text.",
        ),
        (b'[{"question": "q"}]', "Row 1, column 'answer': row 1 has no column 'answer'."),
        (b'[{"question": "q", "answer": "a"},', "Row 2: invalid JSON in row 2: the JSON ends early."),
    ],
)
def test_json_problems_name_their_rows(body: bytes, expected: str) -> None:
    assert str(failure(body, "json")) == expected


def test_json_numbers_are_text_and_a_byte_order_mark_is_dropped() -> None:
    body = b'\xef\xbb\xbf [{"question": "Born?", "answer": 1957}]'

    _, training, _ = run(body, "json")

    assert training[0]["messages"][2] == {"role": "assistant", "content": "1957"}


def test_an_empty_source_is_a_problem_of_the_file() -> None:
    assert str(failure(b"")) == "The file: the file has no header row."
    assert str(failure(b"question,answer\n")) == "The file: the file has no data rows."


def test_exact_duplicates_are_removed_naming_the_row_they_repeat() -> None:
    rows = [*JONNY_QA, JONNY_QA[0], JONNY_QA[3]]

    summary, training, _ = run(csv_of(rows))

    assert (summary.examples, summary.duplicates_removed) == (13, 2)
    assert [(d.row, d.first_row) for d in summary.duplicates] == [(15, 2), (16, 5)]
    assert len(training) == 13


def test_without_dedup_duplicates_stay_and_validation_reports_them() -> None:
    rows = [*JONNY_QA, JONNY_QA[0]]
    training = io.BytesIO()

    prepare(
        opener(csv_of(rows)),
        "csv",
        QA.model_copy(update={"deduplicate": False}),
        training=training,
        validation=io.BytesIO(),
    )

    report = validate_jsonl(io.BytesIO(training.getvalue()))
    assert report.examples == 14
    assert report.warning_categories["duplicate_example"].lines == [14]


def test_near_duplicates_are_kept_and_the_validation_names_them() -> None:
    rows = [*JONNY_QA, (JONNY_QA[0][0].upper(), JONNY_QA[0][1])]
    training = io.BytesIO()

    summary = prepare(opener(csv_of(rows)), "csv", QA, training=training, validation=io.BytesIO())

    assert summary.duplicates_removed == 0
    assert validate_jsonl(io.BytesIO(training.getvalue())).warning_categories[
        "near_duplicate_example"
    ].lines == [14]


def test_the_same_seed_gives_the_same_split_and_another_seed_another() -> None:
    rows = [(f"Question {n}?", f"Answer {n}.") for n in range(200)]
    options = QA.model_copy(update={"validation_split": 0.2, "seed": 7})

    first = run(csv_of(rows), options=options)
    again = run(csv_of(rows), options=options)
    other = run(csv_of(rows), options=options.model_copy(update={"seed": 8}))

    assert first[2] == again[2]
    assert first[2] != other[2]
    assert (first[0].training_examples, first[0].validation_examples) == (160, 40)
    questions = {e["messages"][1]["content"] for e in first[1]} | {
        e["messages"][1]["content"] for e in first[2]
    }
    assert len(questions) == 200


def test_a_count_split_takes_that_many_and_an_absent_seed_is_chosen_and_reported() -> None:
    summary, training, validation = run(
        csv_of(JONNY_QA), options=QA.model_copy(update={"validation_split": 3})
    )

    assert (len(training), len(validation), summary.validation_examples) == (10, 3, 3)
    again = run(csv_of(JONNY_QA), options=QA.model_copy(update={"validation_split": 3, "seed": summary.seed}))
    assert again[2] == validation


@pytest.mark.parametrize(
    ("update", "param"),
    [
        ({"validation_split": 13}, "validation_split"),
        ({"validation_split": 1.0}, "validation_split"),
        ({"add_stop": True}, "add_stop"),
        ({"assistant_column": "question"}, "assistant_column"),
    ],
)
def test_options_that_cannot_work_are_refused_naming_the_parameter(
    update: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        run(csv_of(JONNY_QA), options=QA.model_copy(update=update))

    assert raised.value.param == param


COMPLETION = PreparationCreate(format="completion", prompt_column="question", completion_column="answer")


def test_prompt_completion_data_gets_the_old_tools_advice() -> None:
    rows = [("Born", "1957"), ("Home", "Nevada"), ("Job", "kites")]

    summary, training, _ = run(csv_of(rows), options=COMPLETION)

    assert [(a.code, a.value, a.applied) for a in summary.advice] == [
        ("separator", "\n\n###\n\n", False),
        ("whitespace", " ", False),
        ("stop", "\n", False),
    ]
    assert training[0] == {"prompt": "Born", "completion": "1957"}


def test_apply_advice_adds_separator_whitespace_and_stop() -> None:
    rows = [("Born", "1957"), ("Home", "Nevada\nUSA"), ("Job", "kites")]

    summary, training, _ = run(csv_of(rows), options=COMPLETION.model_copy(update={"apply_advice": True}))

    assert all(advice.applied for advice in summary.advice)
    assert training[1] == {
        "prompt": "Home\n\n###\n\n",
        "completion": " Nevada\nUSA END",
    }  # "\n" is in a completion


def test_each_advice_flag_applies_alone_with_a_chosen_value() -> None:
    rows = [("Born", "1957"), ("Home", "Nevada")]
    options = COMPLETION.model_copy(update={"add_separator": True, "separator": " ->"})

    _, training, _ = run(csv_of(rows), options=options)

    assert training[0] == {"prompt": "Born ->", "completion": "1957"}


def test_data_that_already_follows_the_advice_gets_none() -> None:
    rows = [("Born ->", " 1957 END"), ("Home ->", " Nevada END")]

    summary, _, _ = run(csv_of(rows), options=COMPLETION)

    assert summary.advice == []


def test_tsv_problems_name_their_rows_and_a_quoted_cell_may_span_lines() -> None:
    body = b'question\tanswer\nWho?\t"Jonny,\nof Nevada."\nWhen?\t1957\textra\n'

    problem = failure(body, "tsv")

    assert [(p.row, p.category) for p in problem.problems] == [(3, "wrong_field_count")]
    assert problem.problems[0].message == "row 3 has 3 fields; the header has 2."


def test_a_header_naming_a_column_twice_is_refused() -> None:
    assert str(failure(b"question,question\nq,a\n")) == (
        "Row 1, column 'question': the header (row 1) names column 'question' twice."
    )


def test_invalid_utf8_in_json_names_its_row() -> None:
    body = b'[{"question": "q", "answer": "a"}, {"question": "\xff", "answer": "b"}]'

    assert str(failure(body, "json")) == "Row 2: invalid JSON in row 2: not valid UTF-8."
