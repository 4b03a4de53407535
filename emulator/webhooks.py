"""The webhooks OpenAI sends a project about its fine-tuning jobs, sent by the local provider too.

When a job reaches `succeeded`, `failed` or `cancelled`, an event
`{"id": "evt_…", "object": "event", "type": "fine_tuning.job.succeeded", "created_at": …,
"data": {"id": "ftjob-…"}}` is queued in the same transaction as the change, and the ticker posts
the due ones to `FTM_EMULATOR_WEBHOOK_URL`, signed with `FTM_EMULATOR_WEBHOOK_SECRET` as Standard
Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`), the
scheme OpenAI uses. A failed post is tried again with a doubling delay, `webhook_max_attempts`
times in all, with the same `webhook-id`. With no URL (or secret) set, queued events are dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import sqlite3
import time
from typing import TYPE_CHECKING

import httpx

from emulator.ids import new_id

if TYPE_CHECKING:
    from emulator.runtime import Emulator

logger = logging.getLogger(__name__)

FIRST_RETRY_S = 1.0
BATCH = 50


def queue_webhook(conn: sqlite3.Connection, event_type: str, job_id: str) -> None:
    """Queue an event about `job_id` (inside the transaction that changed the job)."""
    now = time.time()
    conn.execute(
        "INSERT INTO webhooks (id, type, job_id, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)",
        (new_id("evt_"), event_type, job_id, int(now), now),
    )


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """A Standard Webhooks `v1,<base64>` entry; `secret` is `whsec_<base64 key>`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


async def send_due(emulator: Emulator, client: httpx.AsyncClient) -> int:
    """Post every queued event that is due; how many were delivered."""
    settings = emulator.settings
    if not settings.webhook_url or not settings.webhook_secret:
        with emulator.store.transaction() as conn:
            conn.execute("DELETE FROM webhooks")  # nobody to tell
        return 0
    now = time.time()
    with emulator.store.read() as conn:
        due = conn.execute(
            "SELECT id, type, job_id, created_at, attempts FROM webhooks WHERE next_attempt_at <= ? "
            "ORDER BY seq LIMIT ?",
            (now, BATCH),
        ).fetchall()
    delivered = 0
    for row in due:
        body = json.dumps(
            {
                "id": row["id"],
                "object": "event",
                "type": row["type"],
                "created_at": row["created_at"],
                "data": {"id": row["job_id"]},
            }
        ).encode()
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": row["id"],
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(settings.webhook_secret, row["id"], timestamp, body),
        }
        try:
            response = await client.post(settings.webhook_url, content=body, headers=headers)
            ok = response.is_success
        except httpx.HTTPError as error:
            logger.info("webhook %s to %s failed: %s", row["id"], settings.webhook_url, error)
            ok = False
        with emulator.store.transaction() as conn:
            attempts = row["attempts"] + 1
            if ok or attempts >= settings.webhook_max_attempts:
                if not ok:
                    logger.warning("webhook %s given up after %d attempts", row["id"], attempts)
                conn.execute("DELETE FROM webhooks WHERE id = ?", (row["id"],))
            else:
                retry_at = time.time() + FIRST_RETRY_S * 2 ** (attempts - 1)
                conn.execute(
                    "UPDATE webhooks SET attempts = ?, next_attempt_at = ? WHERE id = ?",
                    (attempts, retry_at, row["id"]),
                )
        delivered += ok
    return delivered
