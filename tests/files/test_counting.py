from __future__ import annotations

import io
import struct
from array import array
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.db import session_scope
from service.files import counting
from service.files import service as files_service
from service.files.counting import CountingProcess, _serve
from service.files.encodings import UP_FRONT_ENCODINGS
from service.files.models import FileRow
from service.files.report import ValidationReport
from service.files.tokens import count_text, get_encoding
from service.files.validation import validate_jsonl
from service.runtime import Runtime
from tests.conftest import sdk_for
from tests.factories import JONNY_QA, chat_example, make_jsonl


def _varied_chat_rows() -> list[dict[str, Any]]:
    """Over four blocks of examples: plain turns, names, tool calls and definitions, weight 0,
    text parts, non-ASCII text, a lone surrogate, a long answer, personal data."""
    rows: list[dict[str, Any]] = []
    for n in range(300):
        question, answer = JONNY_QA[n % len(JONNY_QA)]
        row = chat_example(f"{question} ({n})", f"{answer} Grüße, 東京 {n}.")
        if n % 7 == 0:
            row["messages"][1]["name"] = "Zoë"
        if n % 11 == 0:
            row["tools"] = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]
            row["messages"].append(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
                    ],
                }
            )
        if n % 13 == 0:
            row["messages"].insert(2, {"role": "assistant", "content": "Earlier.", "weight": 0})
            row["messages"].insert(3, {"role": "user", "content": [{"type": "text", "text": "And?"}]})
        if n % 17 == 0:
            row["messages"][2]["content"] += " \ud800 " + "long " * 600
        if n % 19 == 0:
            row["messages"][2]["content"] += " Write to jonny.whizbang@example.com."
        rows.append(row)
    return rows


def _lines(rows: list[dict[str, Any]]) -> list[bytes]:
    lines = make_jsonl(rows).splitlines(keepends=True)
    lines[40] = b'{"messages": "not a list"}\n'  # an invalid example: neither counted nor sent
    lines.insert(100, b"\n")
    return lines


def test_tokens_counted_in_a_child_process_give_the_report_counted_in_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = _lines(_varied_chat_rows())
    sent: list[int] = []
    send = CountingProcess.send

    def counted_send(self: CountingProcess, texts: list[str]) -> None:
        sent.append(len(texts))
        send(self, texts)

    monkeypatch.setattr(CountingProcess, "send", counted_send)

    here = validate_jsonl(lines, personal_data="warn")
    there = validate_jsonl(lines, personal_data="warn", offload=True)

    assert len(sent) == 5  # every block of 64 lines went to the child
    assert there == here
    assert set(there.tokens) == {"o200k_base", "cl100k_base"}
    assert there.error_categories["missing_messages_list"].lines == [41]


def test_a_completion_file_counted_in_a_child_process_has_the_same_statistics() -> None:
    rows = [{"prompt": f"q{n} ->", "completion": f" answer {n} " * (n % 5 + 1)} for n in range(150)]
    lines = make_jsonl(rows).splitlines(keepends=True)

    there = validate_jsonl(lines, offload=True, encodings=UP_FRONT_ENCODINGS)

    assert there == validate_jsonl(lines, encodings=UP_FRONT_ENCODINGS)


def test_when_the_counting_process_dies_the_rest_is_counted_in_the_process_to_the_same_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = _lines(_varied_chat_rows())
    send = CountingProcess.send
    blocks: list[int] = []

    def send_then_die(self: CountingProcess, texts: list[str]) -> None:
        blocks.append(len(texts))
        if len(blocks) == 3:
            child = self._child
            assert child is not None
            child.kill()
            child.wait()
        send(self, texts)

    monkeypatch.setattr(CountingProcess, "send", send_then_die)

    there = validate_jsonl(lines, personal_data="warn", offload=True)

    assert len(blocks) >= 3  # the child was killed before the third block
    assert there == validate_jsonl(lines, personal_data="warn")


def test_a_counting_process_that_cannot_start_leaves_the_counting_to_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = _lines(_varied_chat_rows())

    def cannot_start(*args: object, **kwargs: object) -> None:
        raise OSError("no more processes")

    monkeypatch.setattr("service.files.counting.subprocess.Popen", cannot_start)

    assert validate_jsonl(lines, offload=True) == validate_jsonl(lines)


def test_the_child_counts_each_text_with_each_encoding_as_the_tokenizer_does() -> None:
    texts = ["", "Hello, world!", "Grüße aus Köln, 東京 👩‍👩‍👧", "lone \ud800 surrogate", "word " * 3000]
    body = "".join(texts).encode("utf-8", "surrogatepass")
    frame = counting._HEADER.pack(len(texts), len(body)) + array("I", map(len, texts)).tobytes() + body
    answer = io.BytesIO()

    _serve(["o200k_base", "cl100k_base"], io.BytesIO(frame + frame), answer)

    expected = [
        count_text(get_encoding(name), text) for name in ("o200k_base", "cl100k_base") for text in texts
    ]
    size = 8 * len(expected)
    answered = answer.getvalue()
    assert len(answered) == 2 * (8 + size)
    for at in (0, 8 + size):
        assert struct.unpack("<Q", answered[at : at + 8]) == (size,)
        counts = array("q")
        counts.frombytes(answered[at + 8 : at + 8 + size])
        assert counts.tolist() == expected


def test_the_service_counts_a_large_files_tokens_in_a_child_process_to_the_same_stored_report(
    runtime: Runtime, tenant_key: str, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = make_jsonl(_varied_chat_rows())
    sdk = sdk_for(client, tenant_key)
    started: list[list[str]] = []
    start = CountingProcess.__init__

    def counted_start(self: CountingProcess, encodings: list[str]) -> None:
        started.append(list(encodings))
        start(self, encodings)

    monkeypatch.setattr(CountingProcess, "__init__", counted_start)
    monkeypatch.setattr(files_service, "OFFLOAD_MIN_BYTES", len(body))  # this file is "large"
    monkeypatch.setattr("os.cpu_count", lambda: 2)

    large = sdk.files.create(file=("train.jsonl", io.BytesIO(body)), purpose="fine-tune")
    files_service.validate_file(runtime.sessions, runtime.blobs, large.id)

    assert started == [["o200k_base"]]
    with session_scope(runtime.sessions) as session:
        row = session.get(FileRow, large.id)
        assert row is not None
        stored = ValidationReport.model_validate(row.report)
    expected = validate_jsonl(
        body.splitlines(keepends=True),
        personal_data=stored.personal_data.policy if stored.personal_data else None,
        encodings=UP_FRONT_ENCODINGS,
    )
    assert stored == expected
    assert sdk.files.retrieve(large.id).status == "processed"
