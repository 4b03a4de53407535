"""Which encodings a file's tokens are counted with during validation, and the others on demand.

Validation counts a file's tokens only with the encoding of its format's current models
(`o200k_base` for chat and preference files, the gpt-4o and gpt-4.1 families; `cl100k_base` for
prompt-completion files, whose models all use it), so a validation costs one tokenizer pass and
loads one tokenizer. The other encodings of the format's models (`cl100k_base` for gpt-3.5-turbo)
are named in the report's `pending_encodings`; the first estimate or job for such a model streams
the file once more, counts them, and stores them in the file's report, where every later one finds
them.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from service.blobs.store import BlobStore
from service.files.models import FileRow, FileStatus
from service.files.report import ValidationReport
from service.files.validation import with_encoding
from service.models.catalog import BASE_MODELS, base_model_of

log = logging.getLogger(__name__)

# The current models' encoding per kind: the first model of each kind in the catalog is its
# newest family.
UP_FRONT_ENCODINGS: dict[str, tuple[str, ...]] = {
    kind: (next(model.encoding for model in BASE_MODELS.values() if model.kind == kind),)
    for kind in ("chat", "completion")
}


def report_for_model(session: Session, blobs: BlobStore, row: FileRow, model: str) -> ValidationReport | None:
    """The validated file `row`'s report with the tokens of `model`'s encoding (a fine-tuned
    model's base), counting them now, and storing them with the file, if they are still pending;
    None when the file has no report yet."""
    if row.status != FileStatus.PROCESSED or row.report is None:
        return None
    report = ValidationReport.model_validate(row.report)
    base = BASE_MODELS.get(base_model_of(model))
    if base is None or base.encoding not in report.pending_encodings:
        return report
    with blobs.open(row.blob_key) as stream:
        report = with_encoding(report, stream, base.encoding)
    row.report = report.model_dump(mode="json")
    log.info("file %s: %s tokens counted on demand", row.id, base.encoding)
    return report
