"""Dataset preparation: a CSV, TSV or JSON array of rows becomes JSONL training data.

The same code runs in the service (`POST /v1/files/{file_id}/preparations`) and in the CLI
(`ftm data prepare`); it knows no web framework and no database. The source is streamed twice
and nothing is held whole in memory:

1. every row is read (`service.files.sources`), mapped to a chat or prompt-completion example by
   the column mapping, checked (a missing column, an empty cell: each problem names its row and
   column), deduplicated exactly (a 64-bit fingerprint of its JSON line, whose keys the mapping
   always writes in one order), and written to a scratch
   file; for prompt-completion data the old data-preparation tool's advice is tallied;
2. a seeded sample picks the validation examples (the same seed and data give the same split),
   and each example is written to the training or the validation JSONL, with the advice applied.

Any problem in the source fails the whole preparation (`PreparationFailed`) and nothing is kept.
Near-duplicates are left in and reported by the produced file's validation.
"""

from __future__ import annotations

import json
import random
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Annotated, Any, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from service.errors import InvalidRequest
from service.files.advice import Advice, AdviceChoice, AdviceTally, apply_advice
from service.files.duplicates import fingerprint_of_line
from service.files.report import PersonalDataPolicy
from service.files.sources import SourceFormat, SourceProblem, SourceRow, SourceUnreadable, read_rows

MAX_SEED = 2**31 - 1
MAX_REPORTED_PROBLEMS = 20
FIRST_DUPLICATES = 10


class PreparationCreate(BaseModel):
    """How to turn a source file's rows into training examples. Chat (the default) maps a user and
    an assistant column, with an optional system prompt or system column; prompt-completion
    (`format: completion`, for babbage-002 and davinci-002) maps a prompt and a completion column
    and can apply the old data-preparation tool's advice."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["chat", "completion"] = "chat"
    user_column: str = Field("user", min_length=1, description="chat: the column of the user's turn")
    assistant_column: str = Field("assistant", min_length=1, description="chat: the column of the answer")
    system_column: str | None = Field(
        None,
        min_length=1,
        description="chat: a column with each row's system prompt (empty cells: `system_prompt`)",
    )
    system_prompt: str | None = Field(None, description="chat: the system message of every example")
    prompt_column: str = Field("prompt", min_length=1, description="completion: the column of the prompt")
    completion_column: str = Field(
        "completion", min_length=1, description="completion: the column of the completion"
    )
    validation_split: Annotated[StrictInt | StrictFloat, Field(ge=0)] = Field(
        0,
        description="the validation file's share: a fraction in [0, 1) or a number of examples; 0 makes no validation file",
    )
    seed: int | None = Field(
        None, ge=0, le=MAX_SEED, description="the split's seed; chosen and returned when absent"
    )
    deduplicate: bool = Field(True, description="drop examples that repeat an earlier one exactly")
    add_separator: bool = Field(False, description="completion: end every prompt with `separator`")
    add_whitespace: bool = Field(False, description="completion: start every completion with a space")
    add_stop: bool = Field(False, description="completion: end every completion with `stop`")
    apply_advice: bool = Field(False, description="completion: apply each piece of advice the data calls for")
    separator: str | None = Field(None, min_length=1, description="the separator; suggested when absent")
    stop: str | None = Field(None, min_length=1, description="the stop sequence; suggested when absent")
    personal_data: PersonalDataPolicy | None = Field(
        None,
        description="the produced files' personal-data policy (`warn`, `redact`, `reject`); default: the "
        "tenant's, else FTM_PERSONAL_DATA_POLICY, as for an upload",
    )


class DuplicateRow(BaseModel):
    row: int
    first_row: int = Field(description="the row it repeats")


class PreparationSummary(BaseModel):
    """What a preparation read and wrote."""

    source_format: SourceFormat
    format: Literal["chat", "completion"]
    rows: int = Field(description="data rows read")
    examples: int = Field(description="examples written, after deduplication")
    duplicates_removed: int
    duplicates: list[DuplicateRow] = Field(
        description=f"the first {FIRST_DUPLICATES} rows removed as duplicates"
    )
    training_examples: int
    validation_examples: int
    seed: int
    advice: list[Advice] = Field(description="completion data: the old data-preparation tool's advice")


class PreparationFailed(Exception):
    """The source has problems; each names its row (and column)."""

    def __init__(self, problems: list[SourceProblem], count: int) -> None:
        self.problems = problems
        self.count = count
        super().__init__(self.summary())

    def summary(self) -> str:
        first = self.problems[0]
        where = f"Row {first.row}" if first.row is not None else "The file"
        column = f", column '{first.column}'" if first.column else ""
        more = f" ({self.count - 1} more problems)" if self.count > 1 else ""
        return f"{where}{column}: {first.message}{more}"


def check_options(options: PreparationCreate) -> None:
    """Options that no row can satisfy; a 400 naming the parameter, before anything is read."""
    split = options.validation_split
    if isinstance(split, float) and split >= 1:
        raise InvalidRequest(
            "validation_split must be a fraction below 1 or a whole number of examples.",
            param="validation_split",
        )
    if options.format == "chat":
        names = ("add_separator", "add_whitespace", "add_stop", "apply_advice", "separator", "stop")
        advice = [name for name in names if getattr(options, name)]
        if advice:
            raise InvalidRequest(f"{advice[0]} applies to prompt-completion data only.", param=advice[0])
        if options.user_column == options.assistant_column:
            raise InvalidRequest("user_column and assistant_column must differ.", param="assistant_column")
    elif options.prompt_column == options.completion_column:
        raise InvalidRequest("prompt_column and completion_column must differ.", param="completion_column")


def validation_size(examples: int, split: float | int) -> int:
    """How many of `examples` go to the validation file (0: no split)."""
    if isinstance(split, float):
        return max(1, round(examples * split)) if split > 0 else 0
    return split


def split_indices(examples: int, size: int, seed: int) -> set[int]:
    """The 0-based indices of the validation examples: a seeded uniform sample."""
    return set(random.Random(seed).sample(range(examples), size))


@dataclass
class _Problems:
    first: list[SourceProblem] = field(default_factory=list)
    count: int = 0

    def add(self, problem: SourceProblem) -> None:
        self.count += 1
        if len(self.first) < MAX_REPORTED_PROBLEMS:
            self.first.append(problem)


class _Mapper:
    """One row to one example (or its problems)."""

    def __init__(self, options: PreparationCreate) -> None:
        self.options = options
        if options.format == "chat":
            self.required = [options.user_column, options.assistant_column]
        else:
            self.required = [options.prompt_column, options.completion_column]

    def example(self, row: SourceRow, problems: _Problems) -> dict[str, Any] | None:
        values: list[str] = []
        for column in self.required:
            if column not in row.cells:
                problems.add(
                    SourceProblem(
                        row.row, "missing_column", f"row {row.row} has no column '{column}'.", column
                    )
                )
            elif not (row.cells[column] or "").strip():
                problems.add(
                    SourceProblem(
                        row.row, "empty_cell", f"row {row.row}, column '{column}' is empty.", column
                    )
                )
            else:
                values.append(row.cells[column] or "")
        if len(values) != len(self.required):
            return None
        if self.options.format == "completion":
            return {"prompt": values[0], "completion": values[1]}
        messages: list[dict[str, str]] = []
        system = self.options.system_prompt
        if self.options.system_column is not None:
            if self.options.system_column not in row.cells:
                problems.add(
                    SourceProblem(
                        row.row,
                        "missing_column",
                        f"row {row.row} has no column '{self.options.system_column}'.",
                        self.options.system_column,
                    )
                )
                return None
            system = (row.cells[self.options.system_column] or "").strip() or system
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": values[0]})
        messages.append({"role": "assistant", "content": values[1]})
        return {"messages": messages}


def _header_problem(row: SourceRow, mapper: _Mapper, kind: SourceFormat) -> SourceProblem | None:
    """In CSV and TSV every row has the header's columns: a missing one is the file's problem."""
    if kind == "json":
        return None
    wanted = [*mapper.required, *([mapper.options.system_column] if mapper.options.system_column else [])]
    missing = [column for column in wanted if column not in row.cells]
    if not missing:
        return None
    return SourceProblem(
        1,
        "missing_column",
        f"the header has no column '{missing[0]}'; its columns are {', '.join(row.cells)}.",
        missing[0],
    )


_ENCODER = json.JSONEncoder(ensure_ascii=False)  # one encoder: json.dumps with options builds one per call


def _dump(example: dict[str, Any]) -> bytes:
    return _ENCODER.encode(example).encode("utf-8") + b"\n"


@dataclass
class _Read:
    """What the first pass found; the examples themselves are in the scratch file."""

    rows: int = 0
    examples: int = 0
    removed: int = 0
    duplicates: list[DuplicateRow] = field(default_factory=list)
    tally: AdviceTally = field(default_factory=AdviceTally)


def _read(
    open_source: Callable[[], BinaryIO], kind: SourceFormat, options: PreparationCreate, scratch: IO[bytes]
) -> _Read:
    """Map, check and deduplicate every row into `scratch`, one JSON line per example."""
    mapper = _Mapper(options)
    problems = _Problems()
    seen: dict[int, int] = {}
    read = _Read()
    header_checked = False
    try:
        for item in read_rows(open_source, kind):
            read.rows += 1
            if isinstance(item, SourceProblem):
                problems.add(item)
                continue
            if not header_checked:  # the first row shows the header's columns
                header_checked = True
                header = _header_problem(item, mapper, kind)
                if header is not None:
                    raise PreparationFailed([header], 1)
            example = mapper.example(item, problems)
            if example is None:
                continue
            line = _dump(example)
            if options.deduplicate:
                first = seen.setdefault(fingerprint_of_line(line), item.row)
                if first != item.row:
                    read.removed += 1
                    if len(read.duplicates) < FIRST_DUPLICATES:
                        read.duplicates.append(DuplicateRow(row=item.row, first_row=first))
                    continue
            if options.format == "completion":
                read.tally.add(example["prompt"], example["completion"])
            scratch.write(line)
            read.examples += 1
    except SourceUnreadable as unreadable:
        problems.add(unreadable.problem)
    if problems.count:
        raise PreparationFailed(problems.first, problems.count)
    if read.examples == 0:
        raise PreparationFailed([SourceProblem(None, "empty_file", "the file has no data rows.")], 1)
    return read


def _advice_choice(options: PreparationCreate, tally: AdviceTally) -> AdviceChoice:
    if options.format != "completion":
        return AdviceChoice()
    return tally.choice(
        separator=options.add_separator,
        whitespace=options.add_whitespace,
        stop=options.add_stop,
        advised=options.apply_advice,
        separator_value=options.separator,
        stop_value=options.stop,
    )


def prepare(
    open_source: Callable[[], BinaryIO],
    kind: SourceFormat,
    options: PreparationCreate,
    *,
    training: IO[bytes],
    validation: IO[bytes],
) -> PreparationSummary:
    """Read the source, write the training (and validation) JSONL; raises `PreparationFailed`
    naming the rows when the source has problems, `InvalidRequest` for options that do not fit."""
    check_options(options)
    with tempfile.TemporaryFile() as scratch:
        read = _read(open_source, kind, options, scratch)
        size = validation_size(read.examples, options.validation_split)
        if size >= read.examples:
            raise InvalidRequest(
                f"validation_split takes {size} of the {read.examples} examples and leaves none to train on.",
                param="validation_split",
            )
        seed = options.seed if options.seed is not None else secrets.randbelow(MAX_SEED + 1)
        chosen = split_indices(read.examples, size, seed)
        advice = _advice_choice(options, read.tally)
        scratch.seek(0)
        for index, line in enumerate(scratch):
            if advice != AdviceChoice():
                example = json.loads(line)
                example["prompt"], example["completion"] = apply_advice(
                    example["prompt"], example["completion"], advice
                )
                line = _dump(example)
            (validation if index in chosen else training).write(line)
    return PreparationSummary(
        source_format=kind,
        format=options.format,
        rows=read.rows,
        examples=read.examples,
        duplicates_removed=read.removed,
        duplicates=read.duplicates,
        training_examples=read.examples - size,
        validation_examples=size,
        seed=seed,
        advice=read.tally.advice(advice) if options.format == "completion" else [],
    )
