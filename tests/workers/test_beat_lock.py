from __future__ import annotations

import redis

from workers.beat import BEAT_LOCK, LeaderLock


def test_only_one_of_two_beats_holds_the_scheduler_lock(redis_client: redis.Redis) -> None:
    first = LeaderLock(redis_client, BEAT_LOCK, 30, "beat-1")
    second = LeaderLock(redis_client, BEAT_LOCK, 30, "beat-2")

    holders = [first.hold(), second.hold(), first.hold(), second.hold()]

    assert holders == [True, False, True, False]


def test_the_other_beat_takes_over_when_the_holder_stops(redis_client: redis.Redis) -> None:
    first = LeaderLock(redis_client, BEAT_LOCK, 30, "beat-1")
    second = LeaderLock(redis_client, BEAT_LOCK, 30, "beat-2")
    first.hold()

    first.release()

    assert second.hold() is True
    assert first.hold() is False


def test_a_lost_redis_means_not_holding_the_lock() -> None:
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)

    assert LeaderLock(unreachable, BEAT_LOCK, 30, "beat-1").hold() is False
