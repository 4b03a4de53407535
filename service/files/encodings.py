"""Which encodings a file's tokens are counted with during validation, and the others right after.

Validation counts a file's tokens only with the encoding of its format's current models
(`o200k_base` for chat and preference files, the gpt-4o and gpt-4.1 families; `cl100k_base` for
prompt-completion files, whose models all use it), so a validation costs one tokenizer pass and
loads one tokenizer, and the file is `processed` (or `error`) as soon as that pass is done. The
other encodings of the format's models (`cl100k_base` for gpt-3.5-turbo) are named in the
report's `pending_encodings`; the outcome's transaction queues `files.count_tokens`, whose worker
streams the file once more (`count_pending_encodings`) and completes the stored report, with no
request ever waiting for it.
Until then an estimate for such a model says its cost is not known yet, and a job created for it
is checked against its budget when it is submitted.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from service.blobs.store import BlobNotFound, BlobStore
from service.db import session_scope
from service.files.models import FileRow, FileStatus
from service.files.report import ValidationReport
from service.files.validation import add_encoding, count_encoding
from service.models.catalog import BASE_MODELS, base_model_of

log = logging.getLogger(__name__)

# The current models' encoding per kind: the first model of each kind in the catalog is its
# newest family.
UP_FRONT_ENCODINGS: dict[str, tuple[str, ...]] = {
    kind: (next(model.encoding for model in BASE_MODELS.values() if model.kind == kind),)
    for kind in ("chat", "completion")
}


def pending_encoding(row: FileRow, model: str) -> str | None:
    """The encoding of `model` (or of a fine-tuned model's base) if the validated file `row`'s
    report still lacks its tokens; None when they are counted (or nothing is known of `model`)."""
    if row.status != FileStatus.PROCESSED or row.report is None:
        return None
    base = BASE_MODELS.get(base_model_of(model))
    if base is None or base.encoding not in row.report.get("pending_encodings", ()):
        return None
    return base.encoding


def report_for_model(row: FileRow, model: str) -> ValidationReport | None:
    """The validated file `row`'s report, once it holds the tokens of `model`'s encoding; None
    while the file has no report yet or those tokens are still being counted. Never reads the file:
    callers in a request answer from what is stored."""
    if row.status != FileStatus.PROCESSED or row.report is None or pending_encoding(row, model):
        return None
    return ValidationReport.model_validate(row.report)


def report_counted_for_model(
    session: Session, blobs: BlobStore, row: FileRow, model: str
) -> ValidationReport | None:
    """For a worker that already holds `session` (a job's submission): the validated file `row`'s
    report with the tokens of `model`'s encoding, counting them now and storing them with the file
    if the file's worker has not yet; None when the file has no report yet."""
    if row.status != FileStatus.PROCESSED or row.report is None:
        return None
    report = ValidationReport.model_validate(row.report)
    encoding = pending_encoding(row, model)
    if encoding is None:
        return report
    with blobs.open(row.blob_key) as stream:
        report = add_encoding(report, count_encoding(stream, encoding))
    row.report = report.model_dump(mode="json")
    log.info("file %s: %s tokens counted for a job's submission", row.id, encoding)
    return report


def count_pending_encodings(sessions: sessionmaker[Session], blobs: BlobStore, file_id: str) -> list[str]:
    """Count the tokens of the processed file's pending encodings and store them in its report;
    returns the encodings counted (none when nothing was pending or the file is gone).

    Run by `files.count_tokens`, queued by the validation (a job submission that finds them still pending counts
    them itself, `report_counted_for_model`). Like validation, the file is streamed with no transaction open and the outcome written in a
    short one; idempotent: an encoding counted meanwhile (two runs racing) is not added twice."""
    with session_scope(sessions) as session:
        row = session.get(FileRow, file_id)
        if row is None or row.status != FileStatus.PROCESSED or row.report is None:
            return []
        key = row.blob_key
        pending = list(row.report.get("pending_encodings", ()))
    counted: list[str] = []
    for encoding in pending:
        try:
            with blobs.open(key) as stream:
                stats = count_encoding(stream, encoding)
        except BlobNotFound:
            return counted  # deleted while it was being read
        with session_scope(sessions) as session:
            row = session.get(FileRow, file_id)
            if row is None or row.report is None:
                return counted
            report = ValidationReport.model_validate(row.report)
            if encoding in report.pending_encodings:
                row.report = add_encoding(report, stats).model_dump(mode="json")
                counted.append(encoding)
                log.info("file %s: %s tokens counted", file_id, encoding)
    return counted
