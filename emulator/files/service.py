"""Files: metadata rows in SQLite, bytes as blobs, rendered as OpenAI ``file`` objects."""

from __future__ import annotations

import sqlite3
from typing import Any, Literal

from emulator.errors import InvalidRequest, NotFound
from emulator.ids import new_id
from emulator.store import Store

UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data")
RESULTS_PURPOSE = "fine-tune-results"


def file_object(row: sqlite3.Row) -> dict[str, Any]:
    """The OpenAI ``file`` object of a row."""
    return {
        "id": row["id"],
        "object": "file",
        "bytes": row["bytes"],
        "created_at": row["created_at"],
        "filename": row["filename"],
        "purpose": row["purpose"],
        "status": "processed",
        "status_details": None,
        "expires_at": None,
    }


def insert_file(
    conn: sqlite3.Connection, store: Store, *, filename: str, purpose: str, data: bytes, created_at: int
) -> sqlite3.Row:
    """Store ``data`` as a new file (inside the caller's transaction) and return its row."""
    file_id = new_id("file-", 22)
    store.write_blob(file_id, data)
    conn.execute(
        "INSERT INTO files (id, created_at, bytes, filename, purpose) VALUES (?, ?, ?, ?, ?)",
        (file_id, created_at, len(data), filename, purpose),
    )
    return get_file_row(conn, file_id)


def create_file(store: Store, *, filename: str, purpose: str, data: bytes, created_at: int) -> dict[str, Any]:
    """Upload a file; ``purpose`` must be one OpenAI accepts for uploads."""
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidRequest(
            f"'{purpose}' is not one of {list(UPLOAD_PURPOSES)} - 'purpose'", param="purpose"
        )
    if not filename:
        raise InvalidRequest("The uploaded file has no filename.", param="file")
    with store.transaction() as conn:
        return file_object(
            insert_file(conn, store, filename=filename, purpose=purpose, data=data, created_at=created_at)
        )


def get_file_row(conn: sqlite3.Connection, file_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM files WHERE id = ? AND deleted = 0", (file_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"No such File object: {file_id}", param="id")
    return row


def find_file(store: Store, file_id: str) -> sqlite3.Row | None:
    with store.read() as conn:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM files WHERE id = ? AND deleted = 0", (file_id,)
        ).fetchone()
        return row


def list_files(
    store: Store, *, purpose: str | None, limit: int, order: Literal["asc", "desc"], after: str | None
) -> dict[str, Any]:
    """A page of files, OpenAI's cursor list shape."""
    with store.read() as conn:
        sql, args = "SELECT * FROM files WHERE deleted = 0", []
        if purpose:
            sql, args = sql + " AND purpose = ?", [purpose]
        if after:
            cursor = conn.execute("SELECT seq FROM files WHERE id = ?", (after,)).fetchone()
            if cursor is None:
                raise InvalidRequest(f"No such File object: {after}", param="after")
            sql += " AND seq > ?" if order == "asc" else " AND seq < ?"
            args.append(cursor["seq"])
        sql += " ORDER BY seq " + ("ASC" if order == "asc" else "DESC") + " LIMIT ?"
        rows = conn.execute(sql, (*args, limit + 1)).fetchall()
    data = [file_object(row) for row in rows[:limit]]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(rows) > limit,
    }


def delete_file(store: Store, file_id: str) -> dict[str, Any]:
    with store.transaction() as conn:
        get_file_row(conn, file_id)
        conn.execute("UPDATE files SET deleted = 1 WHERE id = ?", (file_id,))
    store.delete_blob(file_id)
    return {"id": file_id, "object": "file", "deleted": True}


def file_content(store: Store, file_id: str) -> bytes:
    with store.read() as conn:
        get_file_row(conn, file_id)
        return store.read_blob(file_id)
