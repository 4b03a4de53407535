"""`ftm files`: upload (and wait for the validation report), list, show, delete."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from openai.types import FileObject
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ftmcli.errors import CliError, ExitCode
from ftmcli.output import Output, json_option, when
from ftmcli.state import current_state
from ftmcli.transfer import MIB, upload_in_parts, upload_whole

WAIT_TIMEOUT_S = 600.0
POLL_S = 0.5
MULTIPART_ABOVE_MIB = 64.0  # one part: anything larger goes in parts


@click.group()
def files() -> None:
    """Training and validation files."""


def _progress(out: Output) -> Progress:
    """A byte progress bar on stderr; nothing under --json."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=out.notes,
        disable=out.as_json,
    )


def wait_until_processed(file_id: str, *, timeout_s: float = WAIT_TIMEOUT_S) -> FileObject:
    sdk = current_state().connection().sdk
    deadline = time.monotonic() + timeout_s
    while True:
        file = sdk.files.retrieve(file_id)
        if file.status in ("processed", "error"):
            return file
        if time.monotonic() > deadline:
            raise CliError(
                f"{file_id} is still '{file.status}' after {timeout_s:.0f}s", exit_code=ExitCode.UNAVAILABLE
            )
        time.sleep(POLL_S)


def show_validation(out: Output, validation: dict[str, Any]) -> None:
    report = validation.get("report") or {}
    status = validation.get("status")
    if status == "processed" and not report.get("error_count"):
        out.console.print(
            f"{validation['file_id']}: valid, {report.get('examples', 0)} {report.get('format') or ''} examples",
            markup=False,
        )
        return
    errors = report.get("errors") or []
    count = report.get("error_count", len(errors))
    out.table(
        f"{validation['file_id']}: invalid, {count} problem{'s' if count != 1 else ''}",
        ["line", "problem"],
        ([error.get("line") or "-", error.get("message", "")] for error in errors),
    )
    if count > len(errors):
        out.note(f"… and {count - len(errors)} more (the report keeps the first {len(errors)})")


@files.command("upload")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--wait", is_flag=True, help="Wait for validation; exit 1 when the file is invalid.")
@click.option(
    "--multipart-above",
    "multipart_above_mib",
    type=click.FloatRange(min=0),
    default=MULTIPART_ABOVE_MIB,
    show_default=True,
    help="Send files larger than this many MiB in parts through /v1/uploads (up to 8 GB).",
)
@click.option(
    "--part-size",
    "part_size_mib",
    type=click.FloatRange(min=0.001, max=64),
    default=64,
    show_default=True,
    help="The size of each part in MiB (at most 64).",
)
@json_option
def upload(path: Path, wait: bool, multipart_above_mib: float, part_size_mib: float, as_json: bool) -> None:
    """Upload a JSONL file for fine-tuning (purpose fine-tune), with a byte progress bar."""
    out = Output(as_json=as_json)
    connection = current_state().connection()
    size = path.stat().st_size
    with _progress(out) as progress:
        task = progress.add_task(f"uploading {path.name}", total=size)

        def advance(count: int) -> None:
            progress.update(task, advance=count)

        if size > multipart_above_mib * MIB:
            file = upload_in_parts(connection.sdk, path, advance, part_size=max(1, int(part_size_mib * MIB)))
        else:
            file = upload_whole(connection.sdk, path, advance)
    out.note(f"uploaded {path.name} as {file.id} ({file.bytes} bytes)")
    if not wait:
        if as_json:
            out.json(file)
        else:
            out.console.print(file.id, markup=False)
        return
    if not as_json:
        with out.notes.status("validating…"):
            file = wait_until_processed(file.id)
    else:
        file = wait_until_processed(file.id)
    validation = connection.get(f"/files/{file.id}/validation")
    if as_json:
        out.json({**file.model_dump(mode="json"), "validation": validation})
    else:
        show_validation(out, validation)
    if file.status != "processed":
        click.get_current_context().exit(ExitCode.FAILED)


@files.command("list")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@json_option
def list_files(limit: int, as_json: bool) -> None:
    """Your files, newest first."""
    out = Output(as_json=as_json)
    page = current_state().connection().sdk.files.list(limit=limit)
    listed = page.data
    if as_json:
        out.json({"data": listed})
        return
    out.table(
        None,
        ["id", "filename", "bytes", "status", "created"],
        ([f.id, f.filename, f.bytes, f.status, when(f.created_at)] for f in listed),
    )


@files.command("show")
@click.argument("file_id")
@json_option
def show(file_id: str, as_json: bool) -> None:
    """A file and its validation report."""
    out = Output(as_json=as_json)
    connection = current_state().connection()
    file = connection.sdk.files.retrieve(file_id)
    validation = connection.get(f"/files/{file_id}/validation")
    if as_json:
        out.json({**file.model_dump(mode="json"), "validation": validation})
        return
    out.fields(
        [
            ("id", file.id),
            ("filename", file.filename),
            ("bytes", file.bytes),
            ("purpose", file.purpose),
            ("status", file.status),
            ("details", file.status_details),
            ("prepared from", validation.get("source_file_id")),
            ("created", when(file.created_at)),
        ]
    )
    if file.status != "uploaded":
        show_validation(out, validation)


@files.command("delete")
@click.argument("file_id")
@json_option
def delete(file_id: str, as_json: bool) -> None:
    """Delete a file."""
    out = Output(as_json=as_json)
    deleted = current_state().connection().sdk.files.delete(file_id)
    if as_json:
        out.json(deleted)
    else:
        out.console.print(f"deleted {deleted.id}", markup=False)
