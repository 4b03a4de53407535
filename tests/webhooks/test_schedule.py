from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from service.webhooks.schedule import MAX_ATTEMPTS, RETRY_DELAYS, parse_retry_after, retry_delay

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_schedule_is_ten_attempts_over_about_75_hours() -> None:
    assert MAX_ATTEMPTS == 10
    assert sum(RETRY_DELAYS, timedelta()) == timedelta(hours=75, minutes=35, seconds=5)


@pytest.mark.parametrize("attempts_made", range(1, 10))
def test_each_wait_is_the_scheduled_delay_within_20_percent(attempts_made: int) -> None:
    rng = random.Random(attempts_made)
    base = RETRY_DELAYS[attempts_made - 1]

    waits = [retry_delay(attempts_made, rng=rng) for _ in range(200)]

    assert all(w is not None and base * 0.8 <= w <= base * 1.2 for w in waits)
    assert len(set(waits)) > 1


def test_no_wait_is_given_after_the_last_attempt() -> None:
    assert retry_delay(MAX_ATTEMPTS) is None


def test_a_longer_retry_after_wins_and_a_shorter_one_does_not() -> None:
    longer = retry_delay(1, retry_after=timedelta(minutes=10))
    shorter = retry_delay(3, retry_after=timedelta(seconds=1))

    assert longer == timedelta(minutes=10)
    assert shorter is not None
    assert shorter >= timedelta(minutes=24)


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("120", timedelta(seconds=120)),
        ("Thu, 01 Jan 2026 01:00:00 GMT", timedelta(hours=1)),
        ("Wed, 31 Dec 2025 23:00:00 GMT", timedelta()),
        ("9999999", timedelta(hours=24)),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date_and_capped_at_a_day(
    header: str | None, wait: timedelta | None
) -> None:
    assert parse_retry_after(header, now=NOW) == wait
