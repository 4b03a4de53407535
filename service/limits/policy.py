"""Which per-minute limits apply to a caller: its key's and its tenant's, each set on the key or
tenant (`None`: the setting's default; `0`: no limit)."""

from __future__ import annotations

from dataclasses import dataclass

from service.auth.service import Principal
from service.config import Settings


@dataclass(frozen=True)
class Limit:
    """One counter: `scope` is `key` or `tenant`, `kind` is `requests` or `tokens`."""

    scope: str
    kind: str
    owner: str  # the key's or the tenant's id
    per_minute: int


def _chosen(own: int | None, default: int) -> int:
    return default if own is None else own


def limits_for(caller: Principal, settings: Settings) -> tuple[Limit, ...]:
    """The caller's limits that are on (a limit of 0 is off)."""
    candidates = (
        Limit("key", "requests", caller.key_id, _chosen(caller.key_rpm, settings.key_requests_per_minute)),
        Limit("key", "tokens", caller.key_id, _chosen(caller.key_tpm, settings.key_tokens_per_minute)),
        Limit(
            "tenant",
            "requests",
            caller.tenant_id,
            _chosen(caller.tenant_rpm, settings.tenant_requests_per_minute),
        ),
        Limit(
            "tenant",
            "tokens",
            caller.tenant_id,
            _chosen(caller.tenant_tpm, settings.tenant_tokens_per_minute),
        ),
    )
    return tuple(limit for limit in candidates if limit.per_minute > 0)


def estimate_tokens(raw: bytes, body: dict[str, object]) -> int:
    """What a request may use, counted before it is sent (cheaply: about 4 bytes a token, plus the
    completion tokens it allows); the actual usage corrects it afterwards."""
    allowed = body.get("max_completion_tokens", body.get("max_tokens"))
    choices = body.get("n")
    completion = allowed if isinstance(allowed, int) and allowed > 0 else 0
    return len(raw) // 4 + completion * (choices if isinstance(choices, int) and choices > 0 else 1)
