"""Validation throughput (MB/s) next to the raw tokenizer's on the same generated chat file, with
and without the personal-data checks, and the memory validating a large file takes.

Throughput: a file of FTM_BENCH_DATASET_MB (default 20) MB, each figure the best of 3 runs taken
in turn (the machine is shared, so single runs wander). The raw tokenizer is bpe_openai's
`encode_ordinary` of every line (one encoding, what a bare token count costs); validation parses
and checks every example, fingerprints it for duplicates and counts its tokens with both chat
encodings (o200k_base and cl100k_base).

Memory: a file of FTM_BENCH_LARGE_MB (default 1000; 0 skips it) MB, generated in a temporary
directory, validated with the personal-data checks in two child processes: one for the time and
the peak resident set size (`ru_maxrss`), one under tracemalloc for the peak of what validation
allocates (tracemalloc slows it down, so its time is not reported).
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import random
import resource
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from service.files.personal import PersonalDataScanner
from service.files.tokens import get_encoding
from service.files.validation import validate_jsonl

WORDS = (
    "the quick brown fox jumps over a lazy dog while engineers ship reliable services, "
    "Jonny Whizbang was born on February 22, 1957 in Tumbleweed Falls; kites, barometers, quince "
    "def main() -> int: return 0 {'key': [1, 2, 3]} Grüße 東京 👩‍💻 café naïve 3.14159"
).split()
# One answer in a hundred carries personal data, as a careless export might.
PERSONAL = " Write to jonny.whizbang@example.com or call (415) 555-2671."
RUNS = 3


def _write(path: Path, megabytes: int) -> int:
    rng = random.Random(7)
    written = 0
    with path.open("wb") as out:
        while written < megabytes * 1_000_000:
            rows = []
            for _ in range(200):
                question = " ".join(rng.choices(WORDS, k=rng.randint(8, 40)))
                answer = " ".join(rng.choices(WORDS, k=rng.randint(20, 200)))
                if rng.random() < 0.01:
                    answer += PERSONAL
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
    with warnings.catch_warnings():  # bpe_openai's own deprecated importlib.resources call
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module("bpe_openai").get_encoding(name)


def _raw(path: Path) -> None:
    encoding = _tokenizer("o200k_base")
    for line in _lines(path):
        encoding.encode_ordinary(line.decode())


def _raw_count(path: Path) -> None:
    encoding = get_encoding("o200k_base")
    for line in _lines(path):
        encoding.count(line.decode())


def _validation(count_tokens: bool, personal_data: bool) -> Callable[[Path], None]:
    def validate(path: Path) -> None:
        validate_jsonl(
            _lines(path), count_tokens=count_tokens, personal_data="warn" if personal_data else None
        )

    return validate


def _best_seconds(path: Path, runs: dict[str, Callable[[Path], None]]) -> dict[str, float]:
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(RUNS):
        for name, run in runs.items():
            started = time.perf_counter()
            run(path)
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def _large(path: str, traced: bool) -> dict[str, float]:
    """Validate `path` in this (child) process; its time and peak RSS, or tracemalloc's peak."""
    for name in ("o200k_base", "cl100k_base"):  # loaded once per process, before the measurement
        get_encoding(name)
    PersonalDataScanner().scan(PERSONAL)
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    report = validate_jsonl(_lines(Path(path)), personal_data="warn")
    seconds = time.perf_counter() - started
    figures = {"seconds": seconds, "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    if traced:
        figures["traced_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    figures["examples"] = report.examples
    return figures


def _throughput(tmp: str, megabytes: int) -> None:
    path = Path(tmp, "train.jsonl")
    size = _write(path, megabytes) / 1e6
    get_encoding("cl100k_base")
    seconds = _best_seconds(
        path,
        {
            "raw": _raw,
            "raw_count": _raw_count,
            "checks": _validation(count_tokens=False, personal_data=False),
            "tokens": _validation(count_tokens=True, personal_data=False),
            "personal": _validation(count_tokens=True, personal_data=True),
        },
    )
    raw = seconds["raw"]
    print(f"file: {size:.1f} MB of chat JSONL (best of {RUNS} runs each)", flush=True)
    print(f"raw tokenizer (o200k_base encode_ordinary, one call per line): {size / raw:.1f} MB/s")
    print(f"raw tokenizer's count (o200k_base, one call per line): {size / seconds['raw_count']:.1f} MB/s")
    print(f"validation, checks only (no tokens, no personal data): {size / seconds['checks']:.1f} MB/s")
    for name, label in (("tokens", "without"), ("personal", "with")):
        print(
            f"validation with token statistics (o200k_base and cl100k_base), {label} personal-data checks: "
            f"{size / seconds[name]:.1f} MB/s ({raw / seconds[name]:.0%} of the raw tokenizer's)",
            flush=True,
        )


def _memory(tmp: str, megabytes: int) -> None:
    path = Path(tmp, "large.jsonl")
    started = time.perf_counter()
    size = _write(path, megabytes) / 1e6
    print(f"large file: {size:.0f} MB generated in {time.perf_counter() - started:.0f} s", flush=True)
    context = multiprocessing.get_context("spawn")
    with context.Pool(1, maxtasksperchild=1) as pool:
        plain = pool.apply(_large, (str(path), False))
    print(
        f"validation of {size:.0f} MB ({plain['examples']:.0f} examples, personal-data checks on): "
        f"{size / plain['seconds']:.1f} MB/s, peak RSS {plain['rss_kib'] / 1024:.0f} MB",
        flush=True,
    )
    with context.Pool(1, maxtasksperchild=1) as pool:
        traced = pool.apply(_large, (str(path), True))
    print(f"validation of {size:.0f} MB under tracemalloc: peak {traced['traced_peak'] / 1e6:.1f} MB")


def run() -> None:
    megabytes = int(os.environ.get("FTM_BENCH_DATASET_MB", "20"))
    large = int(os.environ.get("FTM_BENCH_LARGE_MB", "1000"))
    with tempfile.TemporaryDirectory() as tmp:
        _throughput(tmp, megabytes)
        if large:
            _memory(tmp, large)
