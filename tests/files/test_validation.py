from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from service.files.images import ImagePolicy
from service.files.validation import validate_jsonl
from tests.factories import chat_example

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 40


def _lines(body: bytes) -> list[bytes]:
    return body.splitlines(keepends=True)


def _file(rows: list[Any], *, bad: Any = None, at: int = 7, count: int = 12) -> list[bytes]:
    """`count` good chat examples with line `at` replaced by `bad` (an object, or raw bytes)."""
    lines = [json.dumps(row).encode() + b"\n" for row in rows] or [
        json.dumps(chat_example(f"q{n}", f"a{n}")).encode() + b"\n" for n in range(count)
    ]
    if bad is not None:
        lines[at - 1] = bad if isinstance(bad, bytes) else json.dumps(bad).encode() + b"\n"
    return lines


def _chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"messages": list(messages), **extra}


USER = {"role": "user", "content": "What is the weather?"}
ASSISTANT = {"role": "assistant", "content": "Sunny."}
CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
TOOL = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}


def _image(data: bytes, media_type: str = "image/png") -> dict[str, Any]:
    url = f"data:{media_type};base64,{base64.b64encode(data).decode()}"
    return {"type": "image_url", "image_url": {"url": url, "detail": "low"}}


BAD_LINES: list[tuple[str, Any]] = [
    ("data_type", [1, 2]),
    ("missing_messages_list", {"messages": "hello"}),
    ("missing_messages_list", {"messages": []}),
    ("message_missing_key", _chat({"content": "no role"}, ASSISTANT)),
    ("message_missing_key", _chat({"role": "user"}, ASSISTANT)),
    ("message_unrecognized_key", _chat({**USER, "weight": 1}, ASSISTANT)),
    ("message_unrecognized_key", _chat(USER, {**ASSISTANT, "tool_call_id": "x"})),
    ("unrecognized_role", _chat({"role": "robot", "content": "hi"}, ASSISTANT)),
    ("missing_content", _chat(USER, {"role": "assistant"})),
    ("missing_content", _chat(USER, {"role": "assistant", "content": 42})),
    ("missing_content", _chat({"role": "user", "content": ""}, ASSISTANT)),
    ("example_missing_assistant_message", _chat(USER)),
    ("example_unrecognized_key", _chat(USER, ASSISTANT, extra_field=1)),
    ("invalid_weight", _chat(USER, {**ASSISTANT, "weight": 2})),
    ("invalid_weight", _chat(USER, {**ASSISTANT, "weight": True})),
    ("invalid_weight", _chat(USER, {**ASSISTANT, "weight": 1.0})),
    ("invalid_name", _chat({**USER, "name": 7}, ASSISTANT)),
    ("invalid_tool_calls", _chat(USER, {"role": "assistant", "tool_calls": {}})),
    ("invalid_tool_calls", _chat(USER, {"role": "assistant", "tool_calls": [{**CALL, "id": 1}]})),
    ("invalid_tool_calls", _chat(USER, {"role": "assistant", "tool_calls": [{**CALL, "type": "tool"}]})),
    (
        "invalid_tool_calls",
        _chat(
            USER, {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "w", "arguments": {}}}]}
        ),
    ),
    (
        "invalid_tool_calls",
        _chat(
            USER,
            {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "w", "arguments": "{x"}}]},
        ),
    ),
    ("invalid_function_call", _chat(USER, {"role": "assistant", "function_call": {"name": "w"}})),
    ("invalid_function_call", _chat(USER, {"role": "assistant", "function_call": "w()"})),
    (
        "missing_tool_call_id",
        _chat(USER, {"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "content": "5"}, ASSISTANT),
    ),
    ("message_missing_key", _chat(USER, {"role": "function", "content": "5"}, ASSISTANT)),
    ("invalid_tools", _chat(USER, ASSISTANT, tools={"weather": {}})),
    ("invalid_tools", _chat(USER, ASSISTANT, tools=[{"type": "function", "function": {"name": ""}}])),
    ("invalid_tools", _chat(USER, ASSISTANT, tools=[{**TOOL, "type": "retrieval"}])),
    ("invalid_functions", _chat(USER, ASSISTANT, functions=[{"name": "w", "parameters": "any"}])),
    ("invalid_parallel_tool_calls", _chat(USER, ASSISTANT, parallel_tool_calls="yes")),
    ("invalid_content_part", _chat({"role": "user", "content": [{"type": "audio"}]}, ASSISTANT)),
    ("invalid_content_part", _chat({"role": "user", "content": [{"type": "text", "text": 3}]}, ASSISTANT)),
    ("invalid_content_part", _chat({"role": "system", "content": [_image(PNG)]}, USER, ASSISTANT)),
    ("image_in_assistant_message", _chat(USER, {"role": "assistant", "content": [_image(PNG)]})),
    ("too_many_images", _chat({"role": "user", "content": [_image(PNG)] * 11}, ASSISTANT)),
    ("unsupported_image_type", _chat({"role": "user", "content": [_image(PNG, "image/gif")]}, ASSISTANT)),
    ("unsupported_image_type", _chat({"role": "user", "content": [_image(JPEG, "image/png")]}, ASSISTANT)),
    (
        "invalid_image_url",
        _chat(
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}, ASSISTANT
        ),
    ),
    ("unrecognized_format", {"question": "q", "answer": "a"}),
    ("mixed_formats", {"prompt": "q", "completion": "a"}),
    ("invalid_json", b'{"messages": [\n'),
    ("invalid_json", b'{"prompt": ' + b"1" * 5000 + b"}\n"),
    ("invalid_json", b"[" * 100_000 + b"]" * 100_000 + b"\n"),
    ("invalid_utf8", b'{"messages": "\xff\xfe"}\n'),
    ("blank_line", b"  \n"),
]


@pytest.mark.parametrize(("category", "bad"), BAD_LINES)
def test_each_error_category_names_its_line(category: str, bad: Any) -> None:
    report = validate_jsonl(_file([], bad=bad))

    assert not report.ok
    assert category in report.error_categories, report.errors
    assert report.error_categories[category].lines == [7]
    assert report.errors[0].line == 7
    assert report.summary().startswith("Line 7:")


def test_a_file_of_every_chat_feature_is_valid() -> None:
    rich = _chat(
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        {
            "role": "user",
            "content": [{"type": "text", "text": "And this?"}, _image(PNG), _image(JPEG, "image/jpeg")],
            "name": "ann",
        },
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12C"},
        {"role": "assistant", "content": "old answer", "weight": 0},
        {"role": "assistant", "function_call": {"name": "weather", "arguments": "{}"}},
        {"role": "function", "name": "weather", "content": "13C"},
        {"role": "assistant", "content": "13C and sunny.", "weight": 1},
        tools=[TOOL],
        functions=[{"name": "weather", "description": "Weather.", "parameters": {"type": "object"}}],
        parallel_tool_calls=False,
    )

    report = validate_jsonl(_file([rich] * 12))

    assert report.ok, report.errors
    assert (report.format, report.examples, report.examples_with_images) == ("chat", 12, 12)


def test_prompt_completion_and_preference_files_are_valid() -> None:
    completions = [{"prompt": f"q{n} ->", "completion": f" a{n}"} for n in range(10)]
    pairs = [
        {
            "input": {"messages": [USER], "tools": [TOOL], "parallel_tool_calls": True},
            "preferred_output": [{"role": "assistant", "content": "Sunny and warm."}],
            "non_preferred_output": [{"role": "assistant", "content": "No idea."}],
        }
    ] * 10

    assert validate_jsonl(_file(completions)).format == "completion"
    assert validate_jsonl(_file(completions)).ok
    assert validate_jsonl(_file(pairs)).format == "preference"
    assert validate_jsonl(_file(pairs)).ok


PAIR = {
    "input": {"messages": [USER]},
    "preferred_output": [ASSISTANT],
    "non_preferred_output": [{"role": "assistant", "content": "Rain."}],
}
BAD_PAIRS: list[tuple[str, dict[str, Any]]] = [
    ("invalid_preference_input", {**PAIR, "input": [USER]}),
    ("missing_messages_list", {**PAIR, "input": {"messages": []}}),
    ("invalid_preference_input", {**PAIR, "input": {"messages": [USER, ASSISTANT]}}),
    ("invalid_preference_output", {**PAIR, "preferred_output": [ASSISTANT, ASSISTANT]}),
    ("invalid_preference_output", {**PAIR, "non_preferred_output": [USER]}),
    ("invalid_preference_output", {**PAIR, "non_preferred_output": [{**ASSISTANT, "weight": 1}]}),
    ("invalid_content_part", {**PAIR, "input": {"messages": [{"role": "user", "content": [_image(PNG)]}]}}),
    ("missing_content", {**PAIR, "preferred_output": [{"role": "assistant", "content": ""}]}),
]


@pytest.mark.parametrize(("category", "bad"), BAD_PAIRS)
def test_each_preference_error_names_its_line(category: str, bad: dict[str, Any]) -> None:
    report = validate_jsonl(_file([PAIR] * 12, bad=bad, at=3))

    assert report.error_categories[category].lines == [3], report.errors


@pytest.mark.parametrize(
    ("category", "bad"),
    [
        ("missing_prompt_or_completion", {"prompt": "q"}),
        ("invalid_prompt_or_completion", {"prompt": ["q"], "completion": "a"}),
        ("missing_content", {"prompt": "q", "completion": ""}),
        ("example_unrecognized_key", {"prompt": "q", "completion": "a", "label": 1}),
    ],
)
def test_each_completion_error_names_its_line(category: str, bad: dict[str, Any]) -> None:
    report = validate_jsonl(_file([{"prompt": "q", "completion": "a"}] * 12, bad=bad, at=4))

    assert report.error_categories[category].lines == [4], report.errors


def test_a_byte_order_mark_is_an_error_on_line_1_and_the_line_is_still_checked() -> None:
    lines = _file([])
    lines[0] = b"\xef\xbb\xbf" + lines[0]

    report = validate_jsonl(lines)

    assert report.error_categories["byte_order_mark"].lines == [1]
    assert report.error_count == 1
    assert report.examples == 12


def test_an_empty_file_and_too_few_examples_are_file_errors_without_a_line() -> None:
    empty = validate_jsonl([b"\n"])
    few = validate_jsonl(_file([chat_example("q", "a")] * 3))

    assert "empty_file" in empty.error_categories
    assert few.error_categories["too_few_examples"].count == 1
    assert few.errors[0].line is None
    assert few.summary().startswith("the file has 3 valid examples")


def test_categories_count_every_occurrence_and_list_the_first_lines() -> None:
    lines = [b"[]\n"] * 30 + _file([])

    report = validate_jsonl(lines)

    assert report.error_categories["data_type"].count == 30
    assert report.error_categories["data_type"].lines == list(range(1, 11))
    assert len(report.errors) == 20
    assert report.error_count == 30


def test_warnings_are_counted_apart_and_do_not_block() -> None:
    no_system = [_chat(USER, ASSISTANT)] * 11 + [_chat(USER, {**ASSISTANT, "weight": 0})]

    report = validate_jsonl(_file(no_system))

    assert report.ok
    assert report.warning_categories["missing_system_message"].count == 12
    assert report.warning_categories["no_trained_turns"].lines == [12]
    assert report.warning_categories["few_examples"].count == 1


def test_an_image_over_the_size_limit_is_an_error() -> None:
    big = _chat({"role": "user", "content": [_image(PNG + b"\x00" * 2000)]}, ASSISTANT)

    report = validate_jsonl(_file([], bad=big, at=2), images=ImagePolicy(max_bytes=1000))

    assert report.error_categories["image_too_large"].lines == [2]


def test_more_image_examples_than_allowed_is_an_error_at_the_first_one_over() -> None:
    with_image = _chat({"role": "user", "content": [_image(PNG)]}, ASSISTANT)

    report = validate_jsonl(_file([with_image] * 12), images=ImagePolicy(max_examples_with_images=5))

    assert report.error_categories["too_many_image_examples"].lines == [6]


def test_exact_and_near_duplicates_are_warnings_naming_the_first_line() -> None:
    rows = [chat_example(f"q{n}", f"a{n}") for n in range(12)]
    rows[5] = {
        "messages": [{"content": m["content"], "role": m["role"]} for m in rows[1]["messages"]]
    }  # keys reordered
    rows[8] = chat_example("Q1!", "  A1.")
    rows[8]["messages"][0]["content"] = rows[1]["messages"][0]["content"].upper()

    report = validate_jsonl(_file(rows))

    assert report.ok
    assert report.warning_categories["duplicate_example"].lines == [6]
    assert report.warning_categories["near_duplicate_example"].lines == [9]
    assert [w.message for w in report.warnings if w.line in (6, 9)] == [
        "the same example as line 2.",
        "the same text as line 2, up to case, spacing and punctuation.",
    ]


def _tool_call_example(n: int, *, weight: int = 1) -> dict[str, Any]:
    call = {"id": f"call_{n}", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    return {
        "messages": [
            {"role": "user", "content": f"q{n}", "name": "jonny"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "content": "born 1957", "tool_call_id": f"call_{n}"},
            {"role": "assistant", "content": f"a{n}", "weight": weight},
        ]
    }


def test_an_example_with_tool_calls_and_weights_in_another_key_order_is_an_exact_duplicate() -> None:
    rows = [_tool_call_example(n) for n in range(12)]
    rows[7] = json.loads(json.dumps(rows[2], sort_keys=True))  # every object's keys reordered
    rows[7]["messages"] = [dict(reversed(m.items())) for m in rows[7]["messages"]]

    report = validate_jsonl(_file(rows))

    assert report.warning_categories["duplicate_example"].lines == [8]
    assert "near_duplicate_example" not in report.warning_categories


def test_examples_that_differ_only_in_a_weight_are_near_duplicates_not_exact_ones() -> None:
    rows = [_tool_call_example(n) for n in range(12)]
    rows[7] = _tool_call_example(2, weight=0)
    rows[7]["messages"][1] = {"role": "assistant", "content": "calling", "weight": 1}
    rows[7]["messages"][2] = {"role": "user", "content": "born 1957"}
    rows[2]["messages"][1] = {"role": "assistant", "content": "calling"}
    rows[2]["messages"][2] = {"role": "user", "content": "born 1957"}

    report = validate_jsonl(_file(rows))

    assert report.warning_categories["near_duplicate_example"].lines == [8]
    assert "duplicate_example" not in report.warning_categories


def test_examples_that_differ_in_their_text_are_not_duplicates() -> None:
    rows = [chat_example(f"q{n}", f"a{n}") for n in range(12)]
    rows[3] = chat_example("q1", "a2")

    report = validate_jsonl(_file(rows))

    assert "duplicate_example" not in report.warning_categories
    assert "near_duplicate_example" not in report.warning_categories
