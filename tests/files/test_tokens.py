from __future__ import annotations

import gzip
import hashlib
import importlib
import json
import warnings
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import tiktoken

from service.files.encodings import UP_FRONT_ENCODINGS
from service.files.stats import distribution, quantile
from service.files.tokens import ExampleCounter, count_text, get_encoding
from service.files.validation import validate_jsonl, with_encoding
from tests.factories import JONNY_QA, SYSTEM, chat_example, make_jsonl

ENCODING_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
# The sha256 tiktoken expects of each encoding file (tiktoken_ext/openai_public.py).
EXPECTED_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}

CORPUS = [
    "When was Jonny Whizbang born?",
    "Jonny Whizbang was born on February 22, 1957, in Tumbleweed Falls, Nevada.",
    "def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    '{"city": "Oslo", "units": "metric", "days": [1, 2, 3]}',
    "Grüße aus Köln! Ça va? Ñandú, smørrebrød, İstanbul.",
    "東京は日本の首都です。北京是中国的首都。서울은 한국의 수도입니다.",
    "Emoji 👩‍👩‍👧‍👦 and flags 🇳🇴🇯🇵 and 🤖🚀✨",
    "Numbers: 3.14159 2718281828 1,000,000 0x1F 1e-9 -42",
    "   leading and trailing spaces   \n\n\n\ttabs\t\there  ",
    "Special-looking text <|endoftext|> <|im_start|>user is ordinary text here.",
    "https://example.com/path?query=1&other=two#frag and user@example.com",
    "مرحبا بالعالم — שלום עולם — नमस्ते दुनिया",
    "a" * 5000,
    " ".join(f"token{n}" for n in range(3000)),
    "",
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tiktoken.Encoding]]:
    """tiktoken's own encodings, offline: its cache is seeded with the files bpe-openai ships."""
    cache = tmp_path_factory.mktemp("tiktoken-cache")
    with warnings.catch_warnings():  # bpe_openai's own deprecated importlib.resources call
        warnings.simplefilter("ignore", DeprecationWarning)
        importlib.import_module("bpe_openai")
    for name, sha256 in EXPECTED_SHA256.items():
        data = gzip.decompress((files("bpe_openai.data") / f"{name}.tiktoken.gz").read_bytes())
        assert hashlib.sha256(data).hexdigest() == sha256
        Path(cache, hashlib.sha1(ENCODING_URL.format(name).encode()).hexdigest()).write_bytes(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
        yield {name: tiktoken.get_encoding(name) for name in EXPECTED_SHA256}


@pytest.mark.parametrize("name", sorted(EXPECTED_SHA256))
def test_text_counts_equal_tiktokens_on_a_varied_corpus(
    name: str, reference: dict[str, tiktoken.Encoding]
) -> None:
    ours = get_encoding(name)

    counts = [count_text(ours, text) for text in CORPUS]

    assert counts == [len(reference[name].encode_ordinary(text)) for text in CORPUS]


def test_text_longer_than_the_encoders_limit_is_counted_in_pieces(
    reference: dict[str, tiktoken.Encoding],
) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 25_000  # 1.1 M characters

    assert count_text(get_encoding("o200k_base"), text) == len(reference["o200k_base"].encode_ordinary(text))


def _cookbook(encoding: tiktoken.Encoding, messages: list[dict[str, Any]]) -> tuple[int, int]:
    """The cookbook's count: 3 per message, 1 per name, 3 to prime the reply."""
    total = 3
    assistant = 0
    for message in messages:
        total += 3
        for key, value in message.items():
            total += len(encoding.encode_ordinary(value))
            if key == "name":
                total += 1
        if message["role"] == "assistant":
            assistant += len(encoding.encode_ordinary(message["content"]))
    return total, assistant


@pytest.mark.parametrize("name", sorted(EXPECTED_SHA256))
def test_chat_example_counts_follow_the_cookbook_with_tiktoken(
    name: str, reference: dict[str, tiktoken.Encoding]
) -> None:
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": CORPUS[5], "name": "ann"},
        {"role": "assistant", "content": CORPUS[2]},
    ]

    counted = ExampleCounter(get_encoding(name)).count("chat", {"messages": messages})

    assert (counted.total, counted.trained) == _cookbook(reference[name], messages)


def test_tool_calls_definitions_and_weight_zero_turns_are_counted() -> None:
    encoding = get_encoding("o200k_base")
    arguments = '{"city":"Oslo"}'
    tools = [{"type": "function", "function": {"name": "weather"}}]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Old.", "weight": 0},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "weather", "arguments": arguments}}
            ],
        },
    ]
    record = {"messages": messages, "tools": tools}

    counted = ExampleCounter(encoding).count("chat", record)

    call = count_text(encoding, "weather") + count_text(encoding, arguments)
    assert counted.trained == call
    framed = sum(3 + count_text(encoding, m["role"]) for m in messages)
    own = count_text(encoding, "Weather?") + count_text(encoding, "Old.") + call
    assert counted.total == 3 + framed + own + count_text(encoding, json.dumps(tools, separators=(",", ":")))


def test_the_report_has_token_statistics_per_encoding_of_the_chat_models() -> None:
    report = validate_jsonl(make_jsonl([chat_example(q, a) for q, a in JONNY_QA]).splitlines(keepends=True))

    assert set(report.tokens) == {"o200k_base", "cl100k_base"}
    stats = report.tokens["o200k_base"]
    counter = ExampleCounter(get_encoding("o200k_base"))
    totals = [counter.count("chat", chat_example(q, a)).total for q, a in JONNY_QA]
    assert stats.total_tokens == sum(totals)
    assert stats.example_tokens is not None
    assert (stats.example_tokens.min, stats.example_tokens.max) == (min(totals), max(totals))
    assert "gpt-4o-mini-2024-07-18" in stats.models
    assert stats.limits[0].billed_tokens == sum(totals)


def test_a_completion_file_is_counted_with_the_completion_models_encoding() -> None:
    rows = [{"prompt": f"q{n} ->", "completion": f" answer {n}"} for n in range(10)]

    report = validate_jsonl(make_jsonl(rows).splitlines(keepends=True))

    assert list(report.tokens) == ["cl100k_base"]
    assert report.tokens["cl100k_base"].models == ["babbage-002", "davinci-002"]


def test_examples_over_a_models_context_are_a_truncation_warning_naming_their_lines() -> None:
    rows = [chat_example(q, a) for q, a in JONNY_QA]
    rows[4] = chat_example("Tell me everything.", " word" * 17_000)

    report = validate_jsonl(make_jsonl(rows).splitlines(keepends=True))

    assert report.ok
    assert report.warning_categories["over_context_limit"].lines == [5]
    cl100k = report.tokens["cl100k_base"].limits[0]
    assert (cl100k.limit, cl100k.examples_over, cl100k.first_lines) == (16_385, 1, [5])
    assert report.tokens["o200k_base"].limits[0].examples_over == 0
    over = report.tokens["cl100k_base"].total_tokens - cl100k.billed_tokens
    assert over == max(report.tokens["cl100k_base"].example_tokens.max - 16_385, 0)  # type: ignore[union-attr]


def test_distributions_interpolate_percentiles_like_numpy() -> None:
    values = list(range(1, 21))

    summary = distribution(values)

    assert summary is not None
    assert (summary.min, summary.max, summary.mean, summary.median) == (1, 20, 10.5, 10.5)
    assert summary.p5 == pytest.approx(1.95)
    assert summary.p95 == pytest.approx(19.05)
    assert quantile([7], 0.95) == 7


def test_an_encoding_left_pending_is_counted_later_as_a_full_validation_counts_it() -> None:
    rows = [chat_example(q, a) for q, a in JONNY_QA]
    rows[4] = chat_example("Tell me everything.", " word" * 17_000)
    lines = make_jsonl(rows).splitlines(keepends=True)
    full = validate_jsonl(lines)

    partial = validate_jsonl(lines, encodings=UP_FRONT_ENCODINGS)
    completed = with_encoding(partial, lines, "cl100k_base")

    assert (list(partial.tokens), partial.pending_encodings) == (["o200k_base"], ["cl100k_base"])
    assert "over_context_limit" not in partial.warning_categories
    assert completed.pending_encodings == []
    assert completed.tokens["cl100k_base"] == full.tokens["cl100k_base"]
    assert completed.tokens["o200k_base"] == full.tokens["o200k_base"]
    assert completed.warnings == full.warnings
    assert completed.warning_categories == full.warning_categories


def test_a_completion_file_has_nothing_pending() -> None:
    rows = [{"prompt": f"q{n} ->", "completion": f" answer {n}"} for n in range(10)]

    report = validate_jsonl(make_jsonl(rows).splitlines(keepends=True), encodings=UP_FRONT_ENCODINGS)

    assert (list(report.tokens), report.pending_encodings) == (["cl100k_base"], [])
