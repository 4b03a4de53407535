"""Token counting in a child process, beside the validation that parses and checks the next lines.

bpe_openai's count holds the GIL (`bench/datasets.py` measures it), so a thread cannot run it
while the validation's thread parses and checks; a child process can, on a second core. The
validation hands over the texts of each block of valid examples (`ExampleText`: labels,
definitions, contents) and takes back the counts of earlier blocks, at most `QUEUED` blocks in
flight (a few MB), adding them to its tallies in line order: the report is the one counting in
the process gives. The child (`python -m service.files.counting ENCODING...`) counts each text
with each encoding, caching short texts as `ExampleCounter` does.

Frames, both ways little-endian: to the child, the number of texts and the UTF-8 size, then each
text's length in code points (uint32) and the texts (UTF-8 with lone surrogates passed through);
back, the answer's size (uint64) and one int64 count per text and encoding, encoding after
encoding. If the child cannot start or fails, the blocks it holds and every later one are
counted in the process (`CountingFailed`).
"""

from __future__ import annotations

import queue
import struct
import subprocess
import sys
import threading
from array import array
from collections import deque
from collections.abc import Sequence
from typing import IO

from service.files.tokens import SHORT_CACHE_ENTRIES, SHORT_TEXT, ExampleText, count_text, get_encoding

_HEADER = struct.Struct("<II")
QUEUED = 4
_POLL_S = 0.1
_CLOSE_S = 5.0
# A file this large is worth a process (about 0.1 s to start and load its tokenizer).
OFFLOAD_MIN_BYTES = 32_000_000


class CountingFailed(Exception):
    """The child process is gone or answered short; its blocks are to be counted in the process."""


def texts_of(text: ExampleText) -> list[str]:
    """The texts of an example in the order the child counts them: labels, definitions, own."""
    return [*text.labels, *text.definitions, *text.own]


def totals(text: ExampleText, counts: Sequence[int]) -> tuple[int, int]:
    """The example's total and trained tokens from its texts' `counts` (in `texts_of` order)."""
    labels = len(text.labels) + len(text.definitions)
    total = text.framing + sum(counts[:labels])
    trained = 0
    for tokens, is_trained in zip(counts[labels:], text.trained, strict=True):
        total += tokens
        if is_trained:
            trained += tokens
    return total, trained


class CountingProcess:
    """A child process counting blocks of examples' texts with `encodings`, in order.

    Two threads move the bytes (a pipe's read and write release the GIL): one writes the frames
    to the child, so `send` does not wait while the child counts, and one reads its answers, so
    the child never waits for this process to read. At most `QUEUED` frames wait for the writer,
    and validation keeps at most `QUEUED` blocks in flight, so the answers waiting are as few."""

    def __init__(self, encodings: Sequence[str]) -> None:
        self.encodings = list(encodings)
        self._child: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-m", "service.files.counting", *self.encodings],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._in_flight: deque[int] = deque()
        self._frames: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED)
        self._answers: queue.Queue[bytes | None] = queue.Queue()
        self._failure: str | None = None
        self._threads = [
            threading.Thread(target=self._write, args=(self._child,), name="counting-writer", daemon=True),
            threading.Thread(target=self._read, args=(self._child,), name="counting-reader", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def send(self, texts: list[str]) -> None:
        """Hand over one block's texts (their counts come back from `receive`, block by block)."""
        self._running()
        lengths = array("I", map(len, texts))
        body = "".join(texts).encode("utf-8", "surrogatepass")
        frame = _HEADER.pack(len(texts), len(body)) + lengths.tobytes() + body
        while True:
            try:
                self._frames.put(frame, timeout=_POLL_S)
                break
            except queue.Full:
                self._running()
        self._in_flight.append(len(texts))

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def receive(self) -> list[array[int]]:
        """The counts of the oldest block sent, one array per encoding."""
        self._running()
        texts = self._in_flight.popleft()
        size = 8 * texts * len(self.encodings)
        data = self._answers.get()
        if data is None or len(data) != size:
            self._failure = self._failure or "the counting process answered short"
            raise CountingFailed(self._failure)
        counts = array("q")
        counts.frombytes(data)
        return [counts[at * texts : (at + 1) * texts] for at in range(len(self.encodings))]

    def close(self) -> None:
        """End the child: its input is closed after the frames queued (it then answers them and
        exits); killed if that takes more than 5 s."""
        child, self._child = self._child, None
        if child is None:
            return
        writer, reader = self._threads
        try:
            self._frames.put(None, timeout=_CLOSE_S)
            writer.join(timeout=_CLOSE_S)
            child.wait(timeout=_CLOSE_S)
        except (queue.Full, subprocess.TimeoutExpired):
            child.kill()  # the writer's next write fails, and the reader sees the end of the output
            child.wait()
        writer.join()
        reader.join()
        if child.stdout is not None:
            child.stdout.close()

    def _running(self) -> None:
        if self._child is None:
            raise CountingFailed("the counting process is closed")
        if self._failure is not None:
            raise CountingFailed(self._failure)

    def _write(self, child: subprocess.Popen[bytes]) -> None:
        stdin = child.stdin
        assert stdin is not None
        try:
            while (frame := self._frames.get()) is not None:
                stdin.write(frame)
                stdin.flush()
        except OSError as error:
            self._failure = f"the counting process stopped reading ({error})"
        finally:
            try:
                stdin.close()  # the child sees the end of its input and exits
            except OSError:
                pass

    def _read(self, child: subprocess.Popen[bytes]) -> None:
        stdout = child.stdout
        assert stdout is not None
        try:
            while True:
                header = _read(stdout, 8)
                if len(header) < 8:
                    return
                (size,) = struct.unpack("<Q", header)
                self._answers.put(_read(stdout, size))
        except OSError as error:
            self._failure = f"the counting process stopped answering ({error})"
        finally:
            self._answers.put(None)


def _read(stream: IO[bytes], size: int) -> bytes:
    chunks = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _serve(encodings: Sequence[str], source: IO[bytes], sink: IO[bytes]) -> None:
    """The child's loop: read a block, count its texts with each encoding, answer, until EOF."""
    counters = [get_encoding(name) for name in encodings]
    caches: list[dict[str, int]] = [{} for _ in counters]
    while True:
        header = _read(source, _HEADER.size)
        if len(header) < _HEADER.size:
            return
        number, size = _HEADER.unpack(header)
        lengths = array("I")
        lengths.frombytes(_read(source, 4 * number))
        body = _read(source, size).decode("utf-8", "surrogatepass")
        answer = array("q")
        for encoding, cache in zip(counters, caches, strict=True):
            at = 0
            for length in lengths:
                text = body[at : at + length]
                at += length
                counted = cache.get(text)
                if counted is None:
                    counted = count_text(encoding, text)
                    if length <= SHORT_TEXT and len(cache) < SHORT_CACHE_ENTRIES:
                        cache[text] = counted
                answer.append(counted)
        sink.write(struct.pack("<Q", 8 * len(answer)) + answer.tobytes())
        sink.flush()


if __name__ == "__main__":
    _serve(sys.argv[1:], sys.stdin.buffer, sys.stdout.buffer)
