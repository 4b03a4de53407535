"""A process's share of a counter's minute: the units it has counted in Redis ahead of use (a lease)
and spends locally, so that most requests are admitted without a Redis round trip.

Pure bookkeeping, no I/O: `service.limits.limiter` takes leases from Redis (`window.lua`) and
spends them. A lease belongs to one Redis minute (`window`) and lasts at most `LEASE_S` seconds and
never past that minute's end; what it still holds when it expires goes back to Redis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# The largest lease of a counter, as a share of its per-minute limit: a limit under this many units
# gets leases of one unit, so each request is counted in Redis as it arrives (exact, as before).
LEASE_SHARE = 100
# How long a lease's units may wait to be used after they were counted (the bound on how late a
# counted unit is spent), and the age at which the limiter tops a lease up in the background.
LEASE_S = 1.0
REFRESH_S = LEASE_S / 2
MINUTE_MS = 60_000


def lease_size(per_minute: int) -> int:
    """The units a process keeps in hand for a counter of `per_minute`."""
    return max(1, per_minute // LEASE_SHARE)


@dataclass(slots=True)
class Lease:
    """Units of one counter counted in Redis minute `window` and not spent yet.

    `current` and `previous` are the counter's counts in this minute and the one before as Redis
    had them when the lease was last granted (all processes' leases included), `granted_at` that
    time on the limiter's clock and `elapsed_ms` how far into the minute it was."""

    per_minute: int
    window: int
    units: int
    current: int
    previous: int
    granted_at: float
    elapsed_ms: int
    counted: str = ""  # the Redis key of the counter's minute it was counted in
    expires_at: float = field(init=False)
    dropped: bool = field(default=False, init=False)  # replaced or given back: not the limiter's any more

    def __post_init__(self) -> None:
        self.expires_at = self.granted_at + min(LEASE_S, (MINUTE_MS - self.elapsed_ms) / 1000)

    def live(self, now: float) -> bool:
        return now < self.expires_at

    def fresh(self, now: float) -> bool:
        """Younger than `REFRESH_S`: not yet worth replacing."""
        return now < self.granted_at + REFRESH_S

    def fits(self, per_minute: int, cost: int, now: float) -> bool:
        """Whether `cost` units can be spent from this lease now (for a limit of `per_minute`)."""
        return self.units >= cost and self.per_minute == per_minute and now < self.expires_at

    def reset_ms(self, now: float) -> int:
        """Milliseconds to the end of the lease's minute."""
        return max(0, MINUTE_MS - self.elapsed_ms - int((now - self.granted_at) * 1000))

    def used(self, now: float, unspent: int) -> int:
        """The counter's use over the last minute as this process knows it (the sliding window's:
        this minute's count, plus the previous minute's weighted by its share still inside the
        last 60 s), less the `unspent` units this process holds."""
        return self.used_at(self.reset_ms(now), unspent)

    def used_at(self, reset_ms: int, unspent: int) -> int:
        """`used` when `reset_ms` are left of the minute."""
        return self.current + self.previous * reset_ms // MINUTE_MS - unspent

    def retry_ms(self, cost: int, now: float) -> int:
        """How long until `cost` more units could fit: the previous minute's weight shrinks
        linearly over this one; if that is not enough, the end of this minute."""
        reset = self.reset_ms(now)
        room = self.per_minute - self.current - cost
        if room >= 0 and self.previous > 0:
            elapsed = MINUTE_MS - reset
            return max(1, math.ceil(MINUTE_MS * (1 - room / self.previous)) - elapsed)
        return max(1, reset)
