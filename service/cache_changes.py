"""Changes to what the hot path caches reach every API process within a second.

Each API process keeps routes (`RouteCache`), checked keys (`Authenticator`) and tenants' provider
credentials (`CredentialsCache`) in memory. When one
process changes what they hold (a deployment changed or rolled back, a model deleted, a key
revoked), it drops its own entry at once and publishes the change on a Redis channel; every API
process listens on that channel (`ChangeListener`, a daemon thread) and drops the entry too. While
Redis is unreachable nothing is published or heard, and the caches' own lifetimes (a few seconds)
are the backstop: a change is late, never lost.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)

CHANNEL = "ftm:cache-changes"
RECONNECT_AFTER_S = 1.0


@dataclass(frozen=True)
class Change:
    """A route (`tenant_id`, `model`: a model or a deployment's name), a key (`key_id`), or a
    tenant's own credentials at a provider (`tenant_id`, `provider`)."""

    tenant_id: str | None = None
    model: str | None = None
    key_id: str | None = None
    provider: str | None = None

    def encode(self) -> str:
        fields = {"tenant_id": self.tenant_id, "model": self.model, "key_id": self.key_id}
        if self.provider is not None:
            fields["provider"] = self.provider
        return json.dumps(fields)

    @classmethod
    def decode(cls, raw: bytes | str) -> Change | None:
        try:
            fields = json.loads(raw)
            return cls(
                fields.get("tenant_id"), fields.get("model"), fields.get("key_id"), fields.get("provider")
            )
        except (ValueError, AttributeError):
            log.warning("ignoring a malformed cache change on %s", CHANNEL)
            return None


def publish(client: redis.Redis, change: Change) -> None:
    """Tell every API process; when Redis is down, say so and let the caches' lifetimes do it."""
    try:
        client.publish(CHANNEL, change.encode())
    except redis.RedisError as error:
        log.warning("could not publish a cache change (%s); other processes see it when it expires", error)


class ChangeListener:
    """Applies every published change with `apply`, from a daemon thread, reconnecting after a
    Redis failure until stopped."""

    def __init__(self, client: redis.Redis, apply: Callable[[Change], None]) -> None:
        self._client = client
        self._apply = apply
        self._stopped = threading.Event()
        self._subscribed = threading.Event()
        self._warned = False
        self._thread = threading.Thread(target=self._run, name="cache-changes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait_subscribed(self, timeout_s: float) -> bool:
        return self._subscribed.wait(timeout_s)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._listen()
            except redis.RedisError as error:
                if self._subscribed.is_set() or not self._warned:  # once per outage, not per retry
                    log.warning(
                        "cache-change listener lost Redis (%s); retrying every %s s", error, RECONNECT_AFTER_S
                    )
                    self._warned = True
                self._subscribed.clear()
                self._stopped.wait(RECONNECT_AFTER_S)

    def _listen(self) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(CHANNEL)
            self._subscribed.set()
            self._warned = False
            while not self._stopped.is_set():
                message = pubsub.get_message(timeout=0.2)
                if message is not None and message.get("type") == "message":
                    change = Change.decode(message["data"])
                    if change is not None:
                        self._apply(change)
        finally:
            pubsub.close()
