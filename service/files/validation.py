"""Validation of a JSONL training file, streamed line by line (never the whole file in memory).

The file-level checks live here: UTF-8, a byte-order mark, blank lines, JSON objects, one format
per file, enough examples, the image-example limit, duplicates (`service.files.duplicates`),
personal data and secrets under the file's policy (`service.files.personal`). Each example's fields are checked by
`service.files.checks`; the valid examples' tokens are counted per encoding by
`service.files.stats`, for the encodings asked for (all of the format's models' by default; the
service asks for the current models' only and its worker counts the others right after,
`service.files.encodings`, the report naming them in `pending_encodings` until then); a large
file's are counted in a child process while the next block is checked (`service.files.counting`).
Errors and warnings are counted by category with their first lines; warnings never block a job,
errors always do.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence

from service.files.checks import ExampleChecker, Format, Problem, shape_of
from service.files.counting import QUEUED, CountingFailed, CountingProcess, texts_of, totals
from service.files.duplicates import DuplicateFinder
from service.files.images import ImagePolicy
from service.files.parsing import LineError, LineReader
from service.files.personal import DESCRIPTIONS, Finding, PersonalDataScanner
from service.files.report import (
    CategoryCount,
    Issue,
    PersonalDataKind,
    PersonalDataPolicy,
    PersonalDataReport,
    TokenStats,
    ValidationReport,
)
from service.files.stats import FIRST_LINES, EncodingTally, distribution, models_for
from service.files.tokens import ExampleText, example_text

MIN_EXAMPLES = 10
RECOMMENDED_EXAMPLES = 50
MAX_REPORTED_ISSUES = 20
FIRST_MASKED = 3
BOM = b"\xef\xbb\xbf"
BLOCK_LINES = 64
BLOCK_BYTES = 1_000_000


class _Issues:
    def __init__(self) -> None:
        self.count = 0
        self.first: list[Issue] = []
        self.categories: dict[str, CategoryCount] = {}

    def add(self, line: int | None, category: str, message: str, *, in_line_order: bool = False) -> None:
        """Count an issue; `in_line_order` places it among the first ones by its line (for issues
        found only once the whole file is read, such as duplicates)."""
        self.count += 1
        issue = Issue(line=line, category=category, message=message)
        if in_line_order and line is not None:
            at = next(
                (i for i, other in enumerate(self.first) if other.line is None or other.line > line), None
            )
            if at is not None:
                self.first.insert(at, issue)
                del self.first[MAX_REPORTED_ISSUES:]
            elif len(self.first) < MAX_REPORTED_ISSUES:
                self.first.append(issue)
        elif len(self.first) < MAX_REPORTED_ISSUES:
            self.first.append(issue)
        counted = self.categories.setdefault(category, CategoryCount(count=0, lines=[]))
        counted.count += 1
        if line is not None and len(counted.lines) < FIRST_LINES:
            counted.lines.append(line)


class _PersonalData:
    """The personal-data findings of a file under one policy.

    The texts of the lines the prefilter flags are held and scanned `HELD_TEXTS` at a time (or
    sooner when they hold `HELD_CHARS` characters): one scan between two examples' checks and
    token counts ran on cold caches and cost three times as much. A batch's findings are placed
    among the first issues by their line."""

    HELD_TEXTS = 128
    HELD_CHARS = 4_000_000

    def __init__(self, policy: PersonalDataPolicy, scanner: PersonalDataScanner, issues: _Issues) -> None:
        self.scanner = scanner
        self.report = PersonalDataReport(policy=policy)
        self.issues = issues
        self.flagged: set[int] = set()
        self.held: list[tuple[int, str]] = []
        self.held_chars = 0

    def prefilter(self, block: list[tuple[int, bytes]]) -> None:
        """Note which of a block's lines the prefilter flags, before they are read one by one."""
        first = block[0][0]
        self.flagged = {first + index for index in self.scanner.flagged([raw for _, raw in block])}

    def add(self, number: int, text: ExampleText) -> None:
        """Hold a valid example's texts when the prefilter flagged its line."""
        if number not in self.flagged:
            return
        joined = "\n".join(text.own)
        self.held.append((number, joined))
        self.held_chars += len(joined)
        if len(self.held) >= self.HELD_TEXTS or self.held_chars >= self.HELD_CHARS:
            self.scan_held()

    def scan_held(self) -> None:
        """Scan the texts held, in line order."""
        held, self.held, self.held_chars = self.held, [], 0
        for number, joined in held:
            for finding in self.scanner.scan(joined):
                self._found(number, finding)

    def _found(self, number: int, finding: Finding) -> None:
        self.report.findings += 1
        kind = self.report.kinds.setdefault(finding.kind, PersonalDataKind(count=0, lines=[], masked=[]))
        kind.count += 1
        if len(kind.lines) < FIRST_LINES and number not in kind.lines:
            kind.lines.append(number)
        if len(kind.masked) < FIRST_MASKED:
            kind.masked.append(finding.masked)
        message = _finding_message(self.report.policy, finding)
        self.issues.add(number, f"personal_data_{finding.kind}", message, in_line_order=True)


def _finding_message(policy: PersonalDataPolicy, finding: Finding) -> str:
    found = f"{DESCRIPTIONS[finding.kind]} ({finding.masked})"
    if policy == "reject":
        return f"{found}; the file was uploaded with personal_data=reject."
    if policy == "redact":
        return f"{found}, redacted in the file's redacted copy."
    return f"{found}."


class _Validation:
    def __init__(
        self,
        images: ImagePolicy,
        count_tokens: bool,
        personal_data: PersonalDataPolicy | None = None,
        scanner: PersonalDataScanner | None = None,
        *,
        encodings: Mapping[str, Collection[str]] | None = None,
        duplicates: bool = True,
        offload: bool = False,
    ) -> None:
        self.offload = offload
        self.process: CountingProcess | None = None
        self.batch: list[tuple[int, ExampleText]] = []
        self.sent: deque[list[tuple[int, ExampleText]]] = deque()
        self.encodings = encodings
        self.pending: list[str] = []
        self.errors = _Issues()
        self.warnings = _Issues()
        self.personal = (
            _PersonalData(
                personal_data,
                scanner or PersonalDataScanner(),
                self.errors if personal_data == "reject" else self.warnings,
            )
            if personal_data is not None
            else None
        )
        self.checker = ExampleChecker(images)
        self.images = images
        self.count_tokens = count_tokens
        self.format: Format | None = None
        self.examples = 0
        self.lines = 0
        self.non_blank = 0
        self.with_images = 0
        self.messages: Counter[int] = Counter()
        self.tallies: list[EncodingTally] = []
        self.duplicates = DuplicateFinder() if duplicates else None
        self.reader = LineReader()

    def line(self, number: int, raw: bytes) -> None:
        self.lines = number
        raw = raw.rstrip(b"\r\n")
        if number == 1 and raw.startswith(BOM):
            self.errors.add(
                number,
                "byte_order_mark",
                "the file starts with a byte-order mark; save it as UTF-8 without BOM.",
            )
            raw = raw[len(BOM) :]
        if not raw or raw.isspace():  # what strip() would empty, without copying the line
            self.errors.add(number, "blank_line", "blank line; every line must hold one JSON example.")
            return
        self.non_blank += 1
        try:
            record = self.reader.read(raw)
        except LineError as error:
            self.errors.add(number, error.category, error.message)
            return
        if not isinstance(record, dict):
            self.errors.add(number, "data_type", "each line must be a JSON object.")
            return
        self.example(number, record, raw)

    def example(self, number: int, record: dict[str, object], raw: bytes) -> None:
        shape = shape_of(record)
        if shape is None:
            self.errors.add(
                number,
                "unrecognized_format",
                "unrecognized example: expected 'messages', 'prompt' and 'completion', or a preference pair.",
            )
            return
        if self.format is None:
            self.format = shape
            if self.count_tokens:
                kind = "completion" if shape == "completion" else "chat"
                for enc, models in models_for(kind).items():
                    if self.encodings is None or enc in self.encodings.get(kind, ()):
                        self.tallies.append(EncodingTally(enc, models))
                    else:
                        self.pending.append(enc)
                if self.offload and self.tallies:
                    try:
                        self.process = CountingProcess([tally.encoding for tally in self.tallies])
                    except OSError:
                        self.process = None  # counted in this process
        elif shape != self.format:
            self.errors.add(
                number,
                "mixed_formats",
                f"a {shape} example in a {self.format} file; use one format per file.",
            )
            return
        problems, facts = self.checker.check(shape, record)
        if problems:
            self._add(number, problems)
            if any(not problem.warning for problem in problems):
                return
        self.examples += 1
        self.messages[facts.messages] += 1
        if shape == "chat" and not facts.has_system:
            self.warnings.add(number, "missing_system_message", "the example has no system message.")
        if shape != "completion" and not facts.has_user:
            self.warnings.add(number, "missing_user_message", "the example has no user message.")
        if facts.images:
            self.with_images += 1
            if self.with_images == self.images.max_examples_with_images + 1:
                self.errors.add(
                    number,
                    "too_many_image_examples",
                    f"more than {self.images.max_examples_with_images} examples with images in one file.",
                )
        text = example_text(shape, record)
        if self.duplicates is not None:
            self.duplicates.add(number, record, text, self.reader.plain)
        if self.tallies:
            self.batch.append((number, text))
        if self.personal is not None:
            self.personal.add(number, text)

    def end_block(self) -> None:
        """Count the block's examples: here, one block at a time after its lines are checked (the
        tokenizer's tables stay in the cache for the whole block: about a tenth less than counting
        each example between checks), or in the counting process, adding the counts of the block
        before (so it counts one block while this process checks the next)."""
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        if self.process is None:
            for tally in self.tallies:
                tally.add_block(batch)
            return
        self.sent.append(batch)
        try:
            self.process.send([piece for _, text in batch for piece in texts_of(text)])
            while self.process.in_flight > QUEUED:
                counts = self.process.receive()  # before the block leaves `sent`, which a failure counts
                self._add_counted(self.sent.popleft(), counts)
        except CountingFailed:
            self._count_here()

    def finish(self) -> None:
        """Count the last block, add every count still in flight and end the counting process."""
        if self.process is None:
            self.end_block()
            return
        try:
            self.end_block()
            while self.process is not None and self.process.in_flight:
                counts = self.process.receive()
                self._add_counted(self.sent.popleft(), counts)
        except CountingFailed:
            self._count_here()
        finally:
            self.close()

    def close(self) -> None:
        if self.process is not None:
            self.process.close()
            self.process = None

    def _add_counted(self, batch: list[tuple[int, ExampleText]], counts: Sequence[Sequence[int]]) -> None:
        for tally, counted in zip(self.tallies, counts, strict=True):
            at = 0
            for number, text in batch:
                size = len(text.labels) + len(text.definitions) + len(text.own)
                tally.add_counted(number, *totals(text, counted[at : at + size]))
                at += size

    def _count_here(self) -> None:
        """The counting process failed: count what it held, and every later example, here."""
        self.close()
        held = [*self.sent, self.batch]
        self.sent.clear()
        self.batch = []
        for batch in held:
            for number, text in batch:
                for tally in self.tallies:
                    tally.add(number, text)

    def _add(self, number: int, problems: list[Problem]) -> None:
        for problem in problems:
            target = self.warnings if problem.warning else self.errors
            target.add(number, problem.category, problem.message)

    def report(self) -> ValidationReport:
        if self.personal is not None:
            self.personal.scan_held()
        for number, problem in self.duplicates.problems() if self.duplicates is not None else ():
            self.warnings.add(number, problem.category, problem.message, in_line_order=True)
        if self.non_blank == 0:
            self.errors.add(None, "empty_file", "the file holds no examples.")
        elif self.examples < MIN_EXAMPLES:
            self.errors.add(
                None,
                "too_few_examples",
                f"the file has {self.examples} valid examples; at least {MIN_EXAMPLES} are required.",
            )
        elif self.examples < RECOMMENDED_EXAMPLES:
            self.warnings.add(
                None,
                "few_examples",
                f"{self.examples} examples; 50 to 100 usually give clearer gains (OpenAI's guide).",
            )
        tokens = {tally.encoding: tally.stats() for tally in self.tallies}
        for stats in tokens.values():
            _truncation_warnings(self.warnings, stats)
        return ValidationReport(
            format=self.format,
            examples=self.examples,
            lines=self.lines,
            error_count=self.errors.count,
            errors=self.errors.first,
            error_categories=self.errors.categories,
            warning_count=self.warnings.count,
            warnings=self.warnings.first,
            warning_categories=self.warnings.categories,
            messages_per_example=distribution(self.messages) if self.format != "completion" else None,
            examples_with_images=self.with_images,
            tokens=tokens,
            pending_encodings=self.pending,
            personal_data=self.personal.report if self.personal is not None else None,
        )


def _truncation_warnings(warnings: _Issues, stats: TokenStats) -> None:
    for limit in stats.limits:
        if limit.examples_over:
            warnings.add(
                limit.first_lines[0],
                "over_context_limit",
                f"{limit.examples_over} examples are longer than {limit.limit} {stats.encoding} tokens "
                f"and will be truncated on {', '.join(limit.models)} (first lines "
                f"{', '.join(map(str, limit.first_lines))}).",
                in_line_order=True,
            )


def validate_jsonl(
    lines: Iterable[bytes],
    *,
    images: ImagePolicy | None = None,
    count_tokens: bool = True,
    personal_data: PersonalDataPolicy | None = None,
    scanner: PersonalDataScanner | None = None,
    encodings: Mapping[str, Collection[str]] | None = None,
    offload: bool = False,
) -> ValidationReport:
    """Check every line of a JSONL training file; line numbers start at 1. With a
    `personal_data` policy the valid examples are scanned for personal data and secrets.
    With `offload`, tokens are counted in a child process while this one checks the next block
    (`service.files.counting`; worth it for large files on a machine with a second core).

    Tokens are counted with each encoding of the format's models, or, given `encodings` (keyed
    by kind, `chat` or `completion`), only with those listed for the format's kind; the others
    are named in the report's `pending_encodings` (`with_encoding` adds one later)."""
    validation = _Validation(
        images or ImagePolicy(),
        count_tokens,
        personal_data,
        scanner,
        encodings=encodings,
        offload=offload and count_tokens,
    )
    personal = validation.personal
    try:
        for block in _blocks(lines):
            if personal is not None:
                personal.prefilter(block)
            for number, raw in block:
                validation.line(number, raw)
            validation.end_block()
        validation.finish()
    finally:
        validation.close()
    return validation.report()


def _blocks(lines: Iterable[bytes]) -> Iterator[list[tuple[int, bytes]]]:
    """The numbered lines in blocks of up to `BLOCK_LINES` lines and about `BLOCK_BYTES` bytes (a
    long line is a block of its own), for the personal-data prefilter's passes over a block and
    the token counts of a block's examples."""
    block: list[tuple[int, bytes]] = []
    size = 0
    for number, raw in enumerate(lines, start=1):
        block.append((number, raw))
        size += len(raw)
        if len(block) == BLOCK_LINES or size >= BLOCK_BYTES:
            yield block
            block, size = [], 0
    if block:
        yield block


def count_encoding(lines: Iterable[bytes], encoding: str) -> TokenStats:
    """The token statistics of one of a validated file's pending encodings, counted in a second
    pass over the same file's `lines` (the same examples are valid in it: the checks are the same;
    duplicates and personal data are not looked for again)."""
    only = {"chat": (encoding,), "completion": (encoding,)}
    again = _Validation(ImagePolicy(), True, encodings=only, duplicates=False)
    for block in _blocks(lines):
        for number, raw in block:
            again.line(number, raw)
        again.end_block()
    again.finish()
    return {tally.encoding: tally.stats() for tally in again.tallies}[encoding]


def add_encoding(report: ValidationReport, stats: TokenStats) -> ValidationReport:
    """`report` with the statistics of its pending encoding `stats.encoding` and that encoding's
    truncation warnings; `report` itself when that encoding is not pending (counted already)."""
    if stats.encoding not in report.pending_encodings:
        return report
    warnings = _Issues()
    warnings.count = report.warning_count
    warnings.first = list(report.warnings)
    warnings.categories = {
        name: counted.model_copy(deep=True) for name, counted in report.warning_categories.items()
    }
    _truncation_warnings(warnings, stats)
    return report.model_copy(
        update={
            "tokens": {**report.tokens, stats.encoding: stats},
            "pending_encodings": [other for other in report.pending_encodings if other != stats.encoding],
            "warning_count": warnings.count,
            "warnings": warnings.first,
            "warning_categories": warnings.categories,
        }
    )


def with_encoding(report: ValidationReport, lines: Iterable[bytes], encoding: str) -> ValidationReport:
    """`report` with the token statistics of its pending `encoding`, counted in a second pass over
    the same file's `lines` (`count_encoding`, `add_encoding`)."""
    if encoding not in report.pending_encodings:
        return report
    return add_encoding(report, count_encoding(lines, encoding))
