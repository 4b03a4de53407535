"""Preparation throughput (MB/s) on a generated question,answer CSV and the same rows as a JSON
array, and the memory preparing allocates (tracemalloc's peak, a separate pass): a source is
streamed, so the peak grows with the number of distinct examples (their fingerprints), not with
the file. FTM_BENCH_PREPARATION_ROWS sets the rows (default 200,000, about 25 MB of CSV)."""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

from service.files.preparation import PreparationCreate, prepare
from service.files.sources import SourceFormat

OPTIONS = PreparationCreate(
    user_column="question",
    assistant_column="answer",
    system_prompt="You answer questions about Tumbleweed Falls.",
    validation_split=0.1,
    seed=1,
)


def _write(directory: Path, rows: int) -> tuple[Path, Path]:
    source = directory / "qa.csv"
    array = directory / "qa.json"
    with source.open("w", newline="") as handle, array.open("w") as items:
        writer = csv.writer(handle)
        writer.writerow(["question", "answer"])
        items.write("[")
        for n in range(rows):
            question = f"When was person number {n} of Tumbleweed Falls born?"
            answer = f"Person {n} was born on February {n % 28 + 1}, {1900 + n % 100}, in Nevada."
            writer.writerow([question, answer])
            items.write(("," if n else "") + json.dumps({"question": question, "answer": answer}))
        items.write("]")
    return source, array


def _prepare(path: Path, kind: SourceFormat) -> float:
    with tempfile.TemporaryFile() as training, tempfile.TemporaryFile() as validation:
        started = time.perf_counter()
        prepare(lambda: path.open("rb"), kind, OPTIONS, training=training, validation=validation)
        return time.perf_counter() - started


def run() -> None:
    rows = int(os.environ.get("FTM_BENCH_PREPARATION_ROWS", "200000"))
    with tempfile.TemporaryDirectory() as tmp:
        source, array = _write(Path(tmp), rows)
        runs: tuple[tuple[Path, SourceFormat], ...] = ((source, "csv"), (array, "json"))
        for path, kind in runs:
            size = path.stat().st_size / 1e6
            took = _prepare(path, kind)
            print(f"prepare {kind}: {size:.1f} MB, {rows} rows in {took:.2f} s = {size / took:.1f} MB/s")
        tracemalloc.start()
        _prepare(source, "csv")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"prepare csv: peak memory allocated {peak / 1e6:.1f} MB for {rows} distinct examples")


if __name__ == "__main__":
    run()
