"""Tenants, API keys and authentication.

Every query elsewhere is scoped by the `Principal.tenant_id` this module resolves from a key.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.auth.keys import (
    ALL_SCOPES,
    DEFAULT_SCOPES,
    MIN_KEY_LENGTH,
    Scope,
    generate_key,
    hash_key,
    matches,
    visible_prefix,
)
from service.auth.models import ApiKeyRow, TenantRow
from service.clock import utcnow
from service.errors import AuthenticationFailed, InvalidRequest, NotFound
from service.ids import new_id
from service.limits.store import limits_of

DEFAULT_TENANT = "default"
TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant and the scopes of the key used."""

    tenant_id: str
    tenant_name: str
    key_id: str
    scopes: frozenset[str]
    # Per-minute proxy limits of the key and of its tenant (None: the settings' default; 0: none).
    key_rpm: int | None = None
    key_tpm: int | None = None
    tenant_rpm: int | None = None
    tenant_tpm: int | None = None

    def has(self, scope: Scope) -> bool:
        """`admin` implies every scope within its tenant; `platform` is never implied."""
        if scope == Scope.PLATFORM:
            return Scope.PLATFORM in self.scopes
        return Scope.ADMIN in self.scopes or scope in self.scopes

    def administers(self, tenant_id: str) -> bool:
        """Whether this key manages the keys of `tenant_id`: a platform key any, an admin key its own."""
        return self.has(Scope.PLATFORM) or (self.has(Scope.ADMIN) and tenant_id == self.tenant_id)

    def can_grant(self, scope: str) -> bool:
        """A key hands out only what it holds, so no key mints a stronger one; `platform` grants all."""
        return self.has(Scope.PLATFORM) or (scope in ALL_SCOPES and self.has(Scope(scope)))


def tenant_not_found(name: str) -> NotFound:
    return NotFound(f"No tenant named '{name}'.", param="tenant", code="tenant_not_found")


def get_tenant(session: Session, name: str) -> TenantRow:
    tenant = session.scalar(select(TenantRow).where(TenantRow.name == name))
    if tenant is None:
        raise tenant_not_found(name)
    return tenant


TENANT_SETTINGS = frozenset({"monthly_training_budget_usd", "personal_data_policy"})


def update_tenant(session: Session, tenant: TenantRow, changes: Mapping[str, object]) -> TenantRow:
    """Set the tenant's settings named in `changes` (its budget, its personal-data policy)."""
    for field, value in changes.items():
        if field not in TENANT_SETTINGS:
            raise InvalidRequest(f"'{field}' cannot be changed.", param=field)
        setattr(tenant, field, value)
    session.flush()
    return tenant


def create_tenant(session: Session, name: str) -> TenantRow:
    if not TENANT_NAME.match(name):
        raise InvalidRequest(
            "Tenant names are 1-64 characters of a-z, 0-9, '.', '_' and '-', "
            "starting with a letter or digit.",
            param="name",
        )
    if session.scalar(select(TenantRow.id).where(TenantRow.name == name)) is not None:
        raise InvalidRequest(f"A tenant named '{name}' exists already.", param="name", code="tenant_exists")
    tenant = TenantRow(id=new_id("tenant_"), name=name, created_at=utcnow())
    session.add(tenant)
    session.flush()
    return tenant


def get_or_create_tenant(session: Session, name: str) -> TenantRow:
    existing = session.scalar(select(TenantRow).where(TenantRow.name == name))
    return existing if existing is not None else create_tenant(session, name)


def parse_scopes(scopes: Iterable[str] | None) -> list[str]:
    chosen = DEFAULT_SCOPES if scopes is None else set(scopes)
    unknown = sorted(set(chosen) - ALL_SCOPES)
    if unknown:
        raise InvalidRequest(
            f"Unknown scope(s) {', '.join(unknown)}; known scopes are {', '.join(sorted(ALL_SCOPES))}.",
            param="scopes",
        )
    if not chosen:
        raise InvalidRequest("A key needs at least one scope.", param="scopes")
    return sorted(chosen)


def create_key(
    session: Session,
    tenant: TenantRow,
    *,
    scopes: Iterable[str] | None = None,
    name: str = "",
    expires_at: datetime | None = None,
    plaintext: str | None = None,
) -> tuple[ApiKeyRow, str]:
    """A new key for `tenant`; the plaintext is returned here and never again."""
    key = plaintext if plaintext is not None else generate_key()
    if len(key) < MIN_KEY_LENGTH:
        raise InvalidRequest(f"An API key must be at least {MIN_KEY_LENGTH} characters long.", param="key")
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidRequest("expires_at must be in the future.", param="expires_at")
    row = ApiKeyRow(
        id=new_id("key_"),
        tenant_id=tenant.id,
        name=name,
        prefix=visible_prefix(key),
        key_hash=hash_key(key),
        scopes=parse_scopes(scopes),
        created_at=utcnow(),
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row, key


def ensure_key(session: Session, key: str, *, tenant_name: str, scopes: Iterable[str]) -> ApiKeyRow:
    """Make sure exactly this key exists (bootstrap); idempotent, and it revives a revoked one."""
    tenant = get_or_create_tenant(session, tenant_name)
    for row in _candidates(session, key):
        if row.tenant_id == tenant.id:
            row.revoked_at = None
            row.expires_at = None
            row.scopes = parse_scopes(scopes)
            return row
    row, _ = create_key(session, tenant, scopes=scopes, name="bootstrap", plaintext=key)
    return row


def list_keys(session: Session, tenant_id: str | None = None) -> list[ApiKeyRow]:
    query = select(ApiKeyRow).order_by(ApiKeyRow.created_at.desc(), ApiKeyRow.id)
    if tenant_id is not None:
        query = query.where(ApiKeyRow.tenant_id == tenant_id)
    return list(session.scalars(query))


def api_key_not_found(key_id: str) -> NotFound:
    return NotFound(f"No API key with id '{key_id}'.", param="key_id", code="api_key_not_found")


def get_key(session: Session, key_id: str) -> ApiKeyRow:
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise api_key_not_found(key_id)
    return row


def _candidates(session: Session, key: str) -> list[ApiKeyRow]:
    return list(session.scalars(select(ApiKeyRow).where(ApiKeyRow.prefix == visible_prefix(key))))


INVALID_KEY = "Incorrect API key provided."


def authenticate(session: Session, key: str) -> Principal:
    """The principal for `key`; every failure is the same 401 so that nothing leaks."""
    now = utcnow()
    for row in _candidates(session, key):
        if not matches(key, row.key_hash):
            continue
        if not row.is_active(now):
            break
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
            row.last_used_at = now
        tenant = session.get(TenantRow, row.tenant_id)
        assert tenant is not None  # the foreign key guarantees it
        limits = limits_of(session, [row.id, tenant.id])
        own, tenants = limits.get(row.id), limits.get(tenant.id)
        return Principal(
            tenant.id,
            tenant.name,
            row.id,
            frozenset(row.scopes),
            key_rpm=own.requests_per_minute if own else None,
            key_tpm=own.tokens_per_minute if own else None,
            tenant_rpm=tenants.requests_per_minute if tenants else None,
            tenant_tpm=tenants.tokens_per_minute if tenants else None,
        )
    raise AuthenticationFailed(INVALID_KEY)


class Authenticator:
    """`authenticate` behind a short in-memory cache, so a request costs no query most of the time.

    A revoked or expired key stops working within `ttl_s` seconds. On the event loop, `check`
    runs one lookup per key at a time: when an entry expires under load, the requests in flight
    with that key share one query instead of each making its own.
    """

    def __init__(self, sessions: sessionmaker[Session], ttl_s: float) -> None:
        self._sessions = sessions
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        self._pending: dict[str, asyncio.Future[Principal]] = {}  # by digest; event loop only

    async def check(self, key: str) -> Principal:
        """The principal for `key`: from the cache (no I/O), else from one lookup in the thread
        pool shared with every request asking for the same key meanwhile."""
        principal = self.cached(key)
        if principal is not None:
            return principal
        digest = hash_key(key)
        lookup = self._pending.get(digest)
        if lookup is None:
            lookup = self._pending[digest] = asyncio.ensure_future(anyio.to_thread.run_sync(self, key))
            lookup.add_done_callback(partial(self._forget_pending, digest))
        # shield: one caller going away must not cancel the lookup the others wait for
        return await asyncio.shield(lookup)

    def _forget_pending(self, digest: str, lookup: asyncio.Future[Principal]) -> None:
        if self._pending.get(digest) is lookup:
            del self._pending[digest]
        if not lookup.cancelled():
            lookup.exception()  # retrieved: a failure nobody awaits any more is not reported again

    def cached(self, key: str) -> Principal | None:
        """The principal if this key was checked within the TTL (no I/O: safe on the event loop)."""
        cached = self._cache.get(hash_key(key))  # one dict read: atomic, no lock needed
        return cached[1] if cached is not None and cached[0] > time.monotonic() else None

    def forget_key(self, key_id: str) -> None:
        """Drop every cached check of the key `key_id` (it was revoked), from any thread."""
        with self._lock:
            for digest in [d for d, (_, principal) in self._cache.items() if principal.key_id == key_id]:
                del self._cache[digest]

    def forget_tenant(self, tenant_id: str) -> None:
        """Drop every cached check of the keys of `tenant_id` (its limits changed), from any thread."""
        with self._lock:
            for digest in [d for d, (_, p) in self._cache.items() if p.tenant_id == tenant_id]:
                del self._cache[digest]

    def __call__(self, key: str) -> Principal:
        principal = self.cached(key)
        if principal is not None:
            return principal
        digest = hash_key(key)
        now = time.monotonic()
        with self._sessions() as session, session.begin():
            principal = authenticate(session, key)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self._ttl_s, principal)
        return principal
