"""When a failed delivery is tried again: the Standard Webhooks schedule with jitter, and
`Retry-After`.

Attempt 1 goes out at once; after each failure the next waits 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
14 h, 20 h, then 24 h (10 attempts, the last about 75 h after the first), each ±20 % at random. A
receiver's `Retry-After` (seconds or an HTTP date, capped at 24 h) wins when it is longer.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.2
RETRY_AFTER_CAP = timedelta(hours=24)
# A delivery handed to the queue (by `emit_event` or the sweep) is due again only after this lease,
# so that the sweep does not queue it a second time while that attempt is on its way.
ENQUEUE_LEASE = timedelta(minutes=2)


def retry_delay(
    attempts_made: int,
    *,
    retry_after: timedelta | None = None,
    rng: random.Random | None = None,
    scale: float = 1.0,
) -> timedelta | None:
    """How long to wait after `attempts_made` failed attempts; None when no attempt is left.
    `scale` shrinks the schedule (`FTM_WEBHOOK_RETRY_DELAY_SCALE`, for demos and e2e tests)."""
    if attempts_made < 1 or attempts_made >= MAX_ATTEMPTS:
        return None
    base = RETRY_DELAYS[attempts_made - 1] * scale
    uniform = rng.uniform if rng is not None else random.uniform
    jittered = base * uniform(1 - JITTER, 1 + JITTER)
    return max(jittered, retry_after) if retry_after is not None else jittered


def parse_retry_after(value: str | None, *, now: datetime) -> timedelta | None:
    """A `Retry-After` header as a wait (capped at 24 h); None when absent or unparsable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        wait = timedelta(seconds=int(value))
    else:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            return None
        wait = max(moment - now, timedelta())
    return min(wait, RETRY_AFTER_CAP)
