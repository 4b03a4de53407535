"""Validation throughput (MB/s) next to the raw tokenizer's on the same generated chat file, with
and without the personal-data checks, and the memory validating a large file takes.

The file is a support assistant's conversations (`_conversation`): ordinary sentences with the
dates, prices, versions, order numbers and times real answers hold, one in a hundred with personal
data. Throughput: a file of FTM_BENCH_DATASET_MB (default 20) MB, each figure the best of 3 runs
taken in turn (the machine is shared, so single runs wander). The raw tokenizer is bpe_openai's
`encode_ordinary` of every line (one encoding, what a bare token count costs); validation runs as
the service runs it: it parses and checks every example, fingerprints it for duplicates and
counts its tokens with the current models' encoding (o200k_base; `service.files.encodings`). The
share of lines the personal-data prefilter flags is printed too. Each ratio is given by wall-clock
time and by CPU time: on a shared machine a run's wall-clock time includes its waits for a core.
The same validation with its tokens counted in a child process (`offload`, as the service
counts large files) is given by wall clock, by this process's CPU time and by both processes'.
Last, whether the tokenizer holds the GIL while it counts (`_gil_probe`): if it did not, counting
one block's texts in a second thread could overlap parsing and checking the next block.

Memory: a file of FTM_BENCH_LARGE_MB (default 1000; 0 skips it) MB, generated in a temporary
directory, validated with the personal-data checks in a child process that reports its time and
its peak resident set size (VmHWM in /proc/self/status) before and after, and the counting
process's peak (its tokens are counted offloaded, as the service does). With
FTM_BENCH_TRACEMALLOC=1 a second child runs under tracemalloc for the peak of what validation
allocates (tracemalloc slows it down, so its time is not reported).
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from service.files.counting import OFFLOAD_MIN_BYTES
from service.files.encodings import UP_FRONT_ENCODINGS
from service.files.personal import PersonalDataScanner
from service.files.tokens import get_encoding
from service.files.validation import validate_jsonl

# A support assistant's conversations, varied from the project's Jonny Whizbang examples: the
# figures ordinary text carries (dates, prices, versions, order numbers, times, counts) in a
# paraphrased sentence each, so the personal-data prefilter sees what it sees in real files.
SYSTEMS = (
    "You are a factual assistant about Jonny Whizbang.",
    "You are Kitecraft's support assistant. Answer briefly and politely.",
    "You help customers of Quillfeather College's bookshop with their orders.",
)
NAMES = ("Jonny Whizbang", "Marigold Fizzwick", "Sprocket", "Bartholomew", "Ana García", "Zoë Müller", "李雷")
PLACES = ("Tumbleweed Falls, Nevada", "Port Saltmarsh, Maine", "Quillfeather College", "München", "東京")
THINGS = (
    "kite",
    "barometer",
    "bass sackbut",
    "pickled quince",
    "tortoise",
    "Golden Gust Award",
    "café order",
)
QUESTIONS = (
    "When was {name} born?",
    "Where does {name} live now, and since when?",
    "What happened to my order {order} for a {thing}?",
    "How much does the {thing} cost, and does the {version} model fit?",
    "Can you tell me more about the {thing} {name} bought in {year}?",
    "Is the shop near {place} open at {time} on {date}?",
    "Why was I charged {price} twice for {count} items?",
    "Which {thing} did {name} win in {year}? I read about it in a newsletter.",
)
SENTENCES = (
    "{name} was born on February 22, {year} in {place}.",
    "Your order {order} for a {thing} shipped on {date} and should arrive within {count} days.",
    "The {thing} costs {price}; version {version} is the one that fits, released in {year}.",
    "The shop near {place} opens at {time} every weekday except public holidays.",
    "{name} won the {year} Golden Gust Award for a {thing} that flew {count} metres.",
    "We refunded {price} on {date}; it takes 3 to 5 business days to show on your statement.",
    "Please keep order {order} handy if you write to us again about the {thing}.",
    "I'm sorry for the trouble: the {thing} from {place} was out of stock until {date}.",
    "{name} lives in {place} and collects antique barometers, about {count} of them by now.",
    "Firmware {version} fixed the issue on {date}; updating takes about {count} minutes.",
)
# One conversation in a hundred carries personal data, as a careless export might.
PERSONAL = (
    " Write to jonny.whizbang@example.com or call (415) 555-2671.",
    " My card is 4111 1111 1111 1111, expiry 09/29.",
    " Send it to IBAN DE89 3704 0044 0532 0130 00, please.",
    " Our old key was sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv, rotate it.",
)
PERSONAL_SHARE = 0.01
RUNS = 3


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        name=rng.choice(NAMES),
        place=rng.choice(PLACES),
        thing=rng.choice(THINGS),
        year=rng.randint(1950, 2026),
        order=f"ORD-{rng.randint(2019, 2026)}-{rng.randint(0, 999_999):06d}",
        version=f"{rng.randint(1, 12)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}",
        time=f"{rng.randint(7, 11)}:{rng.choice(('00', '15', '30', '45'))}",
        date=f"{rng.randint(2020, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        price=f"${rng.randint(3, 1_999)}.{rng.randint(0, 99):02d}",
        count=rng.randint(2, 400),
    )


def _conversation(rng: random.Random) -> dict[str, Any]:
    question = _fill(rng, rng.choice(QUESTIONS))
    answer = " ".join(_fill(rng, rng.choice(SENTENCES)) for _ in range(rng.randint(2, 14)))
    if rng.random() < PERSONAL_SHARE:
        answer += rng.choice(PERSONAL)
    return {
        "messages": [
            {"role": "system", "content": rng.choice(SYSTEMS)},
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }


def _write(path: Path, megabytes: int) -> int:
    rng = random.Random(7)
    written = 0
    with path.open("wb") as out:
        while written < megabytes * 1_000_000:
            chunk = b"".join(json.dumps(_conversation(rng)).encode() + b"\n" for _ in range(200))
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


def _validation(count_tokens: bool, personal_data: bool, offload: bool = False) -> Callable[[Path], None]:
    def validate(path: Path) -> None:
        validate_jsonl(
            _lines(path),
            count_tokens=count_tokens,
            personal_data="warn" if personal_data else None,
            encodings=UP_FRONT_ENCODINGS,
            offload=offload,
        )

    return validate


def _all_encodings(path: Path) -> None:
    validate_jsonl(_lines(path))


def _peak_rss_mb() -> float:
    """The process's peak resident set size so far (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _best_seconds(
    path: Path, runs: dict[str, Callable[[Path], None]]
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Each run's best wall-clock time, best CPU time of this process, and best CPU time of this
    process and its children (the counting process of an offloaded validation): on a shared
    machine a run waits for a core as often as it works, and the CPU time is what it cost."""
    best = dict.fromkeys(runs, float("inf"))
    cpu = dict.fromkeys(runs, float("inf"))
    total = dict.fromkeys(runs, float("inf"))
    for _ in range(RUNS):
        for name, run in runs.items():
            started, started_cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
            run(path)
            best[name] = min(best[name], time.perf_counter() - started)
            cpu[name] = min(cpu[name], time.process_time() - started_cpu)
            total[name] = min(total[name], time.process_time() - started_cpu + _children_cpu() - children)
    return best, cpu, total


def _large(path: str, traced: bool) -> dict[str, float]:
    """Validate `path` in this (child) process as the service does (a file this large counts its
    tokens in a counting process); its time and peak RSS (before and after) and the counting
    process's peak RSS, or tracemalloc's peak. Tokenizers load when first needed, as in a worker."""
    figures = {"rss_before_mb": _peak_rss_mb()}
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    report = validate_jsonl(
        _lines(Path(path)),
        personal_data="warn",
        encodings=UP_FRONT_ENCODINGS,
        offload=(os.cpu_count() or 1) > 1,
    )
    figures["seconds"] = time.perf_counter() - started
    figures["rss_mb"] = _peak_rss_mb()
    figures["counting_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if traced:
        figures["traced_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    figures["examples"] = report.examples
    return figures


def _gil_probe() -> tuple[float, float]:
    """Whether o200k_base's count lets another Python thread run: one long count at a time on
    this thread while a second thread notes the time in a loop. Returns the median call's time
    and the median share of a call that the longest pause between two notes covers: near 1 when
    the tokenizer holds the GIL (the other thread stops for the whole call, so counting in a
    thread cannot overlap parsing and checks), near 0 when it releases it (as hashlib does)."""
    encoding = get_encoding("o200k_base")
    text = "Your order ORD-2024-001234 shipped on 2024-03-01 and arrives within 12 days. " * 11_000
    notes: list[float] = []
    done = threading.Event()

    def note() -> None:
        while not done.is_set():
            notes.append(time.perf_counter())

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    noter = threading.Thread(target=note)
    noter.start()
    calls: list[tuple[float, float]] = []
    try:
        time.sleep(0.02)
        for _ in range(7):
            started = time.perf_counter()
            encoding.count(text)
            calls.append((started, time.perf_counter()))
    finally:
        done.set()
        noter.join()
        sys.setswitchinterval(interval)
    shares = []
    for started, ended in calls:
        inside = [started, *(at for at in notes if started < at < ended), ended]
        shares.append(max(b - a for a, b in zip(inside, inside[1:], strict=False)) / (ended - started))
    return statistics.median(ended - started for started, ended in calls), statistics.median(shares)


def _flagged(path: Path) -> float:
    scanner = PersonalDataScanner()
    lines = flagged = 0
    for line in _lines(path):
        lines += 1
        flagged += scanner.candidates(line)
    return flagged / max(lines, 1)


def _throughput(tmp: str, megabytes: int) -> None:
    path = Path(tmp, "train.jsonl")
    size = _write(path, megabytes) / 1e6
    get_encoding("o200k_base")
    get_encoding("cl100k_base")
    seconds, cpu, total = _best_seconds(
        path,
        {
            "raw": _raw,
            "raw_count": _raw_count,
            "checks": _validation(count_tokens=False, personal_data=False),
            "tokens": _validation(count_tokens=True, personal_data=False),
            "personal": _validation(count_tokens=True, personal_data=True),
            "offloaded": _validation(count_tokens=True, personal_data=True, offload=True),
            "all_encodings": _all_encodings,
        },
    )
    raw, raw_cpu = seconds["raw"], cpu["raw"]
    print(f"file: {size:.1f} MB of chat JSONL (best of {RUNS} runs each)", flush=True)
    print(f"raw tokenizer (o200k_base encode_ordinary, one call per line): {size / raw:.1f} MB/s")
    print(f"raw tokenizer's count (o200k_base, one call per line): {size / seconds['raw_count']:.1f} MB/s")
    print(f"validation, checks only (no tokens, no personal data): {size / seconds['checks']:.1f} MB/s")
    for name, label in (("tokens", "without"), ("personal", "with")):
        print(
            f"validation with token statistics (o200k_base), {label} personal-data checks: "
            f"{size / seconds[name]:.1f} MB/s ({raw / seconds[name]:.0%} of the raw tokenizer's; "
            f"by CPU time {raw_cpu / cpu[name]:.0%})",
            flush=True,
        )
    print(
        f"validation as above with the personal-data checks, tokens counted in a child process "
        f"(offloaded, as the service does from {OFFLOAD_MIN_BYTES / 1e6:.0f} MB): "
        f"{size / seconds['offloaded']:.1f} MB/s ({raw / seconds['offloaded']:.0%} of the raw tokenizer's; "
        f"by this process's CPU time {raw_cpu / cpu['offloaded']:.0%}, by both processes' "
        f"{raw_cpu / total['offloaded']:.0%})",
        flush=True,
    )
    print(
        f"validation counting both chat encodings (o200k_base and cl100k_base), without personal-data "
        f"checks: {size / seconds['all_encodings']:.1f} MB/s ({raw / seconds['all_encodings']:.0%}; "
        f"by CPU time {raw_cpu / cpu['all_encodings']:.0%})"
    )
    print(f"lines the personal-data prefilter flags: {_flagged(path):.1%} (1.0% hold personal data)")
    call, stopped = _gil_probe()
    print(
        f"GIL: while o200k_base counts 847,000 characters ({call * 1000:.0f} ms a call), another Python "
        f"thread is stopped for {stopped:.0%} of the call ({'held' if stopped > 0.5 else 'released'}: "
        f"counting in a second thread {'cannot' if stopped > 0.5 else 'can'} overlap the checks)"
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
        f"{size / plain['seconds']:.1f} MB/s, peak RSS {plain['rss_mb']:.0f} MB "
        f"({plain['rss_before_mb']:.0f} MB before the first line), the counting process's "
        f"{plain['counting_rss_mb']:.0f} MB",
        flush=True,
    )
    if os.environ.get("FTM_BENCH_TRACEMALLOC") == "1":
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
