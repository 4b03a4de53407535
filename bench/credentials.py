"""What tenants' own provider credentials cost the proxy's hot path and the workers.

Prints, in one run on this machine:
- a proxied request's lookup of its tenant's credentials when cached (`CredentialsCache.auth`, the
  cost every request pays), against the miss it replaces (a database read and a Fernet decrypt:
  what reading per request would cost), on SQLite;
- Fernet encrypt / decrypt of a key (`CredentialsCipher`);
- a worker's SDK client for a tenant's credentials (`ProviderRegistry.sync_client`): the first one
  (a copy of the provider's client sharing its pool) and then a kept one.

Figures are never asserted (machines are noisy).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr

from service.auth import service as auth
from service.config import Settings
from service.db import make_engine, make_session_factory, session_scope
from service.migrate import upgrade
from service.providers.credentials import CredentialsCipher, ProviderCredentials
from service.providers.credentials_cache import CredentialsCache, lookup_auth
from service.providers.credentials_store import NewCredentials, save_credentials
from service.providers.registry import ProviderRegistry

TENANTS = 100
HITS = 200_000
MISSES = 2_000


def _per_call_us(calls: int, work: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - started) / calls * 1e6


async def _hits_us(cache: CredentialsCache, tenants: list[str]) -> float:
    for tenant in tenants:  # warm: one miss each
        await cache.auth(tenant, "local")
    started = time.perf_counter()
    for number in range(HITS):
        await cache.auth(tenants[number % len(tenants)], "local")
    return (time.perf_counter() - started) / HITS * 1e6


def run() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        url = f"sqlite:///{Path(workdir) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        cipher = CredentialsCipher([Fernet.generate_key()])
        tenants: list[str] = []
        with session_scope(sessions) as session:
            for number in range(TENANTS):
                tenant = auth.get_or_create_tenant(session, f"bench-{number}")
                new = NewCredentials(f"sk-bench-tenant-{number:04d}", project=f"proj_{number}")
                save_credentials(session, cipher, tenant_id=tenant.id, provider="local", new=new)
                tenants.append(tenant.id)
        lookup = partial(lookup_auth, sessions, cipher)
        miss_us = _per_call_us(MISSES, lambda: lookup(tenants[0], "local"))
        cache = CredentialsCache(lookup, ttl_s=3600.0)
        hit_us = asyncio.run(_hits_us(cache, tenants))
        token = cipher.encrypt("sk-bench-tenant-0000")
        encrypt_us = _per_call_us(MISSES, lambda: cipher.encrypt("sk-bench-tenant-0000"))
        decrypt_us = _per_call_us(MISSES, lambda: cipher.decrypt(token))
        engine.dispose()

    settings = Settings(_env_file=None, credentials_key=SecretStr(Fernet.generate_key().decode()))
    registry = ProviderRegistry(settings)
    registry.sync_client("local")
    made = [
        ProviderCredentials(f"cred_{n}", "local", f"sk-bench-tenant-{n:04d}", None, None) for n in range(500)
    ]
    started = time.perf_counter()
    for credentials in made:
        registry.sync_client("local", credentials)
    first_us = (time.perf_counter() - started) / len(made) * 1e6
    kept_us = _per_call_us(HITS // 10, lambda: registry.sync_client("local", made[7]))
    registry.close()

    print(f"tenants with credentials: {TENANTS}")
    print(f"proxy lookup, cached (every request): {hit_us:8.2f} µs")
    print(f"proxy lookup, miss (SQL read + decrypt, once per tenant and TTL): {miss_us:8.1f} µs")
    print(f"Fernet encrypt / decrypt of a key: {encrypt_us:6.1f} / {decrypt_us:6.1f} µs")
    print(f"worker SDK client for tenant credentials, first / kept: {first_us:7.1f} / {kept_us:5.2f} µs")


if __name__ == "__main__":
    run()
