from __future__ import annotations

import json
import random
from typing import Any

import pytest

from service.files.duplicates import exact_fingerprint
from service.files.parsing import LineError, LineReader, is_plain, read_json
from service.files.validation import validate_jsonl
from tests.factories import chat_example

PLAIN = json.dumps(chat_example("When was Jonny Whizbang born?", "On February 22, 1957.")).encode()
TOOLS = json.dumps(
    {
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function"}]},
        ],
        "tools": [{"type": "function", "function": {"name": "w", "parameters": {"b": 1, "a": 2.5}}}],
    }
).encode()
# Lines orjson reads differently from json, refuses where json reads them, or refuses as json does.
EDGE_LINES = [
    b'{"messages": [{"role": "user", "content": "x"}], "n": 100000000000000000000}',
    b'{"messages": [{"role": "user", "content": "x", "weight": -9223372036854775809}]}',
    b'{"messages": [{"role": "assistant", "content": "x", "weight": 18446744073709551616}]}',
    b'{"messages": [{"role": "user", "content": "x"}], "n": NaN}',
    b'{"messages": [{"role": "user", "content": "x"}], "n": -Infinity}',
    b'{"messages": [{"role": "user", "content": "x"}], "n": 1e400}',
    b'{"messages": [{"role": "user", "content": "\\ud800 lone"}]}',
    b'{"messages": [{"role": "user", "content": "\\udfff\\ud800"}]}',
    b'{"messages": [{"role": "user", "content": "x"}], "b": 1, "a": 2, "b": 3}',
    b'{"messages": [{"role": "user", "content": "x", "role": "assistant"}]}',
    b'{"messages": [{"role": "user", "content": "tab\tinside"}]}',
    b'{"messages": [{"role": "user", "content": "x"},]}',
    b'{"messages": [{"role": "user", "content": "\xff"}]}',
    b'{"messages": [{"role": "user", "content": "\xed\xa0\x80"}]}',
    b'{"messages": [{"role": "user", "content": "x"}]} trailing',
    b'\x0c{"messages": []}',
    b'{"a": 01}',
    b'{"a": 0.1, "b": 2.2250738585072011e-308, "c": 5e-324, "d": -0.0, "e": 1E+2}',
    b'{"a": 9007199254740993, "b": 9223372036854775807, "c": 18446744073709551615}',
    b"[1, 2]",
    b'"a string"',
    b"[" * 990 + b"]" * 990,
    b'{"messages": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    b'{"messages": [{"role": "user", "content": ' + b"[" * 1010 + b"]" * 1010 + b"}]}",
]


def _outcome(read: Any, raw: bytes) -> Any:
    """What a reader makes of `raw`: the value with every object's key order, or the error."""
    try:
        value = read(raw)
    except LineError as error:
        return ("error", error.category, error.message)
    try:
        return ("value", json.dumps(value), repr(type(value)))
    except RecursionError:  # read, but too deep to write out again: compared by its type alone
        return ("deep value", repr(type(value)))


@pytest.mark.parametrize("raw", EDGE_LINES, ids=range(len(EDGE_LINES)))
def test_the_line_reader_reads_each_edge_case_as_json_does(raw: bytes) -> None:
    for before in (PLAIN, TOOLS):  # orjson tried first, or json first after a line that is not plain
        reader = LineReader()
        reader.read(before)

        assert _outcome(reader.read, raw) == _outcome(read_json, raw)


def test_the_line_reader_reads_mutated_chat_lines_as_json_does() -> None:
    rng = random.Random(8)
    alphabet = b'{}[]":,0123456789.eE+-\\u \tnul\xc3\xa9\xff'
    reader = LineReader()
    for _ in range(3000):
        line = bytearray(rng.choice((PLAIN, TOOLS)))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(line))
            line[at : at + rng.randint(0, 2)] = bytes(rng.choices(alphabet, k=rng.randint(0, 3)))

        assert _outcome(reader.read, bytes(line)) == _outcome(read_json, bytes(line))
        try:
            value = read_json(bytes(line))
        except LineError:
            continue
        assert reader.plain == (type(value) is dict and is_plain(value))


def test_a_weight_beyond_64_bits_is_named_as_written_not_as_a_float() -> None:
    lines = [json.dumps(chat_example(f"q{n}", f"a{n}")).encode() + b"\n" for n in range(12)]
    lines[3] = (
        b'{"messages": [{"role": "user", "content": "q"}, '
        b'{"role": "assistant", "content": "a", "weight": 100000000000000000000}]}\n'
    )

    report = validate_jsonl(lines)

    assert [(issue.line, issue.message) for issue in report.errors] == [
        (4, "messages[1].weight must be 0 or 1, not 100000000000000000000.")
    ]


def test_json_nested_deeper_than_json_reads_is_an_error_naming_its_line() -> None:
    lines = [json.dumps(chat_example(f"q{n}", f"a{n}")).encode() + b"\n" for n in range(12)]
    lines[5] = b'{"messages": [{"role": "user", "content": "q", "x": ' + b"[" * 1010 + b"]" * 1010 + b"}]}\n"

    report = validate_jsonl(lines)

    assert [(issue.line, issue.category, issue.message) for issue in report.errors] == [
        (6, "invalid_json", "JSON that cannot be read (RecursionError).")
    ]


@pytest.mark.parametrize(
    ("record", "plain"),
    [
        (chat_example("q", "a"), True),
        ({"messages": []}, True),
        ({"messages": [{"role": "user", "content": None}]}, False),
        ({"messages": [{"role": "user", "content": "q", "name": "jonny"}]}, False),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]}]}, False),
        ({"messages": [{"role": "user", "content": "q"}], "tools": []}, False),
        ({"messages": ["q"]}, False),
        ({"prompt": "q", "completion": "a"}, False),
    ],
)
def test_only_role_and_content_strings_make_a_plain_record(record: dict[str, Any], plain: bool) -> None:
    assert is_plain(record) is plain


def test_plain_examples_equal_up_to_key_order_have_one_exact_fingerprint_even_with_a_lone_surrogate() -> None:
    for content in ("Sunny.", "lone \ud800 surrogate"):
        one = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": content}]}
        other = {"messages": [{"content": "q", "role": "user"}, {"content": content, "role": "assistant"}]}
        changed = {
            "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": content + "!"}]
        }

        assert exact_fingerprint(one) == exact_fingerprint(other)
        assert exact_fingerprint(one) != exact_fingerprint(changed)
