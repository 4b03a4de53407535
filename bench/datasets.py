"""Validation throughput (MB/s) next to the raw tokenizer's on the same generated chat file, and the
memory validation allocates (tracemalloc's peak, a separate pass). FTM_BENCH_DATASET_MB sets the
file's size (default 20)."""

from __future__ import annotations

import importlib
import json
import os
import random
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from service.files.tokens import get_encoding
from service.files.validation import validate_jsonl

WORDS = (
    "the quick brown fox jumps over a lazy dog while engineers ship reliable services, "
    "Jonny Whizbang was born on February 22, 1957 in Tumbleweed Falls; kites, barometers, quince "
    "def main() -> int: return 0 {'key': [1, 2, 3]} Grüße 東京 👩‍💻 café naïve 3.14159"
).split()


def _write(path: Path, megabytes: int) -> int:
    rng = random.Random(7)
    written = 0
    with path.open("wb") as out:
        while written < megabytes * 1_000_000:
            rows = []
            for _ in range(200):
                question = " ".join(rng.choices(WORDS, k=rng.randint(8, 40)))
                answer = " ".join(rng.choices(WORDS, k=rng.randint(20, 200)))
                rows.append(
                    {
                        "messages": [
                            {"role": "system", "content": "You answer questions."},
                            {"role": "user", "content": question},
                            {"role": "assistant", "content": answer},
                        ]
                    }
                )
            chunk = b"".join(json.dumps(row).encode() + b"\n" for row in rows)
            out.write(chunk)
            written += len(chunk)
    return written


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        yield from stream


def _tokenizer(name: str) -> Any:
    """bpe_openai's tiktoken-like encoding, the raw tokenizer validation is compared with."""
    get_encoding(name)  # imports bpe_openai with its deprecation warning silenced
    return importlib.import_module("bpe_openai").get_encoding(name)


def _raw(path: Path) -> float:
    encoding = _tokenizer("o200k_base")
    started = time.perf_counter()
    for line in _lines(path):
        encoding.encode_ordinary(line.decode())
    return time.perf_counter() - started


def _validate(path: Path, count_tokens: bool) -> float:
    started = time.perf_counter()
    validate_jsonl(_lines(path), count_tokens=count_tokens)
    return time.perf_counter() - started


def run() -> None:
    megabytes = int(os.environ.get("FTM_BENCH_DATASET_MB", "20"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "train.jsonl")
        size = _write(path, megabytes) / 1e6
        get_encoding("cl100k_base")
        raw = _raw(path)
        full = _validate(path, count_tokens=True)
        checks = _validate(path, count_tokens=False)
        tracemalloc.start()
        validate_jsonl(_lines(path), count_tokens=True)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(f"file: {size:.1f} MB of chat JSONL")
    print(f"raw tokenizer (o200k_base, one encode per line): {size / raw:.1f} MB/s")
    print(f"validation, checks only: {size / checks:.1f} MB/s")
    print(
        f"validation with token statistics (o200k_base and cl100k_base): {size / full:.1f} MB/s "
        f"({raw / full:.0%} of the raw tokenizer's)"
    )
    print(f"validation's peak allocation: {peak / 1e6:.1f} MB")
