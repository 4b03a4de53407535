"""Reading the rows of a source data set (CSV, TSV, or a JSON array of objects), one at a time.

Rows are numbered as a person finds them: in CSV and TSV as a spreadsheet shows them (the header
is row 1, the first data row is row 2), in JSON by the item's place in the array (from 1). A
problem (a row with the wrong number of fields, bad quoting, invalid UTF-8, invalid JSON) is a
`SourceProblem` naming its row; reading stops at a problem that makes the rest unreadable.
JSON is parsed incrementally by ijson's C backend; when it fails, the file is read once more with
ijson's pure-Python backend, which names the character where the JSON breaks.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal

import ijson

SourceFormat = Literal["csv", "tsv", "json"]
SOURCE_EXTENSIONS: dict[str, SourceFormat] = {".csv": "csv", ".tsv": "tsv", ".json": "json"}
_POSITION = re.compile(r" at (\d+)$")
CHUNK = 64 * 1024


@dataclass(frozen=True)
class SourceProblem:
    """A problem of the source, on a row (None: the file as a whole) and maybe a column."""

    row: int | None
    category: str
    message: str
    column: str | None = None


@dataclass(frozen=True)
class SourceRow:
    row: int
    cells: dict[str, str | None]  # None: the cell (JSON key) is null


class SourceUnreadable(Exception):
    """The source cannot be read past this problem."""

    def __init__(self, problem: SourceProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def source_format_of(filename: str) -> SourceFormat | None:
    for extension, kind in SOURCE_EXTENSIONS.items():
        if filename.lower().endswith(extension):
            return kind
    return None


def read_rows(open_source: Callable[[], BinaryIO], kind: SourceFormat) -> Iterator[SourceRow | SourceProblem]:
    """Every row of the source, or a problem in its place; raises `SourceUnreadable` when the
    rest of the file cannot be read. `open_source` opens the body from its start."""
    if kind == "json":
        yield from _json_rows(open_source)
    else:
        yield from _delimited_rows(open_source, "," if kind == "csv" else "\t")


# -- CSV and TSV ---------------------------------------------------------------------------------


def _delimited_rows(
    open_source: Callable[[], BinaryIO], delimiter: str
) -> Iterator[SourceRow | SourceProblem]:
    with open_source() as body:
        # utf-8-sig: a byte-order mark, as spreadsheets write one, is dropped. Bytes that are not
        # UTF-8 are kept as surrogates and found per row: the wrapper decodes ahead, in blocks.
        text = io.TextIOWrapper(body, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        row = 0
        try:
            header: list[str] | None = None
            for record in reader:
                row += 1
                if not record:  # a blank line
                    continue
                if not _utf8(record):
                    yield SourceProblem(row, "invalid_utf8", f"row {row} is not valid UTF-8.")
                    continue
                if header is None:
                    header = [name.strip() for name in record]
                    problem = _header_problem(header)
                    if problem is not None:
                        raise SourceUnreadable(problem)
                    continue
                if len(record) != len(header):
                    yield SourceProblem(
                        row,
                        "wrong_field_count",
                        f"row {row} has {len(record)} fields; the header has {len(header)}.",
                    )
                    continue
                yield SourceRow(row, dict(zip(header, record, strict=True)))
        except csv.Error as error:
            raise SourceUnreadable(
                SourceProblem(row + 1, "invalid_csv", f"row {row + 1} cannot be read: {error}.")
            ) from error
        if header is None:
            raise SourceUnreadable(SourceProblem(None, "empty_file", "the file has no header row."))


def _utf8(record: list[str]) -> bool:
    for cell in record:
        if not cell.isascii():
            try:
                cell.encode("utf-8")
            except UnicodeEncodeError:  # a surrogate standing for a byte that was not UTF-8
                return False
    return True


def _header_problem(header: list[str]) -> SourceProblem | None:
    if any(not name for name in header):
        return SourceProblem(1, "invalid_header", "the header (row 1) has an empty column name.")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            return SourceProblem(
                1, "invalid_header", f"the header (row 1) names column '{name}' twice.", name
            )
        seen.add(name)
    return None


# -- JSON ----------------------------------------------------------------------------------------


def _text(value: object) -> tuple[bool, str | None]:
    """(whether the JSON value can be a cell, the cell): text, a number as its digits, or null."""
    if value is None or isinstance(value, str):
        return True, value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return True, str(value)
    return False, None


def _json_rows(open_source: Callable[[], BinaryIO]) -> Iterator[SourceRow | SourceProblem]:
    with open_source() as body:
        head, _ = _skip_to_json(body)
        if not head.startswith(b"["):
            raise SourceUnreadable(
                SourceProblem(None, "not_an_array", "the file must hold one JSON array of objects.")
            )
        row = 0
        try:
            for item in ijson.items(_Prepended(head, body), "item", use_float=True):
                row += 1
                yield _json_row(row, item)
        except (ijson.JSONError, UnicodeDecodeError) as error:
            raise SourceUnreadable(_json_problem(open_source, row + 1)) from error


class _Prepended:
    """The rest of a stream, after bytes already read from it (blob streams need not seek)."""

    def __init__(self, head: bytes, body: BinaryIO) -> None:
        self.head = head
        self.body = body

    def read(self, size: int = -1) -> bytes:
        if self.head and size != 0:  # ijson reads 0 bytes to learn the stream's type
            head, self.head = self.head, b""
            return head
        return self.body.read(size)


def _skip_to_json(body: BinaryIO) -> tuple[bytes, int]:
    """Read past a byte-order mark and white space: (the bytes read after them, the white-space
    characters skipped)."""
    head = body.read(CHUNK).removeprefix(codecs.BOM_UTF8)
    skipped = 0
    while head:
        stripped = head.lstrip()
        skipped += len(head) - len(stripped)
        if stripped:
            return stripped, skipped
        head = body.read(CHUNK)
    return b"", skipped


def _json_row(row: int, item: object) -> SourceRow | SourceProblem:
    if not isinstance(item, dict):
        kind = "null" if item is None else type(item).__name__
        return SourceProblem(row, "data_type", f"row {row} is a JSON {kind}, not an object.")
    cells: dict[str, str | None] = {}
    for key, value in item.items():
        readable, cell = _text(value)
        if not readable:
            return SourceProblem(
                row, "invalid_cell", f"row {row}, key '{key}': a {type(value).__name__}, not text.", key
            )
        cells[key] = cell
    return SourceRow(row, cells)


def _json_problem(open_source: Callable[[], BinaryIO], row: int) -> SourceProblem:
    """Read the file again with the pure-Python parser to find where the JSON breaks."""
    python = ijson.get_backend("python")
    reason = "the JSON ends early"
    offset: int | None = None
    with open_source() as body:
        head, skipped = _skip_to_json(body)
        try:
            for _ in python.items(_Prepended(head, body), "item"):
                pass
        except UnicodeDecodeError:
            reason = "not valid UTF-8"
        except ijson.JSONError as error:
            text = str(error)
            found = _POSITION.search(text)
            if found:
                offset = skipped + int(found.group(1))
                reason = _POSITION.sub("", text).lower()
            elif "Additional data" in text:
                reason = "there is more after the array"
            elif isinstance(error.__context__, UnicodeDecodeError) or "codec" in text:
                reason = "not valid UTF-8"
    where = ""
    if offset is not None:
        line, column = _line_and_column(open_source, offset)
        where = f" at line {line}, column {column}"
    return SourceProblem(row, "invalid_json", f"invalid JSON in row {row}{where}: {reason}.")


def _line_and_column(open_source: Callable[[], BinaryIO], offset: int) -> tuple[int, int]:
    """The 1-based line and column of the text's character at `offset` (0-based)."""
    line, column, seen = 1, 1, 0
    with open_source() as body:
        text = io.TextIOWrapper(body, encoding="utf-8-sig", errors="replace", newline="")
        while seen < offset:
            chunk = text.read(min(65536, offset - seen))
            if not chunk:
                break
            newlines = chunk.count("\n")
            if newlines:
                line += newlines
                column = len(chunk) - chunk.rfind("\n")
            else:
                column += len(chunk)
            seen += len(chunk)
    return line, column
