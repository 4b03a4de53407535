"""Migration 0004: the operators' admin keys of tenant `default` become platform admin keys."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import insert, select

from service.auth import service as auth
from service.auth.models import ApiKeyRow, TenantRow
from service.clock import utcnow
from service.db import make_engine, make_session_factory, session_scope
from service.migrate import alembic_config, upgrade


@pytest.fixture
def database_before_0004(tmp_path: Path) -> str:
    """A store migrated up to the revision before 0004, holding keys of every kind by name."""
    url = f"sqlite:///{tmp_path / 'before-0004.db'}"
    previous = ScriptDirectory.from_config(alembic_config(url)).get_revision("0004").down_revision
    assert isinstance(previous, str)
    upgrade(url, previous)
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        # Tenants are written with the columns of that revision only (the model has more since).
        default, acme = (
            TenantRow(id=f"tenant_{name}", name=name, created_at=utcnow()) for name in ("default", "acme")
        )
        for tenant in (default, acme):
            session.execute(
                insert(TenantRow).values(id=tenant.id, name=tenant.name, created_at=tenant.created_at)
            )
        for tenant, name, scopes in [
            (default, "operator", ["admin", "files"]),
            (default, "revoked", ["admin"]),
            (default, "expired", ["admin"]),
            (default, "worker", ["files"]),
            (acme, "acme-admin", ["admin"]),
        ]:
            row, _ = auth.create_key(session, tenant, scopes=scopes, name=name)
            if name == "revoked":
                row.revoked_at = utcnow()
            if name == "expired":
                row.expires_at = utcnow() - timedelta(seconds=1)
    engine.dispose()
    return url


def scopes_by_name(url: str) -> dict[str, list[str]]:
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        found = {row.name: list(row.scopes) for row in session.scalars(select(ApiKeyRow))}
    engine.dispose()
    return found


def test_the_upgrade_makes_the_active_admin_keys_of_default_platform_admins(
    database_before_0004: str,
) -> None:
    upgrade(database_before_0004, "0004")

    assert scopes_by_name(database_before_0004) == {
        "operator": ["admin", "files", "platform"],
        "revoked": ["admin"],
        "expired": ["admin"],
        "worker": ["files"],
        "acme-admin": ["admin"],
    }


def test_the_downgrade_turns_platform_back_into_admin(database_before_0004: str) -> None:
    upgrade(database_before_0004, "0004")
    engine = make_engine(database_before_0004)
    with session_scope(make_session_factory(engine)) as session:
        default = TenantRow(id="tenant_default", name="default")  # the row the fixture wrote
        auth.create_key(session, default, scopes=["platform"], name="ops")
    engine.dispose()
    previous = ScriptDirectory.from_config(alembic_config(database_before_0004)).get_revision("0004")

    command.downgrade(alembic_config(database_before_0004), str(previous.down_revision))

    scopes = scopes_by_name(database_before_0004)
    assert (scopes["operator"], scopes["ops"]) == (["admin", "files"], ["admin"])
