"""`POST /v1/files/{file_id}/preparations`: a tenant's source file becomes fine-tuning files.

It runs in the request: preparing is one streamed pass to scratch files and one more to the
outputs, with no provider call, so a source of the size limit (`FTM_MAX_PREPARATION_BYTES`) is
done in seconds (see README, "Preparing data"), and memory stays bounded whatever the size (about
100 bytes per distinct example for deduplication, and the validation sample's indices). The
produced files are ordinary `fine-tune` uploads, validated by a worker like any other, each
carrying its source's id and the preparation's options and summary. Bad options and a source with
problems are a 400 and create nothing."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from sqlalchemy.orm import Session

from service.blobs.store import BlobStore
from service.errors import InvalidRequest
from service.files import service as files
from service.files.models import FileRow
from service.files.preparation import (
    PreparationCreate,
    PreparationFailed,
    PreparationSummary,
    check_options,
    prepare,
)
from service.files.sources import source_format_of

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Prepared:
    source: FileRow
    training: FileRow
    validation: FileRow | None
    summary: PreparationSummary


def _chunks(scratch: IO[bytes]) -> Iterator[bytes]:
    scratch.seek(0)
    while chunk := scratch.read(CHUNK):
        yield chunk


def _stem(filename: str) -> str:
    stem, dot, _ = filename.rpartition(".")
    return stem if dot and stem else filename


def prepare_file(
    session: Session,
    blobs: BlobStore,
    *,
    tenant_id: str,
    file_id: str,
    options: PreparationCreate,
    max_source_bytes: int,
    max_upload_bytes: int,
) -> Prepared:
    check_options(options)
    source = files.get_file(session, tenant_id=tenant_id, file_id=file_id)
    kind = source_format_of(source.filename)
    if source.purpose != files.SOURCE_PURPOSE or kind is None:
        raise InvalidRequest(
            f"File '{file_id}' is not source data: upload a .csv, .tsv or .json file with purpose "
            f"'{files.SOURCE_PURPOSE}' to prepare it.",
            param="file_id",
        )
    if source.bytes > max_source_bytes:
        raise InvalidRequest(
            f"File '{file_id}' has {source.bytes} bytes; preparation takes up to {max_source_bytes} "
            "(FTM_MAX_PREPARATION_BYTES).",
            param="file_id",
            code="file_too_large",
        )
    with tempfile.TemporaryFile() as training, tempfile.TemporaryFile() as validation:
        try:
            summary = prepare(
                lambda: blobs.open(source.blob_key), kind, options, training=training, validation=validation
            )
        except PreparationFailed as failed:
            raise InvalidRequest(
                f"File '{file_id}' cannot be prepared: {failed.summary()}",
                param="file_id",
                code="invalid_source",
            ) from failed
        record: dict[str, object] = {
            "options": options.model_dump(mode="json"),
            "summary": summary.model_dump(mode="json"),
        }
        stem = _stem(source.filename)
        made = [
            files.create_file(
                session,
                blobs,
                tenant_id=tenant_id,
                filename=f"{stem}_{name}.jsonl",
                purpose=files.FINE_TUNE_PURPOSE,
                chunks=_chunks(scratch),
                max_bytes=max_upload_bytes,
                source_file_id=source.id,
                preparation=record,
            )
            for name, scratch, count in (
                ("train", training, summary.training_examples),
                ("validation", validation, summary.validation_examples),
            )
            if count
        ]
    return Prepared(
        source=source, training=made[0], validation=made[1] if len(made) > 1 else None, summary=summary
    )
